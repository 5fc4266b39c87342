"""The user-facing transforms: grad, value_and_grad, jvp, vjp, jit, make_ir, source.

Every transform traces the user's function to an IR once per signature
(pytree structure, shapes and dtypes of the arguments, static arguments),
transforms and cleans that IR, and hands it to an :class:`~jitgrad.backend.executable.Executable`
which runs it (compiled by Numba, or by the NumPy interpreter while compiling).
Called on tracers, a transform does not execute: it inlines its IR into the
enclosing trace, which is how transforms compose.
"""
from __future__ import annotations

import os
import threading
import weakref

import numpy as np

from ..core import trace as core
from ..core import tree as tree_util
from ..core.trace import Tracer, eval_ir, is_tracing, new_trace, state
from ..core.ir import IR, Aval, Var
from ..transforms.passes import lower, optimize
from ..backend.executable import Executable
from ..transforms.autodiff import jvp_ir, vjp_ir
from .arguments import (check_argnums, check_argnums_range, check_callable, check_float, check_output,
                        check_static_argnums, check_values, coerce, leaf_names, merge_static,
                        split_static, static_outside, static_with_keywords, is_control_value)
from .transformed import _fast_key, transformed

trace_count = 0   # how many times any user function has been traced (for tests)


# ---------------------------------------------------------------------------
# Tracing


def _aval(x):
    if isinstance(x, Tracer):
        return x.aval
    return Aval(np.shape(x), np.dtype(x.dtype))


def trace(f, leaves, in_tree, static=()):
    """Trace ``f`` on abstract versions of ``leaves``; return (IR, output treedef)."""
    global trace_count
    trace_count += 1
    with new_trace() as tr:
        tracers = [tr.new_arg(_aval(x)) for x in leaves]
        args = merge_static(tree_util.unflatten(in_tree, tracers), static)
        out = f(*args)
        out_leaves, out_tree = tree_util.flatten(out)
        # values that stand for an array (the tape's Tensors and Variables) give it
        out_leaves = [o.__jitgrad_value__() if hasattr(o, "__jitgrad_value__") else o
                      for o in out_leaves]
        for o in out_leaves:
            if not isinstance(o, (Tracer, np.ndarray, np.generic, int, float, complex, bool)):
                raise TypeError(f"{_name(f)} returned a {type(o).__name__}; transformed functions "
                                "must return arrays, scalars, or tuples/lists/dicts of them")
        ir = tr.to_ir(out_leaves)
    check_values(ir, _name(f))
    return ir, out_tree


def _name(f):
    return getattr(f, "__name__", repr(f))


# ---------------------------------------------------------------------------
# One staged function: a cache from signature to compiled code.

# Guards the Staged objects' ``building`` tables (held for a look-up only; a
# forked child gets a new one, since the thread holding it may not be there).
_building_lock = threading.Lock()


def _new_building_lock():
    global _building_lock
    _building_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_building_lock)


class _Entry:
    __slots__ = ("exe", "finish")

    def __init__(self, exe, finish):
        self.exe = exe          # Executable
        self.finish = finish    # flat outputs -> the user's structure


