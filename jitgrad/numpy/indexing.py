"""NumPy indexing on traced arrays: ``x[key]``, ``np.take``, and the functions
that pick or place elements by position (``diagonal``, ``trace``, ``diag``,
``diff``, ``sort``, ``argsort``, ``argmax``, ``argmin``).

Basic indexing (integers, slices with any step, ``None``, ``...``) becomes
``slice`` and ``reshape``.  Advanced indexing with integer arrays (concrete
or traced, such as labels passed as an argument) and with concrete boolean
masks becomes ``gather``: the indexed leading axes are flattened into one,
the index arrays into positions along it, and ``gather`` reads those rows.
Its derivative is ``scatter_add``, so repeated indices accumulate their
gradients, as they must.

Array (and integer) indices on consecutive axes (``x[idx]``, ``x[rows, cols]``,
``x[np.arange(n), labels]``, ``x[:, idx]``, ``x[idx, 1:3]``, ``x[mask]``) put
the result's index axes in place of the indexed ones; separated by slices
(``x[3, 2:, [1, 3]]``) they put them first, as NumPy does.  ``None`` combined
with array indices raises ``NotImplementedError`` naming what to write instead.
"""
from __future__ import annotations

import builtins
import math

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer, aval_of
from .base import _axis_index, _operand, _shape
from .reductions import sum
from .shapes import broadcast_to, concatenate, moveaxis, ravel, reshape, squeeze
from .ufuncs import add, isnan, multiply, negative, not_equal, subtract, where


def getitem(x, key):
    """``x[key]`` for basic and advanced (integer array, boolean mask) keys."""
    x = _operand(x)
    key = key if isinstance(key, tuple) else (key,)
    if builtins.any(_is_array_index(k) for k in key):
        return _advanced(x, key)
    return _basic(x, key)


def _is_array_index(k):
    if isinstance(k, Tracer):
        return True
    if isinstance(k, (list, _np.ndarray)):
        return not (isinstance(k, _np.ndarray) and k.ndim == 0)
    return False


def _expand(key, ndim):
    """Replace ``...`` by full slices and pad with full slices to ``ndim`` real entries."""
    n_real = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, "
                         f"but {n_real} were indexed")
    # (identity tests: == on a traced index would build an array)
    i = next((i for i, k in enumerate(key) if k is Ellipsis), None)
    if i is not None:
        return key[:i] + (slice(None),) * (ndim - n_real) + key[i + 1:]
    return key + (slice(None),) * (ndim - n_real)


def _basic(x, key):
    """Integers, slices (any step), None/newaxis and Ellipsis."""
    shape = _shape(x)
    key = _expand(key, len(shape))
    start, stop, step, out_shape = [], [], [], []
    dim = 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        n = shape[dim]
        if isinstance(k, slice):
            a, b, c = k.indices(n)
            start.append(a), stop.append(b), step.append(c)
            out_shape.append(len(range(a, b, c)))
        else:
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
            i %= n
            start.append(i), stop.append(i + 1), step.append(1)
        dim += 1
    full = builtins.all(a == 0 and b == n and c == 1 for a, b, c, n in zip(start, stop, step, shape))
    y = x if full else P.slice_(x, start, stop, step)
    return reshape(y, out_shape)


def _advanced(x, key):
    shape = _shape(x)
    if builtins.any(k is None for k in key):
        raise NotImplementedError("jitgrad does not support None/newaxis combined with array "
                                  "indices; add the axis afterwards (np.expand_dims).")
    # a boolean mask stands for the integer indices of its True entries
    # (one per axis it covers); it must be concrete, since it decides the shape
    expanded = []
    for k in key:
        if _is_bool(k):
            if isinstance(k, Tracer):
                raise NotImplementedError(
                    "jitgrad does not support indexing with a traced boolean mask: the result's "
                    "shape would depend on the data. Use np.where(mask, x, 0) instead.")
            expanded.extend(_np.nonzero(_np.asarray(k)))
        else:
            expanded.append(k)
    key = _expand(tuple(expanded), len(shape))
    # integers count as array indices here (NumPy broadcasts them with the arrays)
    adv = [i for i, k in enumerate(key) if not isinstance(k, slice)]
    if adv != list(range(adv[0], adv[-1] + 1)):
        # separated by slices: NumPy puts the index's axes first, which is
        # indexing the same block moved to the front
        x = moveaxis(x, adv, tuple(range(len(adv))))
        rest = [i for i in range(len(key)) if i not in adv]
        key = tuple(key[i] for i in adv + rest)
        shape = _shape(x)
        adv = list(range(len(adv)))
    p, q = adv[0], adv[-1] + 1
    # basic slicing of the other axes commutes with indexing the block
    basic = tuple(slice(None) if p <= i < q else k for i, k in enumerate(key))
    if builtins.any(k != slice(None) for k in basic):
        x = _basic(x, basic)
        shape = _shape(x)
    lead = shape[p:q]
    if p:
        x = moveaxis(x, tuple(range(p, q)), tuple(range(q - p)))
    idx = _flat_position([_index_array(k, n, p + d, math.prod(lead))
                          for d, (k, n) in enumerate(zip(key[p:q], lead))], lead)
    rows = reshape(x, (math.prod(lead),) + tuple(_shape(x)[q - p:]))
    y = P.gather(rows, idx)
    if p:     # NumPy puts the index's axes where the indexed block was
        k = len(_shape(idx))
        y = moveaxis(y, tuple(range(k)), tuple(range(p, p + k))) if k else y
    return y


