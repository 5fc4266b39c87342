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
from .autodiff import backward, jvp_ir, split_linear
from .subir import carry_fixpoint, close, depends, inexact, sub
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


def _scan_shape(*avals, body, n_consts, n_carry, length, reverse, policy):
    ys = [Aval((length,) + tuple(v.aval.shape), v.aval.dtype) for v in body.outvars[n_carry:]]
    return list(avals[n_consts:n_consts + n_carry]) + ys


def _scan_impl(*args, body, n_consts, n_carry, length, reverse, policy):
    consts, carry, xs = _split(args, n_consts, n_carry)
    ys = [np.empty((length,) + tuple(v.aval.shape), v.aval.dtype) for v in body.outvars[n_carry:]]
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = eval_ir(body, consts + carry + [x[t] for x in xs])
        carry = [_value(c) for c in outs[:n_carry]]
        for y, v in zip(ys, outs[n_carry:]):
            y[t] = v
    return carry + ys


def bind_scan(body, consts, init, xs, length, reverse, policy="carries"):
    """Bind a scan of the closed sub-IR ``body`` (see :func:`close`): its
    leading inputs take ``consts``."""
    return bind(scan_p, *consts, *init, *xs, body=body, n_consts=len(consts), n_carry=len(init),
                length=length, reverse=reverse, policy=policy)


def _reorder(ir, groups_in, outvars):
    """``ir`` with its inputs regrouped (a flat concatenation of ``groups_in``)
    and the given outputs, closed: returns ``(ir, its constants)``."""
    invars = [v for g in groups_in for v in g]
    return close(IR(invars, ir.constvars, ir.consts, ir.eqns, outvars))


def _jvp_grouped(ir, flags, in_sizes, out_sizes, out_nz, extra=()):
    """The JVP of ``ir`` for the inputs flagged in ``flags``, closed, with
    each group of inputs (``in_sizes``) followed by its tangents and each
    group of outputs (``out_sizes``) by the tangents flagged in ``out_nz``.
    ``extra`` maps a group's position to unused inputs inserted before it
    (to keep a layout shared with another sub-IR)."""
    which = [i for i, f in enumerate(flags) if f]
    jb = jvp_ir(ir, which)
    n_in, n_out = len(ir.invars), len(ir.outvars)
    tin = dict(zip(which, jb.invars[n_in:]))
    groups, i = [], 0
    for g, n in enumerate(in_sizes):
        groups.append(list(extra.get(g, ())) if extra else [])
        groups.append(jb.invars[i:i + n])
        groups.append([tin[j] for j in range(i, i + n) if j in tin])
        i += n
    outs, j = [], 0
    for n in out_sizes:
        outs += jb.outvars[j:j + n] + [t for t, f in zip(jb.outvars[n_out + j:n_out + j + n],
                                                        out_nz[j:j + n]) if f]
        j += n
    return _reorder(jb, groups, outs)


def _scan_jvp(primals, tangents, body, n_consts, n_carry, length, reverse, policy):
    nc, nk = n_consts, n_carry
    flags = carry_fixpoint(body, [t is not None for t in tangents], nc, nk)
    out_nz = [d and inexact(v.aval) for d, v in zip(depends(body, flags), body.outvars)]
    out_nz[:nk] = flags[nc:nc + nk]
    n_x = len(body.invars) - nc - nk
    ny = len(body.outvars) - nk
    jbody, jconsts = _jvp_grouped(body, flags, [nc, nk, n_x], [nk, ny], out_nz)
    c, k, x = _split(primals, nc, nk)
    tc, tk, tx = _split(tangents, nc, nk)
    f_c, f_k, f_x = _split(flags, nc, nk)
    init_t = [t if t is not None else P.zeros(body.invars[nc + i].aval)
              for i, (t, f) in enumerate(zip(tk, f_k)) if f]
    outs = bind_scan(jbody, jconsts + c + [t for t, f in zip(tc, f_c) if f], k + init_t,
                     x + [t for t, f in zip(tx, f_x) if f], length, reverse, policy)
    return _untangle(outs, [nk, ny], out_nz)


