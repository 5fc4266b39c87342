"""Reductions (reduce_sum, reduce_max, reduce_min, reduce_prod), dot_general and cumsum.
Part of the primitive set assembled in :mod:`jitgrad.lax`; import it
from there.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from ..core.ir import Aval
from .elementwise import _add_tangents, _new, convert, div, eq, full_like, mul, select, sub
from .structural import (_expand_back, _reduce_batch, _reduce_shape, _reducer, _shift, reduce_sum,
                         transpose, zeros)

# ---------------------------------------------------------------------------
# Reductions over a set of axes.  code: (initial value, combine template).


def _reduce_shape_no_identity(name):
    """The shape rule of a reduction without an identity (max, min): NumPy
    raises for an empty reduced axis, and so do both tiers, at trace time."""
    def shape(x, axes):
        if any(x.shape[i] == 0 for i in axes):
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        return _reduce_shape(x, axes)
    return shape


def _reduce_max_jvp(p, t, out, axes):
    # The derivative flows to the arg-max positions, shared evenly between ties.
    (x,), (tx,) = p, t
    if tx is None:
        return None
    mask = convert(eq(x, _expand_back(out, aval_of(x), axes)), aval_of(x).dtype)
    return div(reduce_sum(mul(tx, mask), axes), reduce_sum(mask, axes))


reduce_max_p = _new("reduce_max", "reduce")
reduce_max_p.impl = lambda x, axes: np.asarray(np.max(x, axis=axes))
reduce_max_p.shape = _reduce_shape_no_identity("maximum")
reduce_max_p.jvp = _reduce_max_jvp
reduce_max_p.code = (-math.inf, "_nanmax({acc}, {x})")   # -inf: the lowest value of the dtype
reduce_max_p.batch = _reduce_batch(reduce_max_p)

reduce_min_p = _new("reduce_min", "reduce")
reduce_min_p.impl = lambda x, axes: np.asarray(np.min(x, axis=axes))
reduce_min_p.shape = _reduce_shape_no_identity("minimum")
reduce_min_p.jvp = _reduce_max_jvp
reduce_min_p.code = (math.inf, "_nanmin({acc}, {x})")     # inf: the highest value of the dtype
reduce_min_p.batch = _reduce_batch(reduce_min_p)


def _reduce_prod_jvp(p, t, out, axes):
    # d prod = sum_i dx_i * prod_{j != i} x_j.  With P the product of the
    # non-zeros and S the sum of x over the zeros (0 here, but its derivative
    # is not), the product of the others is, as a function of x near x:
    #   no zero:       P / x_i
    #   one zero z:    P at z; S P / x_i elsewhere (0 here, derivative P/x_i dx_z)
    #   two zeros:     P (S - x_i) at the zeros (the other zero); O(x^2) elsewhere
    #   three or more: O(x^2)
    # so the derivative is right at zeros, and so is the second derivative.
    (x,), (tx,) = p, t
    if tx is None:
        return None
    av = aval_of(x)
    is_zero = eq(x, 0.0)
    z = convert(is_zero, av.dtype)
    safe = select(is_zero, full_like(x, 1.0), x)
    p_nonzero = _expand_back(reduce_prod(safe, axes), av, axes)
    n_zero = _expand_back(reduce_sum(z, axes), av, axes)
    s_zero = _expand_back(reduce_sum(mul(x, z), axes), av, axes)
    one = mul(p_nonzero, select(is_zero, full_like(x, 1.0), div(s_zero, safe)))
    two = mul(p_nonzero, mul(z, sub(s_zero, x)))
    others = select(eq(n_zero, 0.0), div(p_nonzero, safe),
                    select(eq(n_zero, 1.0), one, select(eq(n_zero, 2.0), two, zeros(av))))
    return reduce_sum(mul(tx, others), axes)


reduce_prod_p = _new("reduce_prod", "reduce")
reduce_prod_p.impl = lambda x, axes: np.asarray(np.prod(x, axis=axes, dtype=np.asarray(x).dtype))
reduce_prod_p.shape = _reduce_shape
reduce_prod_p.jvp = _reduce_prod_jvp
reduce_prod_p.code = (1, "{acc} * {x}")
reduce_prod_p.batch = _reduce_batch(reduce_prod_p)


reduce_max, reduce_min, reduce_prod = map(_reducer, (reduce_max_p, reduce_min_p, reduce_prod_p))


# ---------------------------------------------------------------------------
# dot_general: contraction over paired axes with optional batch axes.  Output
# layout: batch axes, then x's free axes, then y's free axes (each in order).

dot_general_p = _new("dot_general", "opaque")


def _free(ndim, contract, batch):
    return [i for i in range(ndim) if i not in contract and i not in batch]


def _dot_shape(x, y, contract, batch):
    (xc, yc), (xb, yb) = contract, batch
    for a, b in zip(xc, yc):
        if x.shape[a] != y.shape[b]:
            raise ValueError(f"dot: contracted axes differ in size: {x.shape} and {y.shape}")
    if x.dtype != y.dtype:
        raise TypeError(f"dot: operands differ in dtype: {x.dtype} and {y.dtype}")
    shape = tuple(x.shape[i] for i in xb)
    shape += tuple(x.shape[i] for i in _free(x.ndim, xc, xb))
    shape += tuple(y.shape[i] for i in _free(y.ndim, yc, yb))
    return Aval(shape, x.dtype)


def _dot_impl(x, y, contract, batch):
    x, y = np.asarray(x), np.asarray(y)
    (xc, yc), (xb, yb) = contract, batch
    xf, yf = _free(x.ndim, xc, xb), _free(y.ndim, yc, yb)
    xt = np.transpose(x, list(xb) + xf + list(xc))
    yt = np.transpose(y, list(yb) + list(yc) + yf)
    nb = len(xb)
    bshape = xt.shape[:nb]
    m = math.prod(xt.shape[nb:nb + len(xf)])
    k = math.prod(xt.shape[nb + len(xf):])
    n = math.prod(yt.shape[nb + len(yc):])
    out = np.matmul(xt.reshape(bshape + (m, k)), yt.reshape(bshape + (k, n)))
    return out.reshape(bshape + xt.shape[nb:nb + len(xf)] + yt.shape[nb + len(yc):])


def _dot_transpose_one(ct, other, contract, batch, other_is_y, lin_aval):
    """Cotangent of one operand of dot_general given the other."""
    (xc, yc), (xb, yb) = contract, batch
    if other_is_y:
        lc, oc, lb, ob = xc, yc, xb, yb
    else:
        lc, oc, lb, ob = yc, xc, yb, xb
    o_aval = aval_of(other)
    nb = len(xb)
    x_ndim = len(lin_aval.shape) if other_is_y else o_aval.ndim
    nxf = len(_free(x_ndim, xc, xb))
    # positions of ct's axes: batch [0, nb), x-free [nb, nb+nxf), y-free after
    if other_is_y:
        ct_free_other = tuple(range(nb + nxf, len(aval_of(ct).shape)))
    else:
        ct_free_other = tuple(range(nb, nb + nxf))
    o_free = tuple(_free(o_aval.ndim, oc, ob))
    # dot_general(ct, other)'s axes: batch, ct's remaining (the linear operand's
    # free axes in order), then other's remaining axes (its contracted axes in
    # increasing order), which pair with the linear operand's contracted axes.
    # dot_general(other, ct) has the last two groups swapped; take the order
    # that needs no transpose when there is one.
    lin_free = _free(len(lin_aval.shape), lc, lb)
    paired = [lc[j] for j in np.argsort(oc)]
    nd = len(lin_aval.shape)
    dims = list(lb) + lin_free + paired
    swapped = list(lb) + paired + lin_free
    bdims = (tuple(range(nb)), tuple(ob))
    if swapped == list(range(nd)) and dims != swapped:
        return dot_general(other, ct, (o_free, ct_free_other), (bdims[1], bdims[0]))
    r = dot_general(ct, other, (ct_free_other, o_free), bdims)
    return transpose(r, tuple(dims.index(i) for i in range(nd)))


def _dot_transpose(ct, x, y, contract, batch):
    if isinstance(x, Undefined):
        return [_dot_transpose_one(ct, y, contract, batch, True, x.aval), None]
    return [None, _dot_transpose_one(ct, x, contract, batch, False, y.aval)]


def _dot_jvp(p, t, out, contract, batch):
    (x, y), (tx, ty) = p, t
    a = None if tx is None else dot_general(tx, y, contract, batch)
    b = None if ty is None else dot_general(x, ty, contract, batch)
    return _add_tangents(a, b)


def _dot_code(out, ins, in_avals, out_aval, lit, contract, batch):
    """Move axes to (batch, free, contracted) x (batch, contracted, free) and call
    BLAS through np.dot (backend.libcalls), once per batch entry, into the
    result's memory."""
    (x, y), (xa, ya) = ins, in_avals
    (xc, yc), (xb, yb) = contract, batch
    xf, yf = _free(xa.ndim, xc, xb), _free(ya.ndim, yc, yb)
    B = math.prod(xa.shape[i] for i in xb)
    M = math.prod(xa.shape[i] for i in xf)
    K = math.prod(xa.shape[i] for i in xc)
    N = math.prod(ya.shape[i] for i in yf)
    dt = np.dtype(out_aval.dtype).name
    lines = []

    def arrange(name, aval, perm, shape3):
        if aval.shape == ():
            return f"np.full({shape3}, {name})"
        if list(perm) != list(range(aval.ndim)):
            name = f"np.transpose({name}, {tuple(perm)})"
        return f"lc.reshape({name}, {shape3})"

    def operand(tag, name, aval, bat, first, second):
        """Batch ``b`` of an operand as a (first, second) matrix: a transposed
        view when its axes are (batch, second, first), BLAS takes either layout."""
        P = math.prod(aval.shape[i] for i in first)
        Q = math.prod(aval.shape[i] for i in second)
        if aval.shape != () and list(bat) + list(second) + list(first) == list(range(aval.ndim)) \
                and list(first) + list(second) != list(second) + list(first):
            lines.append(f"{out}_{tag} = lc.reshape({name}, {(B, Q, P)})")
            return f"{out}_{tag}[{{b}}].T"
        lines.append(f"{out}_{tag} = {arrange(name, aval, list(bat) + list(first) + list(second), (B, P, Q))}")
        return f"{out}_{tag}[{{b}}]"

    blas = np.dtype(out_aval.dtype).kind in "fc"     # BLAS has no integer or boolean products
    if blas and B == 1 and xa.ndim == 2 and ya.ndim == 2 and out_aval.ndim == 2:
        # a plain matrix product: pass transposed views, BLAS takes either layout
        # (ascontiguousarray costs nothing on a C array; it copies a strided
        # captured view, which BLAS could not take)
        xe, ye = f"np.ascontiguousarray({x})", f"np.ascontiguousarray({y})"
        xe = xe if list(xf + list(xc)) == [0, 1] else f"{xe}.T"
        ye = ye if list(list(yc) + yf) == [0, 1] else f"{ye}.T"
        return [f"{out} = lc.empty({out_aval.shape}, np.{dt})", f"lc.dot_into({xe}, {ye}, {out})"]
    if not blas:
        # accumulating into the result's dtype wraps as NumPy's integer products do
        lines.append(f"{out}_x = {arrange(x, xa, list(xb) + xf + list(xc), (B, M, K))}")
        lines.append(f"{out}_y = {arrange(y, ya, list(yb) + list(yc) + yf, (B, K, N))}")
        lines += [f"{out}_r = np.zeros(({B}, {M}, {N}), np.{dt})",
                  f"for b in range({B}):",
                  f"    for m in range({M}):",
                  f"        for k in range({K}):",
                  f"            for n in range({N}):",
                  f"                {out}_r[b, m, n] += {out}_x[b, m, k] * {out}_y[b, k, n]"]
    else:
        xe = operand("x", x, xa, xb, xf, xc)
        ye = operand("y", y, ya, yb, yc, yf)
        lines.append(f"{out}_r = lc.empty(({B}, {M}, {N}), np.{dt})")
        if B == 1:
            lines.append(f"lc.dot_into({xe.format(b=0)}, {ye.format(b=0)}, {out}_r[0])")
        else:
            lines.append(f"for b in range({B}):")
            lines.append(f"    lc.dot_into({xe.format(b='b')}, {ye.format(b='b')}, {out}_r[b])")
    if out_aval.shape == ():
        lines.append(f"{out} = {out}_r.ravel()[0]")
    else:
        lines.append(f"{out} = lc.reshape({out}_r, {out_aval.shape})")
    return lines