def _is_bool(k):
    if isinstance(k, Tracer):
        return k.aval.dtype == _np.bool_
    return isinstance(k, (list, _np.ndarray)) and _np.asarray(k).dtype == _np.bool_


def _index_array(k, n, axis, total):
    """An integer index for an axis of size n, wrapped into [0, n) (negative
    indices count from the end); concrete ones are bounds-checked here.  A
    traced one outside [-n, n) becomes -total, which puts the flat position
    (a sum over the indexed axes, see _flat_position) below 0, so that gather
    raises IndexError, as NumPy does, rather than read another element."""
    if isinstance(k, Tracer):
        if not _np.issubdtype(k.aval.dtype, _np.integer):
            raise IndexError(f"arrays used as indices must be of integer (or boolean) type, "
                             f"got {k.aval.dtype}")
        # (uint64 indices wrap to int64, as NumPy casts them)
        k = P.convert(k, _np.int64) if k.aval.dtype != _np.int64 else k
        wrapped = where(k < 0, k + n, k)
        return where(P.logical_or(wrapped < 0, wrapped >= n), -total, wrapped)
    a = _np.asarray(k)
    if a.size and not _np.issubdtype(a.dtype, _np.integer):
        raise IndexError(f"arrays used as indices must be of integer (or boolean) type, "
                         f"got {a.dtype}")
    a = a.astype(_np.int64)
    bad = (a < -n) | (a >= n)
    if bad.any():
        raise IndexError(f"index {int(a[bad].flat[0])} is out of bounds for axis {axis} "
                         f"with size {n}")
    return a % n if n else a


def _flat_position(indices, lead):
    """The position in the flattened leading axes: sum of index * stride, after
    broadcasting the index arrays together (as NumPy does)."""
    try:
        shape = _np.broadcast_shapes(*[_shape(i) for i in indices])
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together with "
                         "shapes " + " ".join(str(_shape(i)) for i in indices)) from None
    strides = [math.prod(lead[d + 1:]) for d in range(len(lead))]
    if not builtins.any(isinstance(i, Tracer) for i in indices):      # a constant
        return builtins.sum(_np.broadcast_to(i, shape) * s for i, s in zip(indices, strides))
    pos = 0
    for i, s in zip(indices, strides):
        pos = add(pos, i if s == 1 else multiply(i, s))
    return broadcast_to(pos, shape)


def take(a, indices, axis=None, out=None, mode="raise"):
    """``np.take``: ``a`` (flattened when ``axis`` is None) indexed along ``axis``."""
    if out is not None or mode != "raise":
        raise NotImplementedError("jitgrad supports np.take without out= and with mode='raise'")
    a = _operand(a)
    if axis is None:
        return getitem(ravel(a), (indices,))
    nd = len(_shape(a))
    axis = _axis_index(axis, nd) if nd else axis
    if axis == 0:
        return getitem(a, (indices,))
    y = getitem(moveaxis(a, axis, 0), (indices,))
    k = _np.ndim(indices) if not isinstance(indices, Tracer) else indices.aval.ndim
    # NumPy puts the index's axes where the taken axis was
    return moveaxis(y, tuple(range(k)), tuple(range(axis, axis + k))) if k else y


