"""Traced arrays behave like ndarrays: NumPy's protocols (``__array_ufunc__``,
``__array_function__``), operators, methods and attributes on
:class:`~jitgrad.core.trace.Tracer`, all answered by the NumPy layer.  The
tables are also what the tape's Tensor dispatches through.

The tables are not kept by hand: an implementation is found by name.  A
function of the NumPy layer named like a NumPy ufunc answers that ufunc, one
named like a NumPy function that dispatches through ``__array_function__``
answers that function (and likewise in ``linalg``).  Adding a function to the
layer is all it takes to make NumPy send traced arrays to it.
"""
from __future__ import annotations

import numpy as _np

from ..core.trace import Tracer
import sys

from . import (arrays, base, calculus, complex, einsum, elementwise, fft, indexing, linear_algebra, products,
               reductions, rounding, shapes, special, statistics, ufuncs)
from . import inplace, intercept, scipy_linalg  # noqa: F401  (installed while tracing)

_FAMILIES = (base, ufuncs, reductions, shapes, rounding, products, indexing, einsum, elementwise,
             arrays, statistics, calculus, complex, special, linear_algebra)


def _implementations():
    """Name -> function, for every public function the NumPy layer defines."""
    found = {}
    for module in _FAMILIES:
        for name, value in vars(module).items():
            if (not name.startswith("_") and callable(value)
                    and getattr(value, "__module__", "").startswith(__package__ + ".")):
                found.setdefault(name, value)
    return found


def _dispatched(obj):
    """Whether NumPy sends traced arrays given to ``obj`` to ``__array_function__``."""
    return callable(obj) and not isinstance(obj, _np.ufunc) and hasattr(obj, "_implementation")


IMPLEMENTATIONS = _implementations()
UFUNCS = {u.__name__: IMPLEMENTATIONS[u.__name__] for u in vars(_np).values()
          if isinstance(u, _np.ufunc) and u.__name__ in IMPLEMENTATIONS}
UFUNC_REDUCE = {"add": reductions.sum, "multiply": reductions.prod, "maximum": reductions.max,
                "minimum": reductions.min}
FUNCTIONS = {getattr(_np, name): fn for name, fn in IMPLEMENTATIONS.items()
             if _dispatched(getattr(_np, name, None))}
FUNCTIONS.update({getattr(_np.linalg, name): getattr(linear_algebra.linalg, name)
                  for name in vars(linear_algebra.linalg)
                  if not name.startswith("_") and _dispatched(getattr(_np.linalg, name, None))})
FUNCTIONS.update({getattr(_np.fft, name): getattr(fft, name) for name in fft.__all__})


def _ufunc_module(ufunc):
    """'numpy', or 'scipy.special' for SciPy's ufuncs (SciPy is not imported
    for this: a SciPy ufunc only reaches here once the user has imported it)."""
    if getattr(_np, ufunc.__name__, None) is ufunc:
        return "numpy"
    for name in ("scipy.special", "scipy.special._ufuncs"):
        sc = sys.modules.get(name)
        if sc is not None and getattr(sc, ufunc.__name__, None) is ufunc:
            return "scipy.special"
    return "numpy" if ufunc.__name__ in UFUNCS else "a library"


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    name = ufunc.__name__
    module = _ufunc_module(ufunc)
    table = special.UFUNCS if module == "scipy.special" else UFUNCS
    if method == "__call__" and name in table:
        return table[name](*inputs, **kwargs)
    if method == "reduce" and module == "numpy" and name in UFUNCS and name in UFUNC_REDUCE:
        return UFUNC_REDUCE[name](*inputs, **kwargs)
    what = f"{module}.{name}" + ("" if method == "__call__" else f".{method}")
    raise NotImplementedError(f"jitgrad does not support {what} on traced arrays")


def _view_function(name, impl):
    """``impl`` of a NumPy function that may return a view of its first argument,
    recording that (see :mod:`jitgrad.numpy.inplace`)."""
    np_fn = getattr(_np, name)

    def fn(a, *args, **kwargs):
        out = impl(a, *args, **kwargs)
        recompute = lambda: impl(a, *args, **kwargs)       # noqa: E731
        on_positions = lambda pos: np_fn(pos, *args, **kwargs)    # noqa: E731
        if isinstance(out, (list, tuple)):
            return type(out)(inplace.record_view(a, o, lambda pos, i=i: on_positions(pos)[i],
                                                 lambda i=i: recompute()[i])
                             for i, o in enumerate(out))
        return inplace.record_view(a, out, on_positions, recompute)
    fn.__name__ = name
    return fn


for _name in inplace.VIEW_FUNCTIONS:
    if getattr(_np, _name, None) in FUNCTIONS:
        FUNCTIONS[getattr(_np, _name)] = _view_function(_name, FUNCTIONS[getattr(_np, _name)])


def _view_method(name, method):
    """An array method that may return a view of the array, recording that."""
    def fn(self, *args, **kwargs):
        out = method(self, *args, **kwargs)
        return inplace.record_view(self, out, lambda pos: getattr(pos, name)(*args, **kwargs),
                                   lambda: method(self, *args, **kwargs))
    fn.__name__ = name
    return fn


def _getitem(self, key):
    out = indexing.getitem(self, key)
    return inplace.record_view(self, out, lambda pos: pos[key], lambda: indexing.getitem(self, key))


