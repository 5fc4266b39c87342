"""jitgrad: JIT, source-transforming automatic differentiation for NumPy code."""
from . import numpy  # noqa: F401  (installs the Tracer's NumPy interface)
from . import tree
from .api import grad, jit, jvp, make_ir, source, value_and_grad, vjp
from .errors import JitgradError, TracerBoolError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "jvp", "vjp", "jit", "make_ir", "source", "tree",
           "JitgradError", "TracerBoolError"]
from .runtime import config, wait_for_compiles
from .jacobians import hessian, hvp, jacfwd, jacrev, linearize, vmap
from .primitives import stop_gradient
from .custom import custom_jvp, custom_vjp
from . import testing
from . import optimizers
from .variables import Tensor, Variable, constant
from .tape import GradientTape, ForwardAccumulator, UnconnectedGradients
