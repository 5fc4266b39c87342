"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp``.

Both follow JAX's model.  Under a transform, a call of the decorated function
becomes call equations whose parameters hold the function's IR and the user's
rules, traced to IRs too; differentiation uses the rules instead of looking
inside.  Before code generation the calls are inlined (:func:`inline_calls`),
so they compile like any other code.

- ``custom_jvp``: ``@f.defjvp`` registers ``rule(primals, tangents) ->
  (primal_out, tangent_out)``; ``primals`` and ``tangents`` are tuples with one
  entry per argument.  The rule is traced, so it is itself differentiable
  (higher orders use it too).
- ``custom_vjp``: ``f.defvjp(fwd, bwd)`` with ``fwd(*args) -> (out, residuals)``
  and ``bwd(residuals, cotangent) -> tuple of cotangents, one per argument``
  (``None`` for a zero one).  Reverse mode only, as in JAX; forward over
  reverse (``hessian``) differentiates ``bwd``.

Arguments and outputs may be pytrees (tuples, lists, dicts of arrays); the
rules' outputs must have the function's output structure, shapes and dtypes,
or a ``TypeError`` names the rule and what was expected.  Keyword arguments
are matched to positions by the function's signature.  ``nondiff_argnums``
names arguments that are Python values (functions, sizes, flags) rather than
arrays; as in JAX the rules receive them first: ``rule(*nondiff, primals,
tangents)``, ``fwd(*args)``, ``bwd(*nondiff, residuals, cotangent)``, and
``primals``, ``tangents`` and ``bwd``'s result leave them out.

The function and its rules are traced when the function is called.  Traced
values of the enclosing function that they read (closures) become explicit
operands of the call equations, so the rules stay usable by any later
transform; differentiating with respect to such a value raises (the rule
gives derivatives for the arguments only), as in JAX.  A rule that fails when
traced fails again, with its own error, when a derivative needs it.  An
equation has one output, so a function with several output leaves binds one
call per leaf; once inlined, common-subexpression elimination merges them.
"""
from __future__ import annotations

import functools
import inspect
import threading

import numpy as np

from .. import lax as P
from ..core import tree as tree_util
from ..core.errors import JitgradError
from ..core.names import by_qualified_name
from ..core.primitive import MissingRuleError, Primitive
from ..core.trace import Tracer, apply_eqn, aval_of, bind, eval_ir, is_tracing, new_trace, walk
from ..core.ir import IR
from .vmap import vmap_ir


# ---------------------------------------------------------------------------
# Tracing the function and its rules


def _trace_closed(fn, in_avals):
    """Trace ``fn`` (flat arrays -> flat list of arrays) on ``in_avals``.

    Returns ``(ir, closure)``: ``ir`` takes the inputs followed by the traced
    values of enclosing traces that ``fn`` read (``closure``, which the caller
    passes as operands), so the IR holds no tracer and can be used later."""
    with new_trace() as tr:
        ir = tr.to_ir(fn(*[tr.new_arg(av) for av in in_avals]))
    pairs = list(zip(ir.constvars, ir.consts))
    closed = [(v, c) for v, c in pairs if isinstance(c, Tracer)]
    if not closed:
        return ir, []
    kept = [(v, c) for v, c in pairs if not isinstance(c, Tracer)]
    return (IR(ir.invars + [v for v, _ in closed], [v for v, _ in kept], [c for _, c in kept],
               ir.eqns, ir.outvars), [c for _, c in closed])


class _RuleError:
    """A rule that raised when it was traced.  As in JAX, its error is raised
    when a derivative needs the rule, not where none is taken."""

    def __init__(self, exc):
        self.exc = exc


class _Deferred:
    """A rule traced when first used.  A rule that calls its own custom
    function (``return f(x), ...``, common in JAX code) must not trace that
    call's rule at once, or tracing would never end: within the tracing of a
    function's rules, its own calls get deferred rules."""

    def __init__(self, owner, trace):
        self.owner, self.trace, self.ir = owner, trace, None

    def get(self):
        if self.ir is None:
            with _rules_of(self.owner):
                ir, closure = self.trace()
            if closure:
                raise JitgradError(
                    f"a rule of {self.owner.kind} function {self.owner.__name__}, called from one of "
                    "its own rules, reads traced values of the enclosing function; pass them as arguments")
            self.ir = ir
        return self.ir


_tracing = threading.local()     # .owners: the custom functions whose rules this thread traces