class Staged:
    """Caches, per signature, the IR that ``build`` makes and its executable.

    ``build(leaves, in_tree, static) -> (ir, finish)``.  ``auto_static(args)``,
    if given, names further arguments of a call to hold static (the
    differentiating transforms: Python ints and such outside ``argnums``).
    """

    def __init__(self, build, static_argnums=(), label="", auto_static=None):
        self.build = build
        self.static_argnums = tuple(static_argnums)
        self.auto_static = auto_static
        self.label = label
        self.cache = {}
        self.fast = {}      # the same entries, keyed by a cheaper key for flat array/float calls
        self.building = {}  # key -> (builder (pid, thread), its done event), while building

    def signature(self, args):
        nums = self.static_argnums
        if self.auto_static is not None:
            nums = nums + self.auto_static(args)
        dyn, static = split_static(args, nums)
        leaves, in_tree = tree_util.flatten(tuple(dyn))
        positions = [i for i in range(len(args)) if i not in dict(static)]
        leaves = [coerce(x, name) for x, name in zip(leaves, leaf_names(in_tree, positions))]
        # static values of different types may be equal (2 == 2.0 == np.int64(2),
        # 1 == True) and still trace differently: the key holds their types
        key = (in_tree, tuple((i, type(v), v) for i, v in static),
               tuple((np.shape(x), x.dtype) for x in leaves))
        return leaves, in_tree, static, key

    def entry(self, args):
        leaves, in_tree, static, key = self.signature(args)
        if is_tracing() or any(isinstance(x, Tracer) for x in leaves):
            ir, finish = self.build(leaves, in_tree, static)
            return leaves, _Entry(None, finish), optimize(ir)
        e = self.cache.get(key)
        if e is None:
            e = self._build_once(key, leaves, in_tree, static)
        return leaves, e, None

    def _build_once(self, key, leaves, in_tree, static):
        """The entry for ``key``, built by one thread: threads that miss the
        same signature while it is being built wait for that build (tracing
        and compiling it twice would give two executables, each compiling,
        and each warning when its compile fails).  A build that raises lets
        each waiting thread try for itself (and get its own error)."""
        me = (os.getpid(), threading.get_ident())
        while True:
            with _building_lock:
                e = self.cache.get(key)
                if e is not None:
                    return e
                flight = self.building.get(key)
                # (a builder of this thread, or one left behind by a fork: build here)
                if flight is None or flight[0][0] != me[0] or flight[0] == me:
                    flight = (me, threading.Event())
                    self.building[key] = flight
                    break
            flight[1].wait()
        try:
            ir, finish = self.build(leaves, in_tree, static)
            e = _Entry(Executable(lower(ir), self.label), finish)
            self.cache[key] = e
            return e
        finally:
            with _building_lock:
                if self.building.get(key) is flight:
                    del self.building[key]
            flight[1].set()

    def __call__(self, *args):
        # Hot path: positional arrays or floats, nothing traced: two dict look-ups.
        fkey = None if (is_tracing() or self.static_argnums) else _fast_key(args)
        if fkey is not None:
            e = self.fast.get(fkey)
            if e is not None:
                return e.finish(e.exe.call(args))
        return self.miss(args, fkey)

    def miss(self, args, fkey=None):
        """Call through the full signature; with ``fkey`` (the caller's fast-path
        key, which missed), remember the entry under it."""
        leaves, e, inline_ir = self.entry(args)
        if inline_ir is not None:
            return e.finish(eval_ir(inline_ir, leaves))
        if fkey is not None and all(a is x for a, x in zip(tree_util.flatten(args)[0], leaves)
                                    if type(a) is np.ndarray):
            # (the fast path passes the arrays as they are: not for arrays that
            # coerce converts)
            self.fast[fkey] = e
        return e.finish(e.exe.call(leaves))


def _unflattener(out_tree):
    """flat outputs -> ``out_tree``'s structure (a single array needs no tree walk)."""
    if out_tree.kind is None:
        return _first
    return lambda outs: tree_util.unflatten(out_tree, outs)


# ---------------------------------------------------------------------------
# jit


def jit(f=None, *, static_argnums=()):
    """Compile ``f`` into one native function per signature.

    ``static_argnums`` names arguments that are Python values (hashable) rather
    than arrays; each distinct value (and type: ``2`` is not ``2.0``) compiles
    its own specialisation.  A static parameter stays static when passed by
    keyword; an index past the arguments of a call names a parameter left to
    its default.  Results are fresh arrays, never an argument or a constant.
    """
    if f is None:
        return lambda g: jit(g, static_argnums=static_argnums)
    check_callable(f, "jit")
    static_argnums = check_static_argnums(f, static_argnums)

    def build(leaves, in_tree, static):
        ir, out_tree = trace(f, leaves, in_tree, static)
        return ir, _unflattener(out_tree)

    return transformed(jit, f, {"static_argnums": static_argnums},
                       lambda: Staged(build, static_argnums, _name(f)),
                       lambda g, static: jit(g, static_argnums=static))


# ---------------------------------------------------------------------------
# grad and value_and_grad


def diff_leaves(leaves, in_tree, argnums, fname, transform, static=(), holomorphic=False, real=False):
    """The differentiated arguments, in argnums order (as JAX): for each, the
    positions of its leaves among all leaves and its treedef.  Also whether
    argnums was a single int.  ``static``: the (position, value) pairs of the
    static arguments, which are not among the leaves.  ``holomorphic`` and
    ``real``: see :func:`check_float`."""
    args = tree_util.unflatten(in_tree, leaves)
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    n = len(args) + len(static)
    check_argnums_range(nums, n, fname)
    dyn_pos = [i for i in range(n) if i not in dict(static)]
    for a in nums:
        if a % n not in dyn_pos:
            raise TypeError(f"{transform}: argument {a % n} of {fname} is static (see "
                            "static_argnums) and cannot be differentiated")
    nums = [dyn_pos.index(a % n) for a in nums]
    groups, pos = {}, 0
    for i, a in enumerate(args):
        lv, td = tree_util.flatten(a)
        if i in nums:
            for leaf in lv:
                check_float(leaf, i, fname, transform, holomorphic, real)
            groups[i] = (list(range(pos, pos + len(lv))), td)
        pos += len(lv)
    return [groups[i] for i in nums], single


