"""Structural primitives: broadcast_in_dim, transpose, slice, pad, reshape and
concatenate.  They move data without arithmetic; the fuser reads through the
'view' ones (and through reshapes that only insert or remove size-1 axes) as
index expressions.  Part of the primitive set assembled in
:mod:`jitgrad.lax`; import it from there.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.primitive import Primitive, Undefined
from ..core.trace import aval_of, bind
from ..core.ir import Aval

def _shift(axes):
    """Axis numbers after a leading batch axis is inserted."""
    return tuple(a + 1 for a in axes)


def with_batch_axis(x, size):
    """Give an unbatched operand of a batching rule the leading batch axis."""
    av = aval_of(x)
    return broadcast_in_dim(x, (size,) + av.shape, tuple(range(1, len(av.shape) + 1)))


# ---------------------------------------------------------------------------
# Structural primitives.  These move data without arithmetic; the fuser folds
# the 'view' kind into index expressions.

broadcast_in_dim_p = Primitive("broadcast_in_dim", "view")


def _broadcast_shape(x, shape, dims):
    if len(dims) != x.ndim or any(x.shape[i] not in (1, shape[d]) for i, d in enumerate(dims)):
        raise ValueError(f"cannot broadcast shape {x.shape} to {shape} along dims {dims}")
    return Aval(tuple(shape), x.dtype)


def _broadcast_impl(x, shape, dims):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape).copy()


def _broadcast_transpose(ct, x, shape, dims):
    in_shape = x.aval.shape
    summed = tuple(d for d in range(len(shape)) if d not in dims)
    # also sum over the input's size-1 axes that were stretched
    stretched = tuple(d for i, d in enumerate(dims) if in_shape[i] == 1 and shape[d] != 1)
    y = reduce_sum(ct, tuple(sorted(summed + stretched)))
    return [reshape(y, in_shape)]


broadcast_in_dim_p.impl = _broadcast_impl
broadcast_in_dim_p.shape = _broadcast_shape
broadcast_in_dim_p.jvp = lambda p, t, out, shape, dims: (
    None if t[0] is None else broadcast_in_dim(t[0], shape, dims))
broadcast_in_dim_p.transpose = _broadcast_transpose
# index map: output index -> input index (size-1 input axes read index 0)
broadcast_in_dim_p.batch = lambda args, batched, size, shape, dims: broadcast_in_dim(
    args[0], (size,) + tuple(shape), (0,) + _shift(dims))
broadcast_in_dim_p.index_map = lambda idx, in_shape, shape, dims: [
    "0" if in_shape[i] == 1 and shape[d] != 1 else idx[d] for i, d in enumerate(dims)]


def broadcast_in_dim(x, shape, dims):
    shape, dims = tuple(int(s) for s in shape), tuple(int(d) for d in dims)
    if aval_of(x).shape == shape and dims == tuple(range(len(shape))):
        return x
    return bind(broadcast_in_dim_p, x, shape=shape, dims=dims)


transpose_p = Primitive("transpose", "view")
transpose_p.impl = lambda x, perm: np.ascontiguousarray(np.transpose(x, perm))
transpose_p.shape = lambda x, perm: Aval(tuple(x.shape[p] for p in perm), x.dtype)
transpose_p.jvp = lambda p, t, out, perm: None if t[0] is None else transpose(t[0], perm)
transpose_p.transpose = lambda ct, x, perm: [transpose(ct, tuple(np.argsort(perm)))]
transpose_p.batch = lambda args, batched, size, perm: transpose(args[0], (0,) + _shift(perm))
transpose_p.index_map = lambda idx, in_shape, perm: [idx[int(np.argsort(perm)[i])] for i in range(len(perm))]


def transpose(x, perm):
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return bind(transpose_p, x, perm=perm)


# slice: x[start:stop:step] along every axis (steps may be negative).
slice_p = Primitive("slice", "view")


def _slice_len(start, stop, step):
    return len(range(start, stop, step))


slice_p.impl = lambda x, start, stop, step: np.ascontiguousarray(
    np.asarray(x)[tuple(builtin_slice(a, None if b < 0 else b, c) for a, b, c in zip(start, stop, step))])
slice_p.shape = lambda x, start, stop, step: Aval(
    tuple(_slice_len(*s) for s in zip(start, stop, step)), x.dtype)
slice_p.jvp = lambda p, t, out, start, stop, step: (
    None if t[0] is None else slice_(t[0], start, stop, step))
slice_p.transpose = lambda ct, x, start, stop, step: [
    pad(ct, x.aval.shape, start, step)]
slice_p.batch = lambda args, batched, size, start, stop, step: slice_(
    args[0], (0,) + start, (size,) + stop, (1,) + step)
slice_p.index_map = lambda idx, in_shape, start, stop, step: [
    (f"{a} + {i}" if c == 1 else f"{a} + ({c}) * {i}") if a else (i if c == 1 else f"({c}) * {i}")
    for i, a, c in zip(idx, start, step)]
builtin_slice = slice


def slice_(x, start, stop, step):
    start, stop, step = (tuple(int(v) for v in s) for s in (start, stop, step))
    return bind(slice_p, x, start=start, stop=stop, step=step)


# pad: the transpose of slice.  Places x at positions start + i*step of a zero
# array of the given shape.  A view: a read maps the index back into x, under
# the condition that it lands on one of x's positions (else the value is 0).
pad_p = Primitive("pad", "view")


def _pad_impl(x, shape, start, step):
    out = np.zeros(shape, np.asarray(x).dtype)
    out[tuple(builtin_slice(a, None, c) for a, c in zip(start, step))][
        tuple(builtin_slice(0, n) for n in np.shape(x))] = x
    return out


def _pad_shape(x, shape, start, step):
    return Aval(tuple(shape), x.dtype)


pad_p.impl = _pad_impl
pad_p.shape = _pad_shape
pad_p.jvp = lambda p, t, out, shape, start, step: (
    None if t[0] is None else pad(t[0], shape, start, step))
pad_p.transpose = lambda ct, x, shape, start, step: [
    slice_(ct, start, tuple(a + c * (n - 1) + (1 if c > 0 else -1) for a, c, n in zip(start, step, x.aval.shape)), step)]


def _pad_index_map(idx, in_shape, shape, start, step):
    src, conds = [], []
    for i, a, c, n, m in zip(idx, start, step, in_shape, shape):
        if c == 1:
            src.append(f"{i} - {a}" if a else i)
            if a != 0 or n != m:
                conds.append(("range", i, a, a + n))
        else:
            q = f"(({i} - {a}) // ({c}))"
            src.append(q)
            conds.append(f"({i} - {a}) % ({c}) == 0 and 0 <= {q} < {n}")
    return src, conds


pad_p.index_map = _pad_index_map
pad_p.batch = lambda args, batched, size, shape, start, step: pad(
    args[0], (size,) + shape, (0,) + start, (1,) + step)


def pad(x, shape, start, step):
    return bind(pad_p, x, shape=tuple(int(s) for s in shape),
                start=tuple(int(s) for s in start), step=tuple(int(s) for s in step))


reshape_p = Primitive("reshape", "opaque")
reshape_p.impl = lambda x, shape: np.reshape(np.asarray(x), shape)


def _reshape_shape(x, shape):
    if math.prod(shape) != x.size:
        raise ValueError(f"cannot reshape an array of shape {x.shape} ({x.size} elements) into {shape}")
    return Aval(tuple(shape), x.dtype)


reshape_p.shape = _reshape_shape
reshape_p.jvp = lambda p, t, out, shape: None if t[0] is None else reshape(t[0], shape)
reshape_p.transpose = lambda ct, x, shape: [reshape(ct, x.aval.shape)]


def _reshape_code(out, ins, in_avals, out_aval, lit, shape):
    (x,), (xa,) = ins, in_avals
    if xa.shape == ():
        return [f"{out} = np.full({shape}, {x})"]
    if shape == ():
        return [f"{out} = {x}.ravel()[0]"]
    return [f"{out} = lc.reshape({x}, {shape})"]


reshape_p.code = _reshape_code


def _reshape_index_map(idx, in_shape, shape):
    """A reshape that only inserts or removes size-1 axes (keepdims, ``x[:, None]``,
    squeeze) moves no data, so the fuser reads through it like a view: the
    input's size-1 axes read index 0, its other axes take the output's
    non-unit indices in order.  Any other reshape returns None (opaque)."""
    kept = [d for d, n in enumerate(shape) if n != 1]
    if [n for n in in_shape if n != 1] != [shape[d] for d in kept]:
        return None
    it = iter(kept)
    return ["0" if n == 1 else idx[next(it)] for n in in_shape]


reshape_p.index_map = _reshape_index_map
reshape_p.batch = lambda args, batched, size, shape: reshape(args[0], (size,) + tuple(shape))


def reshape(x, shape):
    shape = tuple(int(s) for s in shape)
    if aval_of(x).shape == shape:
        return x
    return bind(reshape_p, x, shape=shape)


# ---------------------------------------------------------------------------
# concatenate along one axis.  Its transpose slices the cotangent apart.

concatenate_p = Primitive("concatenate", "opaque")


def _concat_shape(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                                       if i != axis):
            raise ValueError(f"concatenate: shapes {first.shape} and {x.shape} differ off axis {axis}")
        if x.dtype != first.dtype:
            raise TypeError(f"concatenate: dtypes {first.dtype} and {x.dtype} differ")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return Aval(tuple(shape), first.dtype)


def _concat_jvp(p, t, out, axis):
    if all(ti is None for ti in t):
        return None
    return concatenate([instantiate(ti, aval_of(pi)) for pi, ti in zip(p, t)], axis)


def _concat_transpose(ct, *xs, axis):
    shape = aval_of(ct).shape
    cts, offset = [], 0
    for x in xs:
        n = aval_of(x).shape[axis]
        if isinstance(x, Undefined):
            start = tuple(offset if i == axis else 0 for i in range(len(shape)))
            stop = tuple(offset + n if i == axis else s for i, s in enumerate(shape))
            cts.append(slice_(ct, start, stop, (1,) * len(shape)))
        else:
            cts.append(None)
        offset += n
    return cts


# no code rule: the emitter writes a concatenate as one copy loop per operand
concatenate_p.impl = lambda *xs, axis: np.concatenate([np.asarray(x) for x in xs], axis)
concatenate_p.shape = _concat_shape
concatenate_p.jvp = _concat_jvp
concatenate_p.transpose = _concat_transpose
concatenate_p.batch = lambda args, batched, size, axis: concatenate(
    [a if b else with_batch_axis(a, size) for a, b in zip(args, batched)], axis + 1)


def concatenate(xs, axis):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return bind(concatenate_p, *xs, axis=int(axis))


# ---------------------------------------------------------------------------
# Filling: a scalar broadcast to a shape (symbolic zeros become these).


def zeros(aval):
    return full(aval.shape, 0, aval.dtype)


def full(shape, value, dtype):
    return broadcast_in_dim(np.asarray(value, dtype)[()], tuple(shape), ())


def instantiate(t, aval):
    return zeros(aval) if t is None else t


# ---------------------------------------------------------------------------
# reduce_sum: the transpose of broadcast_in_dim, and broadcast_in_dim its
# transpose, so the two live in one module.  The other reductions are in
# reductions.py.  code: (initial value, combine template).


def _reduce_shape(x, axes):
    return Aval(tuple(s for i, s in enumerate(x.shape) if i not in axes), x.dtype)


def _kept_dims(ndim, axes):
    return tuple(i for i in range(ndim) if i not in axes)


def _reduce_batch(prim):
    """Batching a reduction: the same reduction, over the shifted axes."""
    return lambda args, batched, size, axes: bind(prim, args[0], axes=_shift(axes))


def _expand_back(y, in_aval, axes):
    """Broadcast a reduced value back to the input's shape."""
    return broadcast_in_dim(y, in_aval.shape, _kept_dims(len(in_aval.shape), axes))


reduce_sum_p = Primitive("reduce_sum", "reduce")
# (dtype=: NumPy would sum small integers in int64; the primitive keeps x's dtype)
reduce_sum_p.impl = lambda x, axes: np.asarray(np.sum(x, axis=axes, dtype=np.asarray(x).dtype))
reduce_sum_p.shape = _reduce_shape
reduce_sum_p.jvp = lambda p, t, out, axes: None if t[0] is None else reduce_sum(t[0], axes)
reduce_sum_p.transpose = lambda ct, x, axes: [_expand_back(ct, x.aval, axes)]
reduce_sum_p.code = (0, "{acc} + {x}")
reduce_sum_p.batch = _reduce_batch(reduce_sum_p)


def _reducer(p):
    """The op of reduction primitive ``p`` over ``axes`` (none: the identity)."""
    def op(x, axes):
        axes = tuple(sorted(int(a) for a in axes))
        if not axes:
            return x
        return bind(p, x, axes=axes)
    return op


reduce_sum = _reducer(reduce_sum_p)