class _rules_of:
    """Context manager: the rules of ``owner`` are being traced on this thread."""

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        owners = _tracing.__dict__.setdefault("owners", [])
        owners.append(self.owner)

    def __exit__(self, *exc):
        _tracing.owners.pop()


def _trace_rule(owner, trace):
    """``trace() -> (ir, closure)`` now, or deferred (see :class:`_Deferred`);
    an error of the rule is kept for when the rule is used."""
    if any(o is owner for o in _tracing.__dict__.get("owners", ())):
        return _Deferred(owner, trace), []
    try:
        with _rules_of(owner):
            return trace()
    except Exception as exc:      # noqa: BLE001 - re-raised when the rule is used
        return _RuleError(exc), []


def _use(rule):
    """The IR of a rule (traced now if deferred); re-raises a rule's error."""
    if isinstance(rule, _RuleError):
        raise rule.exc
    if isinstance(rule, _Deferred):
        return rule.get()
    return rule


def _describe(x):
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return "a single array"
    return f"a {type(x).__name__}"


def _check_like(value, tree, avals, what, strict_dtype=True):
    """Flatten a rule's result and check it against the expected structure,
    shapes and dtypes; return its leaves (Python numbers take the expected
    dtype; with ``strict_dtype=False`` floating leaves are converted)."""
    leaves, td = tree_util.flatten(value)
    if td != tree:
        raise TypeError(f"{what} must have the structure {tree}, got {td}")
    out = []
    for i, (x, av) in enumerate(zip(leaves, avals)):
        where = "" if len(avals) == 1 else f" (leaf {i})"
        if isinstance(x, (int, float, complex)) and not isinstance(x, bool):
            x = np.asarray(x, av.dtype)
        got = aval_of(x)
        floating = np.issubdtype(av.dtype, np.inexact)      # (a real leaf may become complex)
        dtype_ok = got.dtype == av.dtype or not floating or (
            not strict_dtype and np.issubdtype(got.dtype, np.floating))
        if got.shape != av.shape or not dtype_ok:
            raise TypeError(f"{what}{where} has shape {got.shape} and dtype {got.dtype}; "
                            f"expected shape {av.shape} and dtype {av.dtype}")
        out.append(x if got.dtype == av.dtype else P.convert(x, av.dtype))
    return out


def _no_closure_tangents(tangents, kind, name):
    if any(t is not None for t in tangents):
        raise JitgradError(
            f"{kind} function {name} was differentiated with respect to a traced value it closes "
            "over (a value computed in the enclosing function); its rules give derivatives for "
            "its arguments only: pass that value as an argument")


# ---------------------------------------------------------------------------
# The primitives.  Operands of a call: the argument leaves (n_args), then the
# closures of the function (n_fun) and of the rules.  ``index``: which output
# leaf this equation computes.


def _call_impl(*args, ir, n_args, n_fun, index, **params):
    return np.asarray(eval_ir(ir, list(args[:n_args + n_fun]))[index])


def _call_shape(*avals, ir, index, **params):
    return ir.out_avals[index]


custom_jvp_call_p = Primitive("custom_jvp_call", "call")
custom_jvp_call_p.impl = _call_impl
custom_jvp_call_p.shape = _call_shape


def _custom_jvp_jvp(primals, tangents, out, ir, rule, n_args, n_fun, index, name):
    _no_closure_tangents(tangents[n_args:], "custom_jvp", name)
    rule = _use(rule)
    args = list(primals[:n_args])
    ts = [P.instantiate(t, aval_of(p)) for p, t in zip(args, tangents[:n_args])]
    return eval_ir(rule, args + ts + list(primals[n_args + n_fun:]))[len(ir.outvars) + index]


def _custom_jvp_batch(args, batched, size, ir, rule, n_args, n_fun, index, name):
    # The batched call keeps its rule (batched too), so that differentiating
    # a vmap of the function still uses the rule.
    nf = n_args + n_fun
    rule = _batched(rule, list(batched[:n_args]) * 2 + list(batched[nf:]), size)
    return bind(custom_jvp_call_p, *args, ir=vmap_ir(ir, batched[:nf], size), rule=rule,
                n_args=n_args, n_fun=n_fun, index=index, name=name)


custom_jvp_call_p.jvp = _custom_jvp_jvp
custom_jvp_call_p.batch = _custom_jvp_batch


custom_vjp_call_p = Primitive("custom_vjp_call", "call")
custom_vjp_call_p.impl = _call_impl
custom_vjp_call_p.shape = _call_shape


