"""Sub-IRs: the bodies and branches that control-flow equations hold.

Invariant: the sub-IR in a control-flow equation's parameters is *closed* and
*lowered*.  Closed: it has no constants; what it reads from outside (arrays
captured by the user's function, traced values of the enclosing function)
are its leading inputs, and the equation passes them as operands.  Lowered:
custom-rule calls are inlined and the clean-up passes have run.  So every
transform sees all of a body's data flow in its operands, and the code
generator can emit a body as a function of its arguments alone.
"""
from __future__ import annotations

import numpy as np

from ..core.ir import IR, Var
from ..core.trace import new_trace
from .passes import dce, lower


def trace_closed(fn, in_avals):
    """Trace ``fn`` (flat list of arrays -> flat list of arrays) on ``in_avals``.

    Returns ``(ir, consts)``: ``ir`` is closed and lowered and takes
    ``consts`` (the arrays and outer traced values ``fn`` read) before the
    ``in_avals`` inputs."""
    with new_trace() as tr:
        ir = tr.to_ir(fn(*[tr.new_arg(av) for av in in_avals]))
    return close(ir)


def close(ir: IR):
    """``(closed lowered ir, consts)``: the constants of ``ir`` become its
    leading inputs (see the module docs)."""
    ir = lower(ir)
    if not ir.constvars:
        return ir, []
    return IR(list(ir.constvars) + list(ir.invars), [], [], ir.eqns, ir.outvars), list(ir.consts)


def depends(ir: IR, flags):
    """For each output of ``ir``: does it depend on an input flagged in ``flags``?"""
    dep = {v for v, f in zip(ir.invars, flags) if f}
    for e in ir.eqns:
        read = [isinstance(a, Var) and a in dep for a in e.inputs]
        if not any(read):
            continue
        if e.prim.depends is None:
            dep.update(e.outputs)
        else:                   # control flow: through its sub-IRs
            dep.update(v for v, d in zip(e.outputs, e.prim.depends(read, **e.params)) if d)
    return [isinstance(v, Var) and v in dep for v in ir.outvars]


def inexact(aval):
    """Does a value of this aval carry a tangent (floating point)?"""
    return np.issubdtype(aval.dtype, np.inexact)


def carry_fixpoint(body, flags, first, n, floating=True):
    """Which of the ``n`` loop carries starting at input ``first`` (the carry
    outputs are the first ``n`` outputs) end up flagged: a carry is flagged if
    its initial value is, or if one step makes it depend on a flagged value.
    Returns the input flags with the carries' settled (with ``floating``,
    only floating carries, the ones with tangents, can become flagged)."""
    flags = list(flags)
    while True:
        out = depends(body, flags)
        changed = False
        for k in range(n):
            if out[k] and not flags[first + k] and (not floating or inexact(body.invars[first + k].aval)):
                flags[first + k] = changed = True
        if not changed:
            return flags


def sub(ir: IR, invars, outvars) -> IR:
    """``ir`` restricted to the given inputs and outputs (equations nothing
    needs dropped).  Every equation still needed must read only ``invars``."""
    out = dce(IR(invars, [], [], ir.eqns, outvars))
    known = set(invars)
    for e in out.eqns:
        for a in e.inputs:
            if isinstance(a, Var) and a not in known:
                raise ValueError(f"sub-IR: {e.prim.name} reads a value outside the kept inputs")
        known.update(e.outputs)
    return out

