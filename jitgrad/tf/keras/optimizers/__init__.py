"""``tf.keras.optimizers``: Keras's optimizers on jitgrad Variables."""
from ....tape.optimizers import Adam, Optimizer, SGD  # noqa: F401
from ....tape.adaptive import Adadelta, Adagrad, Adamax, AdamW, Nadam, RMSprop  # noqa: F401
from . import schedules  # noqa: F401
