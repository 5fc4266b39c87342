"""Forward and reverse mode as IR -> IR transforms.

Forward mode (:func:`jvp_ir`) walks the IR once and calls each primitive's jvp
rule on tracers of a new trace; tangents are ``None`` where they are known to
be zero, so untouched branches cost nothing.

Reverse mode (:func:`vjp_ir`) is forward mode followed by transposition.  In the
JVP IR every equation either depends on a tangent input (then it is linear in
the tangents, because jvp rules only ever multiply tangents by primal values)
or does not (then it is primal work).  One forward pass splits the two; the
primal equations are replayed, and the linear ones are walked backwards
through their primitives' transpose rules, accumulating cotangents.
"""
from __future__ import annotations

import numpy as np

from .. import lax as P
from ..core.primitive import MissingRuleError, Undefined
from ..core.trace import apply_eqn, at_line, aval_of, bind, new_trace, walk
from ..core.ir import IR, Lit, Var


def jvp_ir(ir: IR, which=None) -> IR:
    """Return an IR of ``(primals..., tangents of the selected inputs...) ->
    (outputs..., output tangents...)``.  ``which`` lists the inputs that get a
    tangent (default: all floating and complex ones)."""
    if which is None:
        which = [i for i, v in enumerate(ir.invars) if np.issubdtype(v.aval.dtype, np.inexact)]
    with new_trace() as tr:
        primals = [tr.new_arg(v.aval) for v in ir.invars]
        tangents = [tr.new_arg(ir.invars[i].aval) for i in which]
        outs, out_tangents = _jvp_eval(ir, primals, {i: t for i, t in zip(which, tangents)})
        out_tangents = [P.instantiate(t, o.aval) for t, o in zip(out_tangents, ir.outvars)]
        return tr.to_ir(outs + out_tangents)


def _jvp_rule(e, ins):
    """One equation of forward mode, on (primal, tangent) pairs (tangent None: zero)."""
    primals = [p for p, _ in ins]
    tangents = [t for _, t in ins]
    if all(t is None for t in tangents):
        out = bind(e.prim, *primals, **e.params)
        return [(o, None) for o in out] if e.prim.multiple_results else (out, None)
    if e.prim.multiple_results:
        # control flow: the rule computes the primal outputs with the tangents
        # (one loop over both), not after them
        out, t = e.prim.rule("jvp")(primals, tangents, **e.params)
        return list(zip(out, t))
    out = bind(e.prim, *primals, **e.params)
    return out, e.prim.rule("jvp")(primals, tangents, out, **e.params)


def _no_tangent(x):
    return x, None


def _jvp_eval(ir, primals, tangent_of):
    """Evaluate ``ir`` on primals, pushing tangents through every equation."""
    args = [(x, tangent_of.get(i)) for i, x in enumerate(primals)]
    outs = walk(ir, args, _jvp_rule, [(c, None) for c in ir.consts], lift=_no_tangent)
    return [p for p, _ in outs], [t for _, t in outs]


def vjp_ir(ir: IR, which, seed_ones=False, n_cts=None) -> IR:
    """Return an IR of ``(primals..., cotangents of the outputs...) ->
    (outputs..., cotangents of the selected inputs...)``.

    Only the first ``n_cts`` outputs (default: all) take a cotangent; the others
    (auxiliary outputs) are passed through.  With ``seed_ones`` the cotangents
    are the literal 1 (the gradient of a scalar function), so the IR takes only
    the primals.

    Reverse mode is forward mode followed by transposition: linearise
    (:func:`jvp_ir`), split the equations into the primal ones and the linear
    ones (those reading a tangent), evaluate the primal ones, then run the
    linear ones backwards through their transpose rules.
    """
    lin = jvp_ir(ir, which)
    n_in, n_out = len(ir.invars), len(ir.outvars)
    n_cts = n_out if n_cts is None else n_cts
    with new_trace() as tr:
        primals = [tr.new_arg(v.aval) for v in ir.invars]
        if seed_ones:
            cts_out = [np.asarray(1, v.aval.dtype)[()] if v.aval.shape == () else
                       P.full(v.aval.shape, 1, v.aval.dtype) for v in ir.outvars[:n_cts]]
        else:
            cts_out = [tr.new_arg(v.aval) for v in ir.outvars[:n_cts]]
        env = {}
        args = primals + [Undefined(v.aval) for v in lin.invars[n_in:]]
        grads = backward(lin, args, [None] * n_out + cts_out, env=env)
        outs = [v.array if isinstance(v, Lit) else env[v] for v in lin.outvars[:n_out]]
        return tr.to_ir(outs + grads)


