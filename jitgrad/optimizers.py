"""Public path of the tape's optimizers (``from jitgrad.optimizers import SGD, Adam``)."""
from .tape.optimizers import Adam, Optimizer, SGD  # noqa: F401
