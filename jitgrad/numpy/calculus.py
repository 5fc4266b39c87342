"""NumPy's running products, differences, integrals, signal and interpolation
functions on traced arrays: ``cumprod``, ``nancumsum``, ``nancumprod``,
``ediff1d``, ``gradient``, ``trapezoid``, ``cross``, ``convolve``,
``correlate``, ``interp`` and ``searchsorted`` (and ``unique``, which only
raises: its shape depends on the values).
"""
from __future__ import annotations

import builtins

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer
from .base import _PY_SCALARS, _axis_index, _operand, _shape, astype, result_dtype
from .indexing import argsort, diff, getitem, take
from .reductions import _sum_dtype, cumsum, sum
from .shapes import broadcast_to, concatenate, moveaxis, ravel, reshape, stack
from .ufuncs import (add, divide, equal, greater, isnan, less, logical_and, logical_not, logical_or,
                     maximum, minimum, multiply, subtract, where)
from .rounding import remainder

# ---------------------------------------------------------------------------
# Running products


def cumprod(a, axis=None, dtype=None, out=None):
    """Running products along ``axis`` (of the flattened array when None); the
    derivative is right where elements are zero."""
    if out is not None:
        raise TypeError("jitgrad does not support out= (arrays are immutable while traced)")
    a = _operand(a)
    if isinstance(a, _PY_SCALARS):
        a = _np.asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    nd = len(_shape(a))
    if nd == 0:
        a, axis, nd = reshape(a, (1,)), 0, 1
    axis = _axis_index(axis, nd)
    dt = _np.dtype(dtype) if dtype is not None else _sum_dtype(result_dtype(a))
    return P.cumprod(astype(a, dt), axis)


def nancumsum(a, axis=None, dtype=None, out=None):
    a = _operand(a)
    return cumsum(where(isnan(a), 0, a) if result_dtype(a).kind == "f" else a, axis, dtype, out)


def nancumprod(a, axis=None, dtype=None, out=None):
    a = _operand(a)
    return cumprod(where(isnan(a), 1, a) if result_dtype(a).kind == "f" else a, axis, dtype, out)


# ---------------------------------------------------------------------------
# Differences and integrals


def ediff1d(ary, to_end=None, to_begin=None):
    """Differences of the flattened array, with optional values before and after."""
    ary = ravel(_as_array(_operand(ary)))
    dt = result_dtype(ary)
    parts = []
    for name, extra in (("to_begin", to_begin), ("to_end", to_end)):
        if extra is None:
            parts.append(None)
            continue
        extra = _operand(extra)
        if not _np.can_cast(result_dtype(extra), dt, casting="same_kind"):
            raise TypeError(f"dtype of `{name}` must be compatible with input `ary` under the "
                            "`same_kind` rule.")
        parts.append(astype(ravel(_as_array(extra)), dt))
    d = diff(ary) if _shape(ary)[0] else ary
    pieces = [p for p in (parts[0], d, parts[1]) if p is not None]
    return concatenate(pieces, 0) if len(pieces) > 1 else d


def _as_array(a):
    return _np.asarray(a) if isinstance(a, _PY_SCALARS) else a


def _along(a, axis, s):
    return getitem(a, tuple(s if d == axis else slice(None) for d in range(len(_shape(a)))))


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """Integral of ``y`` by the trapezoidal rule along ``axis`` (samples at
    ``x``, or spaced by ``dx``)."""
    y = _as_array(_operand(y))
    if not _np.issubdtype(result_dtype(y), _np.inexact):
        y = astype(y, _np.float64)
    nd = len(_shape(y))
    axis = _axis_index(axis, nd)
    if x is None:
        d = dx
    else:
        x = _as_array(_operand(x))
        if len(_shape(x)) == 1:
            d = diff(x)
            d = reshape(d, tuple(_shape(d)[0] if k == axis else 1 for k in range(nd)))
        else:
            d = diff(x, axis=axis)
    n = _shape(y)[axis]
    mid = add(_along(y, axis, slice(1, n)), _along(y, axis, slice(0, n - 1)))
    return sum(divide(multiply(d, mid), 2.0), axis=axis)


trapz = trapezoid


