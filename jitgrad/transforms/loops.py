"""Loops that stay loops: the ``scan`` and ``while`` primitives and their rules.

``scan``  operands ``consts..., init..., xs...``; parameters ``body`` (a closed
          sub-IR ``(consts..., carry..., x_t...) -> (carry..., y_t...)``),
          ``n_consts``, ``n_carry``, ``length``, ``reverse``.  Outputs: the
          final carries, then each ``y`` stacked along a new leading axis of
          ``length``.  Step ``t`` reads ``xs[t]`` and writes ``ys[t]``; with
          ``reverse`` the steps run from ``length - 1`` down to 0.
``while`` operands ``cond_consts..., body_consts..., init...``; parameters
          ``cond`` (``(cond_consts..., carry...) -> bool``), ``body``
          (``(body_consts..., carry...) -> carry...``), ``n_cond``, ``n_body``.

Differentiation (see :mod:`jitgrad.transforms.autodiff`): forward mode runs a
loop over (primal, tangent) carries; only the carries whose tangent can be
nonzero get one (a fixpoint over the body's data flow).  Reverse mode splits
that loop (``partial_eval``) into a primal loop that also stores the primal
carry of every step, and a loop linear in the tangents that recomputes each
step from its stored carry.  The transpose of the linear loop runs the
transposed step backwards over the stored carries.  So reverse mode keeps one
carry per step, not every intermediate of the step, and its code is a loop
whatever the trip count.
"""
from __future__ import annotations

import numpy as np

from .. import lax as P
from ..core.errors import JitgradError
from ..core.ir import IR, Aval, Eqn, Var
from ..core.primitive import Primitive, Undefined
from ..core.trace import aval_of, bind, eval_ir, new_trace
from .autodiff import backward, jvp_ir
from .subir import carry_fixpoint, close, depends, inexact, primal_sub, sub
from .vmap import vmap_ir
from ..lax.structural import with_batch_axis


def _split(seq, *sizes):
    out, i = [], 0
    for n in sizes:
        out.append(list(seq[i:i + n]))
        i += n
    out.append(list(seq[i:]))
    return out


def _second_axis_first(ndim):
    return (1, 0) + tuple(range(2, ndim))


def _value(x):
    """An interpreter value as the IR's convention has it (0-d: a NumPy scalar)."""
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


# ---------------------------------------------------------------------------
# scan


scan_p = Primitive("scan", "control")
scan_p.multiple_results = True


def _scan_shape(*avals, body, n_consts, n_carry, length, reverse):
    ys = [Aval((length,) + tuple(v.aval.shape), v.aval.dtype) for v in body.outvars[n_carry:]]
    return list(avals[n_consts:n_consts + n_carry]) + ys


def _scan_impl(*args, body, n_consts, n_carry, length, reverse):
    consts, carry, xs = _split(args, n_consts, n_carry)
    ys = [np.empty((length,) + tuple(v.aval.shape), v.aval.dtype) for v in body.outvars[n_carry:]]
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = eval_ir(body, consts + carry + [x[t] for x in xs])
        carry = [_value(c) for c in outs[:n_carry]]
        for y, v in zip(ys, outs[n_carry:]):
            y[t] = v
    return carry + ys


def bind_scan(body, consts, init, xs, length, reverse):
    """Bind a scan of the closed sub-IR ``body`` (see :func:`close`), whose
    own constants ``body_consts`` lead ``consts``."""
    return bind(scan_p, *consts, *init, *xs, body=body, n_consts=len(consts), n_carry=len(init),
                length=length, reverse=reverse)


def _reorder(ir, groups_in, outvars):
    """``ir`` with its inputs regrouped (a flat concatenation of ``groups_in``)
    and the given outputs, closed: returns ``(ir, its constants)``."""
    invars = [v for g in groups_in for v in g]
    return close(IR(invars, ir.constvars, ir.consts, ir.eqns, outvars))


