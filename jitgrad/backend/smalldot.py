"""Products without a sum, written as loops instead of BLAS calls.

A ``dot_general`` whose contracted axes hold one element (an outer product
``v[:, None] @ w[None, :]``, which reverse mode makes out of every
matrix-vector product: the weight's gradient) multiplies each pair of
entries once.  Through BLAS (a rank-1 ``gemm``) a 32 x 32 one costs about
520 ns here, most of it the call; as a loop nest it is a multiply per
element.  Each element is one rounded product either way, so the values are
the same bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from . import tripcount


def applies(e):
    """Whether the ``dot_general`` equation ``e`` is written by :func:`lines`:
    floating-point operands of the result's dtype, neither 0-d, and
    contracted axes of one element in all."""
    (x, y), out = e.inputs, e.outputs[0]
    (xc, _), _ = e.params["contract"], e.params["batch"]
    dtypes = {np.dtype(a.aval.dtype) for a in (x, y, out)}
    return (len(dtypes) == 1 and dtypes.pop().kind == "f" and x.aval.shape != () and y.aval.shape != ()
            and math.prod(x.aval.shape[i] for i in xc) == 1)


def lines(out, ins, in_avals, out_aval, contract, batch):
    """The loop nest filling ``out`` (a new array) with the product of the
    operand names ``ins``: output axes are (batch, x's free, y's free), as
    for ``dot_general``."""
    (xa, ya), (xc, yc), (xb, yb) = in_avals, contract, batch
    shape = out_aval.shape
    idx = [f"i{d}" for d in range(len(shape))]
    free = lambda aval, c, b: [d for d in range(aval.ndim) if d not in c and d not in b]
    xf, yf = free(xa, xc, xb), free(ya, yc, yb)
    x_at, y_at = ["0"] * xa.ndim, ["0"] * ya.ndim
    for k, (dx, dy) in enumerate(zip(xb, yb)):
        x_at[dx] = y_at[dy] = idx[k]
    for k, d in enumerate(xf):
        x_at[d] = idx[len(xb) + k]
    for k, d in enumerate(yf):
        y_at[d] = idx[len(xb) + len(xf) + k]
    body = f"{out}[{', '.join(idx)}] = {ins[0]}[{', '.join(x_at)}] * {ins[1]}[{', '.join(y_at)}]"
    if not shape:
        return [f"{out} = {ins[0]}[{', '.join(x_at)}] * {ins[1]}[{', '.join(y_at)}]"]
    code = [f"{out} = lc.empty({shape}, np.{np.dtype(out_aval.dtype).name})"]
    for d, n in enumerate(shape):
        extent = f"_n({n})" if d == len(shape) - 1 and 4 <= n < tripcount.TINY else f"{n}"
        code.append("    " * d + f"for {idx[d]} in range({extent}):")
    return code + ["    " * len(shape) + body]
