"""Branches that run one side only: the ``cond`` primitive and its rules.

``cond``  operands ``index, operands...``; parameter ``branches``, a tuple of
          closed sub-IRs (see :mod:`jitgrad.transforms.subir`) that all take
          the operands and give outputs of the same avals.  The output is
          ``branches[clip(index, 0, n - 1)](*operands)``; the other branches
          are not run, so a branch may do what would fail on the other side's
          values (a square root of a negative number, an index out of range).

A ``cond`` with a single branch is a checkpoint (``jitgrad.checkpoint``): in
reverse mode its primal outputs are computed without keeping any of its
intermediates, and the linear part recomputes them.  Every ``cond`` works so:
``partial_eval`` splits a branch reading tangents into the primal branch and
a branch that recomputes the primal values beside the tangents; the transpose
of the latter is a ``cond`` over the transposed branches.  The residuals are
the operands, which exist anyway.

Under ``vmap`` with a batched index every branch runs on all elements and
``select`` picks each element's result (as a batched ``if`` must).
"""
from __future__ import annotations

import numpy as np

from .. import lax as P
from ..core.ir import IR, Eqn, Var
from ..core.primitive import Primitive, Undefined
from ..core.trace import aval_of, bind, eval_ir, new_trace
from .autodiff import backward, jvp_ir
from .subir import close, depends, inexact, primal_sub, sub
from .vmap import vmap_ir

cond_p = Primitive("cond", "control")
cond_p.multiple_results = True


def _cond_shape(index, *avals, branches):
    return [v.aval for v in branches[0].outvars]


def _pick(index, n):
    return int(min(max(int(index), 0), n - 1))


def _cond_impl(index, *args, branches):
    out = eval_ir(branches[_pick(index, len(branches))], list(args))
    return [np.asarray(o)[()] if np.ndim(o) == 0 else o for o in out]


def bind_cond(index, branches, operands):
    """Bind ``cond`` over ``(ir, consts)`` pairs: each branch takes every
    branch's constants (its own are the ones it reads) before the operands."""
    consts = [c for _, cs in branches for c in cs]
    irs = []
    for k, (ir, cs) in enumerate(branches):
        pad = [[Var(aval_of(c)) for c in bcs] for j, (_, bcs) in enumerate(branches) if j != k]
        before = [v for p in pad[:k] for v in p]
        after = [v for p in pad[k:] for v in p]
        n = len(cs)
        irs.append(IR(before + ir.invars[:n] + after + ir.invars[n:], [], [], ir.eqns, ir.outvars))
    return bind(cond_p, index, *consts, *operands, branches=tuple(irs))


def _cond_jvp(primals, tangents, branches):
    index, ops = primals[0], primals[1:]
    flags = [t is not None for t in tangents[1:]]
    which = [i for i, f in enumerate(flags) if f]
    out_nz = [any(col) for col in zip(*[depends(b, flags) for b in branches])]
    out_nz = [f and inexact(v.aval) for f, v in zip(out_nz, branches[0].outvars)]
    pairs = []
    for b in branches:
        jb = jvp_ir(b, which)
        n = len(b.outvars)
        outs = jb.outvars[:n] + [t for t, f in zip(jb.outvars[n:], out_nz) if f]
        pairs.append(close(IR(jb.invars, jb.constvars, jb.consts, jb.eqns, outs)))
    outs = bind_cond(index, pairs, list(ops) + [t for t in tangents[1:] if t is not None])
    n = len(branches[0].outvars)
    t_iter = iter(outs[n:])
    return outs[:n], [next(t_iter) if f else None for f in out_nz]


def _cond_partial(e, linear):
    """Primal branches for the outputs that read no tangent; the rest, with
    the primal values they need recomputed, in a cond of their own (whose
    operands, the residuals, are the cond's own operands)."""
    branches = e.params["branches"]
    flags = list(linear[1:])
    lin_out = [any(col) for col in zip(*[depends(b, flags) for b in branches])]
    p_out = [j for j, f in enumerate(lin_out) if not f]
    l_out = [j for j, f in enumerate(lin_out) if f]
    keep = [i for i, f in enumerate(flags) if not f]
    primal = Eqn(cond_p, [e.inputs[0]] + [e.inputs[1 + i] for i in keep], [e.outputs[j] for j in p_out],
                 {"branches": tuple(primal_sub(b, flags, [b.outvars[j] for j in p_out])
                                    for b in branches)}, e.where)
    lin = Eqn(cond_p, e.inputs, [e.outputs[j] for j in l_out],
              {"branches": tuple(sub(b, b.invars, [b.outvars[j] for j in l_out]) for b in branches)},
              e.where)
    return ([primal] if p_out else []), [lin]


def _cond_transpose(cts, index, *args, branches):
    outs = branches[0].outvars
    cts = [c if c is not None else P.zeros(v.aval) for c, v in zip(cts, outs)]
    known = [i for i, a in enumerate(args) if not isinstance(a, Undefined)]
    lin = [i for i, a in enumerate(args) if isinstance(a, Undefined)]
    pairs = []
    for b in branches:
        with new_trace() as tr:
            k = {i: tr.new_arg(b.invars[i].aval) for i in known}
            c = [tr.new_arg(v.aval) for v in outs]
            got = backward(b, [k.get(i, Undefined(b.invars[i].aval)) for i in range(len(args))], c)
            pairs.append(close(tr.to_ir(got)))
    res = bind_cond(index, pairs, [args[i] for i in known] + cts)
    out = dict(zip(lin, res))
    return [None] + [out.get(i) for i in range(len(args))]


def _cond_batch(args, batched, size, branches):
    index, ops = args[0], args[1:]
    vb = [vmap_ir(b, batched[1:], size) for b in branches]
    if not batched[0]:
        return bind_cond(index, [close(b) for b in vb], ops)
    # a batched index: run every branch, pick per element
    results = [eval_ir(b, list(ops)) for b in vb]
    n = len(branches)
    index = P.convert(index, np.dtype(np.int64))
    picked = results[0]
    for k in range(1, n):
        take = (P.ge if k == n - 1 else P.eq)(index, np.int64(k))
        picked = [P.select(P.broadcast_in_dim(take, aval_of(r).shape, (0,)), r, p)
                  for r, p in zip(results[k], picked)]
    return picked


def _cond_code(outs, ins, in_avals, out_avals, function, branches):
    index, args = ins[0], ins[1:]
    n = len(branches)
    if n == 1:
        return function(branches[0]).call(outs, args)
    lines = [f"_k = min(max({index}, 0), {n - 1})"]
    for k, b in enumerate(branches):
        head = "if" if k == 0 else "elif" if k < n - 1 else "else"
        lines.append(f"{head} _k == {k}:" if head != "else" else "else:")
        lines += ["    " + line for line in function(b).call(outs, args)]
    return lines


def _cond_depends(flags, branches):
    if flags[0]:                            # the index: every output
        return [True] * len(branches[0].outvars)
    return [any(col) for col in zip(*[depends(b, flags[1:]) for b in branches])]


cond_p.shape = _cond_shape
cond_p.depends = _cond_depends
cond_p.code = _cond_code
cond_p.impl = _cond_impl
cond_p.jvp = _cond_jvp
cond_p.partial_eval = _cond_partial
cond_p.transpose = _cond_transpose
cond_p.batch = _cond_batch
