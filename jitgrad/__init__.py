"""jitgrad: JIT, source-transforming automatic differentiation for NumPy code.

Function transforms with JAX's signatures (grad, value_and_grad, jvp, vjp, jit,
jacfwd, jacrev, hessian, hvp, linearize, vmap, custom_jvp, custom_vjp), structured
control flow (scan, fori_loop, while_loop, cond, switch, checkpoint) and a
TensorFlow-style GradientTape, on plain NumPy functions compiled by Numba;
jitgrad.random draws random numbers from explicit keys inside them.
"""
from .version import __version__
from . import numpy  # noqa: F401  (installs the Tracer's NumPy interface)
from . import optimizers, random, testing, tree  # noqa: F401  (public module paths)
from .api.functions import grad, jit, jvp, make_ir, source, value_and_grad, vjp
from .transforms.custom import custom_jvp, custom_vjp
from .lax.callback import ShapeDtypeStruct, pure_callback
from .core.errors import JitgradError, PerformanceWarning, TracerBoolError
from .api.control import binomial, checkpoint, cond, fori_loop, remat, scan, switch, while_loop
from .api.jacobians import hessian, hvp, jacfwd, jacrev, linearize, vmap
from .backend.compile import wait_for_compiles
from .backend.config import config
from .tape.accumulator import ForwardAccumulator
from .tape.derivatives import UnconnectedGradients
from .tape.function import function
from .tape.tape import GradientTape
from .tape.variables import Tensor, Variable, constant, stop_gradient

__all__ = [
    "grad", "value_and_grad", "jvp", "vjp", "jit", "make_ir", "source",
    "jacfwd", "jacrev", "hessian", "hvp", "linearize", "vmap",
    "custom_jvp", "custom_vjp", "stop_gradient", "function", "pure_callback", "ShapeDtypeStruct",
    "scan", "binomial", "fori_loop", "while_loop", "cond", "switch", "checkpoint", "remat",
    "GradientTape", "ForwardAccumulator", "UnconnectedGradients", "Variable", "Tensor", "constant",
    "optimizers", "random", "testing", "tree", "config", "wait_for_compiles",
    "JitgradError", "TracerBoolError", "PerformanceWarning",
]