def _custom_vjp_jvp(primals, tangents, out, ir, fwd, bwd, n_args, n_fun, n_fwd, index, name):
    _no_closure_tangents(tangents[n_args:], "custom_vjp", name)
    args = list(primals[:n_args])
    start = n_args + n_fun
    res = eval_ir(_use(fwd), args + list(primals[start:start + n_fwd]))[len(ir.outvars):]
    ts = [P.instantiate(t, aval_of(p)) for p, t in zip(args, tangents[:n_args])]
    bwd_clo = primals[start + n_fwd:]
    return bind(custom_lin_p, *res, *bwd_clo, *ts, bwd=bwd, n_res=len(res), n_clo=len(bwd_clo),
                index=index, out_avals=tuple(ir.out_avals))


def _custom_vjp_batch(args, batched, size, ir, fwd, bwd, n_args, n_fun, n_fwd, index, name):
    nf = n_args + n_fun
    bwd = _batched(bwd, (batched[:n_args],) + tuple(batched[nf + n_fwd:]), size, _batch_bwd)
    fwd = _batched(fwd, list(batched[:n_args]) + list(batched[nf:nf + n_fwd]), size)
    return bind(custom_vjp_call_p, *args, ir=vmap_ir(ir, batched[:nf], size), fwd=fwd, bwd=bwd,
                n_args=n_args, n_fun=n_fun, n_fwd=n_fwd, index=index, name=name)


def _batched(rule, flags, size, how=vmap_ir):
    """A rule's IR batched by ``how`` (an error of the rule stays for its use,
    a deferred rule stays deferred: batching must not trace it)."""
    if isinstance(rule, _RuleError):
        return rule
    if isinstance(rule, _Deferred):
        return _Deferred(rule.owner, lambda: (how(rule.get(), flags, size), []))
    try:
        return how(_use(rule), flags, size)
    except Exception as exc:      # noqa: BLE001 - re-raised when the rule is used
        return _RuleError(exc)


def _batch_bwd(bwd, flags, size):
    """``bwd`` batched.  ``flags``: whether each argument is batched, then a
    flag per closure value.  The residuals and output cotangents all carry the
    batch axis (a batched IR batches all its outputs).  The cotangent of an
    unbatched argument is the sum over the batch of the per-example ones."""
    arg_batched, clo_batched = flags[0], flags[1:]
    n_in = len(bwd.invars) - len(clo_batched)
    vb = vmap_ir(bwd, [True] * n_in + list(clo_batched), size)
    with new_trace() as tr:
        cts = eval_ir(vb, [tr.new_arg(v.aval) for v in vb.invars])
        return tr.to_ir([c if b else P.reduce_sum(c, (0,)) for c, b in zip(cts, arg_batched)])


custom_vjp_call_p.jvp = _custom_vjp_jvp
custom_vjp_call_p.batch = _custom_vjp_batch


# custom_lin: the linear map whose transpose is the user's bwd.  It exists only
# between linearisation and transposition.  Operands: residuals, bwd's
# closure, then the tangents of the arguments.
custom_lin_p = Primitive("custom_lin", "call")


def _lin_impl(*args, **params):
    raise NotImplementedError("forward-mode differentiation (jvp, jacfwd, hessian) of a custom_vjp "
                              "function is not supported; define a custom_jvp rule instead")


def _lin_transpose(ct, *args, bwd, n_res, n_clo, index, out_avals):
    bwd = _use(bwd)
    cts = [ct if i == index else P.zeros(av) for i, av in enumerate(out_avals)]
    res, clo = list(args[:n_res]), list(args[n_res:n_res + n_clo])
    return [None] * (n_res + n_clo) + eval_ir(bwd, res + cts + clo)


custom_lin_p.impl = _lin_impl
custom_lin_p.shape = lambda *avals, out_avals, index, **params: out_avals[index]
custom_lin_p.transpose = _lin_transpose
custom_lin_p.batch = lambda *a, **k: _lin_impl()


# ---------------------------------------------------------------------------
# The decorators


def _operand(a):
    if isinstance(a, Tracer):
        return a
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return np.asarray(a, dtype=float)
    return np.asarray(a)


def _fname(f):
    return getattr(f, "__name__", repr(f))


