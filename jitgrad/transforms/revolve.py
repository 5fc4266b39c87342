"""Binomial checkpointing (Revolve) for ``scan``: a reverse sweep that keeps at
most ``s`` carries, whatever the trip count.

``scan(..., checkpoint=binomial(s))`` binds a scan whose ``policy`` is
``("binomial", s)``.  Its reverse mode stores nothing per step.  Like a while
loop's (see :mod:`jitgrad.transforms.while_loops`), the linear part of such a
scan is the loop itself, and its transpose is a primitive of its own,
``scan_revolve``, which recomputes the carries it needs from ``s`` snapshots
(the initial carry among them) following Griewank and Walther's binomial
schedule, then runs the transposed step at each one, from the last step to
the first.

The schedule.  Write ``beta(s, r) = C(s + r, s)``: the most steps that ``s``
snapshots reverse when no step is run forward more than ``r`` times.  To
reverse ``n`` steps from a snapshot at step ``a`` with ``s`` snapshots at
hand (the one at ``a`` among them): run ``m`` steps forward from ``a``, store
the carry of step ``a + m``, reverse the ``n - m`` steps after it with
``s - 1`` snapshots, then the ``m`` steps before it with ``s``.  With ``r``
the least repetition number with ``beta(s, r) >= n``, the choice
``m = min(beta(s, r - 1), n - beta(s - 1, r - 1))`` is optimal: the sweep
then runs ``r n - beta(s + 1, r - 1)`` forward steps, the fewest any
schedule with ``s`` snapshots can (for ``s >= log2 n`` about ``n log2 n / 2``
and fewer).  With one snapshot at hand (or one step to reverse) the last
step is reached by running forward from the snapshot.  The recursion is kept
in two arrays of ``s`` integers (the step and the number of steps left at
each snapshot level), so the generated code is one ``while`` loop whose size
does not depend on the trip count.

``scan_revolve``
    operands  ``back_consts..., fwd_consts..., init..., xs..., rest..., back_xs...``
    params    ``fwd`` ``(fwd_consts, carry, x_t) -> carry`` (the primal step),
              ``back`` ``(back_consts, fwd_consts, rest, carry, x_t, back_x_t)
              -> (rest, y_t)`` (the transposed step at the carry entering
              step ``t``), the operand counts, ``length``, ``reverse`` (the
              primal loop's direction: step ``i`` reads ``xs[length - 1 - i]``)
              and ``snapshots``.
    outputs   the final ``rest`` (cotangent accumulators and carries), then
              each ``y`` stacked along a new leading axis of ``length``.
"""
from __future__ import annotations

import numpy as np

from .. import lax as P
from ..core.ir import IR, Aval, Eqn, Var
from ..core.primitive import Primitive, Undefined
from ..core.trace import aval_of, bind, eval_ir, new_trace
from ..lax.structural import with_batch_axis
from .autodiff import backward, split_linear
from .loops import (BINOMIAL_RULES, as_value, bind_scan, empty_line, jvp_grouped, scan_p, split_sizes,
                    untangle)
from .subir import carry_fixpoint, close, depends, inexact, sub
from .vmap import vmap_ir


