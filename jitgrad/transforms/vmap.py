"""Batching (vmap) as an IR -> IR transform.

``vmap_ir(ir, batched, size)`` returns an IR whose batched inputs carry an
extra leading axis of length ``size``; every output carries it too.  Each
primitive's rule receives its operands with a flag per operand saying whether
it is batched (always along axis 0) and returns the batched result.  This is
what lets a Jacobian evaluate all its directions in one compiled call.
"""
from __future__ import annotations

import numpy as np

from ..lax.structural import with_batch_axis
from ..core.trace import Tracer, aval_of, at_line, bind, new_trace
from ..core.ir import IR, Lit


def _lit_value(a):
    return np.asarray(a.value, a.dtype)[()]


def batch_rule(prim):
    return prim.rule("batch")


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
    env = dict(zip(ir.constvars, ir.consts))
    is_b = {}
    for v, x, b in zip(ir.invars, args, batched):
        env[v] = x
        is_b[v] = b

    def read(a):
        return _lit_value(a) if isinstance(a, Lit) else env[a]

    def flag(a):
        return False if isinstance(a, Lit) else is_b.get(a, False)

    for e in ir.eqns:
        ins = [read(a) for a in e.inputs]
        flags = [flag(a) for a in e.inputs]
        with at_line(e.where):
            if any(flags):
                out = batch_rule(e.prim)(ins, flags, size, **e.params)
            else:
                out = bind(e.prim, *ins, **e.params)
        env[e.outputs[0]] = out
        is_b[e.outputs[0]] = any(flags)
    return [read(v) for v in ir.outvars], [flag(v) for v in ir.outvars]