dot_general_p.code = _dot_code
dot_general_p.impl = _dot_impl
dot_general_p.shape = _dot_shape
dot_general_p.jvp = _dot_jvp
dot_general_p.transpose = _dot_transpose


def _dot_batch(args, batched, size, contract, batch):
    x, y = args
    bx, by = batched
    (xc, yc), (xb, yb) = contract, batch
    if bx and by:
        return dot_general(x, y, (_shift(xc), _shift(yc)), ((0,) + _shift(xb), (0,) + _shift(yb)))
    if bx:
        # the new axis is x's first free axis: it lands right after the batch axes
        out = dot_general(x, y, (_shift(xc), yc), (_shift(xb), yb))
        pos = len(xb)
    else:
        out = dot_general(x, y, (xc, _shift(yc)), (xb, _shift(yb)))
        x_free = aval_of(x).ndim - len(xc) - len(xb)
        pos = len(xb) + x_free
    nd = aval_of(out).ndim
    return transpose(out, (pos,) + tuple(i for i in range(nd) if i != pos))


dot_general_p.batch = _dot_batch


def dot_general(x, y, contract, batch=((), ())):
    contract = tuple(tuple(int(i) for i in c) for c in contract)
    batch = tuple(tuple(int(i) for i in b) for b in batch)
    return bind(dot_general_p, x, y, contract=contract, batch=batch)


