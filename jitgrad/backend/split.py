"""Splitting a long straight-line IR into functions of bounded size.

Numba's compile time grows faster than linearly with the size of one
function (its SSA reconstruction and LLVM's passes work on the whole of it),
so an unrolled Python loop of thousands of equations would take minutes and
gigabytes to compile as one function.  Cut into consecutive pieces of at most
``MAX_EQNS`` equations, each compiled as a function of its own that the
program's function calls in turn, the time and memory grow linearly with the
program.  Values that cross a cut become arrays passed between the pieces;
fusion stops at the cuts, which costs little beside the calls' size.
"""
from __future__ import annotations

from ..core.ir import IR, Eqn, Var

MAX_EQNS = 150
# A loop body or branch is cut only past this many.  Its values that cross a
# cut are stored into arrays at every step, and a loop storing many arrays
# does not vectorise (LLVM checks every pair of them for overlap, and gives up
# past a few); one function compiles the body of GradBench's LSTM gradient
# (218 equations) faster than its two pieces did (8.4 s against 13.1 s CPU
# for the whole program) and runs its steps 20% faster.
BODY_MAX_EQNS = 400


def pieces(ir: IR, max_eqns=None):
    """The pieces of ``ir``, in order, as ``(piece, reads, writes)``: ``piece``
    is a closed IR of at most ``max_eqns`` equations whose inputs are the
    variables ``reads`` of ``ir`` (inputs, constants, earlier pieces' values)
    and whose outputs are the values ``writes`` that later pieces or the
    outputs read.  None when ``ir`` is short enough to stay whole (``max_eqns``
    defaults to :data:`MAX_EQNS`)."""
    max_eqns = MAX_EQNS if max_eqns is None else max_eqns
    if len(ir.eqns) <= max_eqns:
        return None
    cut = [ir.eqns[i:i + max_eqns] for i in range(0, len(ir.eqns), max_eqns)]
    needed_later = [set() for _ in cut]       # per piece: vars read after it
    later = {v for v in ir.outvars if isinstance(v, Var)}
    for k in range(len(cut) - 1, -1, -1):
        needed_later[k] = set(later)
        for e in cut[k]:
            later.update(a for a in e.inputs if isinstance(a, Var))
    out = []
    for k, piece in enumerate(cut):
        defined, reads = set(), []
        for e in piece:
            for a in e.inputs:
                if isinstance(a, Var) and a not in defined and a not in reads:
                    reads.append(a)
            defined.update(e.outputs)
        outs = [v for e in piece for v in e.outputs if v in needed_later[k]]
        if not outs:
            continue
        inner = {v: Var(v.aval) for v in reads}
        inner.update({v: Var(v.aval) for v in defined})
        body = IR([inner[v] for v in reads], [], [],
                  [Eqn(e.prim, [inner.get(a, a) if isinstance(a, Var) else a for a in e.inputs],
                       [inner[v] for v in e.outputs], e.params, e.where) for e in piece],
                  [inner[v] for v in outs])
        out.append((body, reads, outs))
    return out