def _first(outs):
    return outs[0]


def _value_and_grad_builder(f, argnums, has_aux, want_value, transform, holomorphic):
    fname = _name(f)

    def build(leaves, in_tree, static):
        offsets, single = diff_leaves(leaves, in_tree, argnums, fname, transform, static, holomorphic)
        ir, out_tree = trace(f, leaves, in_tree, static)
        if has_aux:
            if out_tree.kind not in (tuple, list) or len(out_tree.children) != 2:
                raise TypeError(f"with has_aux=True, {fname} must return a pair (output, aux)")
            main_tree = out_tree.children[0]
            aux_tree = out_tree.children[1]
        else:
            main_tree = out_tree
        n_main = main_tree.num_leaves
        # one array, not a structure holding one (JAX refuses [x] too)
        out_av = ir.outvars[0].aval if main_tree.kind is None else None
        if out_av is None or out_av.shape != ():
            what = (f"shape {out_av.shape}" if out_av is not None else "no values" if not n_main else
                    f"a {getattr(main_tree.kind, '__name__', 'structure')} of {n_main} values")
            raise TypeError(
                f"{transform} requires {fname} to return a scalar, but it returned {what}. "
                "Reduce it to a scalar (for example np.sum(...)), or use jitgrad.vjp for "
                "non-scalar outputs.")
        check_output(out_av.dtype, "the output", fname, transform, holomorphic)
        which = [p for ps, _ in offsets for p in ps]
        gir = vjp_ir(ir, which, seed_ones=True, n_cts=1)
        keep_vals = want_value or has_aux
        n_outs = len(ir.outvars) if keep_vals else 0
        if not keep_vals:   # a bare gradient: let dead-code elimination drop the forward value
            gir.outvars = gir.outvars[len(ir.outvars):]

        if not has_aux and all(len(ps) == 1 and td.kind is None for ps, td in offsets):
            # array arguments, no structures: skip the tree bookkeeping (the hot path)
            if single:
                return gir, ((lambda outs: (outs[0], outs[1])) if keep_vals else _first)
            return gir, ((lambda outs: (outs[0], tuple(outs[1:]))) if keep_vals else tuple)

        def finish(outs):
            vals, grads = outs[:n_outs], outs[n_outs:]
            per_arg, k = [], 0
            for ps, td in offsets:
                per_arg.append(tree_util.unflatten(td, grads[k:k + len(ps)]))
                k += len(ps)
            g = per_arg[0] if single else tuple(per_arg)
            if not keep_vals:
                return g
            value = vals[0]
            if has_aux:
                aux = tree_util.unflatten(aux_tree, vals[1:])
                return ((value, aux), g) if want_value else (g, aux)
            return value, g
        return gir, finish

    return build


def value_and_grad(f, argnums=0, has_aux=False, holomorphic=False):
    """Return a function computing ``(f(*args), gradient of f)`` in one pass.

    ``f`` must return a scalar (or ``(scalar, aux)`` with ``has_aux``).  The
    gradient has the structure of the arguments named by ``argnums`` (a tuple
    of them when ``argnums`` is a tuple) and their dtypes; ``holomorphic``: see :func:`grad`.
    """
    check_callable(f, "value_and_grad")
    argnums = check_argnums(argnums, "value_and_grad")
    return transformed(
        value_and_grad, f, {"argnums": argnums, "has_aux": has_aux, "holomorphic": holomorphic},
        lambda: Staged(_value_and_grad_builder(f, argnums, has_aux, True, "value_and_grad", holomorphic),
                       label=f"value_and_grad_{_name(f)}", auto_static=static_outside(argnums)),
        lambda g, _: value_and_grad(g, argnums, has_aux, holomorphic))


