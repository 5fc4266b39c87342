"""scatter: overwriting rows at traced positions (``x[idx] = v``), the later write winning.

``scatter(x, idx, v)`` with ``x`` of shape ``(n, *r)``, an integer array
``idx`` of shape ``s`` and ``v`` of shape ``s + r`` is ``x`` with row
``idx[k]`` replaced by ``v[k]``, for each k in order: where ``idx`` repeats
a position, the last write stays (what NumPy's ``x[idx] = v`` does).  The
NumPy layer uses it for assignments whose indices are traced; with concrete
positions it composes the update from ``scatter_add`` and ``select`` instead.

It is linear in ``(x, v)`` together.  Its transpose gives ``x`` the cotangent
with the written rows zeroed (a scatter of zeros) and ``v[k]`` the cotangent
of row ``idx[k]`` only if write ``k`` is the one that stayed (a position's
last writer, found by scattering the writers' numbers): an overwritten value
has no effect on the result.  Indices are in ``[0, n)`` (the indexing layer
wraps negative ones); the interpreter and the generated loop check, and
raise ``IndexError``.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.ir import Aval
from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from .elementwise import _new, add, eq, select
from .gather import gather
from .structural import broadcast_in_dim, full, instantiate, reshape, with_batch_axis, zeros

__all__ = ["scatter_p", "scatter"]

scatter_p = _new("scatter", "opaque")

_OUT_OF_BOUNDS = "jitgrad: an array index is out of bounds for an axis of size {n}"


def _scatter_shape(x, idx, v):
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"scatter: indices must be integers, got {idx.dtype}")
    if x.ndim == 0:
        raise ValueError("scatter: cannot index a 0-d array with an array")
    want = tuple(idx.shape) + tuple(x.shape[1:])
    if tuple(v.shape) != want or v.dtype != x.dtype:
        raise ValueError(f"scatter: values must have shape {want} and dtype {x.dtype}, got "
                         f"{v.shape} {v.dtype}")
    return Aval(tuple(x.shape), x.dtype)


def _scatter_impl(x, idx, v):
    out, idx = np.array(x, copy=True), np.asarray(idx)
    n = out.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(_OUT_OF_BOUNDS.format(n=n))
    out[idx] = v      # NumPy assigns in order: a repeated index keeps the last value
    return out


def _scatter_jvp(p, t, out):
    x, idx, v = p
    tx, _, tv = t
    if tx is None and tv is None:
        return None
    return scatter(instantiate(tx, aval_of(x)), idx, instantiate(tv, aval_of(v)))


def _last_writer(idx, n):
    """A boolean array of idx's shape: whether write k is the last to its position."""
    ia = aval_of(idx)
    m = math.prod(ia.shape)
    writer = np.arange(m, dtype=np.int64).reshape(ia.shape)
    winners = scatter(full((n,), -1, np.int64), idx, writer)
    return eq(gather(winners, idx), writer)


def _scatter_transpose(ct, x, idx, v):
    va = v.aval if isinstance(v, Undefined) else aval_of(v)
    ct_x = scatter(ct, idx, zeros(va)) if isinstance(x, Undefined) else None
    ct_v = None
    if isinstance(v, Undefined):
        ia = aval_of(idx)
        keep = _last_writer(idx, aval_of(ct).shape[0])
        if va.ndim > ia.ndim:
            keep = broadcast_in_dim(keep, va.shape, tuple(range(ia.ndim)))
        ct_v = select(keep, gather(ct, idx), zeros(va))
    return [ct_x, None, ct_v]


def _scatter_code(out, ins, in_avals, out_aval, lit):
    (x, idx, v), (xa, ia, va) = ins, in_avals
    n, row, m = xa.shape[0], math.prod(xa.shape[1:]), math.prod(ia.shape)
    flat_i = (f"np.array([{idx}], np.int64)" if ia.shape == ()
              else f"np.ascontiguousarray({idx}).reshape({m})")
    vals = f"np.array([{v}])" if va.shape == () else f"np.ascontiguousarray({v})"
    return [f"{out}_r = np.ascontiguousarray({x}).reshape(({n}, {row})).copy()",
            f"{out}_v = {vals}.reshape(({m}, {row}))",
            f"{out}_i = {flat_i}",
            f"for m_ in range({m}):",
            f"    j_ = {out}_i[m_]",
            f"    if j_ < 0 or j_ >= {n}:",
            f"        raise IndexError('{_OUT_OF_BOUNDS.format(n=n)}')",
            f"    for r_ in range({row}):",
            f"        {out}_r[j_, r_] = {out}_v[m_, r_]",
            f"{out} = {out}_r.reshape({tuple(out_aval.shape)})"]


def _scatter_batch(args, batched, size):
    """Every operand batched, then one scatter into the batch-flattened rows
    (row i of batch b is row b*n + i)."""
    x, idx, v = [a if b else with_batch_axis(a, size) for a, b in zip(args, batched)]
    xa, ia = aval_of(x), aval_of(idx)
    n = xa.shape[1]
    offsets = np.arange(size, dtype=ia.dtype) * n
    flat_idx = add(idx, broadcast_in_dim(offsets, ia.shape, (0,)))
    flat_x = reshape(x, (size * n,) + tuple(xa.shape[2:]))
    return reshape(scatter(flat_x, flat_idx, v), xa.shape)


scatter_p.impl = _scatter_impl
scatter_p.shape = _scatter_shape
scatter_p.jvp = _scatter_jvp
scatter_p.transpose = _scatter_transpose
scatter_p.code = _scatter_code
scatter_p.batch = _scatter_batch


def scatter(x, idx, v):
    return bind(scatter_p, x, idx, v)
