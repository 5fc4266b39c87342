"""Traced arrays behave like ndarrays: NumPy's protocols (``__array_ufunc__``,
``__array_function__``), operators, methods and attributes on
:class:`~jitgrad.core.trace.Tracer`, all answered by :mod:`jitgrad.numpy`.  The
tables are also what the tape's Tensor dispatches through.
"""
from __future__ import annotations

import numpy as _np

from .. import numpy as jnp
from ..core.trace import Tracer

# NumPy's ufuncs and functions on traced arrays.

UFUNCS = {
    "add": jnp.add, "subtract": jnp.subtract, "multiply": jnp.multiply, "divide": jnp.divide,
    "true_divide": jnp.divide, "power": jnp.power, "float_power": jnp.float_power,
    "negative": jnp.negative, "positive": jnp.positive, "exp": jnp.exp, "exp2": jnp.exp2,
    "expm1": jnp.expm1, "log": jnp.log, "log2": jnp.log2, "log10": jnp.log10, "log1p": jnp.log1p,
    "sqrt": jnp.sqrt, "cbrt": jnp.cbrt, "square": jnp.square, "reciprocal": jnp.reciprocal,
    "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "arcsin": jnp.arcsin, "arccos": jnp.arccos,
    "arctan": jnp.arctan, "arctan2": jnp.arctan2, "hypot": jnp.hypot, "sinh": jnp.sinh,
    "cosh": jnp.cosh, "tanh": jnp.tanh, "arcsinh": jnp.arcsinh, "arccosh": jnp.arccosh,
    "arctanh": jnp.arctanh, "absolute": jnp.absolute, "fabs": jnp.absolute, "sign": jnp.sign,
    "floor": jnp.floor, "ceil": jnp.ceil, "rint": jnp.rint, "trunc": jnp.trunc,
    "maximum": jnp.maximum, "minimum": jnp.minimum, "logaddexp": jnp.logaddexp, "less": jnp.less,
    "less_equal": jnp.less_equal, "greater": jnp.greater, "greater_equal": jnp.greater_equal,
    "equal": jnp.equal, "not_equal": jnp.not_equal, "logical_and": jnp.logical_and,
    "logical_or": jnp.logical_or, "logical_not": jnp.logical_not, "logical_xor": jnp.logical_xor,
    "bitwise_and": jnp.bitwise_and, "bitwise_or": jnp.bitwise_or, "bitwise_xor": jnp.bitwise_xor,
    "invert": jnp.invert,
    "isnan": jnp.isnan, "isinf": jnp.isinf, "isfinite": jnp.isfinite,
    "floor_divide": jnp.floor_divide, "remainder": jnp.remainder, "divmod": jnp.divmod,
    "deg2rad": jnp.deg2rad,
    "rad2deg": jnp.rad2deg, "matmul": jnp.matmul,
}
UFUNC_REDUCE = {"add": jnp.sum, "multiply": jnp.prod, "maximum": jnp.max, "minimum": jnp.min}

FUNCTIONS = {
    _np.sum: jnp.sum, _np.prod: jnp.prod, _np.max: jnp.max, _np.min: jnp.min, _np.amax: jnp.max,
    _np.amin: jnp.min, _np.ptp: jnp.ptp, _np.mean: jnp.mean, _np.var: jnp.var, _np.std: jnp.std,
    _np.dot: jnp.dot,
    _np.matmul: jnp.matmul, _np.vdot: jnp.vdot, _np.inner: jnp.inner, _np.outer: jnp.outer,
    _np.tensordot: jnp.tensordot, _np.transpose: jnp.transpose, _np.swapaxes: jnp.swapaxes,
    _np.moveaxis: jnp.moveaxis, _np.reshape: jnp.reshape, _np.ravel: jnp.ravel,
    _np.expand_dims: jnp.expand_dims, _np.squeeze: jnp.squeeze, _np.broadcast_to: jnp.broadcast_to,
    _np.concatenate: jnp.concatenate, _np.stack: jnp.stack, _np.hstack: jnp.hstack,
    _np.vstack: jnp.vstack, _np.atleast_1d: jnp.atleast_1d, _np.zeros_like: jnp.zeros_like,
    _np.ones_like: jnp.ones_like, _np.full_like: jnp.full_like, _np.empty_like: jnp.empty_like,
    _np.where: jnp.where, _np.clip: jnp.clip, _np.round: jnp.round, _np.around: jnp.round,
    _np.copy: jnp.copy, _np.shape: jnp.shape, _np.ndim: jnp.ndim, _np.size: jnp.size,
    _np.linalg.norm: jnp.linalg.norm, _np.fix: jnp.fix, _np.trace: jnp.trace, _np.take: jnp.take,
    _np.cumsum: jnp.cumsum, _np.diagonal: jnp.diagonal, _np.diag: jnp.diag, _np.diff: jnp.diff, _np.einsum: jnp.einsum,
    _np.sort: jnp.sort, _np.argsort: jnp.argsort, _np.argmax: jnp.argmax, _np.argmin: jnp.argmin,
    _np.linalg.inv: jnp.linalg.inv, _np.linalg.solve: jnp.linalg.solve,
    _np.linalg.det: jnp.linalg.det,
}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    name = ufunc.__name__
    if method == "__call__" and name in UFUNCS:
        return UFUNCS[name](*inputs, **kwargs)
    if method == "reduce" and name in UFUNCS and name in UFUNC_REDUCE:
        return UFUNC_REDUCE[name](*inputs, **kwargs)
    what = f"numpy.{name}" + ("" if method == "__call__" else f".{method}")
    raise NotImplementedError(f"jitgrad does not support {what} on traced arrays")