def grad(f, argnums=0, has_aux=False, holomorphic=False):
    """Return a function computing the gradient of scalar-valued ``f``.

    Same conventions as ``jax.grad``: ``argnums`` is an int or a tuple of
    distinct ints; with ``has_aux=True``, ``f`` returns ``(output, aux)`` and the result is
    ``(gradient, aux)``.  For a real ``f`` of complex ``z = x + iy`` the gradient is
    ``df/dx - i df/dy``; a complex ``f`` needs ``holomorphic=True`` (complex
    inputs and output), which gives ``f'(z)``.
    """
    check_callable(f, "grad")
    argnums = check_argnums(argnums, "grad")
    return transformed(
        grad, f, {"argnums": argnums, "has_aux": has_aux, "holomorphic": holomorphic},
        lambda: Staged(_value_and_grad_builder(f, argnums, has_aux, False, "grad", holomorphic),
                       label=f"grad_{_name(f)}", auto_static=static_outside(argnums)),
        lambda g, _: grad(g, argnums, has_aux, holomorphic))


# ---------------------------------------------------------------------------
# jvp and vjp


_STAGED = weakref.WeakKeyDictionary()


def _staged_for(kind, f, make):
    """One Staged per (function, kind), kept as long as the function lives.

    ``make(fn)`` builds it around ``fn``, a weak proxy of ``f``: the cached
    value must not refer back to its key, or the function (closure included)
    would never be freed.  Builds run only during a call that holds ``f``."""
    try:
        per_f = _STAGED.setdefault(f, {})
    except TypeError:          # f cannot be weakly referenced: no cache
        return make(f)
    s = per_f.get(kind)
    if s is None:
        s = per_f[kind] = make(weakref.proxy(f))
    return s


def _check_tangents(primals, tangents):
    pl, pt = tree_util.flatten(tuple(primals))
    tl, tt = tree_util.flatten(tuple(tangents))
    if pt != tt:
        raise ValueError(f"jvp: primals and tangents must have the same structure, got {pt} and {tt}")
    for i, (p, t) in enumerate(zip(pl, tl)):
        ap, at = _aval(coerce(p, f"primal {i}")), _aval(coerce(t, f"tangent {i}"))
        if ap.shape != at.shape:
            raise ValueError(f"jvp: tangent {i} has shape {at.shape} but its primal has shape {ap.shape}")
        if np.issubdtype(ap.dtype, np.inexact) and ap.dtype != at.dtype:
            raise TypeError(f"jvp: tangent {i} has dtype {at.dtype} but its primal has dtype "
                            f"{ap.dtype}; they must match")


def jvp(f, primals, tangents):
    """Forward mode: ``(f(*primals), J(primals) @ tangents)``.

    ``primals`` and ``tangents`` are tuples (or lists) with the same structure,
    shapes and dtypes.  Integer primals take no tangent (their entries are ignored).
    """
    check_callable(f, "jvp")
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (or lists) of arguments")
    static = _control_primals(primals)
    if static and len(tangents) == len(primals):      # (their tangents are ignored)
        keep = [i for i in range(len(primals)) if i not in dict(static)]
        return jvp(_with_static(f, static, len(primals)), [primals[i] for i in keep],
                   [tangents[i] for i in keep])
    fast = None if is_tracing() else (_fast_key(primals), _fast_key(tangents))
    if fast is not None and None not in fast:
        # Hot path (flat arrays or floats): one look-up.  An entry exists only
        # for shapes and dtypes that passed the checks below.
        try:
            staged = _STAGED.get(f, {}).get("jvp")
        except TypeError:          # f cannot be weakly referenced: no cache
            staged = None
        e = staged.fast.get(fast) if staged is not None else None
        if e is not None:
            return e.finish(e.exe.call((*primals, *tangents)))
    _check_tangents(primals, tangents)

    def make(fn):
        def build(leaves, in_tree, static):
            k = len(leaves) // 2
            prim_tree = in_tree.children[0]
            ir, out_tree = trace(fn, leaves[:k], prim_tree)
            which = [i for i, x in enumerate(leaves[:k]) if np.issubdtype(_aval(x).dtype, np.inexact)]
            j = jvp_ir(ir, which)
            m = len(ir.outvars)

            if out_tree.kind is None:
                return _select_inputs(j, leaves[k:], which), _pair

            def finish(outs):
                return (tree_util.unflatten(out_tree, outs[:m]),
                        tree_util.unflatten(out_tree, outs[m:]))
            return _select_inputs(j, leaves[k:], which), finish
        return Staged(build, label=f"jvp_{_name(fn)}")

    staged = _staged_for("jvp", f, make)
    return staged.miss((tuple(primals), tuple(tangents)),
                       fast if fast is not None and None not in fast else None)


