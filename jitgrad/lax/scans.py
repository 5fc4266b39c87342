"""cumprod (running products along one axis) and tie_mean (the derivative of
sorted values where they tie).  Part of the primitive set assembled in
:mod:`jitgrad.lax`; import them from there.

A primitive rather than ``exp(cumsum(log(x)))``, which is inexact and fails
at zeros and negative numbers.  Its tangent is written so that it is right at
zeros, where ``y / x`` is not, and stays right when differentiated again.
"""
from __future__ import annotations

import numpy as np

from ..core.ir import Aval
from ..core.trace import aval_of, bind
from .elementwise import _new, _unary, add, convert, div, eq, mul, ne, select, sub
from .gather import gather, scatter_add
from .reductions import cumsum
from .structural import broadcast_in_dim, concatenate, full, reshape, slice_

cumprod_p = _new("cumprod", "opaque")


def _cumprod_impl(x, axis):
    x = np.asarray(x)
    return np.cumprod(x, axis=axis, dtype=x.dtype)


def _cumprod_code(out, ins, in_avals, out_aval, lit, axis):
    (x,), shape = ins, out_aval.shape
    dt = np.dtype(out_aval.dtype).name
    idx = [f"i{d}" if d != axis else "k_" for d in range(len(shape))]
    lines = [f"{out} = np.empty({shape}, np.{dt})"]
    indent = ""
    for d in range(len(shape)):
        if d != axis:
            lines.append(f"{indent}for i{d} in range({shape[d]}):")
            indent += "    "
    at = ", ".join(idx)
    lines += [f"{indent}acc_ = {lit(1)}",
              f"{indent}for k_ in range({shape[axis]}):",
              f"{indent}    acc_ *= {x}[{at}]",
              f"{indent}    {out}[{at}] = acc_"]
    return lines


def _cumprod_jvp(primals, tangents, out, axis):
    # dy_i = sum_{j<=i} dx_j prod_{k<=i, k!=j} x_k.  With Q_i the running
    # product of the non-zero x (zeros counted as 1), v the tangent and c_i the
    # number of zeros up to i, that is exactly, as a function of x near x:
    #   c_i = 0:  Q_i sum_j v_j / x_j
    #   c_i = 1:  Q_i (v_z + x_z sum_{j != z} v_j / x_j)        (z the zero)
    #   c_i = 2:  Q_i (v_z1 x_z2 + v_z2 x_z1) + O(x_z1 x_z2)
    #   c_i > 2:  0 + O(x^2) in the zeros
    # so the tangent is right at zeros and so is its derivative (second order).
    (x,), (v,) = primals, tangents
    if v is None:
        return None
    dt = aval_of(x).dtype
    zero = eq(x, 0.0)
    z = convert(zero, dt)
    safe = select(zero, full(aval_of(x).shape, 1, dt), x)
    q = cumprod(safe, axis)
    c = cumsum(z, axis)
    ratio = cumsum(div(mul(v, sub(1.0, z)), safe), axis)      # sum over non-zeros of v_j / x_j
    vz, xz, vxz = (cumsum(mul(a, z), axis) for a in (v, x, mul(v, x)))
    none = mul(q, ratio)
    one = mul(q, add(vz, mul(xz, ratio)))
    two = mul(q, sub(mul(vz, xz), vxz))        # sum over pairs of distinct zeros of v_a x_b
    zeros = full(aval_of(x).shape, 0, dt)
    return select(eq(c, 0.0), none, select(eq(c, 1.0), one, select(eq(c, 2.0), two, zeros)))


cumprod_p.impl = _cumprod_impl
cumprod_p.shape = lambda x, axis: Aval(tuple(x.shape), x.dtype)
cumprod_p.jvp = _cumprod_jvp
cumprod_p.code = _cumprod_code
cumprod_p.batch = lambda args, batched, size, axis: cumprod(args[0], axis + 1)


def cumprod(x, axis):
    return bind(cumprod_p, x, axis=int(axis))


# ---------------------------------------------------------------------------
# tie_mean: the identity on values sorted along their last axis, whose tangent
# at each position is the mean of the tangents of the positions that hold the
# same value.  Where two values tie, that is the symmetric derivative of each
# order statistic (a central difference sees the mean), and it does not depend
# on which of the tied elements the sort put first.  The value costs a copy.


def _tie_groups(s):
    """Per position of s (rows, n): its run of equal values, numbered uniquely
    over all rows (run numbers of row r start at r * n)."""
    rows, n = s.shape
    new = concatenate([full((rows, 1), True, np.bool_),
                       ne(slice_(s, (0, 1), (rows, n), (1, 1)), slice_(s, (0, 0), (rows, n - 1), (1, 1)))],
                      1)
    group = sub(cumsum(convert(new, np.int64), 1), 1)
    return add(group, broadcast_in_dim(np.arange(rows, dtype=np.int64) * n, (rows, n), (0,)))


def _tie_mean_jvp(primals, tangents, out):
    (s,), (t,) = primals, tangents
    shape = aval_of(s).shape
    if t is None or not shape or shape[-1] < 2 or 0 in shape:
        return t
    n = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    group = _tie_groups(reshape(s, (rows, n)))
    flat = reshape(group, (rows * n,))
    total = scatter_add(reshape(t, (rows * n,)), flat, rows * n)
    count = scatter_add(full((rows * n,), 1, aval_of(t).dtype), flat, rows * n)
    return reshape(div(gather(total, group), gather(count, group)), shape)


tie_mean_p = _unary("tie_mean", lambda s: np.array(s, copy=True), "{0}", _tie_mean_jvp)


def tie_mean(s):
    return bind(tie_mean_p, s)
