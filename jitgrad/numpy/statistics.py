"""NumPy's statistics on traced arrays: the NaN-ignoring reductions
(``nansum``, ``nanmean``, ``nanmax``, ...), ``average``, the order
statistics (``median``, ``quantile``, ``percentile`` and their NaN-ignoring
forms, ``partition``), ``cov`` and ``corrcoef``.

Order statistics read a sorted copy.  Where values tie, the derivative of a
sorted position is the mean of the tied elements' derivatives (as in ``sort``):
that is the symmetric (central) derivative of an order statistic at a tie of
two, and it does not depend on which of the tied elements the sort put first.
"""
from __future__ import annotations

import builtins
import math

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer
from .base import (_PY_SCALARS, _axes, _axis_tuple, _float_dtype, _operand, _shape, astype,
                   result_dtype)
from .indexing import argmax, argmin, argsort, diagonal, getitem, sort
from .reductions import max, mean, min, prod, sum, var
from .rounding import floor
from .shapes import broadcast_to, moveaxis, reshape, squeeze, transpose
from .ufuncs import (add, divide, isnan, logical_not, maximum, minimum, multiply, sqrt,
                     subtract, where)

# ---------------------------------------------------------------------------
# NaN-ignoring reductions


def _is_float(a):
    return result_dtype(a).kind in "fc"


def _no_out(out):
    if out is not None:
        raise TypeError("jitgrad does not support out= (arrays are immutable while traced)")


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_out(out)
    a = _operand(a)
    a = where(isnan(a), 0, a) if _is_float(a) else a
    return sum(a, axis=axis, dtype=dtype, keepdims=keepdims)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_out(out)
    a = _operand(a)
    a = where(isnan(a), 1, a) if _is_float(a) else a
    return prod(a, axis=axis, dtype=dtype, keepdims=keepdims)


def _count(a, axis, keepdims, dt):
    return sum(astype(logical_not(isnan(a)), dt), axis=axis, keepdims=keepdims)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_out(out)
    a = _operand(a)
    if not _is_float(a):
        return mean(a, axis=axis, dtype=dtype, keepdims=keepdims)
    dt = _np.dtype(dtype) if dtype is not None else result_dtype(a)
    total = sum(where(isnan(a), 0, a), axis=axis, dtype=dt, keepdims=keepdims)
    return divide(total, _count(a, axis, keepdims, dt))       # (all-NaN: 0/0 = nan, as NumPy)


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    _no_out(out)
    a = _operand(a)
    if not _is_float(a):
        return var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    dt = _np.dtype(dtype) if dtype is not None else result_dtype(a)
    nan = isnan(a)
    dev = where(nan, 0, subtract(a, nanmean(a, axis=axis, dtype=dt, keepdims=True)))
    dof = subtract(_count(a, axis, keepdims, dt), ddof)
    ss = sum(multiply(dev, dev), axis=axis, dtype=dt, keepdims=keepdims)
    return where(dof > 0, divide(ss, maximum(dof, 1)), _np.asarray(_np.nan, dt))


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    return sqrt(nanvar(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims))


def _nan_extremum(reduce, fill):
    def fn(a, axis=None, out=None, keepdims=False, **kwargs):
        _no_out(out)
        a = _operand(a)
        if not _is_float(a):
            return reduce(a, axis=axis, keepdims=keepdims)
        nan = isnan(a)
        m = reduce(where(nan, fill, a), axis=axis, keepdims=keepdims)
        all_nan = logical_not(max(logical_not(nan), axis=axis, keepdims=keepdims))
        return where(all_nan, _np.asarray(_np.nan, result_dtype(a)), m)    # (NumPy warns)
    return fn


nanmax = _nan_extremum(max, -_np.inf)
nanmin = _nan_extremum(min, _np.inf)
nanmax.__name__, nanmin.__name__ = "nanmax", "nanmin"


def nanargmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the first maximum ignoring NaNs.  An all-NaN slice, where NumPy
    raises ValueError, gives the index of its first element (traced values
    cannot raise)."""
    _no_out(out)
    a = _operand(a)
    return argmax(where(isnan(a), -_np.inf, a) if _is_float(a) else a, axis=axis, keepdims=keepdims)


def nanargmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the first minimum ignoring NaNs (see :func:`nanargmax`)."""
    _no_out(out)
    a = _operand(a)
    return argmin(where(isnan(a), _np.inf, a) if _is_float(a) else a, axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------------------
# Weighted average


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    a = _operand(a)
    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        axes = _axes(a, axis)
        scl = math.prod(_shape(a)[i] for i in axes)
        scl = broadcast_to(astype(_np.asarray(scl), result_dtype(avg)), _shape(avg))
        return (avg, scl) if returned else avg
    w = _operand(weights)
    sa, sw = _shape(a), _shape(w)
    if not isinstance(w, Tracer) and _np.any(
            _np.sum(_np.asarray(w, _np.float64), axis=axis if sa == sw else None) == 0.0):
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    dt = _np.result_type(result_dtype(a, w), _np.float64) if result_dtype(a).kind in "biu" \
        else result_dtype(a, w)
    if sa != sw:
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        axes = _axes(a, axis)
        if sw != tuple(sa[ax] for ax in axes):
            raise ValueError("Shape of weights must be consistent with shape of a along specified axis.")
        # weights along the axes, broadcast to a's shape
        w = broadcast_to(reshape(w, tuple(sa[d] if d in axes else 1 for d in range(len(sa)))), sa)
    scl = sum(astype(w, dt), axis=axis, keepdims=keepdims)
    avg = divide(sum(multiply(astype(a, dt), astype(w, dt)), axis=axis, keepdims=keepdims), scl)
    if returned:
        return avg, broadcast_to(scl, _shape(avg)) if _shape(scl) != _shape(avg) else scl
    return avg


# ---------------------------------------------------------------------------
# Order statistics


def _sorted_last(a, axis):
    """a sorted along ``axis`` moved last (flattened when None); np.sort gives tied
    values the mean of their derivatives."""
    a = _operand(a)
    if isinstance(a, _PY_SCALARS) or not isinstance(a, Tracer) and _np.ndim(a) == 0:
        a = _np.asarray(a)
    if axis is None:
        a, axes = reshape(a, (-1,)), (0,)
    else:
        axes = _axes(a, axis)
        nd = len(_shape(a))
        rest = [d for d in range(nd) if d not in axes]
        a = moveaxis(a, axes, tuple(range(nd - len(axes), nd))) if axes else a
        if len(axes) > 1:
            a = reshape(a, tuple(_shape(a)[d] for d in range(len(rest))) + (-1,))
    return sort(a, axis=-1), axes


def _kept(y, a_shape, axis, keepdims, lead=0):
    """Put back the reduced axes as length 1 when ``keepdims``."""
    if not keepdims:
        return y
    nd = len(a_shape)
    axes = range(nd) if axis is None else _axis_tuple(axis, nd)
    shape = _shape(y)[:lead] + tuple(1 if d in axes else s for d, s in enumerate(a_shape))
    return reshape(y, shape)


def _lerp(a, b, t):
    # NumPy's _lerp: exact at both ends (t = 0 gives a, t = 1 gives b)
    diff = subtract(b, a)
    return where(t >= 0.5, subtract(b, multiply(diff, subtract(1, t))), add(a, multiply(diff, t)))


_ALPHA_BETA = {"linear": (1.0, 1.0), "weibull": (0.0, 0.0), "hazen": (0.5, 0.5),
               "interpolated_inverted_cdf": (0.0, 1.0), "median_unbiased": (1 / 3, 1 / 3),
               "normal_unbiased": (3 / 8, 3 / 8)}
_DISCRETE = ("inverted_cdf", "averaged_inverted_cdf", "closest_observation", "lower", "higher",
             "midpoint", "nearest")


def _positions(n, q, method):
    """(lower index, upper index, weight) of the virtual index of each quantile in q."""
    if method in _ALPHA_BETA:
        alpha, beta = _ALPHA_BETA[method]
        vi = (n - 1) * q if method == "linear" else n * q + (alpha + q * (1 - alpha - beta)) - 1
        vi = _np.asarray(vi, _np.float64)
        lo = _np.clip(_np.floor(vi), 0, n - 1)
        hi = _np.clip(lo + 1, 0, n - 1)
        lo = _np.where(vi >= n - 1, n - 1, lo)
        return lo.astype(_np.int64), hi.astype(_np.int64), _np.where(lo == hi, 0.0, vi - lo)
    if method not in _DISCRETE:
        raise ValueError(f"'{method}' is not a valid method. Use one of: "
                         f"{tuple(_ALPHA_BETA) + _DISCRETE}")
    # the discrete methods pick (or average) order statistics: ask NumPy which,
    # by taking the quantiles of the positions themselves
    vi = _np.quantile(_np.arange(n, dtype=_np.float64), q, method=method)
    lo = _np.floor(vi)
    return lo.astype(_np.int64), _np.minimum(lo + 1, n - 1).astype(_np.int64), vi - lo


def _q_like(q):
    """q as NumPy reads it for the result's dtype (a Python scalar stays weak)."""
    return q if isinstance(q, (int, float, _np.generic)) else _np.asarray(q)


def _sorted_for_quantiles(a, q, axis, who, scale, numpy_fn):
    """What both quantile functions start from: ``q`` checked and scaled to
    [0, 1], ``a``'s shape, the result dtype NumPy's ``numpy_fn`` gives, and
    ``a`` sorted along ``axis`` (moved last; NaNs sort last)."""
    if isinstance(q, Tracer):
        raise NotImplementedError(f"jitgrad's np.{who} needs concrete q")
    qa = _np.asarray(q, _np.float64) / scale
    if not (_np.all(qa >= 0) and _np.all(qa <= 1)):
        raise ValueError("Percentiles must be in the range [0, 100]" if scale == 100 else
                         "Quantiles must be in the range [0, 1]")
    a = _operand(a)
    dt = numpy_fn(_np.zeros(1, result_dtype(a)), _q_like(q) / scale).dtype
    s, _ = _sorted_last(astype(a, _float_dtype(result_dtype(a))), axis)
    return qa, _shape(a), dt, s


def _quantile(a, q, axis, method, keepdims, who, scale):
    qa, a_shape, dt, s = _sorted_for_quantiles(a, q, axis, who, scale, _np.quantile)
    n = _shape(s)[-1]
    if n == 0:
        raise IndexError("index -1 is out of bounds for axis 0 with size 0")     # (as NumPy)
    lo, hi, t = _positions(n, qa.ravel(), method)
    y_lo, y_hi = (moveaxis(getitem(s, (Ellipsis, i)), -1, 0) for i in (lo, hi))
    t = reshape(astype(t, dt), (-1,) + (1,) * (len(_shape(y_lo)) - 1))
    y = _lerp(astype(y_lo, dt), astype(y_hi, dt), t)
    # a NaN anywhere in a slice makes its quantiles NaN (NaN sorts last)
    last = getitem(s, (Ellipsis, slice(n - 1, n)))
    y = where(moveaxis(isnan(last), -1, 0), _np.asarray(_np.nan, dt), y)
    y = reshape(y, qa.shape + _shape(y)[1:])
    return _kept(y, a_shape, axis, keepdims, lead=qa.ndim)


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False,
             *, weights=None, interpolation=None):
    """The q-th quantiles along ``axis`` (every NumPy method; q concrete)."""
    _no_out(out)
    if weights is not None:
        raise NotImplementedError("jitgrad's np.quantile does not support weights=")
    return _quantile(a, q, axis, interpolation or method, keepdims, "quantile", 1)


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False,
               *, weights=None, interpolation=None):
    _no_out(out)
    if weights is not None:
        raise NotImplementedError("jitgrad's np.percentile does not support weights=")
    return _quantile(a, q, axis, interpolation or method, keepdims, "percentile", 100)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The median along ``axis``: the middle value, or the mean of the two middle ones."""
    _no_out(out)
    a = _operand(a)
    a_shape = _shape(a)
    dt = _float_dtype(result_dtype(a))
    s, _ = _sorted_last(astype(a, dt), axis)
    n = _shape(s)[-1]
    if n == 0:                    # NumPy warns and returns nan
        return _kept(P.full(_shape(s)[:-1], _np.nan, dt), a_shape, axis, keepdims)
    k = n // 2
    mid = getitem(s, (Ellipsis, k))
    if n % 2 == 0:
        mid = divide(add(getitem(s, (Ellipsis, k - 1)), mid), 2.0)
    mid = where(isnan(getitem(s, (Ellipsis, n - 1))), _np.asarray(_np.nan, dt), mid)
    return _kept(mid, a_shape, axis, keepdims)


def _nan_quantile(a, q, axis, method, keepdims, who, scale):
    """Linear quantiles of the non-NaN values: the count, hence the positions,
    depend on the data, so the sorted values are gathered at traced positions."""
    if method != "linear":
        raise NotImplementedError(f"jitgrad's np.{who} supports method='linear' only")
    qa, a_shape, dt, s = _sorted_for_quantiles(a, q, axis, who, scale, _np.nanquantile)
    n = _shape(s)[-1]
    lead = _shape(s)[:-1]
    if n == 0:                    # NumPy warns and returns nan
        return _kept(P.full(qa.shape + lead, _np.nan, dt), a_shape, axis, keepdims, lead=qa.ndim)
    rows = math.prod(lead)
    flat = reshape(s, (rows, n))
    count = sum(astype(logical_not(isnan(flat)), _np.float64), axis=1, keepdims=True)  # (rows, 1)
    vi = multiply(subtract(count, 1.0), reshape(qa.ravel(), (1, -1)))                  # (rows, nq)
    lo = maximum(floor(vi), 0.0)
    hi = minimum(add(lo, 1.0), maximum(subtract(count, 1.0), 0.0))
    t = astype(subtract(vi, lo), dt)
    base = _np.arange(rows, dtype=_np.int64).reshape(-1, 1) * n
    pick = [P.gather(reshape(flat, (rows * n,)), add(astype(i, _np.int64), base)) for i in (lo, hi)]
    y = _lerp(astype(pick[0], dt), astype(pick[1], dt), t)
    y = where(count > 0, y, _np.asarray(_np.nan, dt))      # all-NaN slices (NumPy warns)
    y = moveaxis(reshape(y, lead + (qa.size,)), -1, 0)
    y = reshape(y, qa.shape + lead)
    return _kept(y, a_shape, axis, keepdims, lead=qa.ndim)


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False,
                *, weights=None, interpolation=None):
    _no_out(out)
    return _nan_quantile(a, q, axis, interpolation or method, keepdims, "nanquantile", 1)


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None, interpolation=None):
    _no_out(out)
    return _nan_quantile(a, q, axis, interpolation or method, keepdims, "nanpercentile", 100)


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    _no_out(out)
    return _nan_quantile(a, 0.5, axis, "linear", keepdims, "nanmedian", 1)


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """A partition around the ``kth`` elements: jitgrad returns the sorted array,
    which is one (NumPy's order of the other elements is unspecified)."""
    if order is not None:
        raise NotImplementedError("jitgrad does not support np.partition with order=")
    a = _operand(a)
    if isinstance(kth, Tracer):
        raise NotImplementedError("jitgrad's np.partition needs a concrete kth")
    if axis is not None:
        n = _shape(a)[_axes(a, axis)[0]] if _shape(a) else 0
        _np.partition(_np.zeros(n), kth)          # (NumPy's checks and messages for kth)
    out, _ = _sorted_last(a, axis)
    if axis is None or len(_shape(a)) <= 1:
        return out
    return moveaxis(out, -1, _axes(a, axis)[0])


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    if isinstance(kth, Tracer):
        raise NotImplementedError("jitgrad's np.argpartition needs a concrete kth")
    return argsort(a, axis=axis)


# ---------------------------------------------------------------------------
# Covariance and correlation


def _rows2d(m, rowvar, dt):
    m = astype(_operand(m), dt)
    if len(_shape(m)) > 2:
        raise ValueError("m has more than 2 dimensions")
    if len(_shape(m)) < 2:
        m = reshape(m, (1, -1))
    if not rowvar and _shape(m)[0] != 1:
        m = transpose(m)
    return m


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *, dtype=None):
    """Covariance matrix of the rows (variables) of ``m`` (and ``y``)."""
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    m = _operand(m)
    dt = _np.dtype(dtype) if dtype is not None else _np.result_type(result_dtype(m), _np.float64)
    if y is not None:
        dt = _np.result_type(dt, result_dtype(_operand(y))) if dtype is None else dt
    X = _rows2d(m, rowvar, dt)
    if y is not None:
        X = P.concatenate([X, _rows2d(y, rowvar, dt)], 0)
    if ddof is None:
        ddof = 0 if bias else 1
    n = _shape(X)[1]
    w = None
    for name, wt in (("fweights", fweights), ("aweights", aweights)):
        if wt is None:
            continue
        wt = _operand(wt)
        if len(_shape(wt)) > 1:
            raise RuntimeError(f"cannot handle multidimensional {name}")
        if _shape(wt)[0] != n:
            raise RuntimeError(f"incompatible numbers of samples and {name}")
        if not isinstance(wt, Tracer):
            if name == "fweights" and _np.any(_np.asarray(wt) != _np.around(wt)):
                raise TypeError("fweights must be integer")
            if _np.any(_np.asarray(wt) < 0):
                raise ValueError(f"{name} cannot be negative")
        wt = astype(wt, dt)
        w = wt if w is None else multiply(w, wt)
    avg, w_sum = average(X, axis=1, weights=w, returned=True)
    w_sum = getitem(w_sum, 0)
    if w is None:
        fact = float(builtins.max(n - ddof, 0))
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = subtract(w_sum, ddof)
    else:
        fact = subtract(w_sum, divide(multiply(ddof, sum(multiply(w, astype(aweights, dt)))), w_sum))
    X = subtract(X, reshape(avg, (-1, 1)))
    XT = P.transpose(X if w is None else multiply(X, w), (1, 0))
    c = P.dot_general(X, XT, ((1,), (0,)))
    c = divide(c, fact)
    return squeeze(c)


def corrcoef(x, y=None, rowvar=True, bias=None, ddof=None, *, dtype=None):
    c = cov(x, y, rowvar, dtype=dtype)
    if len(_shape(c)) == 0:
        return divide(c, c)
    d = sqrt(diagonal(c))
    c = divide(divide(c, reshape(d, (-1, 1))), reshape(d, (1, -1)))
    return maximum(-1.0, minimum(1.0, c))
