"""What every function of the NumPy layer starts from: operands (tracers, arrays,
Python scalars), NumPy's dtype promotion (Python scalars are weak), explicit
broadcasting to the primitives' equal shapes, axis arguments, and ``astype``.
"""
from __future__ import annotations

import operator as _operator
import warnings as _warnings

import numpy as _np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from .. import lax as P
from ..core.trace import aval_of, state, Tracer

_PY_SCALARS = (bool, int, float, complex)
pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, None
float32, float64, int32, int64, bool_ = _np.float32, _np.float64, _np.int32, _np.int64, _np.bool_


def _operand(x):
    """Accept tracers, arrays, NumPy scalars and Python scalars; lists become arrays."""
    if isinstance(x, (Tracer, _np.ndarray, _np.generic) + _PY_SCALARS):
        return x
    if isinstance(x, (list, tuple)):
        return from_sequence(x)
    if hasattr(x, "__jitgrad_value__"):
        return x.__jitgrad_value__()
    return _np.asarray(x)


def _holds_tracer(obj):
    """Whether ``obj`` is a traced value or a (nested) list or tuple holding one."""
    if isinstance(obj, Tracer):
        return True
    return isinstance(obj, (list, tuple)) and any(_holds_tracer(o) for o in obj)


def _fresh(x):
    """A new traced array of this thread's innermost trace with the value of
    ``x`` (a tracer, array or scalar), which no other object refers to: what
    NumPy's copying functions return, so that writing into it (``y[0] = 1``)
    changes nothing else.  Needs no equation: the new tracer may share its
    variable, since a write gives the tracer a new variable rather than
    changing the old one.  It is recorded as *owned*: writable even when that
    variable is one of the trace's inputs."""
    if not state.stack:            # (an escaped tracer: its next use raises)
        return x
    trace = state.stack[-1]
    if isinstance(x, Tracer) and x._trace is trace:
        t = Tracer(trace, x._var)
    elif _np.ndim(x) == 0:          # (a 0-d constant would be inlined as a literal)
        return P.reshape(P.reshape(x if isinstance(x, Tracer) else _np.asarray(x), (1,)), ())
    else:
        t = Tracer(trace, trace.atom(x if isinstance(x, Tracer) else _np.array(x)))
    _owned(trace)[id(t)] = t
    return t


def _owned(trace):
    """The tracers of ``trace`` made by :func:`_fresh` (id -> tracer, kept alive
    with the trace so that ids are not reused)."""
    d = getattr(trace, "owned", None)
    if d is None:
        d = trace.owned = {}
    return d


def from_sequence(obj):
    """An array from (nested) lists and tuples of arrays, scalars and traced
    values, as ``np.array`` builds one: the items must agree in shape, and
    they are promoted to one dtype."""
    if not any(isinstance(o, (Tracer, list, tuple)) for o in obj):
        return _np.array(obj)
    items = [_operand(o) for o in obj]
    shapes = {_shape(i) for i in items}
    if len(shapes) != 1:
        raise ValueError("setting an array element with a sequence: the items have different shapes "
                         f"{sorted(shapes)}; an array needs them equal")
    (shape,) = shapes
    dt = result_dtype(*items)
    rows = [P.reshape(_to(i, dt, shape), (1,) + shape) for i in items]
    return P.concatenate(rows, 0)


def _dtype_arg(x):
    return x if isinstance(x, _PY_SCALARS) else aval_of(x).dtype


def result_dtype(*xs):
    return _np.result_type(*[_dtype_arg(x) for x in xs])


def _float_dtype(dtype):
    """float64 for integers (the dtype of mean, true_divide and np.linalg);
    floats and complex numbers keep theirs."""
    dtype = _np.dtype(dtype)
    return dtype if _np.issubdtype(dtype, _np.inexact) else _np.dtype(_np.float64)


