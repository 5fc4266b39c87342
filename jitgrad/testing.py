"""Public path of the gradient-checking helpers (``from jitgrad.testing import check_grads``)."""
from .api.testing import check_grads, numerical_grad, numerical_jvp  # noqa: F401
