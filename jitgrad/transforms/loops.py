"""Loops that stay loops: the ``scan`` primitive and its rules, and what the
loop primitives share (see also :mod:`jitgrad.transforms.while_loops`).

``scan``  operands ``consts..., init..., xs...``; parameters ``body`` (a closed
          sub-IR ``(consts..., carry..., x_t...) -> (carry..., y_t...)``),
          ``n_consts``, ``n_carry``, ``length``, ``reverse``, ``policy``.
          Outputs: the final carries, then each ``y`` stacked along a new
          leading axis of ``length``.  Step ``t`` reads ``xs[t]`` and writes
          ``ys[t]``; with ``reverse`` the steps run from ``length - 1`` down to 0.

Differentiation (see :mod:`jitgrad.transforms.autodiff`): forward mode runs a
loop over (primal, tangent) carries; only the carries whose tangent can be
nonzero get one (a fixpoint over the body's data flow).  Reverse mode splits
that loop (``partial_eval``) into a primal loop that also stacks residuals of
every step, and a loop linear in the tangents that reads them; ``policy``
chooses the residuals (the primal carries, from which the linear loop
recomputes each step, or every value the linear part reads).  The transpose
of the linear loop runs the transposed step backwards over the residuals.
Either way the code is a loop whatever the trip count.
"""
from __future__ import annotations

import numpy as np

from .. import lax as P
from ..core.ir import IR, Aval, Eqn, Var
from ..core.primitive import Primitive, Undefined
from ..core.trace import aval_of, bind, eval_ir, new_trace
from .autodiff import backward, jvp_ir, split_linear
from .subir import carry_fixpoint, close, depends, inexact, sub
from .vmap import vmap_ir
from ..lax.structural import with_batch_axis


# The rules of a scan with the binomial policy (``("binomial", s)``), set by
# jitgrad.transforms.revolve (which builds on this module).
BINOMIAL_RULES = {}


def is_binomial(policy):
    return isinstance(policy, tuple) and policy[:1] == ("binomial",)


def split_sizes(seq, *sizes):
    out, i = [], 0
    for n in sizes:
        out.append(list(seq[i:i + n]))
        i += n
    out.append(list(seq[i:]))
    return out


def _second_axis_first(ndim):
    return (1, 0) + tuple(range(2, ndim))


def as_value(x):
    """An interpreter value as the IR's convention has it (0-d: a NumPy scalar)."""
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def reorder(ir, groups_in, outvars):
    """``ir`` with its inputs regrouped (a flat concatenation of ``groups_in``)
    and the given outputs, closed: returns ``(ir, its constants)``."""
    invars = [v for g in groups_in for v in g]
    return close(IR(invars, ir.constvars, ir.consts, ir.eqns, outvars))


def jvp_grouped(ir, flags, in_sizes, out_sizes, out_nz, extra=()):
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
    return reorder(jb, groups, outs)


def untangle(outs, sizes, nz):
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


def empty_line(name, aval):
    """``name = np.empty(shape, dtype)`` (through backend.libcalls); a
    dimension may be a variable's name."""
    dims = "".join(f"{d}, " for d in aval.shape)
    return f"{name} = lc.empty(({dims}), np.{np.dtype(aval.dtype).name})"


def sequential_batch(prim):
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


# ---------------------------------------------------------------------------
# scan


scan_p = Primitive("scan", "control")
scan_p.multiple_results = True


def _scan_shape(*avals, body, n_consts, n_carry, length, reverse, policy):
    ys = [Aval((length,) + tuple(v.aval.shape), v.aval.dtype) for v in body.outvars[n_carry:]]
    return list(avals[n_consts:n_consts + n_carry]) + ys


def _scan_impl(*args, body, n_consts, n_carry, length, reverse, policy):
    consts, carry, xs = split_sizes(args, n_consts, n_carry)
    carry = [as_value(c) for c in carry]
    ys = [np.empty((length,) + tuple(v.aval.shape), v.aval.dtype) for v in body.outvars[n_carry:]]
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = eval_ir(body, consts + carry + [x[t] for x in xs])
        carry = [as_value(c) for c in outs[:n_carry]]
        for y, v in zip(ys, outs[n_carry:]):
            y[t] = v
    return carry + ys


def bind_scan(body, consts, init, xs, length, reverse, policy="carries"):
    """Bind a scan of the closed sub-IR ``body`` (see :func:`close`): its
    leading inputs take ``consts``."""
    return bind(scan_p, *consts, *init, *xs, body=body, n_consts=len(consts), n_carry=len(init),
                length=length, reverse=reverse, policy=policy)


