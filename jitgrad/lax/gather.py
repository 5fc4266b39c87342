"""gather and scatter_add: reading and accumulating rows at integer positions;
argsort, the positions that sort.

``gather(x, idx)`` with ``x`` of shape ``(n, *r)`` and an integer array
``idx`` of shape ``s`` is ``x[idx]``: shape ``s + r``.  Its transpose (in
``x``) is ``scatter_add(ct, idx, n)``, which adds each row of ``ct`` into
row ``idx[...]`` of a zero array of shape ``(n, *r)`` (repeated indices
accumulate), and the transpose of ``scatter_add`` is ``gather``.  NumPy's
advanced indexing is lowered to these two (see :mod:`jitgrad.indexing`).

Indices are already in ``[0, n)`` when they reach these primitives (the
indexing layer wraps negative ones); the generated loops still check, and
raise ``IndexError`` rather than read outside the array.  Part of the
primitive set assembled in :mod:`jitgrad.lax`; import it from there.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from ..core.ir import Aval
from .elementwise import _new, add
from .structural import broadcast_in_dim, reshape, transpose, with_batch_axis

__all__ = ["gather_p", "scatter_add_p", "argsort_p", "gather", "scatter_add", "argsort"]

gather_p = _new("gather", "opaque")
scatter_add_p = _new("scatter_add", "opaque")


_OUT_OF_BOUNDS = "jitgrad: an array index is out of bounds for an axis of size {n}"


def _check_idx(idx, who):
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{who}: indices must be integers, got {idx.dtype}")


def _gather_shape(x, idx):
    _check_idx(idx, "gather")
    if x.ndim == 0:
        raise ValueError("gather: cannot index a 0-d array with an array")
    return Aval(tuple(idx.shape) + tuple(x.shape[1:]), x.dtype)


def _scatter_shape(ct, idx, n):
    _check_idx(idx, "scatter_add")
    if tuple(ct.shape[:idx.ndim]) != tuple(idx.shape):
        raise ValueError(f"scatter_add: values of shape {ct.shape} do not start with the "
                         f"indices' shape {idx.shape}")
    return Aval((n,) + tuple(ct.shape[idx.ndim:]), ct.dtype)


def _check_bounds(idx, n):
    """The interpreter's version of the generated loops' check: an index
    outside [0, n) (a negative one was wrapped already) is an error, never a
    wrapped read."""
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(_OUT_OF_BOUNDS.format(n=n))


def _gather_impl(x, idx):
    x, idx = np.asarray(x), np.asarray(idx)
    _check_bounds(idx, x.shape[0])
    return np.take(x, idx, axis=0)


def _scatter_impl(ct, idx, n):
    ct, idx = np.asarray(ct), np.asarray(idx)
    _check_bounds(idx, n)
    out = np.zeros((n,) + ct.shape[idx.ndim:], ct.dtype)
    np.add.at(out, idx, ct)
    return out


gather_p.impl = _gather_impl
gather_p.shape = _gather_shape
gather_p.jvp = lambda p, t, out: None if t[0] is None else gather(t[0], p[1])
gather_p.transpose = lambda ct, x, idx: [
    scatter_add(ct, idx, aval_of(x).shape[0]) if isinstance(x, Undefined) else None, None]

scatter_add_p.impl = _scatter_impl
scatter_add_p.shape = _scatter_shape
scatter_add_p.jvp = lambda p, t, out, n: None if t[0] is None else scatter_add(t[0], p[1], n)
scatter_add_p.transpose = lambda ct, v, idx, n: [
    gather(ct, idx) if isinstance(v, Undefined) else None, None]


# Code: both work on x viewed as (n, row) and idx flattened to (m,).

def _rows(shape):
    return math.prod(shape)


def _flat_idx(idx, idx_aval):
    if idx_aval.shape == ():                  # a 0-d value is a scalar local
        return f"np.array([{idx}], np.int64)"
    return f"np.ascontiguousarray({idx}).reshape({_rows(idx_aval.shape)})"


def _row_loop(out, n, m, body):
    """Lines looping over the m flattened indices in ``{out}_i`` with a bounds
    check; ``body`` runs with the row index in ``j_``."""
    return [f"for m_ in range({m}):",
            f"    j_ = {out}_i[m_]",
            f"    if j_ < 0 or j_ >= {n}:",
            f"        raise IndexError('{_OUT_OF_BOUNDS.format(n=n)}')",
            *("    " + line for line in body)]


def _gather_code(out, ins, in_avals, out_aval, lit):
    (x, idx), (xa, ia) = ins, in_avals
    n, row, m = xa.shape[0], _rows(xa.shape[1:]), _rows(ia.shape)
    dt = np.dtype(out_aval.dtype).name
    lines = [f"{out}_x = np.ascontiguousarray({x}).reshape(({n}, {row}))",
             f"{out}_i = {_flat_idx(idx, ia)}",
             f"{out}_r = np.empty(({m}, {row}), np.{dt})"]
    lines += _row_loop(out, n, m, [f"for r_ in range({row}):",
                                   f"    {out}_r[m_, r_] = {out}_x[j_, r_]"])
    if out_aval.shape == ():
        lines.append(f"{out} = {out}_r[0, 0]")
    else:
        lines.append(f"{out} = {out}_r.reshape({tuple(out_aval.shape)})")
    return lines


def _scatter_code(out, ins, in_avals, out_aval, lit, n):
    (v, idx), (va, ia) = ins, in_avals
    row, m = _rows(va.shape[ia.ndim:]), _rows(ia.shape)
    dt = np.dtype(out_aval.dtype).name
    vals = f"np.array([{v}])" if va.shape == () else f"np.ascontiguousarray({v})"
    lines = [f"{out}_v = {vals}.reshape(({m}, {row}))",
             f"{out}_i = {_flat_idx(idx, ia)}",
             f"{out}_r = np.zeros(({n}, {row}), np.{dt})"]
    lines += _row_loop(out, n, m, [f"for r_ in range({row}):",
                                   f"    {out}_r[j_, r_] += {out}_v[m_, r_]"])
    return lines + [f"{out} = {out}_r.reshape({tuple(out_aval.shape)})"]


gather_p.code = _gather_code
scatter_add_p.code = _scatter_code


def gather(x, idx):
    return bind(gather_p, x, idx)


def scatter_add(values, idx, n):
    return bind(scatter_add_p, values, idx, n=int(n))


# Batching (vmap).  Batched operands carry their batch axis first.

def _row_offsets(idx, size, n):
    """idx (size, *s) + b*n for batch b: positions in x reshaped to (size*n, ...)."""
    offsets = np.arange(size, dtype=np.int64) * n
    av = aval_of(idx)
    return add(idx, broadcast_in_dim(offsets.astype(av.dtype), av.shape, (0,)))


def _move_axis_first(y, pos):
    nd = aval_of(y).ndim
    return transpose(y, (pos,) + tuple(i for i in range(nd) if i != pos))


def _gather_batch(args, batched, size):
    (x, idx), (bx, bi) = args, batched
    xa, ia = aval_of(x), aval_of(idx)
    if bx and not bi:      # gather along axis 1: make it axis 0, then move the batch axis back
        xt = transpose(x, (1, 0) + tuple(range(2, xa.ndim)))
        return _move_axis_first(gather(xt, idx), ia.ndim)
    if bi and not bx:      # the batch axis is part of idx's shape
        return gather(x, idx)
    n = xa.shape[1]
    flat = reshape(x, (size * n,) + tuple(xa.shape[2:]))
    return gather(flat, _row_offsets(idx, size, n))


def _scatter_batch(args, batched, size, n):
    (v, idx), (bv, bi) = args, batched
    va, ia = aval_of(v), aval_of(idx)
    if bv and not bi:      # accumulate rows of (s, batch, r) into (n, batch, r)
        s_nd = ia.ndim
        vt = transpose(v, tuple(range(1, s_nd + 1)) + (0,) + tuple(range(s_nd + 1, va.ndim)))
        return _move_axis_first(scatter_add(vt, idx, n), 1)
    if bi and not bv:
        v = with_batch_axis(v, size)
        va = aval_of(v)
    out = scatter_add(v, _row_offsets(idx, size, n), size * n)
    return reshape(out, (size, n) + tuple(va.shape[ia.ndim:]))


gather_p.batch = _gather_batch
scatter_add_p.batch = _scatter_batch


# ---------------------------------------------------------------------------
# argsort along the last axis (stable: equal values keep their order).  Its
# output is integer, so it has no derivative; sort is a gather by it.

argsort_p = _new("argsort", "opaque")


def _argsort_shape(x):
    if x.ndim == 0:
        raise ValueError("argsort: cannot sort a 0-d array")
    return Aval(tuple(x.shape), np.dtype(np.int64))


def _argsort_code(out, ins, in_avals, out_aval, lit):
    (x,), (xa,) = ins, in_avals
    n, rows = xa.shape[-1], _rows(xa.shape[:-1])
    return [f"{out}_x = np.ascontiguousarray({x}).reshape(({rows}, {n}))",
            f"{out}_r = np.empty(({rows}, {n}), np.int64)",
            f"for r_ in range({rows}):",
            f"    {out}_r[r_] = np.argsort({out}_x[r_], kind='mergesort')",
            f"{out} = {out}_r.reshape({tuple(xa.shape)})"]


argsort_p.impl = lambda x: np.argsort(np.asarray(x), axis=-1, kind="stable").astype(np.int64)
argsort_p.shape = _argsort_shape
argsort_p.jvp = lambda p, t, out: None
argsort_p.code = _argsort_code
argsort_p.batch = lambda args, batched, size: argsort(args[0])


def argsort(x):
    return bind(argsort_p, x)