def _scan_jvp(primals, tangents, body, n_consts, n_carry, length, reverse):
    nc, nk = n_consts, n_carry
    flags = [t is not None for t in tangents]
    flags = carry_fixpoint(body, flags, nc, nk)
    which = [i for i, f in enumerate(flags) if f]
    out_nz = [d and inexact(v.aval) for d, v in zip(depends(body, flags), body.outvars)]
    out_nz[:nk] = flags[nc:nc + nk]
    jb = jvp_ir(body, which)
    n_in, n_out = len(body.invars), len(body.outvars)
    tin = dict(zip(which, jb.invars[n_in:]))
    p_c, p_k, p_x = _split(jb.invars[:n_in], nc, nk)
    t_c, t_k, t_x = _split([tin[i] for i in range(n_in) if i in tin], sum(flags[:nc]),
                           sum(flags[nc:nc + nk]))
    outs_p, outs_t = jb.outvars[:n_out], jb.outvars[n_out:]
    keep_t = [o for o, nz in zip(outs_t, out_nz) if nz]
    kt_k, kt_y = keep_t[:len(t_k)], keep_t[len(t_k):]
    jbody, jconsts = _reorder(jb, [p_c, t_c, p_k, t_k, p_x, t_x],
                              outs_p[:nk] + kt_k + outs_p[nk:] + kt_y)
    c, k, x = _split(primals, nc, nk)
    tc, tk, tx = _split(tangents, nc, nk)
    f_c, f_k, f_x = _split(flags, nc, nk)
    init_t = [t if t is not None else P.zeros(body.invars[nc + i].aval)
              for i, (t, f) in enumerate(zip(tk, f_k)) if f]
    outs = bind_scan(jbody, jconsts + c + [t for t, f in zip(tc, f_c) if f], k + init_t,
                     x + [t for t, f in zip(tx, f_x) if f], length, reverse)
    n_tk = len(init_t)
    prim = outs[:nk] + outs[nk + n_tk:nk + n_tk + n_out - nk]
    t_iter = iter(outs[nk:nk + n_tk] + outs[nk + n_tk + n_out - nk:])
    return prim, [next(t_iter) if nz else None for nz in out_nz]


def _scan_partial(e, linear):
    """Split a scan reading tangents into a primal scan that also stacks the
    primal carries, and a scan linear in the tangents that recomputes each
    step from its stored carry (see the module docs)."""
    p = e.params
    body, nc, nk = p["body"], p["n_consts"], p["n_carry"]
    flags = carry_fixpoint(body, linear, nc, nk)
    out_lin = depends(body, flags)
    out_lin[:nk] = flags[nc:nc + nk]
    inv = body.invars
    idx_c, idx_k = range(nc), range(nc, nc + nk)
    idx_x = range(nc + nk, len(inv))
    nl = [i for i in range(len(inv)) if not flags[i]]
    pk = [i for i in idx_k if not flags[i]]
    prim_out = [j for j in range(len(body.outvars)) if not out_lin[j]]
    lin_out = [j for j in range(len(body.outvars)) if out_lin[j]]
    # the primal scan: its own outputs, then the carry entering each step
    pbody = primal_sub(body, flags, [body.outvars[j] for j in prim_out] + [inv[i] for i in pk])
    stacked = [Var(Aval((p["length"],) + inv[i].aval.shape, inv[i].aval.dtype)) for i in pk]
    primal = Eqn(scan_p, [e.inputs[i] for i in nl], [e.outputs[j] for j in prim_out] + stacked,
                 dict(p, body=pbody, n_consts=sum(1 for i in idx_c if not flags[i]), n_carry=len(pk)),
                 e.where)
    # the linear scan: consts (primal, then linear), linear carries, then the
    # stored carries, the primal xs and the linear xs as its xs
    lc = [i for i in idx_c if flags[i]]
    lk = [i for i in idx_k if flags[i]]
    pc = [i for i in idx_c if not flags[i]]
    px = [i for i in idx_x if not flags[i]]
    lx = [i for i in idx_x if flags[i]]
    order = pc + lc + lk + pk + px + lx
    lbody = sub(body, [inv[i] for i in order], [body.outvars[j] for j in lin_out])
    ins = [e.inputs[i] for i in pc + lc + lk] + stacked + [e.inputs[i] for i in px + lx]
    linear_eqn = Eqn(scan_p, ins, [e.outputs[j] for j in lin_out],
                     dict(p, body=lbody, n_consts=len(pc) + len(lc), n_carry=len(lk)), e.where)
    return [primal], [linear_eqn]


