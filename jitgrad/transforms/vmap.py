"""Batching (vmap) as an IR -> IR transform.

``vmap_ir(ir, batched, size)`` returns an IR whose batched inputs carry an
extra leading axis of length ``size``; every output carries it too.  Each
primitive's rule receives its operands with a flag per operand saying whether
it is batched (always along axis 0) and returns the batched result.  This is
what lets a Jacobian evaluate all its directions in one compiled call.
"""
from __future__ import annotations

from ..lax.structural import with_batch_axis
from ..core.trace import bind, new_trace, walk
from ..core.ir import IR


def vmap_ir(ir: IR, batched, size) -> IR:
    """Batch ``ir`` along a new leading axis of length ``size`` for the inputs
    flagged in ``batched``; every output is batched."""
    with new_trace() as tr:
        args = []
        for v, b in zip(ir.invars, batched):
            shape = ((size,) if b else ()) + v.aval.shape
            args.append(tr.new_arg(type(v.aval)(shape, v.aval.dtype)))
        outs, out_b = vmap_eval(ir, args, batched, size)
        outs = [o if b else with_batch_axis(o, size) for o, b in zip(outs, out_b)]
        return tr.to_ir(outs)


def vmap_eval(ir, args, batched, size):
    """Evaluate ``ir`` on ``args`` (``batched[i]``: whether ``args[i]`` has the
    leading batch axis); return the outputs and whether each is batched."""
    def rule(e, ins):
        values = [x for x, _ in ins]
        flags = [b for _, b in ins]
        if any(flags):
            out, b = e.prim.rule("batch")(values, flags, size, **e.params), True
        else:
            out, b = bind(e.prim, *values, **e.params), False
        return [(o, b) for o in out] if e.prim.multiple_results else (out, b)

    outs = walk(ir, list(zip(args, batched)), rule, [(c, False) for c in ir.consts], lift=_unbatched)
    return [x for x, _ in outs], [b for _, b in outs]


def _unbatched(x):
    return x, False