def _untangle(outs, sizes, nz):
    """Outputs laid out as groups each followed by its nonzero tangents ->
    (primal outputs, tangent or None per output)."""
    prim, tans, i, j = [], [], 0, 0
    for n in sizes:
        prim += outs[i:i + n]
        i += n
        for f in nz[j:j + n]:
            tans.append(outs[i] if f else None)
            i += f
        j += n
    return prim, tans


def _scan_partial(e, linear):
    """Split a scan reading tangents into a primal scan that also stacks the
    residuals of every step, and a scan linear in the tangents that reads
    them.  The ``policy`` parameter chooses the residuals:

    ``"carries"``    the primal carries entering each step; the linear scan
                     recomputes the step's primal values from them (memory:
                     one carry per step);
    ``"residuals"``  every primal value the step's linear part reads; nothing
                     is recomputed (memory: those values, per step).
    """
    p = e.params
    body, nc, nk = p["body"], p["n_consts"], p["n_carry"]
    flags = carry_fixpoint(body, linear, nc, nk)
    inv = body.invars
    idx_c, idx_k = range(nc), range(nc, nc + nk)
    idx_x = range(nc + nk, len(inv))
    nl = [i for i in range(len(inv)) if not flags[i]]
    pc = [i for i in idx_c if not flags[i]]
    lc = [i for i in idx_c if flags[i]]
    pk = [i for i in idx_k if not flags[i]]
    lk = [i for i in idx_k if flags[i]]
    px = [i for i in idx_x if not flags[i]]
    lx = [i for i in idx_x if flags[i]]
    # (a loop or branch in the body that reads both is split too)
    primal_eqns, linear_eqns, lin_vars = split_linear(body.eqns, [inv[i] for i in lc + lk + lx])
    out_lin = [isinstance(v, Var) and v in lin_vars for v in body.outvars]
    if p["policy"] == "residuals":
        passed = {inv[i] for i in pc + px}        # read where they are: not stacked
        residuals = []
        for q in linear_eqns:
            for a in q.inputs:
                if isinstance(a, Var) and a not in lin_vars and a not in passed and a not in residuals:
                    residuals.append(a)
        for k in range(nk):     # a linear carry the step sets to a primal value (a zero)
            v = body.outvars[k]
            if flags[nc + k] and isinstance(v, Var) and v not in lin_vars and v not in passed \
                    and v not in residuals:
                residuals.append(v)
        lin_src = linear_eqns
    else:
        residuals = [inv[i] for i in pk]
        lin_src = body.eqns           # recomputes the step's primal values
    out_lin[:nk] = flags[nc:nc + nk]
    prim_out = [j for j in range(len(body.outvars)) if not out_lin[j]]
    lin_out = [j for j in range(len(body.outvars)) if out_lin[j]]
    # the primal scan: its own outputs, then the residuals of each step
    pbody = sub(IR(inv, [], [], primal_eqns, []), [inv[i] for i in nl],
                [body.outvars[j] for j in prim_out] + residuals)
    stacked = [Var(Aval((p["length"],) + r.aval.shape, r.aval.dtype)) for r in residuals]
    primal = Eqn(scan_p, [e.inputs[i] for i in nl], [e.outputs[j] for j in prim_out] + stacked,
                 dict(p, body=pbody, n_consts=len(pc), n_carry=len(pk)), e.where)
    # the linear scan: consts (primal, then linear), linear carries, then the
    # stored residuals, the primal xs and the linear xs as its xs
    lin_in = [inv[i] for i in pc + lc + lk] + residuals + [inv[i] for i in px + lx]
    lbody = sub(IR(inv, [], [], lin_src, []), lin_in, [body.outvars[j] for j in lin_out])
    ins = [e.inputs[i] for i in pc + lc + lk] + stacked + [e.inputs[i] for i in px + lx]
    linear_eqn = Eqn(scan_p, ins, [e.outputs[j] for j in lin_out],
                     dict(p, body=lbody, n_consts=len(pc) + len(lc), n_carry=len(lk)), e.where)
    return [primal], [linear_eqn]