class _Custom:
    kind = ""

    def __init__(self, fun, nondiff_argnums=()):
        nums = (nondiff_argnums,) if isinstance(nondiff_argnums, int) else tuple(nondiff_argnums)
        if not all(isinstance(i, int) and i >= 0 for i in nums):
            raise TypeError(f"{self.kind}: nondiff_argnums must be non-negative ints, got {nondiff_argnums!r}")
        self.fun = fun
        self.nondiff_argnums = tuple(sorted(set(nums)))
        functools.update_wrapper(self, fun)

    def __reduce_ex__(self, protocol):
        # a decorated module-level function pickles by its name (the function
        # inside cannot: its name leads to this object)
        if by_qualified_name(self) is self:
            return self.__qualname__
        return super().__reduce_ex__(protocol)

    def _arguments(self, args, kwargs):
        """The call's arguments by position (keywords resolved by the signature,
        defaults filled in, as in JAX), split into the array arguments and the
        nondiff ones ({position: value})."""
        try:
            sig = inspect.signature(self.fun)
        except (TypeError, ValueError):
            sig = None
        if sig is not None:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.kind} function {self.__name__}: {exc}") from None
            bound.apply_defaults()
            if bound.kwargs:
                raise TypeError(f"{self.kind} function {self.__name__}: keyword-only arguments "
                                f"({', '.join(bound.kwargs)}) are not supported; make them positional")
            args = bound.args
        elif kwargs:
            raise TypeError(f"{self.kind} function {self.__name__}: keyword arguments need a "
                            "function with a signature")
        for i in self.nondiff_argnums:
            if i >= len(args):
                raise TypeError(f"{self.kind} function {self.__name__}: nondiff_argnums names "
                                f"argument {i}, but it was called with {len(args)} arguments")
            if any(isinstance(x, Tracer) for x in tree_util.flatten(args[i])[0]):
                raise TypeError(
                    f"{self.kind} function {self.__name__}: argument {i} is in nondiff_argnums but "
                    "holds a traced array; nondiff_argnums are for Python values (functions, "
                    "sizes, flags): pass arrays as ordinary arguments")
        static = {i: args[i] for i in self.nondiff_argnums}
        return [a for i, a in enumerate(args) if i not in static], static

    def _merge(self, dyn, static):
        args, it = [], iter(dyn)
        for i in range(len(dyn) + len(static)):
            args.append(static[i] if i in static else next(it))
        return args

    def _prepare(self, args, kwargs):
        """Trace the function at the call's arguments: (leaves, their avals, the
        arguments' treedef, static arguments, function IR, its closure, output treedef)."""
        dyn, static = self._arguments(args, kwargs)
        leaves, in_tree = tree_util.flatten(tuple(dyn))
        leaves = [_operand(a) for a in leaves]
        avals = [aval_of(a) for a in leaves]
        out_trees = []

        def flat_fun(*xs):
            out = self.fun(*self._merge(tree_util.unflatten(in_tree, xs), static))
            out_leaves, out_tree = tree_util.flatten(out)
            for o in out_leaves:
                if not isinstance(o, (Tracer, np.ndarray, np.generic, int, float)):
                    raise TypeError(f"{self.kind} function {self.__name__} returned a "
                                    f"{type(o).__name__}; it must return arrays, or tuples/lists/dicts of them")
            out_trees.append(out_tree)
            return out_leaves

        ir, clo = _trace_closed(flat_fun, avals)
        return leaves, avals, in_tree, static, ir, clo, out_trees[0]


class custom_jvp(_Custom):
    """Decorator: a function with a user-supplied JVP rule (see module docs).

    ``custom_jvp(f, nondiff_argnums=(...))`` marks arguments that are Python
    values; the rule then receives them first."""

    kind = "custom_jvp"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.rule = None

    def defjvp(self, rule):
        """Register ``rule(*nondiff, primals, tangents) -> (primal_out, tangent_out)``
        (usable as a decorator; a second call replaces the rule)."""
        if not callable(rule):
            raise TypeError(f"custom_jvp function {self.__name__}: defjvp needs a function, got {rule!r}")
        self.rule = rule
        return rule

    def __call__(self, *args, **kwargs):
        if self.rule is None:
            raise MissingRuleError(f"custom_jvp function {self.__name__} has no rule: use @f.defjvp")
        if not is_tracing():
            return self.fun(*args, **kwargs)
        leaves, avals, in_tree, static, ir, fun_clo, out_tree = self._prepare(args, kwargs)
        what = f"the jvp rule {_fname(self.rule)} of custom_jvp function {self.__name__}"

        def flat_rule(*xs):
            k = len(avals)
            primals = tree_util.unflatten(in_tree, xs[:k])
            tangents = tree_util.unflatten(in_tree, xs[k:])
            result = self.rule(*static.values(), primals, tangents)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(f"{what} must return a pair (primal_out, tangent_out), got {_describe(result)}")
            return (_check_like(result[0], out_tree, ir.out_avals, f"{what}: its primal output")
                    + _check_like(result[1], out_tree, ir.out_avals, f"{what}: its tangent output"))

        rule, rule_clo = _trace_rule(self, lambda: _trace_closed(flat_rule, avals + avals))
        outs = [bind(custom_jvp_call_p, *leaves, *fun_clo, *rule_clo, ir=ir, rule=rule,
                     n_args=len(leaves), n_fun=len(fun_clo), index=i, name=self.__name__)
                for i in range(len(ir.outvars))]
        return tree_util.unflatten(out_tree, outs)