def split_linear(eqns, linear):
    """Split equations into primal work and the equations linear in the
    variables ``linear`` (those that read one of them, transitively).

    A control-flow equation that reads both is split by its primitive's
    ``partial_eval`` rule into primal equations (which may compute residuals)
    and linear ones.  Returns ``(primal eqns, linear eqns, linear vars)``."""
    linear = set(linear)
    primal_eqns, linear_eqns = [], []
    for e in eqns:
        flags = [isinstance(a, Var) and a in linear for a in e.inputs]
        if not any(flags):
            primal_eqns.append(e)
            continue
        if e.prim.partial_eval is not None:
            p_eqns, l_eqns = e.prim.partial_eval(e, flags)
        else:
            p_eqns, l_eqns = [], [e]
        primal_eqns += p_eqns
        for le in l_eqns:
            linear.update(le.outputs)
        linear_eqns += l_eqns
    return primal_eqns, linear_eqns, linear


def backward(ir: IR, args, cts, env=None):
    """Transpose ``ir`` with respect to its inputs where ``args[i]`` is
    :class:`Undefined`, on the values given for the others, in the current
    trace (or on NumPy values).

    ``ir`` must be linear in the undefined inputs (a JVP IR is: its tangent
    inputs are only ever scaled by primal values).  Its primal part is
    evaluated first (into ``env``, if given), then the linear part runs
    backwards from ``cts`` (one cotangent or ``None`` per output).  Returns
    the cotangent of each undefined input, zeros where none reaches it."""
    linear_in = [v for v, a in zip(ir.invars, args) if isinstance(a, Undefined)]
    primal_eqns, linear_eqns, linear = split_linear(ir.eqns, linear_in)
    env = {} if env is None else env
    known = [(v, a) for v, a in zip(ir.invars, args) if not isinstance(a, Undefined)]
    walk(IR([v for v, _ in known], ir.constvars, ir.consts, primal_eqns, []), [a for _, a in known],
         apply_eqn, env=env)

    def read(a):
        return a.array if isinstance(a, Lit) else env[a]

    seeds = [(v, c) for v, c in zip(ir.outvars, cts)
             if c is not None and isinstance(v, Var) and v in linear]
    ct = _transpose(linear_eqns, linear, seeds, read)
    return [P.instantiate(ct.get(v), v.aval) for v in linear_in]


def _transpose(linear_eqns, linear, seeds, read):
    """Run the linear equations backwards from the output cotangents ``seeds``
    ((var, cotangent) pairs); return the accumulated cotangent of every linear
    variable still reached (the inputs' among them).  ``read`` gives the
    values of the non-linear operands."""
    ct = {}
    masked = {}   # id(cotangent) -> (cotangent, pred, on_true, cotangent before masking); see below

    def add_ct(v, c):
        if c is None:
            return
        if v not in ct:
            ct[v] = c
            return
        old = ct[v]
        ct[v] = total = P.add(old, c)
        _mask_sum(masked, total, old, c)

    for v, c in seeds:
        add_ct(v, c)
    for e in reversed(linear_eqns):
        if e.prim.multiple_results:
            c = [ct.pop(v, None) for v in e.outputs]
            if all(x is None for x in c):
                continue
        else:
            c = ct.pop(e.outputs[0], None)
            if c is None:
                continue
        if e.prim.transpose is None:
            raise MissingRuleError(
                f"primitive '{e.prim.name}' has no transpose rule but was applied to a "
                "tangent; its jvp rule must be linear in the tangents")
        args = [Undefined(a.aval) if isinstance(a, Var) and a in linear else read(a)
                for a in e.inputs]
        with at_line(e.where):          # (the sums of cotangents too)
            cts_in = _transpose_masked(e, c, args, masked)
            for a, c_in in zip(e.inputs, cts_in):
                if isinstance(a, Var) and a in linear:
                    add_ct(a, c_in)
    return ct