def _scan_transpose(cts, *args, body, n_consts, n_carry, length, reverse, policy):
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
                    [x[i] for i in res_x] + ct[nk:], length, not reverse, policy)
    ct_c, ct_k, ct_x = _split(res, len(lin_c), nk)
    out_c = dict(zip(lin_c, ct_c))
    out_x = dict(zip(lin_x, ct_x))
    return ([out_c.get(i) for i in range(nc)]
            + [g if isinstance(a, Undefined) else None for a, g in zip(k, ct_k)]
            + [out_x.get(i) for i in range(len(x))])


def _scan_batch(args, batched, size, body, n_consts, n_carry, length, reverse, policy):
    nc, nk = n_consts, n_carry
    c, k, x = _split(args, nc, nk)
    b_c, _, b_x = _split(batched, nc, nk)
    k = [a if b else with_batch_axis(a, size) for a, b in zip(k, batched[nc:nc + nk])]
    # xs are scanned along their axis 0: a batched one has the batch axis second
    x = [P.transpose(a, _second_axis_first(aval_of(a).ndim)) if b else a for a, b in zip(x, b_x)]
    vbody, vconsts = close(vmap_ir(body, b_c + [True] * nk + b_x, size))
    outs = bind_scan(vbody, vconsts + c, k, x, length, reverse, policy)
    ys = [P.transpose(y, _second_axis_first(aval_of(y).ndim)) for y in outs[nk:]]
    return outs[:nk] + ys


def _empty(name, aval):
    """``name = np.empty(shape, dtype)``; a dimension may be a variable's name."""
    dims = "".join(f"{d}, " for d in aval.shape)
    return f"{name} = np.empty(({dims}), np.{np.dtype(aval.dtype).name})"


def _scan_code(outs, ins, in_avals, out_avals, function, body, n_consts, n_carry, length, reverse, policy):
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


def _scan_depends(flags, body, n_consts, n_carry, length, reverse, policy):
    flags = carry_fixpoint(body, flags, n_consts, n_carry, floating=False)
    return flags[n_consts:n_consts + n_carry] + depends(body, flags)[n_carry:]


def _scan_prune(e, used):
    """Drop the stacked outputs nobody reads (the carries stay: each step
    needs the last), and the operands the smaller body no longer reads."""
    p = e.params
    body, nc, nk = p["body"], p["n_consts"], p["n_carry"]
    keep = list(range(nk)) + [j for j in range(nk, len(e.outputs)) if e.outputs[j] in used]
    live = sub(body, body.invars, [body.outvars[j] for j in keep])
    reads = {a for q in live.eqns for a in q.inputs} | set(live.outvars)
    # consts and xs nothing reads are dropped; carries stay
    drop = {i for i in list(range(nc)) + list(range(nc + nk, len(body.invars)))
            if body.invars[i] not in reads}
    ins = [i for i in range(len(body.invars)) if i not in drop]
    body = sub(live, [body.invars[i] for i in ins], live.outvars)
    return Eqn(scan_p, [e.inputs[i] for i in ins], [e.outputs[j] for j in keep],
               dict(p, body=body, n_consts=nc - sum(1 for i in drop if i < nc)), e.where)


scan_p.shape = _scan_shape
scan_p.prune = _scan_prune
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
    f_b, f_k = flags[:nb], flags[nb:]
    jbody, jconsts = _jvp_grouped(body, flags, [nb, len(k)], [len(k)], f_k)
    init_t = [t if t is not None else P.zeros(body.invars[nb + i].aval)
              for i, (t, f) in enumerate(zip(tk, f_k)) if f]
    outs = bind_while(_cond_beside(cond, init_t), cc, jbody,
                      jconsts + bc + [t for t, f in zip(tb, f_b) if f], k + init_t)
    return _untangle(outs, [len(k)], f_k)


def _cond_beside(cond, tangents):
    """The loop condition with unused inputs for the tangent carries after
    the primal ones (it reads the primal carries only)."""
    return IR(list(cond.invars) + [Var(aval_of(t)) for t in tangents], [], [], cond.eqns, cond.outvars)


