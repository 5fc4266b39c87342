"""While loops: the ``while`` primitive, and ``while_back``, its reverse sweep.

``while`` operands ``cond_consts..., body_consts..., init...``; parameters
          ``cond`` (``(cond_consts..., carry...) -> bool``), ``body``
          (``(body_consts..., carry...) -> carry...``), ``n_cond``, ``n_body``.

Forward mode is one loop over (primal, tangent) carries, as for ``scan``.  A
while loop's trip count is known only when it ends, so reverse mode cannot
stack residuals into arrays of a known length: the linear part is the loop
itself, and its transpose (``while_back``) repeats the primal loop storing
each step's carry in a buffer that doubles when full, then runs the
transposed step backwards over it.  Reverse mode through ``while_back`` (a
second reverse pass) rewrites it without the buffer (see
``_while_back_partial``).
"""
from __future__ import annotations

import numpy as np

from .. import lax as P
from ..core.errors import JitgradError
from ..core.ir import IR, Aval, Eqn, Lit, Var
from ..core.primitive import Primitive, Undefined
from ..core.trace import aval_of, bind, eval_ir, new_trace
from .autodiff import backward, split_linear
from .loops import as_value, empty_line, jvp_grouped, sequential_batch, split_sizes, untangle
from .subir import carry_fixpoint, close, depends, sub
from .vmap import vmap_ir
from ..lax.structural import with_batch_axis


# ---------------------------------------------------------------------------
# while


while_p = Primitive("while", "control")
while_p.multiple_results = True


def _while_shape(*avals, cond, body, n_cond, n_body):
    return list(avals[n_cond + n_body:])


def _while_impl(*args, cond, body, n_cond, n_body):
    cc, bc, carry = split_sizes(args, n_cond, n_body)
    carry = [as_value(c) for c in carry]
    while bool(eval_ir(cond, cc + carry)[0]):
        carry = [as_value(v) for v in eval_ir(body, bc + carry)]
    return carry


def bind_while(cond, cond_consts, body, body_consts, init):
    return bind(while_p, *cond_consts, *body_consts, *init, cond=cond, body=body,
                n_cond=len(cond_consts), n_body=len(body_consts))


def _while_jvp(primals, tangents, cond, body, n_cond, n_body):
    nb = n_body
    cc, bc, k = split_sizes(primals, n_cond, nb)
    _, tb, tk = split_sizes(tangents, n_cond, nb)
    # (the condition's constants only decide when to stop: no tangent flows from them)
    flags = carry_fixpoint(body, [t is not None for t in tb + tk], nb, len(k))
    f_b, f_k = flags[:nb], flags[nb:]
    jbody, jconsts = jvp_grouped(body, flags, [nb, len(k)], [len(k)], f_k)
    init_t = [t if t is not None else P.zeros(body.invars[nb + i].aval)
              for i, (t, f) in enumerate(zip(tk, f_k)) if f]
    outs = bind_while(_cond_beside(cond, init_t), cc, jbody,
                      jconsts + bc + [t for t, f in zip(tb, f_b) if f], k + init_t)
    return untangle(outs, [len(k)], f_k)


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


def _primal_loop(cond, body, n_cond, lin_b, lin_k):
    """The loop over the primal carries alone: the positions of the primal
    body constants and carries, and the condition and body restricted to them."""
    nb = len(lin_b)
    bi, ci = body.invars, cond.invars
    pb = [i for i in range(nb) if not lin_b[i]]
    pk = [k for k, f in enumerate(lin_k) if not f]
    # (a loop or branch in the body that reads both is split, its primal part kept)
    primal_eqns, _, _ = split_linear(body.eqns, [bi[i] for i in range(nb) if lin_b[i]]
                                     + [bi[nb + k] for k, f in enumerate(lin_k) if f])
    pbody = sub(IR(bi, [], [], primal_eqns, []), [bi[i] for i in pb] + [bi[nb + k] for k in pk],
                [body.outvars[k] for k in pk])
    pcond = sub(cond, ci[:n_cond] + [ci[n_cond + k] for k in pk], cond.outvars)
    return pb, pk, pcond, pbody


def _while_partial(e, linear):
    """The primal loop computes the primal carries; the linear part is the
    loop itself (with fresh variables for the primal carries it recomputes).
    Only its transpose runs: it repeats the primal loop storing each step's
    carries, then runs the transposed step backwards (see while_back)."""
    p = e.params
    n_cond, nb = p["n_cond"], p["n_body"]
    lin_b, lin_k = _while_flags(e, linear)
    pb, pk, pcond, pbody = _primal_loop(p["cond"], p["body"], n_cond, lin_b, lin_k)
    ins = e.inputs
    primal = Eqn(while_p, ins[:n_cond] + [ins[n_cond + i] for i in pb] + [ins[n_cond + nb + k] for k in pk],
                 [e.outputs[k] for k in pk], dict(p, cond=pcond, body=pbody, n_body=len(pb)), e.where)
    outs = [v if lin_k[k] else Var(v.aval) for k, v in enumerate(e.outputs)]
    return [primal], [Eqn(while_p, ins, outs, p, e.where)]