class custom_vjp(_Custom):
    """Decorator: a function with user-supplied fwd/bwd rules (see module docs).

    ``custom_vjp(f, nondiff_argnums=(...))`` marks arguments that are Python
    values; ``bwd`` then receives them first and returns no cotangent for them."""

    kind = "custom_vjp"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        """Register ``fwd(*args) -> (out, residuals)`` and
        ``bwd(*nondiff, residuals, cotangent) -> one cotangent per argument``."""
        if not (callable(fwd) and callable(bwd)):
            raise TypeError(f"custom_vjp function {self.__name__}: defvjp needs two functions (fwd, bwd)")
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        if self.fwd is None:
            raise MissingRuleError(f"custom_vjp function {self.__name__} has no rules: use f.defvjp(fwd, bwd)")
        if not is_tracing():
            return self.fun(*args, **kwargs)
        leaves, avals, in_tree, static, ir, fun_clo, out_tree = self._prepare(args, kwargs)
        fwd_what = f"the fwd rule {_fname(self.fwd)} of custom_vjp function {self.__name__}"
        bwd_what = f"the bwd rule {_fname(self.bwd)} of custom_vjp function {self.__name__}"
        res_trees = []

        def flat_fwd(*xs):
            result = self.fwd(*self._merge(tree_util.unflatten(in_tree, xs), static))
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(f"{fwd_what} must return a pair (output, residuals), got {_describe(result)}")
            res_leaves, res_tree = tree_util.flatten(result[1])
            res_trees.append(res_tree)
            return _check_like(result[0], out_tree, ir.out_avals, f"{fwd_what}: its output") + res_leaves

        fwd, fwd_clo = _trace_rule(self, lambda: _trace_closed(flat_fwd, avals))
        arg_trees = in_tree.children
        n_args = len(arg_trees)

        def trace_bwd():
            res_avals = _use(fwd).out_avals[len(ir.outvars):]

            def flat_bwd(*xs):
                res = tree_util.unflatten(res_trees[0], xs[:len(res_avals)])
                ct = tree_util.unflatten(out_tree, xs[len(res_avals):])
                cts = self.bwd(*static.values(), res, ct)
                if not isinstance(cts, (tuple, list)) or len(cts) != n_args:
                    skip = " (nondiff_argnums excluded)" if static else ""
                    raise TypeError(f"{bwd_what} must return a tuple with one cotangent per "
                                    f"argument{skip} ({n_args}), got {_describe(cts)}")
                flat, pos = [], 0
                for i, (c, td) in enumerate(zip(cts, arg_trees)):
                    arg_avals = avals[pos:pos + td.num_leaves]
                    pos += td.num_leaves
                    if c is None:
                        flat += [P.zeros(av) for av in arg_avals]
                    else:
                        flat += _check_like(c, td, arg_avals, f"{bwd_what}: its cotangent {i}",
                                            strict_dtype=False)
                return flat

            return _trace_closed(flat_bwd, res_avals + ir.out_avals)

        bwd, bwd_clo = (fwd, []) if isinstance(fwd, _RuleError) else _trace_rule(self, trace_bwd)
        outs = [bind(custom_vjp_call_p, *leaves, *fun_clo, *fwd_clo, *bwd_clo, ir=ir, fwd=fwd,
                     bwd=bwd, n_args=len(leaves), n_fun=len(fun_clo), n_fwd=len(fwd_clo), index=i,
                     name=self.__name__)
                for i in range(len(ir.outvars))]
        return tree_util.unflatten(out_tree, outs)


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
    p = e.params
    return eval_ir(inline_calls(p["ir"]), ins[:p["n_args"] + p["n_fun"]])[p["index"]]