def _control_primals(primals):
    """(position, value) of the primals that are Python control values (ints,
    strings, ...: see is_control_value), held static as grad holds them."""
    return tuple((i, p) for i, p in enumerate(primals) if is_control_value(p))


def _zero_cotangent(v):
    """The cotangent of a static primal: a zero of the dtype a Python int or
    bool would have as an array (as integer primals get), None for the rest."""
    if type(v) in (int, bool):
        return np.zeros((), np.bool_ if type(v) is bool else np.int64)
    if type(v) is tuple:
        return tuple(_zero_cotangent(x) for x in v)
    return None


_WITH_STATIC = weakref.WeakKeyDictionary()


def _with_static(f, static, n):
    """``f`` with the static arguments fixed: one function per (f, static
    values), so its traces are cached; it refers to ``f`` weakly (the cache
    must not keep ``f`` alive)."""
    key = (tuple((i, type(v), v) for i, v in static), n)
    try:
        per_f = _WITH_STATIC.setdefault(f, {})
    except TypeError:
        per_f, ref = {}, (lambda f=f: f)
    else:
        ref = weakref.ref(f)
    g = per_f.get(key)
    if g is None:
        def g(*dyn):
            it = iter(dyn)
            return ref()(*[dict(static)[i] if i in dict(static) else next(it) for i in range(n)])
        g.__name__ = _name(f)
        per_f[key] = g
    return g


def snapshot(values):
    """``values`` with each array leaf copied: a function returned to the user
    (vjp's vjp_fn, linearize's f_jvp) keeps the values it was made at, even if
    the caller then changes its arrays in place."""
    return tree_util.tree_map(lambda a: a.copy() if isinstance(a, np.ndarray) else a, values)


def _pair(outs):
    return outs[0], outs[1]


def _select_inputs(j, tangents, which):
    """Make an IR taking (primals, all tangents) from one taking (primals, float
    tangents).  An ignored tangent (of an integer primal) keeps its own dtype,
    which need not be the primal's (a float tangent of an int primal)."""
    k = len(tangents)
    tangent_vars = j.invars[k:]
    full = []
    for i in range(k):
        if i in which:
            full.append(tangent_vars[which.index(i)])
        else:
            full.append(Var(_aval(tangents[i])))   # an ignored input
    return IR(j.invars[:k] + full, j.constvars, j.consts, j.eqns, j.outvars)


def vjp(f, *primals, has_aux=False):
    """Reverse mode: return ``(f(*primals), vjp_fn)`` (and ``aux`` with ``has_aux``).

    ``vjp_fn(cotangent)`` takes a cotangent with the structure of the output
    and returns a tuple with one cotangent per primal.
    """
    check_callable(f, "vjp")
    static = _control_primals(primals)
    if static:       # vjp_fn gives them zeros, as to integer arrays (None to non-numbers)
        keep = [i for i in range(len(primals)) if i not in dict(static)]
        res = vjp(_with_static(f, static, len(primals)), *[primals[i] for i in keep],
                  has_aux=has_aux)
        inner = res[1]

        def vjp_fn(cotangent):
            cts = iter(inner(cotangent))
            return tuple(_zero_cotangent(dict(static)[i]) if i in dict(static) else next(cts)
                         for i in range(len(primals)))
        vjp_fn._f = f             # (the fixed function refers to f weakly)
        return (res[0], vjp_fn) + tuple(res[2:])
    fname = _name(f)
    out = _staged_for("fwd", f, lambda fn: _vjp_forward(fn, fname))(*primals)
    primals = snapshot(primals)     # vjp_fn differentiates at these values, whatever the caller mutates
    if has_aux:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"with has_aux=True, {fname} must return a pair (output, aux)")
        out, aux = out
    out_leaves, out_tree = tree_util.flatten(out)
    out_avals = [_aval(coerce(o, "output")) for o in out_leaves]
    vjp_fn = VjpFunction(f, tuple(primals), has_aux, out_tree, out_avals)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