# ---------------------------------------------------------------------------
# cumsum: running totals along one axis (from the end when ``reverse``).  It is
# linear; its transpose is the running total in the other direction (each
# input contributes to every later output).

cumsum_p = _new("cumsum", "opaque")


def _cumsum_impl(x, axis, reverse):
    x = np.asarray(x)
    if not reverse:
        return np.cumsum(x, axis=axis, dtype=x.dtype)
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)


def _cumsum_code(out, ins, in_avals, out_aval, lit, axis, reverse):
    (x,), shape = ins, out_aval.shape
    dt = np.dtype(out_aval.dtype).name
    others = [d for d in range(len(shape)) if d != axis]
    idx = [f"i{d}" if d != axis else "k_" for d in range(len(shape))]
    at = ", ".join(idx)
    lines = [f"{out} = np.empty({shape}, np.{dt})"]
    indent = ""
    for d in others:
        lines.append(f"{indent}for i{d} in range({shape[d]}):")
        indent += "    "
    n = shape[axis]
    steps = f"range({n} - 1, -1, -1)" if reverse else f"range({n})"
    lines += [f"{indent}acc_ = {lit(0)}",
              f"{indent}for k_ in {steps}:",
              f"{indent}    acc_ += {x}[{at}]",
              f"{indent}    {out}[{at}] = acc_"]
    return lines


cumsum_p.impl = _cumsum_impl
cumsum_p.shape = lambda x, axis, reverse: Aval(tuple(x.shape), x.dtype)
cumsum_p.jvp = lambda p, t, out, axis, reverse: None if t[0] is None else cumsum(t[0], axis, reverse)
cumsum_p.transpose = lambda ct, x, axis, reverse: [cumsum(ct, axis, not reverse)]
cumsum_p.code = _cumsum_code
cumsum_p.batch = lambda args, batched, size, axis, reverse: cumsum(args[0], axis + 1, reverse)


def cumsum(x, axis, reverse=False):
    return bind(cumsum_p, x, axis=int(axis), reverse=bool(reverse))