def _while_transpose(cts, *args, cond, body, n_cond, n_body):
    nb = n_body
    cc, bc, k = split_sizes(args, n_cond, nb)
    lin_b = [isinstance(a, Undefined) for a in bc]
    flags = carry_fixpoint(body, lin_b + [isinstance(a, Undefined) for a in k], nb, len(k))
    lin_k = flags[nb:]
    bi = body.invars
    pb, pk, pcond, fwd = _primal_loop(cond, body, n_cond, lin_b, lin_k)
    lb = [i for i in range(nb) if lin_b[i]]
    lk = [j for j, f in enumerate(lin_k) if f]
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
    cc, bc, k = split_sizes(args, n_cond, n_body)
    b_cc, b_bc, b_k = split_sizes(batched, n_cond, n_body)
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
        ccs, bcs, carry = split_sizes(a, len(cc), len(bc))
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
    cc, bc, init = split_sizes(ins, n_cond, n_body)
    lines = [f"{o} = {i}" for o, i in zip(outs, init)]
    lines.append("while True:")
    lines += ["    " + line for line in c.call(["_go"], cc + outs)]
    lines.append("    if not _go:")
    lines.append("        break")
    lines += ["    " + line for line in b.call(outs, bc + outs)]
    return lines


def _reads(ir):
    return {a for q in ir.eqns for a in q.inputs} | set(ir.outvars)


def _while_prune(e, used):
    """Drop the carries that no used output, the condition or another kept
    carry needs, and the body constants the smaller body no longer reads."""
    p = e.params
    cond, body, nc, nb = p["cond"], p["body"], p["n_cond"], p["n_body"]
    ci, bi, n = cond.invars, body.invars, len(e.outputs)
    need = {k for k in range(n) if e.outputs[k] in used or ci[nc + k] in _reads(cond)}
    while True:
        live = sub(body, bi, [body.outvars[k] for k in sorted(need)])
        more = {k for k in range(n) if bi[nb + k] in _reads(live)} - need
        if not more:
            break
        need |= more
    keep = sorted(need)
    consts = [i for i in range(nb) if bi[i] in _reads(live)]
    body = sub(live, [bi[i] for i in consts] + [bi[nb + k] for k in keep], live.outvars)
    cond = IR(ci[:nc] + [ci[nc + k] for k in keep], [], [], cond.eqns, cond.outvars)
    ins = e.inputs
    return Eqn(while_p, ins[:nc] + [ins[nc + i] for i in consts] + [ins[nc + nb + k] for k in keep],
               [e.outputs[k] for k in keep], dict(p, cond=cond, body=body, n_body=len(consts)), e.where)


def _while_depends(flags, cond, body, n_cond, n_body):
    n = len(flags) - n_cond - n_body
    carry = carry_fixpoint(body, flags[n_cond:], n_body, n, floating=False)[n_body:]
    if any(depends(cond, flags[:n_cond] + carry)):
        return [True] * n        # the trip count depends on them: every carry does
    return carry


while_p.shape = _while_shape
while_p.depends = _while_depends
while_p.prune = _while_prune
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
    return split_sizes(args, n_cond, n_consts, n_body, n_carry)


def _while_back_shape(*avals, cond, fwd, back, n_cond, n_consts, n_body, n_carry):
    return list(avals[n_cond + n_consts + n_body + n_carry:])