def _scan_jvp(primals, tangents, body, n_consts, n_carry, length, reverse, policy):
    nc, nk = n_consts, n_carry
    flags = carry_fixpoint(body, [t is not None for t in tangents], nc, nk)
    out_nz = [d and inexact(v.aval) for d, v in zip(depends(body, flags), body.outvars)]
    out_nz[:nk] = flags[nc:nc + nk]
    n_x = len(body.invars) - nc - nk
    ny = len(body.outvars) - nk
    jbody, jconsts = jvp_grouped(body, flags, [nc, nk, n_x], [nk, ny], out_nz)
    c, k, x = split_sizes(primals, nc, nk)
    tc, tk, tx = split_sizes(tangents, nc, nk)
    f_c, f_k, f_x = split_sizes(flags, nc, nk)
    init_t = [t if t is not None else P.zeros(body.invars[nc + i].aval)
              for i, (t, f) in enumerate(zip(tk, f_k)) if f]
    outs = bind_scan(jbody, jconsts + c + [t for t, f in zip(tc, f_c) if f], k + init_t,
                     x + [t for t, f in zip(tx, f_x) if f], length, reverse, policy)
    return untangle(outs, [nk, ny], out_nz)


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
    if is_binomial(p["policy"]):
        return BINOMIAL_RULES["partial_eval"](e, linear)
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
    # the linear scan: consts (primal, then linear), linear carries, then the
    # stored residuals, the primal xs and the linear xs as its xs; of the
    # primal values only those its body reads (a linear step reads none)
    lin_in = [inv[i] for i in pc + lc + lk] + residuals + [inv[i] for i in px + lx]
    lbody = sub(IR(inv, [], [], lin_src, []), lin_in, [body.outvars[j] for j in lin_out])
    read = {a for q in lbody.eqns for a in q.inputs} | set(lbody.outvars)
    residuals = [r for r in residuals if r in read]
    pc = [i for i in pc if inv[i] in read]
    px = [i for i in px if inv[i] in read]
    lbody = sub(lbody, [inv[i] for i in pc + lc + lk] + residuals + [inv[i] for i in px + lx],
                lbody.outvars)
    # the primal scan: its own outputs, then the residuals of each step
    pbody = sub(IR(inv, [], [], primal_eqns, []), [inv[i] for i in nl],
                [body.outvars[j] for j in prim_out] + residuals)
    stacked = [Var(Aval((p["length"],) + r.aval.shape, r.aval.dtype)) for r in residuals]
    primal = Eqn(scan_p, [e.inputs[i] for i in nl], [e.outputs[j] for j in prim_out] + stacked,
                 dict(p, body=pbody, n_consts=sum(1 for i in nl if i < nc), n_carry=len(pk)), e.where)
    ins = [e.inputs[i] for i in pc + lc + lk] + stacked + [e.inputs[i] for i in px + lx]
    linear_eqn = Eqn(scan_p, ins, [e.outputs[j] for j in lin_out],
                     dict(p, body=lbody, n_consts=len(pc) + len(lc), n_carry=len(lk)), e.where)
    return [primal], [linear_eqn]


def _scan_transpose(cts, *args, body, n_consts, n_carry, length, reverse, policy):
    if is_binomial(policy):
        return BINOMIAL_RULES["transpose"](cts, *args, body=body, n_consts=n_consts, n_carry=n_carry,
                                           length=length, reverse=reverse, policy=policy)
    nc, nk = n_consts, n_carry
    c, k, x = split_sizes(args, nc, nk)
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
    ct_c, ct_k, ct_x = split_sizes(res, len(lin_c), nk)
    out_c = dict(zip(lin_c, ct_c))
    out_x = dict(zip(lin_x, ct_x))
    return ([out_c.get(i) for i in range(nc)]
            + [g if isinstance(a, Undefined) else None for a, g in zip(k, ct_k)]
            + [out_x.get(i) for i in range(len(x))])


def _scan_batch(args, batched, size, body, n_consts, n_carry, length, reverse, policy):
    nc, nk = n_consts, n_carry
    c, k, x = split_sizes(args, nc, nk)
    b_c, _, b_x = split_sizes(batched, nc, nk)
    k = [a if b else with_batch_axis(a, size) for a, b in zip(k, batched[nc:nc + nk])]
    # xs are scanned along their axis 0: a batched one has the batch axis second
    x = [P.transpose(a, _second_axis_first(aval_of(a).ndim)) if b else a for a, b in zip(x, b_x)]
    vbody, vconsts = close(vmap_ir(body, b_c + [True] * nk + b_x, size))
    outs = bind_scan(vbody, vconsts + c, k, x, length, reverse, policy)
    ys = [P.transpose(y, _second_axis_first(aval_of(y).ndim)) for y in outs[nk:]]
    return outs[:nk] + ys


def _scan_code(outs, ins, in_avals, out_avals, function, body, n_consts, n_carry, length, reverse, policy):
    """``for _t in range(length)``: call the body's function on the carries and
    ``xs[_t]``, store each ``y`` into ``ys[_t]``."""
    f = function(body)
    consts, init, xs = split_sizes(ins, n_consts, n_carry)
    carry, ys = outs[:n_carry], outs[n_carry:]
    lines = [f"{c} = {i}" for c, i in zip(carry, init)]
    lines += [empty_line(y, av) for y, av in zip(ys, out_avals[n_carry:])]
    y_t = [f"{y}_t" for y in ys]
    lines.append(f"for _t in range({length - 1}, -1, -1):" if reverse else f"for _t in range({length}):")
    lines += ["    " + line for line in f.call(carry + y_t, consts + carry + [f"{x}[_t]" for x in xs])]
    # (an array row through backend.libcalls: compiled once, not in every module)
    lines += [f"    lc.store({y}, _t, {t})" if av.ndim > 1 else f"    {y}[_t] = {t}"
              for y, t, av in zip(ys, y_t, out_avals[n_carry:])]
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