def _while_flags(e, linear):
    """Which carries of a while equation are linear (read a tangent), and a
    check that the condition reads none of them."""
    p = e.params
    nb, n_cond = p["n_body"], p["n_cond"]
    body, cond = p["body"], p["cond"]
    flags = carry_fixpoint(body, list(linear[n_cond:]), nb, len(e.outputs))
    lin_k = flags[nb:]
    if any(depends(cond, [False] * n_cond + lin_k)):
        raise JitgradError("while_loop: the loop condition depends on a differentiated value; "
                           "a derivative of the trip count is not defined")
    return flags[:nb], lin_k


def _while_partial(e, linear):
    """The primal loop computes the primal carries; the linear part is the
    loop itself (with fresh variables for the primal carries it recomputes).
    Only its transpose runs: it repeats the primal loop storing each step's
    carries, then runs the transposed step backwards (see while_back)."""
    p = e.params
    n_cond, nb = p["n_cond"], p["n_body"]
    lin_b, lin_k = _while_flags(e, linear)
    body, cond = p["body"], p["cond"]
    bi, ci = body.invars, cond.invars
    pb = [i for i in range(nb) if not lin_b[i]]
    pk = [k for k, f in enumerate(lin_k) if not f]
    pbody = sub(body, [bi[i] for i in pb] + [bi[nb + k] for k in pk], [body.outvars[k] for k in pk])
    pcond = sub(cond, ci[:n_cond] + [ci[n_cond + k] for k in pk], cond.outvars)
    ins = e.inputs
    primal = Eqn(while_p, ins[:n_cond] + [ins[n_cond + i] for i in pb] + [ins[n_cond + nb + k] for k in pk],
                 [e.outputs[k] for k in pk], dict(p, cond=pcond, body=pbody, n_body=len(pb)), e.where)
    outs = [v if lin_k[k] else Var(v.aval) for k, v in enumerate(e.outputs)]
    return [primal], [Eqn(while_p, ins, outs, p, e.where)]


def _while_transpose(cts, *args, cond, body, n_cond, n_body):
    nb = n_body
    cc, bc, k = _split(args, n_cond, nb)
    lin_b = [isinstance(a, Undefined) for a in bc]
    flags = carry_fixpoint(body, lin_b + [isinstance(a, Undefined) for a in k], nb, len(k))
    lin_k = flags[nb:]
    bi, ci = body.invars, cond.invars
    pb = [i for i in range(nb) if not lin_b[i]]
    lb = [i for i in range(nb) if lin_b[i]]
    pk = [j for j, f in enumerate(lin_k) if not f]
    lk = [j for j, f in enumerate(lin_k) if f]
    fwd = sub(body, [bi[i] for i in pb] + [bi[nb + j] for j in pk], [body.outvars[j] for j in pk])
    pcond = sub(cond, ci[:n_cond] + [ci[n_cond + j] for j in pk], cond.outvars)
    with new_trace() as tr:
        rb = {i: tr.new_arg(bi[i].aval) for i in pb}
        acc = [tr.new_arg(bi[i].aval) for i in lb]
        ctk = [tr.new_arg(bi[nb + j].aval) for j in lk]
        rk = {j: tr.new_arg(bi[nb + j].aval) for j in pk}
        bargs = ([rb.get(i, Undefined(bi[i].aval)) for i in range(nb)]
                 + [rk[j] if j in rk else Undefined(bi[nb + j].aval) for j in range(len(k))])
        ct_out = [None] * len(k)
        for j, c in zip(lk, ctk):
            ct_out[j] = c
        got = backward(body, bargs, ct_out)
        new_acc = [P.add(a, g) for a, g in zip(acc, got[:len(lb)])]
        back, bconsts = close(tr.to_ir(new_acc + got[len(lb):]))
    ct_final = [cts[j] if cts[j] is not None else P.zeros(bi[nb + j].aval) for j in lk]
    res = bind(while_back_p, *cc, *bconsts, *[bc[i] for i in pb], *[k[j] for j in pk],
               *[P.zeros(bi[i].aval) for i in lb], *ct_final,
               cond=pcond, fwd=fwd, back=back, n_cond=len(cc), n_consts=len(bconsts), n_body=len(pb),
               n_carry=len(pk))
    ct_b = dict(zip(lb, res[:len(lb)]))
    ct_k = dict(zip(lk, res[len(lb):]))
    return ([None] * n_cond + [ct_b.get(i) for i in range(nb)]
            + [ct_k.get(j) if isinstance(k[j], Undefined) else None for j in range(len(k))])


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
    n = len(flags) - n_cond - n_body
    carry = carry_fixpoint(body, flags[n_cond:], n_body, n, floating=False)[n_body:]
    if any(depends(cond, flags[:n_cond] + carry)):
        return [True] * n        # the trip count depends on them: every carry does
    return carry