# NaN-safe where.  The transpose of select(p, a, b) gives a the cotangent
# select(p, ct, 0): zero where the branch was not taken.  Multiplying that zero
# by an infinite derivative of the untaken branch (sqrt at 0, log at 0) would
# give NaN.  A masked cotangent therefore stays masked through the linear maps
# that follow it:
# - through the elementwise scalings (mul, div, neg, convert, add, sub) the
#   scaling is applied to the cotangent before masking and the mask after, so
#   masked positions are exactly 0 and every other position keeps IEEE
#   arithmetic;
# - through the maps that only move, copy or add up values (reshape,
#   transpose, broadcast, sums, slices, gathers ...) the mask moves with them:
#   applied to the indicator u of the unmasked positions (1 there, 0 where
#   masked), the same map gives a count of unmasked contributions per output
#   position (every coefficient is 0 or 1), and where that count is 0 every
#   contribution was an exact 0, so the result is masked there.
_SCALINGS = ("mul", "div", "neg", "convert", "add", "sub")
_MOVES = ("reshape", "transpose", "broadcast_in_dim", "reduce_sum", "slice", "pad",
          "concatenate", "gather", "scatter_add", "cumsum")


def _mask_sum(masked, total, a, b):
    """A sum of two masked cotangents is masked where both are (its terms are
    exact zeros there); a sum with an unmasked one is not."""
    ma, mb = masked.get(id(a)), masked.get(id(b))
    if ma is None or mb is None or ma[0] is not a or mb[0] is not b:
        return
    if ma[1] is mb[1] and ma[2] == mb[2]:
        pred, on_true = ma[1], ma[2]
    else:
        shape = aval_of(total).shape
        if aval_of(ma[1]).shape != shape or aval_of(mb[1]).shape != shape:
            return
        unmasked = [m[1] if m[2] else P.logical_not(m[1]) for m in (ma, mb)]
        pred, on_true = P.logical_or(*unmasked), True
    masked[id(total)] = (total, pred, on_true, total)


def _transpose_masked(e, c, args, masked):
    if e.prim.multiple_results:         # (c: a list, one cotangent or None per output)
        return e.prim.transpose(c, *args, **e.params)
    m = masked.get(id(c))
    if m is not None and m[0] is c and e.prim.name in _SCALINGS:
        _, pred, on_true, raw = m
        outs = []
        for r in e.prim.transpose(raw, *args, **e.params):
            if r is None:
                outs.append(None)
                continue
            z = P.zeros(aval_of(r))
            out = P.select(pred, r, z) if on_true else P.select(pred, z, r)
            masked[id(out)] = (out, pred, on_true, r)   # keeps `out` alive: ids stay unique
            outs.append(out)
        return outs
    outs = e.prim.transpose(c, *args, **e.params)
    if m is not None and m[0] is c and e.prim.name in _MOVES:
        _, pred, on_true, _ = m
        if aval_of(pred).shape == aval_of(c).shape:
            dtype = P.real_dtype(aval_of(c).dtype)    # (a count: real, also for complex c)
            unmasked = P.select(pred, P.full(aval_of(pred).shape, 1 if on_true else 0, dtype),
                                P.full(aval_of(pred).shape, 0 if on_true else 1, dtype))
            for out, count in zip(outs, e.prim.transpose(unmasked, *args, **e.params)):
                if out is not None:
                    masked[id(out)] = (out, P.gt(count, 0), True, out)
    if e.prim.name == "select":
        pred = args[0]
        for i, on_true in ((1, True), (2, False)):
            if outs[i] is not None:
                masked[id(outs[i])] = (outs[i], pred, on_true, c)
    return outs
