"""Clean-up passes run after every transform: simplification and constant
folding, common-subexpression elimination, dead-code elimination."""
from __future__ import annotations

import numpy as np

from .custom import inline_calls
from ..core.ir import IR, Eqn, Lit, Var


def optimize(ir: IR) -> IR:
    return dce(cse(simplify(ir)))


def lower(ir: IR) -> IR:
    """The IR an executable receives: custom-rule calls inlined, then cleaned.

    Every transformation of an IR happens here, on the caller's thread, before
    the IR reaches the backend: a background compile only generates code from
    it and never traces (tracing state is per thread, and a compile thread
    that traced would need a trace of its own for no reason)."""
    return optimize(inline_calls(ir))


def _zero_is_identity(zero, out, sub=False):
    """Is ``a + zero`` (``a - zero`` with ``sub``) ``a`` for every ``a``, the
    zero a literal or an array of one?  Always in integer arithmetic; in IEEE
    arithmetic only for a + (-0.0) and a - (+0.0), as -0.0 + 0.0 is 0.0."""
    if np.dtype(out.aval.dtype).kind in "biu":
        return True
    return not isinstance(zero, Var) and bool(np.signbit(np.asarray(zero.value).real)) != sub


def simplify(ir: IR) -> IR:
    """Algebraic identities that hold in IEEE arithmetic, and folding of
    equations whose operands are all scalar literals."""
    sub = {}
    neg_of = {}   # y -> x for y = neg x, so that neg(neg(x)) is x
    lit_of = {}   # y -> c for y = broadcast_in_dim c, a literal filling an array
    eqns = []

    def r(a):
        return sub.get(a, a) if isinstance(a, Var) else a

    def _is_lit(a, value=None):
        a = lit_of.get(a, a) if isinstance(a, Var) else a
        return isinstance(a, Lit) and (value is None or a.value == value)

    for e in ir.eqns:
        ins = [r(a) for a in e.inputs]
        out = e.outputs[0]
        name = e.prim.name
        same = None
        if name == "mul":
            x, y = ins
            if _is_lit(y, 1) and x.aval.shape == out.aval.shape and x.aval.dtype == out.aval.dtype:
                same = x
            elif _is_lit(x, 1) and y.aval.shape == out.aval.shape and y.aval.dtype == out.aval.dtype:
                same = y
        elif name in ("add", "sub"):
            x, y = ins
            if _is_lit(y, 0) and x.aval.shape == out.aval.shape and _zero_is_identity(y, out, name == "sub"):
                same = x
            elif name == "add" and _is_lit(x, 0) and y.aval.shape == out.aval.shape and _zero_is_identity(x, out):
                same = y
        elif name == "div" and _is_lit(ins[1], 1) and ins[0].aval.shape == out.aval.shape:
            same = ins[0]
        elif name == "neg" and isinstance(ins[0], Var) and ins[0] in neg_of:
            same = neg_of[ins[0]]
        elif name == "convert" and ins[0].aval.dtype == out.aval.dtype:
            same = ins[0]
        if same is None and e.prim.kind == "elementwise" and all(_is_lit(a) for a in ins):
            # fold: every operand is a literal (or an array filled with one)
            vals = [lit_of.get(a, a) if isinstance(a, Var) else a for a in ins]
            val = np.asarray(e.prim.impl(*[np.asarray(a.value, a.dtype)[()] for a in vals], **e.params))
            folded = Lit(val.item(), val.dtype)
            if out.aval.shape == ():
                same = folded
            else:
                eqns.append(Eqn(_broadcast_prim(), [folded], e.outputs,
                                {"shape": out.aval.shape, "dims": ()}, e.where))
                lit_of[out] = folded
                continue
        if same is not None:
            sub[out] = same
            continue
        if name == "neg" and isinstance(ins[0], Var):
            neg_of[out] = ins[0]
        if name == "broadcast_in_dim" and isinstance(ins[0], Lit):
            lit_of[out] = ins[0]
        eqns.append(Eqn(e.prim, ins, e.outputs, e.params, e.where))
    return IR(ir.invars, ir.constvars, ir.consts, eqns, [r(v) for v in ir.outvars])



def cse(ir: IR) -> IR:
    """Merge equations with the same primitive, operands and parameters."""
    seen = {}
    sub = {}
    eqns = []

    def r(a):
        return sub.get(a, a) if isinstance(a, Var) else a

    def key_of(a):
        return ("v", a.id) if isinstance(a, Var) else ("l", a.value, np.dtype(a.dtype).str)

    for e in ir.eqns:
        ins = [r(a) for a in e.inputs]
        key = (e.prim.name, tuple(key_of(a) for a in ins), tuple(sorted(e.params.items())))
        prev = seen.get(key)
        if prev is not None:
            for v, w in zip(e.outputs, prev.outputs):
                sub[v] = w
            continue
        e2 = Eqn(e.prim, ins, e.outputs, e.params, e.where)
        seen[key] = e2
        eqns.append(e2)
    return IR(ir.invars, ir.constvars, ir.consts, eqns, [r(v) for v in ir.outvars])


def dce(ir: IR) -> IR:
    """Drop equations whose outputs are never used, and unused constants."""
    live = {v for v in ir.outvars if isinstance(v, Var)}
    kept = []
    for e in reversed(ir.eqns):
        if any(v in live for v in e.outputs):
            if e.prim.prune is not None and not all(v in live for v in e.outputs):
                e = e.prim.prune(e, live)
            kept.append(e)
            live.update(a for a in e.inputs if isinstance(a, Var))
    kept.reverse()
    consts = [(v, c) for v, c in zip(ir.constvars, ir.consts) if v in live]
    return IR(ir.invars, [v for v, _ in consts], [c for _, c in consts], kept, ir.outvars)


def _broadcast_prim():
    from ..lax.structural import broadcast_in_dim_p
    return broadcast_in_dim_p