while_p.shape = _while_shape
while_p.depends = _while_depends
while_p.code = _while_code
while_p.impl = _while_impl
while_p.jvp = _while_jvp
while_p.partial_eval = _while_partial
while_p.transpose = _while_transpose
while_p.batch = _while_batch


# ---------------------------------------------------------------------------
# while_back: the transpose of a while loop (the reverse sweep)
#
# operands  cond_consts..., back_consts..., fwd_consts..., init..., acc..., ct...
# params    cond, fwd (the primal step), back ((back_consts, fwd_consts, acc,
#           ct, carry) -> (acc, ct): the transposed step at a stored carry)
#
# It runs the primal loop from ``init``, storing the carry entering each
# step in a buffer that doubles when full (the trip count is known only
# when the loop ends), then runs ``back`` from the last step to the first.


while_back_p = Primitive("while_back", "control")
while_back_p.multiple_results = True


def _back_split(args, n_cond, n_consts, n_body, n_carry):
    return _split(args, n_cond, n_consts, n_body, n_carry)


def _while_back_shape(*avals, cond, fwd, back, n_cond, n_consts, n_body, n_carry):
    return list(avals[n_cond + n_consts + n_body + n_carry:])


def _while_back_impl(*args, cond, fwd, back, n_cond, n_consts, n_body, n_carry):
    cc, bk, fc, carry, rest = _back_split(args, n_cond, n_consts, n_body, n_carry)
    stack = []
    while bool(eval_ir(cond, cc + carry)[0]):
        stack.append(carry)
        carry = [_value(v) for v in eval_ir(fwd, fc + carry)]
    for carry in reversed(stack):
        rest = [_value(v) for v in eval_ir(back, bk + fc + rest + carry)]
    return rest


def _while_back_code(outs, ins, in_avals, out_avals, function, cond, fwd, back, n_cond, n_consts,
                     n_body, n_carry):
    c, f, b = function(cond), function(fwd), function(back)
    cc, bk, fc, init, rest = _back_split(ins, n_cond, n_consts, n_body, n_carry)
    avals = in_avals[n_cond + n_consts + n_body:][:n_carry]
    carry = [f"_c{j}" for j in range(n_carry)]
    bufs = [f"_buf{j}" for j in range(n_carry)]
    lines = [f"{v} = {i}" for v, i in zip(carry, init)]
    lines += ["_n = 0", "_cap = 16"]
    lines += [_empty(buf, Aval(("_cap",) + tuple(av.shape), av.dtype)) for buf, av in zip(bufs, avals)]
    lines += ["while True:"]
    lines += ["    " + line for line in c.call(["_go"], cc + carry)]
    lines += ["    if not _go:", "        break", "    if _n == _cap:", "        _cap *= 2"]
    for buf, av in zip(bufs, avals):
        lines += ["        " + _empty("_grown", Aval(("_cap",) + tuple(av.shape), av.dtype)),
                  f"        _grown[:_n] = {buf}[:_n]", f"        {buf} = _grown"]
    lines += [f"    {buf}[_n] = {v}" for buf, v in zip(bufs, carry)]
    lines += ["    " + line for line in f.call(carry, fc + carry)]
    lines += ["    _n += 1"]
    lines += [f"{o} = {i}" for o, i in zip(outs, rest)]
    lines += ["for _t in range(_n - 1, -1, -1):"]
    lines += ["    " + line for line in b.call(outs, bk + fc + outs + [f"{buf}[_t]" for buf in bufs])]
    return lines


