"""NumPy's reductions and statistics: sum, prod, max, min, ptp, cumsum, mean,
var, std (axis as int, negative or tuple, keepdims, ddof, dtype), and the
truth reductions any, all and count_nonzero.
"""
from __future__ import annotations

import builtins
import math
import operator

import numpy as _np

from .. import lax as P
from ..core.trace import aval_of
from .base import _PY_SCALARS, _axes, _float_dtype, _keep, _operand, _shape, astype
from .shapes import ravel, reshape
from .ufuncs import add, divide, equal, greater, not_equal, sqrt, subtract

# ---------------------------------------------------------------------------
# Reductions


def _reduce_axes(a, axis):
    """The axes a reduction of ``a`` over ``axis`` reads: as ``_axes``, except that
    NumPy's reductions take an int axis 0 or -1 of a 0-d array as no axis."""
    if axis is not None and not isinstance(axis, (tuple, list)) and _shape(a) == () \
            and operator.index(axis) in (0, -1):
        return ()
    return _axes(a, axis)


def _reduction(op, default_dtype=None):
    def fn(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if out is not None:
            raise TypeError("jitgrad does not support out=")
        if kwargs.get("initial", None) is not None or kwargs.get("where", True) is not True:
            raise NotImplementedError(f"jitgrad's {op.__name__} does not support initial= or where=")
        a = _operand(a)
        axes = _reduce_axes(a, axis)
        dt = dtype or (default_dtype(aval_of(a).dtype) if default_dtype else None)
        if dt is not None:
            a = astype(a, dt)
        if isinstance(a, _PY_SCALARS):
            a = _np.asarray(a)
        y = op(a, axes)
        if op is P.reduce_sum and not axes and aval_of(a).dtype.kind in "fc":
            y = add(y, 0.0)   # NumPy adds each element to 0.0, even none: -0.0 sums to 0.0
        return _keep(y, _shape(a), axes, keepdims)
    return fn


def _sum_dtype(dtype):
    return _np.dtype(_np.int64) if dtype.kind in "bi" else (
        _np.dtype(_np.uint64) if dtype.kind == "u" else dtype)


sum = _reduction(P.reduce_sum, _sum_dtype)
prod = _reduction(P.reduce_prod, _sum_dtype)
max = amax = _reduction(P.reduce_max)
min = amin = _reduction(P.reduce_min)


def count_nonzero(a, axis=None, *, keepdims=False):
    """How many elements of ``a`` are nonzero (NaN counts: it is not 0), as int64."""
    a = _operand(a)
    return sum(not_equal(a, 0), axis=axis, keepdims=keepdims)


def _truth_reduction(name, marks, verdict):
    # any: the count of nonzero elements is above 0; all: the count of zeros is
    # 0.  Counting gives an empty axis NumPy's False (any) and True (all)
    # without a special case; the results are bool and carry no derivative.
    def fn(a, axis=None, out=None, keepdims=False, *, where=True):
        if out is not None:
            raise TypeError(f"jitgrad does not support out= in np.{name}; assign the result instead")
        if where is not True:
            raise NotImplementedError(f"jitgrad's np.{name} does not support where=")
        return verdict(sum(marks(_operand(a), 0), axis=axis, keepdims=keepdims), 0)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"NumPy's ``np.{name}`` of a traced array: a bool array, no derivative."
    return fn


any = _truth_reduction("any", not_equal, greater)
all = _truth_reduction("all", equal, equal)


def ptp(a, axis=None, out=None, keepdims=False):
    """Peak to peak, max - min (raises on an empty axis, as both do)."""
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    return subtract(max(a, axis=axis, keepdims=keepdims), min(a, axis=axis, keepdims=keepdims))


def cumsum(a, axis=None, dtype=None, out=None):
    """Running totals along ``axis`` (of the flattened array when None)."""
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    a = _operand(a)
    if axis is None:
        a, axis = ravel(a), 0
    nd = len(_shape(a))
    if nd == 0:
        a, axis, nd = reshape(a, (1,)), 0, 1
    if not -nd <= axis < nd:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {nd}")
    dt = _np.dtype(dtype) if dtype is not None else _sum_dtype(aval_of(a).dtype)
    return P.cumsum(P.convert(a, dt) if aval_of(a).dtype != dt else a, axis % nd)


def mean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    a = _operand(a)
    axes = _axes(a, axis)
    n = math.prod(_shape(a)[i] for i in axes)
    dt = dtype or _float_dtype(aval_of(a).dtype)
    return divide(sum(astype(a, dt), axis=axes, keepdims=keepdims), float(n))


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    a = _operand(a)
    axes = _axes(a, axis)
    n = math.prod(_shape(a)[i] for i in axes)
    dev = subtract(a, mean(a, axis=axes, dtype=dtype, keepdims=True))
    # (NumPy divides by 0 when ddof >= n: nan, or inf)
    return divide(sum(P.abs2(dev), axis=axes, keepdims=keepdims), float(builtins.max(n - ddof, 0)))


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    a = _operand(a)
    v = var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    if ddof == 0 and math.prod(_shape(a)[i] for i in _axes(a, axis)) == 1:
        # the deviation of one value is 0 for every input: so is var, with
        # zero derivatives, where sqrt's would be 0/0 at var == 0
        return v
    return sqrt(v)


