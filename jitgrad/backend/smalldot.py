"""Products without a sum, computed in the loops that read them.

A ``dot_general`` whose contracted axes hold one element (an outer product
``v[:, None] @ w[None, :]``, which reverse mode makes out of every
matrix-vector product: the weight's gradient) multiplies each pair of
entries once.  Through BLAS (a rank-1 ``gemm``) a 32 x 32 one costs about
520 ns here, most of it the call, and its result is an array that the loop
adding it to the gradient reads back.  Written as an elementwise product of
two broadcasts, it is a multiply inside that loop.  Each element is one
rounded product either way, added to zero (so -0.0 becomes +0.0, as in a
sum), so the values are the same bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.ir import IR, Aval, Eqn, Lit, Var
from ..core.primitive import PRIMITIVES


def applies(e):
    """Whether ``e`` is such a product: a ``dot_general`` of floating-point
    operands of the result's dtype, neither 0-d, the result not 0-d, with
    contracted axes of one element in all."""
    if e.prim.name != "dot_general":
        return False
    (x, y), out = e.inputs, e.outputs[0]
    if not all(isinstance(a, Var) for a in (x, y)):
        return False
    xc = e.params["contract"][0]
    dtypes = {np.dtype(a.aval.dtype) for a in (x, y, out)}
    return (len(dtypes) == 1 and dtypes.pop().kind == "f" and x.aval.shape != () and y.aval.shape != ()
            and out.aval.shape != () and math.prod(x.aval.shape[i] for i in xc) == 1)


def _dims(aval, contract, batch, free_at):
    """Where each axis of an operand goes in the result: batch axis k to k,
    its free axes from ``free_at`` on, and a contracted axis (one element,
    read at index 0 whatever index it gets) to axis 0."""
    dims, k = [], free_at
    for d in range(aval.ndim):
        if d in batch:
            dims.append(batch.index(d))
        elif d in contract:
            dims.append(0)
        else:
            dims.append(k)
            k += 1
    return tuple(dims), k


def rewrite(ir: IR) -> IR:
    """``ir`` with every such product as ``mul(broadcast(x), broadcast(y)) + 0.0``
    (the same output variables; the IR itself is not changed).  Only the
    backend sees the result: it exists to be fused, not evaluated."""
    if not any(applies(e) for e in ir.eqns):
        return ir
    eqns = []
    for e in ir.eqns:
        if not applies(e):
            eqns.append(e)
            continue
        (x, y), out = e.inputs, e.outputs[0]
        (xc, yc), (xb, yb) = e.params["contract"], e.params["batch"]
        xd, n = _dims(x.aval, list(xc), list(xb), len(xb))
        yd, _ = _dims(y.aval, list(yc), list(yb), n)
        wide = []
        for a, dims in ((x, xd), (y, yd)):
            b = Var(Aval(out.aval.shape, out.aval.dtype))
            eqns.append(Eqn(PRIMITIVES["broadcast_in_dim"], [a], [b], {"shape": out.aval.shape, "dims": dims}, e.where))
            wide.append(b)
        # + 0.0: a product's -0.0 is +0.0 in a sum that starts at zero, as BLAS's
        prod = Var(out.aval)
        eqns.append(Eqn(PRIMITIVES["mul"], wide, [prod], {}, e.where))
        eqns.append(Eqn(PRIMITIVES["add"], [prod, Lit(0.0, np.dtype(out.aval.dtype))], [out], {}, e.where))
    return IR(ir.invars, ir.constvars, ir.consts, eqns, ir.outvars)