class VjpFunction:
    """vjp's ``vjp_fn``: cotangent of the output -> one cotangent per primal.

    It holds the function (the backward pass traces it through a weak proxy,
    see _staged_for), the primals and the output's structure; it pickles as
    those, without traces or compiled code."""

    __slots__ = ("f", "primals", "has_aux", "out_tree", "out_avals", "bwd")

    def __init__(self, f, primals, has_aux, out_tree, out_avals):
        self.f, self.primals, self.has_aux = f, primals, has_aux
        self.out_tree, self.out_avals = out_tree, out_avals
        fname = _name(f)
        self.bwd = _staged_for("bwd" + ("_aux" if has_aux else ""), f,
                               lambda fn: _vjp_backward(fn, fname, has_aux))

    def __call__(self, cotangent):
        _check_cotangent(cotangent, self.out_tree, self.out_avals)
        return self.bwd(self.primals, cotangent)

    def __reduce__(self):
        return VjpFunction, (self.f, self.primals, self.has_aux, self.out_tree, self.out_avals)


def _vjp_forward(fn, fname):
    """The staged forward pass of vjp: ``fn`` itself, per signature."""
    def build(leaves, in_tree, static):
        ir, out_tree = trace(fn, leaves, in_tree, static)
        return ir, _unflattener(out_tree)
    return Staged(build, label=fname)


def _vjp_backward(fn, fname, has_aux):
    """The staged backward pass of vjp: (primals, output cotangent) -> one
    cotangent per primal (zeros for the integer ones)."""
    def build(leaves, in_tree, static):
        prim_tree = in_tree.children[0]
        k = prim_tree.num_leaves
        args = tree_util.unflatten(prim_tree, leaves[:k])
        ir, otree = trace(fn, leaves[:k], prim_tree)
        n_main = otree.children[0].num_leaves if has_aux else len(ir.outvars)
        which = [i for i, x in enumerate(leaves[:k]) if np.issubdtype(_aval(x).dtype, np.inexact)]
        vir = vjp_ir(ir, which, n_cts=n_main)      # inputs: primals, cotangents of the main outputs
        n_outs = len(ir.outvars)
        arg_trees = [tree_util.flatten(a)[1] for a in args]

        def finish(outs):
            grads = iter(outs[n_outs:])
            flat = [next(grads) if i in which else np.zeros(np.shape(x), _aval(x).dtype)
                    for i, x in enumerate(leaves[:k])]
            res, p = [], 0
            for td in arg_trees:
                res.append(tree_util.unflatten(td, flat[p:p + td.num_leaves]))
                p += td.num_leaves
            return tuple(res)
        return vir, finish
    return Staged(build, label=f"vjp_{fname}")


def _check_cotangent(cotangent, out_tree, out_avals):
    ct_leaves, ct_tree = tree_util.flatten(cotangent)
    if ct_tree != out_tree:
        raise ValueError(f"vjp_fn: the cotangent must have the output's structure {out_tree}, "
                         f"got {ct_tree}")
    for i, (c, av) in enumerate(zip(ct_leaves, out_avals)):
        ac = _aval(coerce(c, f"cotangent {i}"))
        if ac.shape != av.shape:
            raise ValueError(f"vjp_fn: cotangent {i} has shape {ac.shape}, the output has {av.shape}")
        if np.issubdtype(av.dtype, np.inexact) and ac.dtype != av.dtype:
            raise TypeError(f"vjp_fn: cotangent {i} has dtype {ac.dtype}, the output has "
                            f"{av.dtype}; they must match")


# ---------------------------------------------------------------------------
# Looking inside


def make_ir(f, static_argnums=()):
    """``make_ir(f)(*args)`` returns the IR that ``f`` traces to at ``args``.

    For a transformed function (``grad(f)``, ``jit(f)`` ...) it returns the IR
    of the transformed computation, after clean-up passes."""
    staged = getattr(f, "_staged", None)
    static_argnums = check_static_argnums(f, static_argnums)

    def run(*args):
        if staged is not None:
            leaves, in_tree, static, key = staged.signature(args)
            ir, _ = staged.build(leaves, in_tree, static)
            return optimize(ir)
        dyn, static = split_static(args, static_argnums)
        leaves, in_tree = tree_util.flatten(tuple(dyn))
        leaves = [coerce(x, "argument") for x in leaves]
        return trace(f, leaves, in_tree, static)[0]
    return run


def source(f, static_argnums=()):
    """``source(f)(*args)`` returns the generated Python loop source that
    Numba compiles for ``f`` (or a transformed ``f``) at ``args``."""
    def run(*args):
        from ..backend.emit import generate
        staged = getattr(f, "_staged", None)
        ir = lower(make_ir(f, static_argnums)(*args))
        return generate(ir, _name(f) if staged is None else staged.label).source
    return run
