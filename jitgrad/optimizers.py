"""Public path of the optimizers.

Keras-style classes for the tape API (``from jitgrad.optimizers import SGD,
Adam``), learning-rate schedules (``jitgrad.optimizers.schedules``), and the
composable functional form (``chain``, ``scale_by_adam``, ``adam`` ...,
``apply_updates``; see :mod:`jitgrad.tape.gradient_transforms`).
"""
from .tape.optimizers import Adam, Optimizer, SGD  # noqa: F401
from .tape.adaptive import Adadelta, Adagrad, Adamax, AdamW, Nadam, RMSprop  # noqa: F401
from .tape import schedules  # noqa: F401
from .tape.gradient_transforms import (  # noqa: F401
    GradientTransformation, adagrad, adam, adamw, add_decayed_weights, apply_updates, chain, clip,
    clip_by_global_norm, identity, rmsprop, scale, scale_by_adam, scale_by_learning_rate,
    scale_by_rms, scale_by_rss, scale_by_stddev, sgd, trace)
