"""Batching (vmap) as an IR -> IR transform.

``vmap_ir(ir, batched, size)`` returns an IR whose batched inputs carry an
extra leading axis of length ``size``; every output carries it too.  Each
primitive's rule receives its operands with a flag per operand saying whether
it is batched (always along axis 0) and returns the batched result.  This is
what lets a Jacobian evaluate all its directions in one compiled call.
"""
from __future__ import annotations

import numpy as np

from ..lax import elementwise as P
from ..core.trace import MissingRuleError, Tracer, aval_of, at_line, bind, new_trace
from ..core.ir import IR, Lit


def _lit_value(a):
    return np.asarray(a.value, a.dtype)[()]


def _with_batch(x, size):
    """Give an unbatched operand the leading batch axis."""
    av = aval_of(x)
    return P.broadcast_in_dim(x, (size,) + av.shape, tuple(range(1, len(av.shape) + 1)))


def _elementwise_rule(prim):
    def rule(args, batched, size, **params):
        # the unbatched shapes broadcast (0-d operands stand beside arrays)
        inner = max((aval_of(a).shape[1:] if b else aval_of(a).shape for a, b in zip(args, batched)),
                    key=len)
        shape = (size,) + inner
        out = []
        for a, b in zip(args, batched):
            av = aval_of(a)
            if b and av.shape != shape:              # a batched 0-d value
                a = P.broadcast_in_dim(a, shape, (0,))
            elif not b and (av.shape != () or isinstance(a, Tracer)):
                a = P.broadcast_in_dim(a, shape, tuple(range(1 + len(inner) - av.ndim, len(shape))))
            out.append(a)
        return bind(prim, *out, **params)
    return rule


def _shift(axes):
    return tuple(a + 1 for a in axes)


def _broadcast_rule(args, batched, size, shape, dims):
    (x,) = args
    return P.broadcast_in_dim(x, (size,) + tuple(shape), (0,) + _shift(dims))


def _reshape_rule(args, batched, size, shape):
    return P.reshape(args[0], (size,) + tuple(shape))


def _transpose_rule(args, batched, size, perm):
    return P.transpose(args[0], (0,) + _shift(perm))


def _slice_rule(args, batched, size, start, stop, step):
    return P.slice_(args[0], (0,) + start, (size,) + stop, (1,) + step)


def _pad_rule(args, batched, size, shape, start, step):
    return P.pad(args[0], (size,) + shape, (0,) + start, (1,) + step)


def _reduce_rule(prim):
    def rule(args, batched, size, axes):
        return bind(prim, args[0], axes=_shift(axes))
    return rule


def _concatenate_rule(args, batched, size, axis):
    args = [a if b else _with_batch(a, size) for a, b in zip(args, batched)]
    return P.concatenate(args, axis + 1)


def _dot_rule(args, batched, size, contract, batch):
    x, y = args
    bx, by = batched
    (xc, yc), (xb, yb) = contract, batch
    if bx and by:
        return P.dot_general(x, y, (_shift(xc), _shift(yc)), ((0,) + _shift(xb), (0,) + _shift(yb)))
    if bx:
        # the new axis is x's first free axis: it lands right after the batch axes
        out = P.dot_general(x, y, (_shift(xc), yc), (_shift(xb), yb))
        pos = len(xb)
    else:
        out = P.dot_general(x, y, (xc, _shift(yc)), (xb, _shift(yb)))
        x_free = aval_of(x).ndim - len(xc) - len(xb)
        pos = len(xb) + x_free
    nd = aval_of(out).ndim
    perm = (pos,) + tuple(i for i in range(nd) if i != pos)
    return P.transpose(out, perm)


_RULES = {
    "broadcast_in_dim": _broadcast_rule, "reshape": _reshape_rule,
    "transpose": _transpose_rule, "slice": _slice_rule, "pad": _pad_rule,
    "concatenate": _concatenate_rule, "dot_general": _dot_rule,
}
for _name in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod"):
    _RULES[_name] = _reduce_rule(P.PRIMITIVES[_name])


def batch_rule(prim):
    rule = getattr(prim, "batch", None) or _RULES.get(prim.name)
    if rule is None and prim.kind == "elementwise":
        rule = _elementwise_rule(prim)
    if rule is None:
        raise MissingRuleError(f"primitive '{prim.name}' has no batching rule")
    return rule


def vmap_ir(ir: IR, batched, size) -> IR:
    """Batch ``ir`` along a new leading axis of length ``size`` for the inputs
    flagged in ``batched``; every output is batched."""
    with new_trace() as tr:
        args = []
        for v, b in zip(ir.invars, batched):
            shape = ((size,) if b else ()) + v.aval.shape
            args.append(tr.new_arg(type(v.aval)(shape, v.aval.dtype)))
        outs, out_b = vmap_eval(ir, args, batched, size)
        outs = [o if b else _with_batch(o, size) for o, b in zip(outs, out_b)]
        return tr.to_ir(outs)


def vmap_eval(ir, args, batched, size):
    env = dict(zip(ir.constvars, ir.consts))
    is_b = {}
    for v, x, b in zip(ir.invars, args, batched):
        env[v] = x
        is_b[v] = b

    def read(a):
        return _lit_value(a) if isinstance(a, Lit) else env[a]

    def flag(a):
        return False if isinstance(a, Lit) else is_b.get(a, False)

    for e in ir.eqns:
        ins = [read(a) for a in e.inputs]
        flags = [flag(a) for a in e.inputs]
        with at_line(e.where):
            if any(flags):
                out = batch_rule(e.prim)(ins, flags, size, **e.params)
            else:
                out = bind(e.prim, *ins, **e.params)
        env[e.outputs[0]] = out
        is_b[e.outputs[0]] = any(flags)
    return [read(v) for v in ir.outvars], [flag(v) for v in ir.outvars]