def _while_back_jvp(primals, tangents, cond, fwd, back, n_cond, n_consts, n_body, n_carry):
    """Forward over reverse: the forward sweep carries the primal carries'
    tangents too (and stores them), the backward sweep is the JVP of the
    transposed step."""
    sizes = (n_cond, n_consts, n_body, n_carry)
    cc, bk, fc, init, rest = _back_split(primals, *sizes)
    _, t_bk, t_fc, t_init, t_rest = _back_split(tangents, *sizes)
    nr = len(rest)
    given = lambda ts: [t is not None for t in ts]      # noqa: E731
    f_flags = carry_fixpoint(fwd, given(t_fc + t_init), n_body, n_carry)
    f_fc, f_c = f_flags[:n_body], f_flags[n_body:]
    jfwd, jf_consts = _jvp_grouped(fwd, f_flags, [n_body, n_carry], [n_carry], f_c)
    b_flags = carry_fixpoint(back, given(t_bk) + f_fc + given(t_rest) + f_c, n_consts + n_body, nr)
    f_r = b_flags[n_consts + n_body:n_consts + n_body + nr]
    # the backward step takes the forward step's constants too: unused inputs for the new ones
    jback, jb_consts = _jvp_grouped(back, b_flags, [n_consts, n_body, nr, n_carry], [nr], f_r,
                                    extra={1: [Var(aval_of(c)) for c in jf_consts]})

    def with_tangents(values, ts, flags, avals):
        return list(values) + [t if t is not None else P.zeros(av)
                               for t, f, av in zip(ts, flags, avals) if f]
    carry_t = with_tangents([], t_init, f_c, [v.aval for v in fwd.invars[n_body:]])
    B = jb_consts + with_tangents(bk, t_bk, given(t_bk), [aval_of(b) for b in bk])
    F = jf_consts + with_tangents(fc, t_fc, f_fc, [aval_of(f) for f in fc])
    R = with_tangents(rest, t_rest, f_r, [aval_of(r) for r in rest])
    outs = bind(while_back_p, *cc, *B, *F, *init, *carry_t, *R, cond=_cond_beside(cond, carry_t),
                fwd=jfwd, back=jback, n_cond=len(cc), n_consts=len(B), n_body=len(F),
                n_carry=n_carry + len(carry_t))
    return _untangle(outs, [nr], f_r)


def _sequential_batch(prim):
    """A batching rule that runs ``prim`` once per element of the batch, in a
    scan over the batch axis (for primitives whose elements would each take a
    different trip count)."""
    def rule(args, batched, size, **params):
        consts = [a for a, b in zip(args, batched) if not b]
        xs = [a for a, b in zip(args, batched) if b]

        def one(*a):
            c, x = a[:len(consts)], a[len(consts):]
            cit, xit = iter(c), iter(x)
            return bind(prim, *[next(xit) if b else next(cit) for b in batched], **params)
        avals = [aval_of(c) for c in consts] + [Aval(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs]
        with new_trace() as tr:
            body, bconsts = close(tr.to_ir(one(*[tr.new_arg(av) for av in avals])))
        return bind_scan(body, bconsts + consts, [], xs, size, False)
    return rule


while_back_p.shape = _while_back_shape
while_back_p.impl = _while_back_impl
while_back_p.code = _while_back_code
def _while_back_partial(e, linear):
    raise JitgradError(
        "reverse mode over reverse mode through while_loop (grad of grad, or jacrev of grad) is "
        "not supported yet; use forward over reverse (jitgrad.hessian, jacfwd of grad), or write "
        "the loop with scan or fori_loop with Python int bounds")


while_back_p.jvp = _while_back_jvp
while_back_p.partial_eval = _while_back_partial
while_back_p.batch = _sequential_batch(while_back_p)