def gradient(f, *varargs, axis=None, edge_order=1):
    """Second-order central differences inside, one-sided ones (first or
    second order) at the ends, for uniform or coordinate-array spacing."""
    f = _as_array(_operand(f))
    nd = len(_shape(f))
    axes = tuple(range(nd)) if axis is None else tuple(
        _axis_index(a, nd) for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if len(set(axes)) != len(axes):
        raise ValueError("duplicate value in 'axis'")
    n = len(axes)
    if len(varargs) == 0:
        dx = [1.0] * n
    elif len(varargs) == 1 and _np.ndim(varargs[0]) == 0:
        dx = list(varargs) * n
    elif len(varargs) == n:
        dx = list(varargs)
    else:
        raise TypeError("invalid number of arguments")
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    otype = result_dtype(f)
    if otype.kind in "biu":
        otype = _np.dtype(_np.float64)
        f = astype(f, otype)
    outs = []
    for ax, h in zip(axes, dx):
        size = _shape(f)[ax]
        if size < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        h = _spacing(h, size)
        outs.append(astype(_gradient_1(f, ax, h, edge_order), otype))
    return outs[0] if len(outs) == 1 else tuple(outs)


def _spacing(h, size):
    """A scalar step, or the steps between coordinates (uniform ones as a scalar)."""
    if _np.ndim(h) == 0:
        return h
    h = _operand(h)
    if len(_shape(h)) != 1:
        raise ValueError("distances must be either scalars or 1d")
    if _shape(h)[0] != size:
        raise ValueError("when 1d, distances must match the length of the corresponding dimension")
    h = astype(h, _np.float64) if result_dtype(h).kind in "biu" else h
    d = diff(h)
    if not isinstance(d, Tracer) and _np.all(d == d[0]):
        return d[0]
    return d


def _gradient_1(f, ax, h, edge_order):
    n = _shape(f)[ax]
    nd = len(_shape(f))

    def at(s):
        return _along(f, ax, s)

    def b(v):      # a vector of steps along ax, broadcast against f
        return reshape(v, tuple(-1 if k == ax else 1 for k in range(nd)))

    if _np.ndim(h) == 0:          # a uniform step
        inner = divide(subtract(at(slice(2, None)), at(slice(None, -2))), multiply(2.0, h))
        if edge_order == 1:
            first = divide(subtract(at(slice(1, 2)), at(slice(0, 1))), h)
            last = divide(subtract(at(slice(n - 1, n)), at(slice(n - 2, n - 1))), h)
        else:
            first = add(add(multiply(divide(-1.5, h), at(slice(0, 1))),
                            multiply(divide(2.0, h), at(slice(1, 2)))),
                        multiply(divide(-0.5, h), at(slice(2, 3))))
            last = add(add(multiply(divide(0.5, h), at(slice(n - 3, n - 2))),
                           multiply(divide(-2.0, h), at(slice(n - 2, n - 1)))),
                       multiply(divide(1.5, h), at(slice(n - 1, n))))
    else:
        dx1, dx2 = getitem(h, slice(None, -1)), getitem(h, slice(1, None))
        a = divide(multiply(dx2, -1.0), multiply(dx1, add(dx1, dx2)))
        bb = divide(subtract(dx2, dx1), multiply(dx1, dx2))
        c = divide(dx1, multiply(dx2, add(dx1, dx2)))
        inner = add(add(multiply(b(a), at(slice(None, -2))), multiply(b(bb), at(slice(1, -1)))),
                    multiply(b(c), at(slice(2, None))))
        if edge_order == 1:
            first = divide(subtract(at(slice(1, 2)), at(slice(0, 1))), b(getitem(h, slice(0, 1))))
            last = divide(subtract(at(slice(n - 1, n)), at(slice(n - 2, n - 1))),
                          b(getitem(h, slice(n - 2, n - 1))))
        else:
            d1, d2 = getitem(h, slice(0, 1)), getitem(h, slice(1, 2))
            a0 = divide(multiply(add(multiply(2.0, d1), d2), -1.0), multiply(d1, add(d1, d2)))
            b0 = divide(add(d1, d2), multiply(d1, d2))
            c0 = divide(multiply(d1, -1.0), multiply(d2, add(d1, d2)))
            first = add(add(multiply(b(a0), at(slice(0, 1))), multiply(b(b0), at(slice(1, 2)))),
                        multiply(b(c0), at(slice(2, 3))))
            d1, d2 = getitem(h, slice(n - 3, n - 2)), getitem(h, slice(n - 2, n - 1))
            a1 = divide(d2, multiply(d1, add(d1, d2)))
            b1 = divide(multiply(add(d2, d1), -1.0), multiply(d1, d2))
            c1 = divide(add(multiply(2.0, d2), d1), multiply(d2, add(d1, d2)))
            last = add(add(multiply(b(a1), at(slice(n - 3, n - 2))),
                           multiply(b(b1), at(slice(n - 2, n - 1)))),
                       multiply(b(c1), at(slice(n - 1, n))))
    return concatenate([first, inner, last], axis=ax)


# ---------------------------------------------------------------------------
# Vector products


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (or the z component for 2-vectors) along the given axes."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _as_array(_operand(a)), _as_array(_operand(b))
    a = moveaxis(a, _axis_index(axisa, len(_shape(a)), "axisa"), -1)
    b = moveaxis(b, _axis_index(axisb, len(_shape(b)), "axisb"), -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    dt = result_dtype(a, b)
    comp_a = [astype(getitem(a, (Ellipsis, i)), dt) for i in range(na)]
    comp_b = [astype(getitem(b, (Ellipsis, i)), dt) for i in range(nb)]
    if na == 2 and nb == 2:
        return subtract(multiply(comp_a[0], comp_b[1]), multiply(comp_a[1], comp_b[0]))
    zero = _np.zeros((), dt)
    a0, a1, a2 = comp_a + [zero] * (3 - na)
    b0, b1, b2 = comp_b + [zero] * (3 - nb)
    cz = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == 2:
        cx, cy = multiply(a1, b2), multiply(-1 if dt.kind != "b" else 1, multiply(a0, b2))
    elif nb == 2:
        cx, cy = multiply(-1 if dt.kind != "b" else 1, multiply(a2, b1)), multiply(a2, b0)
    else:
        cx = subtract(multiply(a1, b2), multiply(a2, b1))
        cy = subtract(multiply(a2, b0), multiply(a0, b2))
    shape = _np.broadcast_shapes(_shape(cx), _shape(cy), _shape(cz))
    c = stack([broadcast_to(astype(v, dt), shape) for v in (cx, cy, cz)], axis=-1)
    return moveaxis(c, -1, _axis_index(axisc, len(_shape(c)), "axisc"))


# ---------------------------------------------------------------------------
# Convolution and correlation of 1-D sequences


def _correlate_full(a, v):
    """c[k] = sum_n a[n + k - (N - 1)] v[n], k = 0 .. M + N - 2 (a read as 0
    outside its range): windows of the zero-padded a (a gather with concrete
    positions) times v."""
    m, n = _shape(a)[0], _shape(v)[0]
    dt = result_dtype(a, v)
    zeros = _np.zeros(n - 1, dt)
    padded = concatenate([zeros, astype(a, dt), zeros], 0) if n > 1 else astype(a, dt)
    windows = _np.arange(m + n - 1)[:, None] + _np.arange(n)[None, :]
    return P.dot_general(take(padded, windows), astype(v, dt), ((1,), (0,)))


def _correlate(a, v, mode):
    a, v = _as_array(_operand(a)), _as_array(_operand(v))
    if len(_shape(a)) != 1 or len(_shape(v)) != 1:
        a = reshape(a, (-1,)) if len(_shape(a)) == 0 else a
        v = reshape(v, (-1,)) if len(_shape(v)) == 0 else v
        if len(_shape(a)) != 1 or len(_shape(v)) != 1:
            raise ValueError("object too deep for desired array")
    modes = {"valid": 0, "v": 0, 0: 0, "same": 1, "s": 1, 1: 1, "full": 2, "f": 2, 2: 2}
    if mode not in modes:
        raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")
    mode = modes[mode]
    m, n = _shape(a)[0], _shape(v)[0]
    if m == 0:
        raise ValueError("a cannot be empty")
    if n == 0:
        raise ValueError("v cannot be empty")
    if m < n:     # NumPy correlates the other way round and reverses
        return getitem(_correlate_sorted(v, a, mode), slice(None, None, -1))
    return _correlate_sorted(a, v, mode)


def _correlate_sorted(a, v, mode):
    m, n = _shape(a)[0], _shape(v)[0]
    full = _correlate_full(a, v)
    if mode == 2:
        return full
    start, length = ((n - 1) - n // 2, m) if mode == 1 else (n - 1, m - n + 1)
    return getitem(full, slice(start, start + length))


def correlate(a, v, mode="valid"):
    """Cross-correlation of two 1-D sequences, c[k] = sum_n a[n + k] v[n]."""
    return _correlate(a, v, mode)


def convolve(a, v, mode="full"):
    """Discrete linear convolution of two 1-D sequences."""
    a, v = _as_array(_operand(a)), _as_array(_operand(v))
    a = reshape(a, (-1,)) if len(_shape(a)) == 0 else a
    v = reshape(v, (-1,)) if len(_shape(v)) == 0 else v
    if _shape(v)[0] > _shape(a)[0]:
        a, v = v, a
    if _shape(a)[0] == 0:
        raise ValueError("a cannot be empty")
    if _shape(v)[0] == 0:
        raise ValueError("v cannot be empty")
    return _correlate(a, getitem(v, slice(None, None, -1)), mode)


# ---------------------------------------------------------------------------
# Searching and interpolation


def _nan_last_less(x, y):
    """x < y with NaN after every number (NumPy's sort order)."""
    return logical_or(less(x, y), logical_and(isnan(y), logical_not(isnan(x))))


def searchsorted(a, v, side="left", sorter=None):
    """Insertion positions of ``v`` in the sorted 1-D ``a``, counted by
    comparisons (differentiable inputs get no derivative: the result is an index)."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    a, v = _as_array(_operand(a)), _as_array(_operand(v))
    if len(_shape(a)) != 1:
        raise ValueError("object too deep for desired array" if len(_shape(a)) > 1 else
                         "object of too small depth for desired array")
    if sorter is not None:
        a = take(a, sorter)
    vs = _shape(v)
    a_b = reshape(a, (1,) * len(vs) + (-1,))
    v_b = reshape(v, vs + (1,))
    if result_dtype(a).kind == "f" or result_dtype(v).kind == "f":
        before = _nan_last_less(a_b, v_b) if side == "left" else logical_not(_nan_last_less(v_b, a_b))
    else:
        before = less(a_b, v_b) if side == "left" else logical_not(less(v_b, a_b))
    return sum(astype(before, _np.int64), axis=-1)


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation of (xp, fp) at x (xp increasing), as np.interp."""
    x, xp, fp = (astype(_as_array(_operand(v)), _np.float64) for v in (x, xp, fp))
    if len(_shape(xp)) != 1 or len(_shape(fp)) != 1:
        raise ValueError("object too deep for desired array")
    if _shape(xp)[0] == 0:
        raise ValueError("array of sample points is empty")
    if _shape(xp)[0] != _shape(fp)[0]:
        raise ValueError("fp and xp are not of the same length.")
    if period is not None:
        if period == 0:
            raise ValueError("period must be a non-zero value")
        period = builtins.abs(period)
        left = right = None
        x, xp = remainder(x, period), remainder(xp, period)
        order = argsort(xp)
        xp, fp = take(xp, order), take(fp, order)
        xp = concatenate([subtract(getitem(xp, slice(-1, None)), period), xp,
                          add(getitem(xp, slice(0, 1)), period)], 0)
        fp = concatenate([getitem(fp, slice(-1, None)), fp, getitem(fp, slice(0, 1))], 0)
    n = _shape(xp)[0]
    lo_val = getitem(fp, 0) if left is None else left
    hi_val = getitem(fp, n - 1) if right is None else right
    if n == 1:
        y = where(less(x, getitem(xp, 0)), lo_val, where(greater(x, getitem(xp, 0)), hi_val,
                                                            getitem(fp, 0)))
        return astype(y, _np.float64)
    j = searchsorted(xp, x, side="right")
    j = minimum(maximum(subtract(j, 1), 0), n - 2)      # the interval [xp[j], xp[j+1]] of x
    x0, x1, f0, f1 = take(xp, j), take(xp, add(j, 1)), take(fp, j), take(fp, add(j, 1))
    slope = divide(subtract(f1, f0), subtract(x1, x0))
    y = add(multiply(slope, subtract(x, x0)), f0)
    y = where(equal(x, getitem(xp, n - 1)), getitem(fp, n - 1), y)
    y = where(less(x, getitem(xp, 0)), lo_val, where(greater(x, getitem(xp, n - 1)), hi_val, y))
    return astype(y, _np.float64)


def unique(ar, *args, **kwargs):
    raise NotImplementedError(
        "jitgrad does not support np.unique of a traced array: the result's shape depends on "
        "the values. Call np.unique on a concrete array (outside the traced function, or on an "
        "argument made static).")
