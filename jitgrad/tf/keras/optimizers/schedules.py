"""``tf.keras.optimizers.schedules``: learning-rate schedules."""
from ....tape.schedules import (  # noqa: F401
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay)
