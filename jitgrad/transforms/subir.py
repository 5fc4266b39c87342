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
from .autodiff import split_linear
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
    """For each output of ``ir``: does it depend on an input flagged in ``flags``?

    A control-flow equation answers per output (its ``depends`` rule): the
    primal outputs of a loop or branch that also computes tangents must not
    count as depending on the tangents, or reverse mode would take primal
    values for linear ones."""
    dep = {v for v, f in zip(ir.invars, flags) if f}
    for e in ir.eqns:
        into = [isinstance(a, Var) and a in dep for a in e.inputs]
        if not any(into):
            continue
        if e.prim.depends is None:
            dep.update(e.outputs)
        else:
            dep.update(o for o, f in zip(e.outputs, e.prim.depends(into, **e.params)) if f)
    return [isinstance(v, Var) and v in dep for v in ir.outvars]


def inexact(aval):
    """Does a value of this aval carry a tangent (floating point)?"""
    return np.issubdtype(aval.dtype, np.inexact)


def carry_fixpoint(body, flags, first, n, floating_only=True):
    """Which of the ``n`` loop carries starting at input ``first`` (the carry
    outputs are the first ``n`` outputs) end up flagged: a carry is flagged if
    its initial value is, or if one step makes it depend on a flagged value.
    Returns the input flags with the carries' settled (floating carries only,
    unless ``floating_only`` is false)."""
    flags = list(flags)
    while True:
        out = depends(body, flags)
        changed = False
        for k in range(n):
            if out[k] and not flags[first + k] and (not floating_only or
                                                    inexact(body.invars[first + k].aval)):
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



def primal_sub(ir: IR, flags, outvars) -> IR:
    """``ir`` restricted to its inputs not flagged in ``flags`` and to
    ``outvars``, which must not depend on the flagged inputs.  Unlike
    :func:`sub`, an equation may read both kinds: a control-flow equation
    that does (a loop computing primal and tangent carries together, nested
    in the body being split) is split by its ``partial_eval`` rule, and its
    primal part kept."""
    primal_eqns, _, _ = split_linear(ir.eqns, [v for v, f in zip(ir.invars, flags) if f])
    return sub(IR(ir.invars, [], [], primal_eqns, ir.outvars),
               [v for v, f in zip(ir.invars, flags) if not f], outvars)