def _scan_transpose(cts, *args, body, n_consts, n_carry, length, reverse):
    nc, nk = n_consts, n_carry
    c, k, x = _split(args, nc, nk)
    res_c = [i for i, a in enumerate(c) if not isinstance(a, Undefined)]
    lin_c = [i for i, a in enumerate(c) if isinstance(a, Undefined)]
    res_x = [i for i, a in enumerate(x) if not isinstance(a, Undefined)]
    lin_x = [i for i, a in enumerate(x) if isinstance(a, Undefined)]
    outs = body.outvars
    ct = [cts[j] if cts[j] is not None else
          P.zeros(outs[j].aval if j < nk else Aval((length,) + outs[j].aval.shape, outs[j].aval.dtype))
          for j in range(len(outs))]
    inv = body.invars
    with new_trace() as tr:
        rc = [tr.new_arg(inv[i].aval) for i in res_c]
        acc = [tr.new_arg(inv[i].aval) for i in lin_c]
        ctk = [tr.new_arg(inv[nc + i].aval) for i in range(nk)]
        rx = [tr.new_arg(inv[nc + nk + i].aval) for i in res_x]
        cty = [tr.new_arg(v.aval) for v in outs[nk:]]
        known_c, known_x = dict(zip(res_c, rc)), dict(zip(res_x, rx))
        bargs = ([known_c.get(i, Undefined(inv[i].aval)) for i in range(nc)]
                 + [Undefined(inv[nc + i].aval) for i in range(nk)]
                 + [known_x.get(i, Undefined(inv[nc + nk + i].aval)) for i in range(len(x))])
        got = backward(body, bargs, ctk + cty)
        new_acc = [P.add(a, g) for a, g in zip(acc, got[:len(lin_c)])]
        tbody, tconsts = close(tr.to_ir(new_acc + got[len(lin_c):]))
    res = bind_scan(tbody, tconsts + [c[i] for i in res_c],
                    [P.zeros(inv[i].aval) for i in lin_c] + ct[:nk],
                    [x[i] for i in res_x] + ct[nk:], length, not reverse)
    ct_c, ct_k, ct_x = _split(res, len(lin_c), nk)
    out_c = dict(zip(lin_c, ct_c))
    out_x = dict(zip(lin_x, ct_x))
    return ([out_c.get(i) for i in range(nc)]
            + [g if isinstance(a, Undefined) else None for a, g in zip(k, ct_k)]
            + [out_x.get(i) for i in range(len(x))])


def _scan_batch(args, batched, size, body, n_consts, n_carry, length, reverse):
    nc, nk = n_consts, n_carry
    c, k, x = _split(args, nc, nk)
    b_c, _, b_x = _split(batched, nc, nk)
    k = [a if b else with_batch_axis(a, size) for a, b in zip(k, batched[nc:nc + nk])]
    # xs are scanned along their axis 0: a batched one has the batch axis second
    x = [P.transpose(a, _second_axis_first(aval_of(a).ndim)) if b else a for a, b in zip(x, b_x)]
    vbody, vconsts = close(vmap_ir(body, b_c + [True] * nk + b_x, size))
    outs = bind_scan(vbody, vconsts + c, k, x, length, reverse)
    ys = [P.transpose(y, _second_axis_first(aval_of(y).ndim)) for y in outs[nk:]]
    return outs[:nk] + ys


def _empty(name, aval):
    return f"{name} = np.empty({tuple(aval.shape)}, np.{np.dtype(aval.dtype).name})"


def _scan_code(outs, ins, in_avals, out_avals, function, body, n_consts, n_carry, length, reverse):
    """``for _t in range(length)``: call the body's function on the carries and
    ``xs[_t]``, store each ``y`` into ``ys[_t]``."""
    f = function(body)
    consts, init, xs = _split(ins, n_consts, n_carry)
    carry, ys = outs[:n_carry], outs[n_carry:]
    lines = [f"{c} = {i}" for c, i in zip(carry, init)]
    lines += [_empty(y, av) for y, av in zip(ys, out_avals[n_carry:])]
    y_t = [f"{y}_t" for y in ys]
    lines.append(f"for _t in range({length - 1}, -1, -1):" if reverse else f"for _t in range({length}):")
    lines += ["    " + line for line in f.call(carry + y_t, consts + carry + [f"{x}[_t]" for x in xs])]
    lines += [f"    {y}[_t] = {t}" for y, t in zip(ys, y_t)]
    return lines


def _scan_depends(flags, body, n_consts, n_carry, length, reverse):
    flags = carry_fixpoint(body, flags, n_consts, n_carry, floating_only=False)
    return flags[n_consts:n_consts + n_carry] + depends(body, flags)[n_carry:]


scan_p.shape = _scan_shape
scan_p.depends = _scan_depends
scan_p.code = _scan_code
scan_p.impl = _scan_impl
scan_p.jvp = _scan_jvp
scan_p.partial_eval = _scan_partial
scan_p.transpose = _scan_transpose
scan_p.batch = _scan_batch


# ---------------------------------------------------------------------------
# while


while_p = Primitive("while", "control")
while_p.multiple_results = True


def _while_shape(*avals, cond, body, n_cond, n_body):
    return list(avals[n_cond + n_body:])


def _while_impl(*args, cond, body, n_cond, n_body):
    cc, bc, carry = _split(args, n_cond, n_body)
    while bool(eval_ir(cond, cc + carry)[0]):
        carry = [_value(v) for v in eval_ir(body, bc + carry)]
    return carry


def bind_while(cond, cond_consts, body, body_consts, init):
    return bind(while_p, *cond_consts, *body_consts, *init, cond=cond, body=body,
                n_cond=len(cond_consts), n_body=len(body_consts))