def _ufunc_float_dtype(dtype):
    """The dtype of a float ufunc (exp, sqrt, arctan2, ...) of integers: the
    smallest float that holds them (float16 for booleans and 8-bit integers,
    float32 for 16-bit ones, float64 above), as NumPy chooses its loop."""
    dtype = _np.dtype(dtype)
    return dtype if _np.issubdtype(dtype, _np.inexact) else _np.result_type(dtype, _np.float16)


def _int8_for_bool(dtype):
    """Arithmetic without a boolean loop (power, floor_divide) runs booleans as int8."""
    return _np.dtype(_np.int8) if dtype == _np.bool_ else _np.dtype(dtype)


def _is_exact(x):
    return result_dtype(x).kind in "biu"


def _shape(x):
    return () if isinstance(x, _PY_SCALARS) else aval_of(x).shape


def _to(x, dtype, shape):
    """Convert to dtype and broadcast to shape (scalars stay scalars: primitives broadcast them)."""
    if isinstance(x, _PY_SCALARS) or (not isinstance(x, Tracer) and _np.ndim(x) == 0):
        return _np.asarray(x, dtype)[()]
    x = P.convert(x, dtype)
    xs = aval_of(x).shape
    if xs != shape:
        x = P.broadcast_in_dim(x, shape, tuple(range(len(shape) - len(xs), len(shape))))
    return x


def _elementwise(op, *xs, dtype=None, float_only=False):
    xs = [_operand(x) for x in xs]
    dt = result_dtype(*xs) if dtype is None else _np.dtype(dtype)
    if float_only:
        dt = _ufunc_float_dtype(dt)
    try:
        shape = _np.broadcast_shapes(*[_shape(x) for x in xs])
    except ValueError:
        raise ValueError("operands could not be broadcast together with shapes "
                         + " ".join(str(_shape(x)) for x in xs)) from None
    return op(*[_to(x, dt, shape) for x in xs])


def _unary_fn(op, float_only=True, name=None):
    def fn(x, /, *args, **kwargs):
        _no_out(kwargs)
        return _elementwise(op, x, float_only=float_only)
    fn.__name__ = name or op.__name__
    return fn


def _binary_fn(op, float_only=False, name=None, dtype=None):
    def fn(x, y, /, **kwargs):
        _no_out(kwargs)
        return _elementwise(op, x, y, float_only=float_only, dtype=dtype)
    fn.__name__ = name or op.__name__
    return fn


def _no_out(kwargs):
    if kwargs.get("out") is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")


def _axis_index(axis, ndim, name=None):
    """``axis`` in ``range(ndim)``; out of bounds raises NumPy's AxisError
    (never wrapped modulo ``ndim``, which would act on another axis)."""
    return normalize_axis_index(int(axis), ndim, name)


def _axis_tuple(axes, ndim, name=None):
    """Each of ``axes`` in ``range(ndim)``, as ``_axis_index``; repeated axes raise."""
    return normalize_axis_tuple([int(a) for a in _np.atleast_1d(axes)], ndim, name)


def _axes(x, axis):
    ndim = len(_shape(x))
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = _operator.index(a)   # (a float axis is NumPy's TypeError, not truncated)
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(out))


def _keep(y, x_shape, axes, keepdims):
    if not keepdims:
        return y
    return P.reshape(y, tuple(1 if i in axes else s for i, s in enumerate(x_shape)))


def astype(x, dtype, copy=True):
    x = _operand(x)
    if isinstance(x, _PY_SCALARS):
        return _np.asarray(x, dtype)[()]
    if result_dtype(x).kind == "c" and _np.dtype(dtype).kind not in "cb":
        # NumPy's warning, given where the user's code casts (the imaginary part is dropped)
        _warnings.warn("Casting complex values to real discards the imaginary part",
                       _np.exceptions.ComplexWarning, stacklevel=2)
    y = P.convert(x, _np.dtype(dtype))
    return _fresh(y) if y is x and copy and isinstance(x, Tracer) else y


