"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp``.

Both follow JAX's model.  Under a transform, a call of the decorated function
becomes one equation whose parameters hold the function's IR and the user's
rule; differentiation uses the rule instead of looking inside.  Before code
generation the call is inlined (:func:`inline_calls`), so it compiles like any
other code.

- ``custom_jvp``: ``@f.defjvp`` registers ``rule(primals, tangents) ->
  (primal_out, tangent_out)``; both arguments are tuples.  The rule is traced,
  so it is itself differentiable (higher orders use it too).
- ``custom_vjp``: ``f.defvjp(fwd, bwd)`` with ``fwd(*args) -> (out, residuals)``
  and ``bwd(residuals, cotangent) -> tuple of cotangents, one per argument``.
  Reverse mode only, as in JAX.

The decorated function must return a single array.
"""
from __future__ import annotations

import functools

import numpy as np

from ..lax import elementwise as P
from ..core import tree as tree_util
from ..core.primitive import MissingRuleError, Primitive
from ..core.trace import Tracer, apply_eqn, aval_of, bind, eval_ir, is_tracing, new_trace, walk
from ..core.ir import IR


def _trace_fun(fun, args):
    with new_trace() as tr:
        tracers = [tr.new_arg(aval_of(a)) for a in args]
        out = fun(*tracers)
        if isinstance(out, (tuple, list, dict)):
            raise TypeError(f"{getattr(fun, '__name__', 'the function')} is decorated with a custom "
                            "derivative rule and must return a single array")
        return tr.to_ir([out])


def _call_impl(*args, ir, **params):
    return np.asarray(eval_ir(ir, args)[0])


def _call_shape(*avals, ir, **params):
    return ir.out_avals[0]


custom_jvp_call_p = Primitive("custom_jvp_call", "call")
custom_jvp_call_p.impl = _call_impl
custom_jvp_call_p.shape = _call_shape


def _custom_jvp_rule(primals, tangents, out, ir, rule):
    tangents = [P.instantiate(t, aval_of(p)) for p, t in zip(primals, tangents)]
    _, t_out = rule(tuple(primals), tuple(tangents))
    return t_out


custom_jvp_call_p.jvp = _custom_jvp_rule
custom_jvp_call_p.batch = lambda args, batched, size, ir, rule: _inline_batched(ir, args, batched, size)


custom_vjp_call_p = Primitive("custom_vjp_call", "call")
custom_vjp_call_p.impl = _call_impl
custom_vjp_call_p.shape = _call_shape


def _custom_vjp_jvp(primals, tangents, out, ir, fwd, bwd):
    _, res = fwd(*primals)
    res_leaves, res_tree = tree_util.flatten(res)
    tangents = [P.instantiate(t, aval_of(p)) for p, t in zip(primals, tangents)]
    return bind(custom_lin_p, *res_leaves, *tangents, n_res=len(res_leaves), res_tree=res_tree,
                bwd=bwd, out_aval=aval_of(out))


custom_vjp_call_p.jvp = _custom_vjp_jvp
custom_vjp_call_p.batch = lambda args, batched, size, ir, fwd, bwd: _inline_batched(ir, args, batched, size)


# custom_lin: the linear map whose transpose is the user's bwd.  It exists only
# between linearisation and transposition.
custom_lin_p = Primitive("custom_lin", "call")


def _lin_impl(*args, **params):
    raise NotImplementedError("forward-mode differentiation (jvp, jacfwd, hessian) of a custom_vjp "
                              "function is not supported; define a custom_jvp rule instead")


def _lin_transpose(ct, *args, n_res, res_tree, bwd, out_aval):
    res = tree_util.unflatten(res_tree, list(args[:n_res]))
    cts = bwd(res, ct)
    if not isinstance(cts, (tuple, list)) or len(cts) != len(args) - n_res:
        raise TypeError(f"the bwd rule of a custom_vjp function must return a tuple with one "
                        f"cotangent per argument ({len(args) - n_res}), got {cts!r}")
    return [None] * n_res + [None if c is None else P.convert(c, aval_of(a).dtype)
                             for c, a in zip(cts, args[n_res:])]


custom_lin_p.impl = _lin_impl
custom_lin_p.shape = lambda *avals, out_aval, **params: out_aval
custom_lin_p.transpose = _lin_transpose
custom_lin_p.batch = lambda *a, **k: _lin_impl()


def _inline_batched(ir, args, batched, size):
    from .vmap import vmap_eval
    outs, flags = vmap_eval(ir, args, batched, size)
    return outs[0]


class _Custom:
    def __init__(self, fun):
        self.fun = fun
        functools.update_wrapper(self, fun)

    def _bind(self, prim, args, **params):
        args = [a if isinstance(a, Tracer) else np.asarray(a, dtype=float if isinstance(a, (int, float))
                                                           else None) for a in args]
        ir = _trace_fun(self.fun, args)
        return bind(prim, *args, ir=ir, **params)


class custom_jvp(_Custom):
    """Decorator: a function with a user-supplied JVP rule (see module docs)."""

    def __init__(self, fun):
        super().__init__(fun)
        self.rule = None

    def defjvp(self, rule):
        self.rule = rule
        return rule

    def __call__(self, *args):
        if self.rule is None:
            raise MissingRuleError(f"custom_jvp function {self.__name__} has no rule: use @f.defjvp")
        if not is_tracing():
            return self.fun(*args)
        return self._bind(custom_jvp_call_p, args, rule=self.rule)


class custom_vjp(_Custom):
    """Decorator: a function with user-supplied fwd/bwd rules (see module docs)."""

    def __init__(self, fun):
        super().__init__(fun)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise MissingRuleError(f"custom_vjp function {self.__name__} has no rules: use f.defvjp(fwd, bwd)")
        if not is_tracing():
            return self.fun(*args)
        return self._bind(custom_vjp_call_p, args, fwd=self.fwd, bwd=self.bwd)


def inline_calls(ir: IR) -> IR:
    """Replace every call equation by the equations of its body."""
    if not any(e.prim.kind == "call" for e in ir.eqns):
        return ir
    with new_trace() as tr:
        args = [tr.new_arg(v.aval) for v in ir.invars]
        return tr.to_ir(walk(ir, args, _inline_rule))


def _inline_rule(e, ins):
    if e.prim.kind != "call":
        return apply_eqn(e, ins)
    if "ir" not in e.params:      # custom_lin: only reverse mode can use it
        _lin_impl()
    return eval_ir(inline_calls(e.params["ir"]), ins)[0]