def first_part(n, s):
    """How many steps to run forward before storing a snapshot, reversing
    ``n > 1`` steps with ``s >= 2`` snapshots at hand (see the module docs)."""
    r, b, prev = 0, 1, 1            # b = beta(s, r), prev = beta(s, r - 1)
    while b < n:
        r += 1
        prev, b = b, b * (s + r) // r
    # beta(s - 1, r - 1) = beta(s, r - 1) * s / (s + r - 1), exactly
    return min(prev, n - prev * s // (s + r - 1))


def schedule(length, snapshots):
    """The binomial reverse sweep of ``length`` steps with ``snapshots``
    stored carries, as actions (slot 0 holds the initial carry):

    ``("restore", slot)``         the current carry := the one in ``slot``
    ``("advance", step, count)``  run ``count`` steps forward from ``step``
    ``("store", slot)``           ``slot`` := the current carry
    ``("turn", step)``            the transposed step at ``step`` (the current
                                  carry is the one entering it)

    The generated code (``_revolve_code``) runs the same loop."""
    start, todo = [0] * snapshots, [0] * snapshots
    todo[0], level = length, 0
    while level >= 0:
        n = todo[level]
        if n == 0:                  # this level's steps are reversed: back to the one before
            level -= 1
            continue
        a, here = start[level], snapshots - level
        turn = n == 1 or here == 1
        m = n - 1 if turn else first_part(n, here)
        yield ("restore", level)
        if m:
            yield ("advance", a, m)
        if turn:
            yield ("turn", a + m)
            todo[level] = n - 1
        else:
            yield ("store", level + 1)
            todo[level] = m
            level += 1
            start[level], todo[level] = a + m, n - m


def forward_steps(length, snapshots):
    """The number of forward steps of the schedule (for tests and tables)."""
    return sum(a[2] for a in schedule(length, snapshots) if a[0] == "advance")


# ---------------------------------------------------------------------------
# scan with the binomial policy: partial evaluation and transpose


def _binomial_partial(e, linear):
    """The primal scan computes the primal outputs and keeps nothing per
    step; the linear part is the scan itself (with fresh variables for the
    primal outputs it recomputes).  Only its transpose runs."""
    p = e.params
    body, nc, nk = p["body"], p["n_consts"], p["n_carry"]
    flags = carry_fixpoint(body, linear, nc, nk)
    inv = body.invars
    primal_eqns, _, lin_vars = split_linear(body.eqns, [v for v, f in zip(inv, flags) if f])
    out_lin = [isinstance(v, Var) and v in lin_vars for v in body.outvars]
    out_lin[:nk] = flags[nc:nc + nk]
    nl = [i for i in range(len(inv)) if not flags[i]]
    prim_out = [j for j in range(len(body.outvars)) if not out_lin[j]]
    pbody = sub(IR(inv, [], [], primal_eqns, []), [inv[i] for i in nl], [body.outvars[j] for j in prim_out])
    primal = Eqn(scan_p, [e.inputs[i] for i in nl], [e.outputs[j] for j in prim_out],
                 dict(p, body=pbody, n_consts=sum(1 for i in nl if i < nc),
                      n_carry=sum(1 for i in nl if nc <= i < nc + nk)), e.where)
    outs = [v if out_lin[j] else Var(v.aval) for j, v in enumerate(e.outputs)]
    return [primal], [Eqn(scan_p, e.inputs, outs, p, e.where)]


def _binomial_transpose(cts, *args, body, n_consts, n_carry, length, reverse, policy):
    nc, nk = n_consts, n_carry
    c, k, x = split_sizes(args, nc, nk)
    nx = len(x)
    flags = carry_fixpoint(body, [isinstance(a, Undefined) for a in args], nc, nk)
    inv, outs = body.invars, body.outvars
    pc = [i for i in range(nc) if not flags[i]]
    lc = [i for i in range(nc) if flags[i]]
    pk = [j for j in range(nk) if not flags[nc + j]]
    lk = [j for j in range(nk) if flags[nc + j]]
    px = [i for i in range(nx) if not flags[nc + nk + i]]
    lx = [i for i in range(nx) if flags[nc + nk + i]]
    out_lin = depends(body, flags)
    out_lin[:nk] = flags[nc:nc + nk]
    ly = [j for j in range(nk, len(outs)) if out_lin[j] and inexact(outs[j].aval)]
    # the primal step (a loop or branch in the body that reads both is split, its primal part kept)
    primal_eqns, _, _ = split_linear(body.eqns, [v for v, f in zip(inv, flags) if f])
    fwd = sub(IR(inv, [], [], primal_eqns, []),
              [inv[i] for i in pc] + [inv[nc + j] for j in pk] + [inv[nc + nk + i] for i in px],
              [outs[j] for j in pk])
    with new_trace() as tr:
        rc = {i: tr.new_arg(inv[i].aval) for i in pc}
        acc = [tr.new_arg(inv[i].aval) for i in lc]
        ctk = [tr.new_arg(inv[nc + j].aval) for j in lk]
        rk = {j: tr.new_arg(inv[nc + j].aval) for j in pk}
        rx = {i: tr.new_arg(inv[nc + nk + i].aval) for i in px}
        cty = [tr.new_arg(outs[j].aval) for j in ly]
        bargs = ([rc.get(i, Undefined(inv[i].aval)) for i in range(nc)]
                 + [rk[j] if j in rk else Undefined(inv[nc + j].aval) for j in range(nk)]
                 + [rx.get(i, Undefined(inv[nc + nk + i].aval)) for i in range(nx)])
        ct_out = [None] * len(outs)
        for j, ct in zip(lk + ly, ctk + cty):
            ct_out[j] = ct
        got = backward(body, bargs, ct_out)
        # the cotangents of the undefined operands, in order: consts, carries, xs
        n_lc, n_lk = len(lc), len(lk)
        new_acc = [P.add(a, g) for a, g in zip(acc, got[:n_lc])]
        back, bconsts = close(tr.to_ir(new_acc + got[n_lc:n_lc + n_lk] + got[n_lc + n_lk:]))
    ct_final = [cts[j] if cts[j] is not None else P.zeros(outs[j].aval) for j in lk]
    ct_ys = [cts[j] if cts[j] is not None else P.zeros(Aval((length,) + outs[j].aval.shape, outs[j].aval.dtype))
             for j in ly]
    fc, init, fx = [c[i] for i in pc], [k[j] for j in pk], [x[i] for i in px]
    rest = [P.zeros(inv[i].aval) for i in lc] + ct_final
    n_in = len(bconsts) + len(fc) + len(rest)
    carry_in = back.invars[n_in:n_in + len(init)]
    if not {a for q in back.eqns for a in q.inputs} & set(carry_in) and not set(back.outvars) & set(carry_in):
        # the transposed step reads no primal carry (a linear step): nothing to recompute
        sweep = sub(back, back.invars[:n_in] + back.invars[n_in + len(init):], back.outvars)
        res = bind_scan(sweep, bconsts + fc, rest, fx + ct_ys, length, not reverse)
    else:
        res = bind_revolve(fwd, back, bconsts, fc, init, fx, rest, ct_ys, length, reverse, policy[1])
    ct_c = dict(zip(lc, res[:len(lc)]))
    ct_k = dict(zip(lk, res[len(lc):len(lc) + len(lk)]))
    ct_x = dict(zip(lx, res[len(rest):]))
    return ([ct_c.get(i) for i in range(nc)]
            + [ct_k.get(j) if isinstance(k[j], Undefined) else None for j in range(nk)]
            + [ct_x.get(i) for i in range(nx)])


BINOMIAL_RULES.update(partial_eval=_binomial_partial, transpose=_binomial_transpose)


# ---------------------------------------------------------------------------
# scan_revolve: the reverse sweep


revolve_p = Primitive("scan_revolve", "control")
revolve_p.multiple_results = True


def bind_revolve(fwd, back, back_consts, fwd_consts, init, xs, rest, back_xs, length, reverse, snapshots):
    return bind(revolve_p, *back_consts, *fwd_consts, *init, *xs, *rest, *back_xs, fwd=fwd, back=back,
                n_back=len(back_consts), n_fwd=len(fwd_consts), n_carry=len(init), n_x=len(xs),
                n_rest=len(rest), length=length, reverse=reverse, snapshots=snapshots)


def _split(args, n_back, n_fwd, n_carry, n_x, n_rest):
    return split_sizes(args, n_back, n_fwd, n_carry, n_x, n_rest)


def _revolve_shape(*avals, fwd, back, n_back, n_fwd, n_carry, n_x, n_rest, length, reverse, snapshots):
    ys = [Aval((length,) + tuple(v.aval.shape), v.aval.dtype) for v in back.outvars[n_rest:]]
    return list(avals[n_back + n_fwd + n_carry + n_x:][:n_rest]) + ys


def _revolve_impl(*args, fwd, back, n_back, n_fwd, n_carry, n_x, n_rest, length, reverse, snapshots):
    bc, fc, carry, xs, rest, bxs = _split(args, n_back, n_fwd, n_carry, n_x, n_rest)
    at = (lambda i: length - 1 - i) if reverse else (lambda i: i)      # noqa: E731
    snaps = [None] * snapshots
    snaps[0] = [as_value(v) for v in carry]
    rest = [as_value(v) for v in rest]
    ys = [np.empty((length,) + tuple(v.aval.shape), v.aval.dtype) for v in back.outvars[n_rest:]]
    for action in schedule(length, snapshots):
        kind = action[0]
        if kind == "restore":
            carry = snaps[action[1]]
        elif kind == "store":
            snaps[action[1]] = carry
        elif kind == "advance":
            for i in range(action[1], action[1] + action[2]):
                carry = [as_value(v) for v in eval_ir(fwd, fc + carry + [x[at(i)] for x in xs])]
        else:
            t = at(action[1])
            out = eval_ir(back, bc + fc + rest + carry + [x[t] for x in xs] + [x[t] for x in bxs])
            rest = [as_value(v) for v in out[:n_rest]]
            for y, v in zip(ys, out[n_rest:]):
                y[t] = v
    return rest + ys


def _revolve_code(outs, ins, in_avals, out_avals, function, fwd, back, n_back, n_fwd, n_carry, n_x, n_rest,
                  length, reverse, snapshots):
    """The loop of :func:`schedule`, with the snapshots in arrays of
    ``snapshots`` carries and the recursion in ``_start`` and ``_todo``."""
    f, b = function(fwd), function(back)
    bc, fc, init, xs, rest, bxs = _split(ins, n_back, n_fwd, n_carry, n_x, n_rest)
    avals = in_avals[n_back + n_fwd:][:n_carry]
    carry = [f"_c{j}" for j in range(n_carry)]
    snaps = [f"_snap{j}" for j in range(n_carry)]
    rest_out, ys = outs[:n_rest], outs[n_rest:]
    y_t = [f"{y}_t" for y in ys]
    at = (lambda i: f"{length - 1} - ({i})") if reverse else (lambda i: i)      # noqa: E731
    lines = [empty_line(s, Aval((snapshots,) + tuple(av.shape), av.dtype)) for s, av in zip(snaps, avals)]
    lines += [f"{s}[0] = {i}" for s, i in zip(snaps, init)]
    lines += [f"{o} = {i}" for o, i in zip(rest_out, rest)]
    lines += [empty_line(y, av) for y, av in zip(ys, out_avals[n_rest:])]
    lines += [f"_start = np.zeros({snapshots}, np.int64)", f"_todo = np.zeros({snapshots}, np.int64)",
              f"_todo[0] = {length}", "_level = 0",
              "while _level >= 0:",
              "    _n = _todo[_level]",
              "    if _n == 0:",
              "        _level -= 1",
              "        continue",
              "    _a = _start[_level]",
              f"    _here = {snapshots} - _level",
              "    _turn = _n == 1 or _here == 1",
              "    if _turn:",
              "        _m = _n - 1",
              "    else:",
              "        _r, _b, _p = 0, 1, 1",
              "        while _b < _n:",
              "            _r += 1",
              "            _p, _b = _b, _b * (_here + _r) // _r",
              "        _m = min(_p, _n - _p * _here // (_here + _r - 1))"]
    lines += [f"    {c} = {s}[_level]" + (".copy()" if av.shape else "")
              for c, s, av in zip(carry, snaps, avals)]
    lines += ["    for _i in range(_a, _a + _m):", f"        _t = {at('_i')}"]
    lines += ["        " + line for line in f.call(carry, fc + carry + [f"{x}[_t]" for x in xs])]
    lines += ["    if _turn:", f"        _t = {at('_a + _m')}"]
    lines += ["        " + line for line in b.call(rest_out + y_t, bc + fc + rest_out + carry
                                                    + [f"{x}[_t]" for x in xs + bxs])]
    lines += [f"        {y}[_t] = {t}" for y, t in zip(ys, y_t)]
    lines += ["        _todo[_level] = _n - 1", "    else:"]
    lines += [f"        {s}[_level + 1] = {c}" for s, c in zip(snaps, carry)]
    lines += ["        _todo[_level] = _m", "        _level += 1", "        _start[_level] = _a + _m",
              "        _todo[_level] = _n - _m"]
    return lines


def _revolve_jvp(primals, tangents, fwd, back, n_back, n_fwd, n_carry, n_x, n_rest, length, reverse,
                 snapshots):
    """Forward over reverse: the snapshots hold the primal carries' tangents
    too, the forward step is its JVP, and so is the transposed step."""
    sizes = (n_back, n_fwd, n_carry, n_x, n_rest)
    bc, fc, init, xs, rest, bxs = _split(primals, *sizes)
    t_bc, t_fc, t_init, t_xs, t_rest, t_bxs = _split(tangents, *sizes)
    given = lambda ts: [t is not None for t in ts]      # noqa: E731
    f_flags = carry_fixpoint(fwd, given(t_fc) + given(t_init) + given(t_xs), n_fwd, n_carry)
    f_c = f_flags[n_fwd:n_fwd + n_carry]
    jfwd, jf_consts = jvp_grouped(fwd, f_flags, [n_fwd, n_carry, n_x], [n_carry], f_c)
    b_flags = carry_fixpoint(back, given(t_bc) + given(t_fc) + given(t_rest) + f_c + given(t_xs) + given(t_bxs),
                             n_back + n_fwd, n_rest)
    f_r = b_flags[n_back + n_fwd:n_back + n_fwd + n_rest]
    n_y = len(back.outvars) - n_rest
    out_nz = f_r + [d and inexact(v.aval) for d, v in zip(depends(back, b_flags)[n_rest:], back.outvars[n_rest:])]
    # the transposed step takes the forward step's constants too: unused inputs for the new ones
    jback, jb_consts = jvp_grouped(back, b_flags, [n_back, n_fwd, n_rest, n_carry, n_x, len(bxs)], [n_rest, n_y],
                                   out_nz, extra={1: [Var(aval_of(c)) for c in jf_consts]})

    def with_tangents(values, ts, flags):
        return list(values) + [t if t is not None else P.zeros(aval_of(v))
                               for v, t, f in zip(values, ts, flags) if f]
    outs = bind_revolve(jfwd, jback, jb_consts + with_tangents(bc, t_bc, given(t_bc)),
                        jf_consts + with_tangents(fc, t_fc, given(t_fc)), with_tangents(init, t_init, f_c),
                        with_tangents(xs, t_xs, given(t_xs)), with_tangents(rest, t_rest, f_r),
                        with_tangents(bxs, t_bxs, given(t_bxs)), length, reverse, snapshots)
    return untangle(outs, [n_rest, n_y], out_nz)


def _second_axis_first(a):
    return P.transpose(a, (1, 0) + tuple(range(2, aval_of(a).ndim)))


def _revolve_batch(args, batched, size, fwd, back, n_back, n_fwd, n_carry, n_x, n_rest, length, reverse,
                   snapshots):
    """The schedule depends on the trip count only: the batched sweep is the
    sweep of the batched steps (every carry and accumulator batched)."""
    sizes = (n_back, n_fwd, n_carry, n_x, n_rest)
    bc, fc, init, xs, rest, bxs = _split(args, *sizes)
    b_bc, b_fc, b_init, b_xs, b_rest, b_bxs = _split(batched, *sizes)
    init = [a if b else with_batch_axis(a, size) for a, b in zip(init, b_init)]
    rest = [a if b else with_batch_axis(a, size) for a, b in zip(rest, b_rest)]
    # xs are read along their axis 0: a batched one has the batch axis second
    xs = [_second_axis_first(a) if b else a for a, b in zip(xs, b_xs)]
    bxs = [_second_axis_first(a) if b else a for a, b in zip(bxs, b_bxs)]
    vfwd, vf_consts = close(vmap_ir(fwd, b_fc + [True] * n_carry + b_xs, size))
    vback, vb_consts = close(vmap_ir(back, b_bc + b_fc + [True] * (n_rest + n_carry) + b_xs + b_bxs, size))
    # the transposed step takes the batched forward step's constants too (unused)
    cut = len(vb_consts) + n_back
    vback = IR(vback.invars[:cut] + [Var(aval_of(c)) for c in vf_consts] + vback.invars[cut:], [], [],
               vback.eqns, vback.outvars)
    outs = bind_revolve(vfwd, vback, vb_consts + bc, vf_consts + fc, init, xs, rest, bxs, length, reverse,
                        snapshots)
    return outs[:n_rest] + [_second_axis_first(y) for y in outs[n_rest:]]


def _revolve_depends(flags, fwd, back, n_back, n_fwd, n_carry, n_x, n_rest, length, reverse, snapshots):
    f_bc, f_fc, f_init, f_xs, f_rest, f_bxs = _split(flags, n_back, n_fwd, n_carry, n_x, n_rest)
    carry = carry_fixpoint(fwd, f_fc + f_init + f_xs, n_fwd, n_carry, floating=False)[n_fwd:n_fwd + n_carry]
    out = depends(back, carry_fixpoint(back, f_bc + f_fc + f_rest + carry + f_xs + f_bxs, n_back + n_fwd,
                                       n_rest, floating=False))
    return out


def _revolve_partial(e, linear):
    """Reverse over reverse: the sweep as two scans, one stacking the carry
    entering each step, one running the transposed step backwards over them
    (what the default policy would have given), split as scans are.  So the
    second reverse pass keeps one carry per step."""
    p = e.params
    fwd, back, n_back, n_fwd, n_carry, n_x, n_rest = (p[k] for k in ("fwd", "back", "n_back", "n_fwd", "n_carry",
                                                                     "n_x", "n_rest"))
    length, reverse = p["length"], p["reverse"]
    bc, fc, init, xs, rest, bxs = _split(e.inputs, n_back, n_fwd, n_carry, n_x, n_rest)
    carry_in = fwd.invars[n_fwd:n_fwd + n_carry]
    stack = IR(fwd.invars, [], [], fwd.eqns, list(fwd.outvars) + list(carry_in))
    stacked = [Var(Aval((length,) + v.aval.shape, v.aval.dtype)) for v in carry_in]
    forward = Eqn(scan_p, fc + init + xs, [Var(v.aval) for v in carry_in] + stacked,
                  dict(body=stack, n_consts=n_fwd, n_carry=n_carry, length=length, reverse=reverse,
                       policy="carries"), e.where)
    # back's inputs are laid out as a scan body's: consts (back's, fwd's), carries (rest), xs
    sweep = Eqn(scan_p, bc + fc + rest + stacked + xs + bxs, list(e.outputs),
                dict(body=back, n_consts=n_back + n_fwd, n_carry=n_rest, length=length, reverse=not reverse,
                     policy="carries"), e.where)
    primal, lin, _ = split_linear([forward, sweep], [a for a, f in zip(e.inputs, linear) if f])
    return primal, lin


revolve_p.shape = _revolve_shape
revolve_p.impl = _revolve_impl
revolve_p.code = _revolve_code
revolve_p.jvp = _revolve_jvp
revolve_p.batch = _revolve_batch
revolve_p.partial_eval = _revolve_partial
revolve_p.depends = _revolve_depends