def _array_function(self, func, types, args, kwargs):
    impl = FUNCTIONS.get(func)
    if impl is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        mod = "numpy" if mod.startswith("numpy") and "linalg" not in mod else mod
        raise NotImplementedError(
            f"jitgrad does not support {mod}.{func.__name__} on traced arrays. "
            "Supported NumPy functions are listed in jitgrad.numpy (see README).")
    return impl(*args, **kwargs)


def _missing_attribute(self, name):
    if hasattr(_np.ndarray, name) and not name.startswith("__"):
        raise NotImplementedError(f"jitgrad does not support the array method or attribute "
                                  f"'.{name}' on traced arrays")
    raise AttributeError(f"'Tracer' object has no attribute '{name}'")


def _defer(op):
    """A binary operator that yields to operands of higher priority (the tape's
    Tensor) so that their reflected operator can record the operation."""
    def method(self, other):
        if getattr(other, "__array_priority__", 0) > Tracer.__array_priority__ and \
                hasattr(other, "__jitgrad_value__"):
            return NotImplemented
        return op(self, other)
    return method


def _install_tracer_methods():
    T = Tracer
    T.__getattr__ = _missing_attribute
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function
    binary = {
        "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "truediv": jnp.divide,
        "floordiv": jnp.floor_divide, "mod": jnp.remainder, "divmod": jnp.divmod, "pow": jnp.power,
        "matmul": jnp.matmul,
    }
    for name, fn in binary.items():
        setattr(T, f"__{name}__", _defer(lambda s, o, fn=fn: fn(s, o)))
        setattr(T, f"__r{name}__", _defer(lambda s, o, fn=fn: fn(o, s)))
    T.__neg__ = lambda s: jnp.negative(s)
    T.__pos__ = lambda s: s
    T.__abs__ = lambda s: jnp.absolute(s)
    T.__lt__ = lambda s, o: jnp.less(s, o)
    T.__le__ = lambda s, o: jnp.less_equal(s, o)
    T.__gt__ = lambda s, o: jnp.greater(s, o)
    T.__ge__ = lambda s, o: jnp.greater_equal(s, o)
    T.__eq__ = lambda s, o: jnp.equal(s, o)
    T.__ne__ = lambda s, o: jnp.not_equal(s, o)
    T.__and__ = T.__rand__ = lambda s, o: jnp.bitwise_and(s, o)
    T.__or__ = T.__ror__ = lambda s, o: jnp.bitwise_or(s, o)
    T.__xor__ = T.__rxor__ = lambda s, o: jnp.bitwise_xor(s, o)
    T.__invert__ = lambda s: jnp.invert(s)
    T.__getitem__ = jnp.getitem
    T.sum = jnp.sum
    T.prod = jnp.prod
    T.cumsum = jnp.cumsum
    T.diagonal = jnp.diagonal
    T.trace = jnp.trace
    T.argsort = jnp.argsort
    T.argmax = jnp.argmax
    T.argmin = jnp.argmin
    T.mean = jnp.mean
    T.var = jnp.var
    T.std = jnp.std
    T.max = jnp.max
    T.min = jnp.min
    T.dot = jnp.dot
    T.astype = jnp.astype
    T.ravel = jnp.ravel
    T.flatten = jnp.ravel
    T.squeeze = jnp.squeeze
    T.clip = jnp.clip
    T.round = jnp.round
    T.copy = jnp.copy
    T.swapaxes = jnp.swapaxes
    T.reshape = lambda s, *shape, **kw: jnp.reshape(s, shape[0] if len(shape) == 1 else shape, **kw)
    T.transpose = lambda s, *axes: jnp.transpose(
        s, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None)
    T.T = property(lambda s: jnp.transpose(s))


_install_tracer_methods()
