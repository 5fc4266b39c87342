"""``tf.keras``: the optimizers (``jitgrad.tf.keras.optimizers``)."""
from . import optimizers  # noqa: F401