def _while_jvp(primals, tangents, cond, body, n_cond, n_body):
    nb = n_body
    cc, bc, k = _split(primals, n_cond, nb)
    _, tb, tk = _split(tangents, n_cond, nb)
    # (the condition's constants only decide when to stop: no tangent flows from them)
    flags = carry_fixpoint(body, [t is not None for t in tb + tk], nb, len(k))
    which = [i for i, f in enumerate(flags) if f]
    jb = jvp_ir(body, which)
    n_in = len(body.invars)
    tin = dict(zip(which, jb.invars[n_in:]))
    f_b, f_k = flags[:nb], flags[nb:]
    p_b, p_k = jb.invars[:nb], jb.invars[nb:n_in]
    t_b = [tin[i] for i in range(nb) if flags[i]]
    t_k = [tin[nb + i] for i in range(len(k)) if f_k[i]]
    outs_t = [o for o, f in zip(jb.outvars[len(k):], f_k) if f]
    jbody, jconsts = _reorder(jb, [p_b, t_b, p_k, t_k], jb.outvars[:len(k)] + outs_t)
    # the condition reads the primal carries only
    extra = [Var(v.aval) for v in t_k]
    jcond = IR(list(cond.invars) + extra, [], [], cond.eqns, cond.outvars)
    init_t = [t if t is not None else P.zeros(body.invars[nb + i].aval)
              for i, (t, f) in enumerate(zip(tk, f_k)) if f]
    outs = bind_while(jcond, cc, jbody, jconsts + bc + [t for t, f in zip(tb, f_b) if f], k + init_t)
    t_iter = iter(outs[len(k):])
    return outs[:len(k)], [next(t_iter) if f else None for f in f_k]


def _while_partial(e, linear):
    raise JitgradError(
        "reverse-mode differentiation of while_loop (and of fori_loop with bounds known only at "
        "run time) is not supported yet; use fori_loop with Python int bounds or scan, whose "
        "trip count is known when the function is traced, or forward mode (jvp, jacfwd)")


def _while_batch(args, batched, size, cond, body, n_cond, n_body):
    cc, bc, k = _split(args, n_cond, n_body)
    b_cc, b_bc, b_k = _split(batched, n_cond, n_body)
    k = [a if b else with_batch_axis(a, size) for a, b in zip(k, b_k)]
    nk = len(k)
    pred_batched = any(depends(cond, b_cc + [True] * nk))
    vbody = vmap_ir(body, b_bc + [True] * nk, size)
    if not pred_batched:
        vb, vbc = close(vbody)
        return bind_while(cond, cc, vb, vbc + bc, k)
    vcond = vmap_ir(cond, b_cc + [True] * nk, size)

    # Every element runs until its own condition fails: the loop goes on while
    # any does, and a step updates only the elements still running.
    def any_cond(*a):
        ccs, carry = a[:len(cc)], a[len(cc):]
        return [P.reduce_max(eval_ir(vcond, list(ccs) + list(carry))[0], (0,))]

    def masked_step(*a):
        ccs, bcs, carry = _split(a, len(cc), len(bc))
        pred = eval_ir(vcond, ccs + carry)[0]
        new = eval_ir(vbody, bcs + carry)
        return [P.select(P.broadcast_in_dim(pred, aval_of(n).shape, (0,)), n, old) for n, old in zip(new, carry)]

    with new_trace() as tr:
        a = [tr.new_arg(v.aval) for v in vcond.invars]
        jc, jcc = close(tr.to_ir(any_cond(*a)))
    with new_trace() as tr:
        avs = [v.aval for v in vcond.invars[:len(cc)]] + [v.aval for v in vbody.invars]
        a = [tr.new_arg(av) for av in avs]
        jb, jbc = close(tr.to_ir(masked_step(*a)))
    return bind_while(jc, jcc + cc, jb, jbc + cc + bc, k)


def _while_code(outs, ins, in_avals, out_avals, function, cond, body, n_cond, n_body):
    c, b = function(cond), function(body)
    cc, bc, init = _split(ins, n_cond, n_body)
    lines = [f"{o} = {i}" for o, i in zip(outs, init)]
    lines.append("while True:")
    lines += ["    " + line for line in c.call(["_go"], cc + outs)]
    lines.append("    if not _go:")
    lines.append("        break")
    lines += ["    " + line for line in b.call(outs, bc + outs)]
    return lines


def _while_depends(flags, cond, body, n_cond, n_body):
    cc, bc, k = _split(flags, n_cond, n_body)
    carry = carry_fixpoint(body, bc + k, n_body, len(k), floating_only=False)[n_body:]
    if any(depends(cond, cc + carry)):      # the trip count: every output
        return [True] * len(k)
    return carry


while_p.shape = _while_shape
while_p.depends = _while_depends
while_p.code = _while_code
while_p.impl = _while_impl
while_p.jvp = _while_jvp
while_p.partial_eval = _while_partial
while_p.batch = _while_batch