# ---------------------------------------------------------------------------
# Diagonals and differences, composed from slices and pads of flattened axes.


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The diagonal of the (axis1, axis2) planes, as a last axis (as NumPy)."""
    a = _operand(a)
    nd = len(_shape(a))
    if nd < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    a = moveaxis(a, (axis1, axis2), (nd - 2, nd - 1))
    *lead, n, m = _shape(a)
    length = builtins.min(n, m - offset) if offset >= 0 else builtins.min(n + offset, m)
    length = builtins.max(0, length)
    flat = reshape(a, tuple(lead) + (n * m,))
    if length == 0:
        return reshape(P.slice_(flat, (0,) * len(lead) + (0,), tuple(lead) + (0,),
                                (1,) * (len(lead) + 1)), tuple(lead) + (0,))
    # element (i, i + offset) sits at i*(m + 1) + offset of the flattened plane
    start = offset if offset >= 0 else -offset * m
    stop = start + (length - 1) * (m + 1) + 1
    return P.slice_(flat, (0,) * len(lead) + (start,), tuple(lead) + (stop,),
                    (1,) * len(lead) + (m + 1,))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def diag(v, k=0):
    """The k-th diagonal of a matrix, or a matrix with ``v`` on its k-th diagonal."""
    v = _operand(v)
    shape = _shape(v)
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = shape[0] + builtins.abs(k)
    start = k if k >= 0 else -k * n
    return reshape(P.pad(v, (n * n,), (start,), (n + 1,)), (n, n))


def diff(a, n=1, axis=-1, prepend=None, append=None):
    """n-th differences along ``axis`` (of booleans: where neighbours differ),
    after joining ``prepend`` and ``append`` (scalars are broadcast) to ``a``."""
    if n == 0:
        return _operand(a)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    a = _operand(a)
    nd = len(_shape(a))
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = _axis_index(axis, nd)
    parts = [p for p in (prepend, a, append) if p is not None]
    if len(parts) > 1:
        pieces = []
        for p in parts:
            p = _operand(p)
            if _shape(p) == ():
                p = broadcast_to(p, tuple(1 if d == axis else s for d, s in enumerate(_shape(a))))
            pieces.append(p)
        a = concatenate(pieces, axis=axis)
    op = not_equal if aval_of(a).dtype == _np.bool_ else subtract
    for _ in range(n):
        hi = tuple(slice(1, None) if d == axis else slice(None) for d in range(nd))
        lo = tuple(slice(None, -1) if d == axis else slice(None) for d in range(nd))
        a = op(_basic(a, hi), _basic(a, lo))
    return a


# ---------------------------------------------------------------------------
# Sorting.  The order comes from a stable argsort (no derivative); sort
# gathers by it, so its gradient goes back to the positions the values came
# from (shared evenly between tied values: lax.tie_mean).


def _last_axis(a, axis):
    """``a`` with ``axis`` moved last (flattened when None), and how to undo it."""
    a = _operand(a)
    if axis is None:
        return ravel(a), (lambda y: y)
    nd = len(_shape(a))
    if nd == 0:
        raise ValueError("axis is out of bounds for a 0-d array")
    axis %= nd
    if axis == nd - 1:
        return a, (lambda y: y)
    return moveaxis(a, axis, -1), (lambda y: moveaxis(y, -1, axis))


def argsort(a, axis=-1, kind=None, order=None, stable=None):
    """Indices that sort ``a`` along ``axis`` (stable for every ``kind``)."""
    if order is not None:
        raise NotImplementedError("jitgrad does not support np.argsort with order=")
    y, back = _last_axis(a, axis)
    return back(P.argsort(y))


def sort(a, axis=-1, kind=None, order=None, stable=None):
    if order is not None:
        raise NotImplementedError("jitgrad does not support np.sort with order=")
    y, back = _last_axis(a, axis)
    shape = _shape(y)
    n, rows = shape[-1], math.prod(shape[:-1])
    idx = reshape(P.argsort(y), (rows, n))
    # position in the flattened array: row * n + the sorted column
    pos = P.add(idx, P.broadcast_in_dim(_np.arange(rows, dtype=_np.int64) * n, (rows, n), (0,)))
    # (where values tie, each sorted position takes the mean derivative of the tied ones)
    return back(P.tie_mean(reshape(P.gather(reshape(y, (rows * n,)), pos), shape)))


def _arg_first(a, axis, keepdims, flip):
    a = _operand(a)
    nd = len(_shape(a))
    y, back = _last_axis(a, axis)
    if _shape(y)[-1] == 0:
        raise ValueError(f"attempt to get {'argmax' if flip else 'argmin'} of an empty sequence")
    dt = _np.dtype(aval_of(y).dtype)
    if dt == _np.bool_:
        y = P.convert(y, _np.int8)
    if not flip:
        key = y
    elif dt.kind in "iub":       # -1 - y (max - y if unsigned) reverses the order without overflow
        key = subtract(_np.iinfo(aval_of(y).dtype).max if dt.kind == "u" else -1, y)
    else:
        key = negative(y)
    if dt.kind == "f":
        # NumPy returns the first nan: sort nan first (a sort puts it last)
        key = where(isnan(y), -_np.inf, key)
    shape = _shape(y)
    first = P.slice_(P.argsort(key), (0,) * len(shape), shape[:-1] + (1,), (1,) * len(shape))
    if axis is None:
        return reshape(first, (1,) * nd if keepdims else ())
    out = back(first)                 # the sorted axis, now of length 1, in its place
    return out if keepdims else squeeze(out, axis)


def argmax(a, axis=None, out=None, keepdims=False):
    """Index of the first maximum (a stable sort of -a puts it first)."""
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    return _arg_first(a, axis, keepdims, flip=True)


def argmin(a, axis=None, out=None, keepdims=False):
    """Index of the first minimum."""
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    return _arg_first(a, axis, keepdims, flip=False)