def _array_function(self, func, types, args, kwargs):
    impl = FUNCTIONS.get(func)
    if impl is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        mod = "numpy" if mod.startswith("numpy") and "linalg" not in mod and "fft" not in mod else mod
        raise NotImplementedError(
            f"jitgrad does not support {mod}.{func.__name__} on traced arrays. "
            "Supported NumPy functions are listed in jitgrad.numpy (see README).")
    return impl(*args, **kwargs)


# while tracing: NumPy functions of lists holding traced values, np.r_ and np.c_
intercept.register_sequence_functions(list(FUNCTIONS), _array_function)
from . import index_tricks  # noqa: E402,F401


def _array_namespace(self, api_version=None):
    """Array-API code (SciPy's) treats traced arrays as the NumPy arrays they
    stand for: its NumPy namespace, whose functions dispatch back here."""
    try:
        from scipy._lib.array_api_compat import numpy as namespace
    except ImportError:        # (no SciPy: NumPy itself)
        return _np
    return namespace


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


class _Namespace:
    """Attribute access to the NumPy layer's functions (``_ns.add``)."""

    def __init__(self, functions):
        self.__dict__.update(functions)


def _install_tracer_methods():
    T = Tracer
    _ns = _Namespace(IMPLEMENTATIONS)
    T.__getattr__ = _missing_attribute
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function
    T.__array_namespace__ = _array_namespace
    binary = {
        "add": _ns.add, "sub": _ns.subtract, "mul": _ns.multiply, "truediv": _ns.divide,
        "floordiv": _ns.floor_divide, "mod": _ns.remainder, "divmod": _ns.divmod, "pow": _ns.power,
        "matmul": _ns.matmul,
    }
    for name, fn in binary.items():
        setattr(T, f"__{name}__", _defer(lambda s, o, fn=fn: fn(s, o)))
        setattr(T, f"__r{name}__", _defer(lambda s, o, fn=fn: fn(o, s)))
    T.__neg__ = lambda s: _ns.negative(s)
    T.__pos__ = lambda s: _ns.positive(s)
    T.__abs__ = lambda s: _ns.absolute(s)
    T.__lt__ = lambda s, o: _ns.less(s, o)
    T.__le__ = lambda s, o: _ns.less_equal(s, o)
    T.__gt__ = lambda s, o: _ns.greater(s, o)
    T.__ge__ = lambda s, o: _ns.greater_equal(s, o)
    T.__eq__ = lambda s, o: _ns.equal(s, o)
    T.__ne__ = lambda s, o: _ns.not_equal(s, o)
    T.__and__ = T.__rand__ = lambda s, o: _ns.bitwise_and(s, o)
    T.__or__ = T.__ror__ = lambda s, o: _ns.bitwise_or(s, o)
    T.__xor__ = T.__rxor__ = lambda s, o: _ns.bitwise_xor(s, o)
    T.__invert__ = lambda s: _ns.invert(s)
    # through NumPy's ufuncs, so that the operators say what the functions say
    T.__lshift__ = lambda s, o: _np.left_shift(s, o)
    T.__rlshift__ = lambda s, o: _np.left_shift(o, s)
    T.__rshift__ = lambda s, o: _np.right_shift(s, o)
    T.__rrshift__ = lambda s, o: _np.right_shift(o, s)
    T.__getitem__ = _getitem
    T.__setitem__ = inplace.setitem
    for name, fn in binary.items():
        if name != "divmod":
            setattr(T, f"__i{name}__", inplace.augmented(fn, name))
    T.__iand__ = inplace.augmented(_ns.bitwise_and, "and")
    T.__ior__ = inplace.augmented(_ns.bitwise_or, "or")
    T.__ixor__ = inplace.augmented(_ns.bitwise_xor, "xor")
    T.sum = _ns.sum
    T.prod = _ns.prod
    T.cumsum = _ns.cumsum
    T.cumprod = _ns.cumprod
    T.repeat = _ns.repeat
    T.diagonal = _ns.diagonal
    T.trace = _ns.trace
    T.argsort = _ns.argsort
    T.argmax = _ns.argmax
    T.argmin = _ns.argmin
    T.mean = _ns.mean
    T.var = _ns.var
    T.std = _ns.std
    T.max = _ns.max
    T.any = _ns.any
    T.all = _ns.all
    T.min = _ns.min
    T.dot = _ns.dot
    T.conj = T.conjugate = _ns.conj
    T.real = property(lambda s: _ns.real(s))
    T.imag = property(lambda s: _ns.imag(s))
    T.astype = _ns.astype
    T.ravel = _ns.ravel
    T.flatten = _ns.ravel
    T.squeeze = _ns.squeeze
    T.clip = _ns.clip
    T.round = _ns.round
    T.copy = _ns.copy
    T.swapaxes = _ns.swapaxes
    T.reshape = lambda s, *shape, **kw: _ns.reshape(s, shape[0] if len(shape) == 1 else shape, **kw)
    T.transpose = lambda s, *axes: _ns.transpose(
        s, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None)
    T.T = property(lambda s: _ns.transpose(s))
    for name in ("reshape", "ravel", "transpose", "swapaxes", "squeeze", "diagonal"):
        setattr(T, name, _view_method(name, getattr(T, name)))
    T.T = property(lambda s: inplace.record_view(s, _ns.transpose(s), lambda pos: pos.T,
                                                 lambda: _ns.transpose(s)))


_install_tracer_methods()