def _while_back_impl(*args, cond, fwd, back, n_cond, n_consts, n_body, n_carry):
    cc, bk, fc, carry, rest = _back_split(args, n_cond, n_consts, n_body, n_carry)
    stack = []
    while bool(eval_ir(cond, cc + carry)[0]):
        stack.append(carry)
        carry = [as_value(v) for v in eval_ir(fwd, fc + carry)]
    for carry in reversed(stack):
        rest = [as_value(v) for v in eval_ir(back, bk + fc + rest + carry)]
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
    lines += [empty_line(buf, Aval(("_cap",) + tuple(av.shape), av.dtype)) for buf, av in zip(bufs, avals)]
    lines += ["while True:"]
    lines += ["    " + line for line in c.call(["_go"], cc + carry)]
    lines += ["    if not _go:", "        break", "    if _n == _cap:", "        _cap *= 2"]
    for buf, av in zip(bufs, avals):
        lines += ["        " + empty_line("_grown", Aval(("_cap",) + tuple(av.shape), av.dtype)),
                  f"        lc.copy_rows(_grown, {buf}, _n)", f"        {buf} = _grown"]
    # (array rows through backend.libcalls: compiled once, not in every module)
    lines += [f"    lc.store({buf}, _n, {v})" if av.ndim else f"    {buf}[_n] = {v}"
              for buf, v, av in zip(bufs, carry, avals)]
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
    jfwd, jf_consts = jvp_grouped(fwd, f_flags, [n_body, n_carry], [n_carry], f_c)
    b_flags = carry_fixpoint(back, given(t_bk) + f_fc + given(t_rest) + f_c, n_consts + n_body, nr)
    f_r = b_flags[n_consts + n_body:n_consts + n_body + nr]
    # the backward step takes the forward step's constants too: unused inputs for the new ones
    jback, jb_consts = jvp_grouped(back, b_flags, [n_consts, n_body, nr, n_carry], [nr], f_r,
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
    return untangle(outs, [nr], f_r)


def _while_back_depends(flags, cond, fwd, back, n_cond, n_consts, n_body, n_carry):
    f_cc, f_bk, f_fc, f_init, f_rest = _back_split(flags, n_cond, n_consts, n_body, n_carry)
    carry = carry_fixpoint(fwd, f_fc + f_init, n_body, n_carry, floating=False)[n_body:]
    if any(depends(cond, f_cc + carry)):
        return [True] * len(f_rest)         # the trip count depends on them
    rest = carry_fixpoint(back, f_bk + f_fc + f_rest + carry, n_consts + n_body, len(f_rest), floating=False)
    return rest[n_consts + n_body:n_consts + n_body + len(f_rest)]


def _while_back_partial(e, linear):
    """Reverse over reverse.  The sweep's forward loop stores the carries in
    a buffer whose length is known only when the loop ends, and no variable
    of the IR can hold that (its shapes are known when tracing), so a second
    reverse pass cannot keep it as a residual.  Instead the sweep is written
    with loops whose values all have static shapes: one counts the steps,
    ``n``; the other runs the transposed step at ``t = n - 1, ..., 0``,
    recomputing the carry entering step ``t`` from the initial carry (an inner
    loop of ``t`` steps).  Those are split as while loops are.  So the second
    reverse pass runs about ``n**2 / 2`` forward steps instead of ``n``."""
    p = e.params
    cond, fwd, back = p["cond"], p["fwd"], p["back"]
    n_cond, n_consts, n_body, n_carry = p["n_cond"], p["n_consts"], p["n_body"], p["n_carry"]
    cc, bk, fc, init, rest = _back_split(e.inputs, n_cond, n_consts, n_body, n_carry)
    step = Aval((), np.dtype(np.int64))
    carry_avals = [v.aval for v in fwd.invars[n_body:]]
    # (t, carry) -> (t + 1, fwd(carry)): counts the steps, and reaches a step
    with new_trace() as tr:
        f = [tr.new_arg(v.aval) for v in fwd.invars[:n_body]]
        t = tr.new_arg(step)
        c = [tr.new_arg(av) for av in carry_avals]
        counted, counted_consts = close(tr.to_ir([P.add(t, np.int64(1))] + list(eval_ir(fwd, f + c))))
    # from (-1, init) while cond(carry): the final count is n - 1
    last = Var(step)
    count = Eqn(while_p, cc + counted_consts + fc + [Lit(-1, step.dtype)] + init,
                [last] + [Var(av) for av in carry_avals],
                dict(cond=IR(cond.invars[:n_cond] + [Var(step)] + cond.invars[n_cond:], [], [], cond.eqns,
                             cond.outvars),
                     body=counted, n_cond=len(cc), n_body=len(counted_consts) + n_body), e.where)
    rest_avals = [r.aval for r in rest]      # (Var or Lit)
    with new_trace() as tr:
        t = tr.new_arg(step)
        for av in rest_avals:
            tr.new_arg(av)
        going, going_consts = close(tr.to_ir([P.ge(t, np.int64(0))]))
    with new_trace() as tr:
        b = [tr.new_arg(v.aval) for v in back.invars[:n_consts]]
        f = [tr.new_arg(v.aval) for v in fwd.invars[:n_body]]
        c0 = [tr.new_arg(av) for av in carry_avals]
        t = tr.new_arg(step)
        r = [tr.new_arg(av) for av in rest_avals]
        with new_trace() as inner:
            upto, j = inner.new_arg(step), inner.new_arg(step)
            for av in carry_avals:
                inner.new_arg(av)
            before, before_consts = close(inner.to_ir([P.lt(j, upto)]))
        carry_t = bind_while(before, before_consts + [t], counted, counted_consts + f, [np.int64(0)] + c0)[1:]
        new_rest = eval_ir(back, b + f + r + list(carry_t))
        turn, turn_consts = close(tr.to_ir([P.sub(t, np.int64(1))] + list(new_rest)))
    sweep = Eqn(while_p, going_consts + turn_consts + bk + fc + init + [last] + rest, [Var(step)] + list(e.outputs),
                dict(cond=going, body=turn, n_cond=len(going_consts),
                     n_body=len(turn_consts) + n_consts + n_body + n_carry), e.where)
    primal, lin, _ = split_linear([count, sweep], [a for a, f in zip(e.inputs, linear) if f])
    return primal, lin


while_back_p.shape = _while_back_shape
while_back_p.impl = _while_back_impl
while_back_p.code = _while_back_code
while_back_p.jvp = _while_back_jvp
while_back_p.partial_eval = _while_back_partial
while_back_p.depends = _while_back_depends
while_back_p.batch = sequential_batch(while_back_p)
