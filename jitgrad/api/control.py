"""Structured control flow with JAX's signatures: loops and branches that stay
loops and branches in the IR, under every transform, in compiled code.

A Python ``for`` loop in a traced function is unrolled: its IR, and the time
to compile it, grow with the trip count.  :func:`scan`, :func:`fori_loop` and
:func:`while_loop` trace their body once; the compiled code runs it in a
native loop, so compile time does not depend on the trip count, and
reverse mode keeps one carry per step (see :mod:`jitgrad.transforms.loops`).
:func:`cond` and :func:`switch` run one branch only.  :func:`checkpoint`
makes reverse mode recompute a function's intermediates instead of keeping
them.

Carries, ``xs`` and operands are pytrees of arrays.  A carry must keep its
structure, shapes and dtypes from step to step (a Python number in the
initial value takes the dtype the body gives it).
"""
from __future__ import annotations

import functools
import operator

import numpy as np

from ..core import tree as tree_util
from ..core.ir import Aval
from ..core.trace import Tracer, aval_of, is_tracing
from ..transforms.branches import bind_cond
from ..transforms.loops import bind_scan
from ..transforms import revolve  # noqa: F401  (the rules of scan's binomial policy)
from ..transforms.while_loops import bind_while
from ..transforms.subir import trace_closed
from .. import lax as P
from .arguments import check_callable


def _avals(leaves):
    return [aval_of(x) for x in leaves]


def _describe(avals):
    return ", ".join(str(a) for a in avals)


def _is_weak(x):
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _check_function(f, what):
    if not callable(f):
        raise TypeError(f"{what} must be a function, got a {type(f).__name__}")


def _fresh(out, *inputs):
    """Outside any trace the primitives run at once, and a result may be an
    input itself (a branch returning its operand, a loop of no steps) or
    another result: copy those, so that every result is a fresh array."""
    if is_tracing():
        return out
    held = [x for x in tree_util.flatten(inputs)[0] if isinstance(x, np.ndarray)]
    leaves, td = tree_util.flatten(out)
    fresh = []
    for x in leaves:
        if isinstance(x, np.ndarray) and any(np.may_share_memory(x, h) for h in held):
            x = x.copy()
        fresh.append(x)
        if isinstance(x, np.ndarray):
            held.append(x)
    return tree_util.unflatten(td, fresh)


def _cast_leaves(leaves, avals, what):
    """Leaves as the avals say (Python numbers take the dtype); a leaf whose
    shape or dtype differs raises a TypeError naming ``what``."""
    out = []
    for i, (x, av) in enumerate(zip(leaves, avals)):
        got = aval_of(x)
        if got.shape != av.shape or (got.dtype != av.dtype and not _is_weak(x)):
            raise TypeError(f"{what}: leaf {i} has shape {got.shape} and dtype {got.dtype}, but the "
                            f"carry has shape {av.shape} and dtype {av.dtype}; a loop carry keeps its "
                            "shape and dtype from step to step (convert the initial value with "
                            ".astype, or the body's result)")
        out.append(P.convert(x, av.dtype) if got.dtype != av.dtype else x)
    return out


def _settle_carry(trace_body, init_leaves, what):
    """Trace ``trace_body(carry_avals) -> (ir, consts, carry_out_avals, extra)``
    until the carry's dtypes are stable: a Python-number leaf of the initial
    carry takes the dtype the body returns (``0`` and a float body: float)."""
    avals = _avals(init_leaves)
    for _ in range(2):
        result = trace_body(avals)
        out = result[2]
        changed = False
        for i, (a, b) in enumerate(zip(avals, out)):
            if a.dtype != b.dtype and _is_weak(init_leaves[i]) and a.shape == b.shape:
                avals[i] = Aval(a.shape, np.result_type(a.dtype, b.dtype))
                changed = True
        if not changed:
            return result, avals
    return result, avals


def scan(f, init, xs=None, length=None, reverse=False, unroll=1, checkpoint="carries"):
    """Loop ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``.

    Returns ``(final carry, ys)`` with the ``y`` of every step stacked along a
    new leading axis, as ``jax.lax.scan``: ``xs`` and ``y`` are pytrees (or
    ``None``); ``length`` is the trip count when ``xs`` is ``None``; with
    ``reverse`` the steps run from the last element to the first (``ys`` keep
    the order of ``xs``).  ``unroll`` is accepted for compatibility; the
    compiled loop is not unrolled (LLVM may unroll small bodies itself).

    ``checkpoint`` chooses what reverse mode keeps of each step (the values
    are the same whichever is chosen; memory and time differ):

    - ``"carries"`` (default): the carry entering each step; the backward
      pass recomputes the step from it.  Memory: ``length`` carries.
    - ``"residuals"``: every value the backward step reads; nothing is
      recomputed.  Memory: those values, ``length`` times.
    - an int ``k``: every ``k``-th carry; the backward pass recomputes each
      segment of ``k`` steps, keeping its carries while it runs it
      backwards.  Memory: about ``length / k + k`` carries, for one more
      forward pass.
    - ``binomial(s)`` (or ``("binomial", s)``): at most ``s`` carries (the
      initial one among them), recomputed on the binomial (Revolve)
      schedule, which runs the fewest forward steps that ``s`` snapshots
      allow: ``r * length - C(s + r, s + 1)``, where ``r`` is the least
      integer with ``C(s + r, s) >= length`` (a few passes when ``s`` is
      about ``log2(length)``).  Every order of derivative goes through
      it; a second reverse pass (``grad`` of ``grad``) keeps one carry per
      step.
    """
    check_callable(f, "scan")
    if isinstance(checkpoint, (int, np.integer)) and not isinstance(checkpoint, bool):
        return _scan_segments(f, init, xs, length, reverse, int(checkpoint))
    checkpoint = _policy(checkpoint)
    init_leaves, init_tree = tree_util.flatten(init)
    xs_leaves, xs_tree = tree_util.flatten(xs)
    lengths = {np.shape(x)[0] if np.ndim(x) else None for x in xs_leaves}
    if None in lengths:
        raise ValueError("scan: every leaf of xs must have a leading axis to scan over (got a 0-d array)")
    if length is not None:
        lengths.add(_length(length))
    if len(lengths) != 1:
        raise ValueError("scan: " + ("the leading axes of xs (and length) disagree: "
                                     f"{sorted(lengths)}" if lengths else
                                     "give xs or length (the number of steps)"))
    n = lengths.pop()
    x_avals = [Aval(tuple(np.shape(x))[1:], aval_of(x).dtype) for x in xs_leaves]
    y_tree = []

    def trace_body(carry_avals):
        def flat(*a):
            carry = tree_util.unflatten(init_tree, a[:len(carry_avals)])
            x = tree_util.unflatten(xs_tree, a[len(carry_avals):])
            res = f(carry, x)
            if not (isinstance(res, tuple) and len(res) == 2):
                got = "a single array" if isinstance(res, Tracer) else f"a {type(res).__name__}"
                raise TypeError(f"scan: the body must return a pair (new carry, y), got {got}")
            new, y = res
            new_leaves, new_tree = tree_util.flatten(new)
            if new_tree != init_tree:
                raise TypeError(f"scan: the body's carry has the structure {new_tree}, the initial "
                                f"carry {init_tree}; a carry keeps its structure")
            flat.out_avals = _avals(new_leaves)
            y_leaves, yt = tree_util.flatten(y)
            y_tree[:] = [yt]
            return list(new_leaves) + list(y_leaves)
        ir, consts = trace_closed(flat, carry_avals + x_avals)
        return ir, consts, flat.out_avals

    (ir, consts, _), carry_avals = _settle_carry(trace_body, init_leaves, "scan")
    body_carry = ir.outvars[:len(carry_avals)]
    _check_carry([v.aval for v in body_carry], carry_avals, "scan")
    init_flat = _cast_leaves(init_leaves, carry_avals, "scan: the initial carry")
    outs = bind_scan(ir, consts, init_flat, xs_leaves, n, bool(reverse), checkpoint)
    k = len(carry_avals)
    return _fresh((tree_util.unflatten(init_tree, outs[:k]), tree_util.unflatten(y_tree[0], outs[k:])),
                  init, xs)


def binomial(snapshots):
    """``scan``'s ``checkpoint`` for the binomial (Revolve) schedule with
    ``snapshots`` stored carries: ``scan(f, init, xs, checkpoint=binomial(10))``."""
    return _policy(("binomial", snapshots))


def _policy(checkpoint):
    """``scan``'s ``checkpoint`` as the scan primitive's ``policy`` parameter."""
    if isinstance(checkpoint, str) and checkpoint in ("carries", "residuals"):
        return checkpoint
    if isinstance(checkpoint, tuple) and len(checkpoint) == 2 and checkpoint[0] == "binomial":
        s = checkpoint[1]
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"scan: binomial checkpointing needs an int number of snapshots >= 1, got {s!r}")
        return ("binomial", int(s))
    raise ValueError("scan: checkpoint must be 'carries', 'residuals', an int (keep every k-th carry) or "
                     f"binomial(snapshots), got {checkpoint!r}")


def _length(length):
    """scan's ``length``: a Python (or NumPy) int >= 0, known when tracing."""
    if isinstance(length, Tracer):
        raise TypeError("scan: length must be known when the function is traced (a Python int); for "
                        "a trip count known only at run time use fori_loop with traced bounds or "
                        "while_loop")
    try:
        n = operator.index(length)
    except TypeError:
        raise TypeError(f"scan: length must be an integer (the number of steps), got "
                        f"{length!r}") from None
    if n < 0:
        raise ValueError(f"scan: length must be >= 0, got {n}")
    return n


def _scan_segments(f, init, xs, length, reverse, k):
    """``scan`` keeping every ``k``-th carry: an outer scan over segments of
    ``k`` steps whose body, an inner scan, is a :func:`checkpoint` (its
    carries are recomputed when the backward pass reaches its segment).  The
    steps left over (``length % k``) run in a plain scan."""
    if k < 1:
        raise ValueError(f"scan: checkpoint={k}: the segment length must be at least 1")
    xs_leaves, xs_tree = tree_util.flatten(xs)
    n = int(length) if length is not None else (np.shape(xs_leaves[0])[0] if xs_leaves else None)
    if n is None:
        raise ValueError("scan: give xs or length (the number of steps)")
    m, rest = divmod(n, k)
    if m <= 1:
        return scan(f, init, xs, length=n, reverse=reverse)
    # with reverse the leftover steps are the first ones: they run last too
    lo = rest if reverse else 0
    main = [P.reshape(x[lo:lo + m * k], (m, k) + tuple(np.shape(x)[1:])) for x in xs_leaves]
    tail = xs_tree, [x[:rest] if reverse else x[m * k:] for x in xs_leaves]

    @checkpoint
    def segment(carry, seg):
        return scan(f, carry, tree_util.unflatten(xs_tree, list(seg)), length=k, reverse=reverse)

    def leftover(carry):
        return scan(f, carry, tree_util.unflatten(*tail), length=rest, reverse=reverse)
    carry, y_main = scan(segment, init, main, length=m, reverse=reverse)
    carry, y_tail = leftover(carry) if rest else (carry, None)
    y_main_leaves, y_tree = tree_util.flatten(y_main)
    ys = [P.reshape(a, (m * k,) + tuple(np.shape(a)[2:])) for a in y_main_leaves]
    if rest:
        tails = tree_util.flatten(y_tail)[0]
        ys = [P.concatenate([b, a] if reverse else [a, b], 0) for a, b in zip(ys, tails)]
    return carry, tree_util.unflatten(y_tree, ys)


def _check_carry(out_avals, in_avals, what):
    for i, (a, b) in enumerate(zip(out_avals, in_avals)):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise TypeError(f"{what}: the body returns carry leaf {i} as {a}, but it enters as {b}; a "
                            "loop carry keeps its shape and dtype from step to step (convert with "
                            ".astype in the body or in the initial value)")


def _concrete_int(x):
    if isinstance(x, Tracer):
        return None
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iu":
        return int(x)
    return None


def fori_loop(lower, upper, body_fun, init_val):
    """``for i in range(lower, upper): val = body_fun(i, val)``, as one loop.

    With Python int bounds the trip count is known when tracing and the loop
    is a :func:`scan` (every transform, reverse mode included); with traced
    bounds it is a :func:`while_loop`.  ``i`` is an int64 scalar; a floating
    carry keeps its dtype where ``i`` enters its arithmetic (``v + i`` with a
    float32 ``v`` stays float32, as it does with a Python int index)."""
    _check_function(body_fun, "fori_loop: body_fun")
    for name, b in (("lower", lower), ("upper", upper)):
        av = aval_of(b)
        if av.shape != () or av.dtype.kind not in "biu":
            raise TypeError(f"fori_loop: the {name} bound must be an integer scalar, got {av}; "
                            "convert it with int() or .astype(int)")
    init_leaves, init_tree = tree_util.flatten(init_val)
    float_avals = [aval_of(x) if np.issubdtype(aval_of(x).dtype, np.floating) and not _is_weak(x)
                   else None for x in init_leaves]

    def body(i, val):
        # the body's result against the carry it got, in fori_loop's own terms
        new = body_fun(i, val)
        leaves, td = tree_util.flatten(new)
        if td != init_tree:
            raise TypeError(f"fori_loop: body_fun returns the structure {td}, the initial value "
                            f"has {init_tree}; a carry keeps its structure")
        leaves = [P.convert(a, av.dtype) if av is not None and aval_of(a).dtype != av.dtype
                  and np.issubdtype(aval_of(a).dtype, np.floating) and aval_of(a).shape == av.shape
                  else a for a, av in zip(leaves, float_avals)]
        for k, (a, b, x0) in enumerate(zip(leaves, tree_util.flatten(val)[0], init_leaves)):
            got, want = aval_of(a), aval_of(b)
            if got.shape != want.shape or (got.dtype != want.dtype and not _is_weak(x0)):
                raise TypeError(f"fori_loop: body_fun returns leaf {k} of the carry as {got}, but it "
                                f"enters as {want}; a loop carry keeps its shape and dtype from step "
                                "to step (convert with .astype in the body or in the initial value)")
        return tree_util.unflatten(init_tree, leaves)

    lo, hi = _concrete_int(lower), _concrete_int(upper)
    if lo is not None and hi is not None:
        def step(carry, _):
            i, val = carry
            return (i + np.int64(1), body(i, val)), None
        (_, out), _ = scan(step, (np.int64(lo), init_val), None, length=max(hi - lo, 0))
        return out
    lower = P.convert(lower, np.dtype(np.int64))
    upper = P.convert(upper, np.dtype(np.int64))
    _, _, out = while_loop(lambda c: c[0] < c[1],
                           lambda c: (c[0] + np.int64(1), c[1], body(c[0], c[2])),
                           (lower, upper, init_val))
    return out


def while_loop(cond_fun, body_fun, init_val):
    """``while cond_fun(val): val = body_fun(val)``, as one loop (JAX's
    ``lax.while_loop``).  ``cond_fun`` returns a boolean scalar."""
    _check_function(cond_fun, "while_loop: cond_fun")
    _check_function(body_fun, "while_loop: body_fun")
    init_leaves, init_tree = tree_util.flatten(init_val)

    def trace_body(carry_avals):
        def flat(*a):
            new = body_fun(tree_util.unflatten(init_tree, list(a)))
            leaves, td = tree_util.flatten(new)
            if td != init_tree:
                raise TypeError(f"while_loop: the body returns the structure {td}, the initial value "
                                f"has {init_tree}; a carry keeps its structure")
            flat.out_avals = _avals(leaves)
            return leaves
        ir, consts = trace_closed(flat, carry_avals)
        return ir, consts, flat.out_avals

    (body, body_consts, _), carry_avals = _settle_carry(trace_body, init_leaves, "while_loop")
    _check_carry([v.aval for v in body.outvars], carry_avals, "while_loop")

    def cond_flat(*a):
        p = cond_fun(tree_util.unflatten(init_tree, list(a)))
        av = aval_of(p)
        if av.shape != () or av.dtype != np.bool_:
            raise TypeError(f"while_loop: cond_fun must return a boolean scalar, got {av}")
        return [p]
    cond, cond_consts = trace_closed(cond_flat, carry_avals)
    init_flat = _cast_leaves(init_leaves, carry_avals, "while_loop: the initial value")
    outs = bind_while(cond, cond_consts, body, body_consts, init_flat)
    return _fresh(tree_util.unflatten(init_tree, outs), init_val)


def switch(index, branches, *operands):
    """``branches[clip(index, 0, len(branches) - 1)](*operands)``, running that
    branch only (JAX's ``lax.switch``).  Every branch returns the same
    structure, shapes and dtypes."""
    if callable(branches) or not isinstance(branches, (list, tuple)):
        raise TypeError(f"switch: branches must be a list or tuple of functions, got a "
                        f"{type(branches).__name__}")
    if not branches:
        raise ValueError("switch: give at least one branch")
    for k, b in enumerate(branches):
        _check_function(b, f"switch: branch {k}")
    iav = aval_of(index)
    if iav.shape != () or iav.dtype.kind not in "biu":
        raise TypeError(f"switch: the index must be an integer scalar, got {iav}")
    if iav.dtype.kind != "b":
        # clipped in its own dtype: converted first, a large index would wrap
        index = P.minimum(P.maximum(index, np.zeros((), iav.dtype)[()]),
                          np.asarray(len(branches) - 1, iav.dtype)[()])
    return _branch(P.convert(index, np.dtype(np.int32)), list(branches), operands,
                   [f"switch: branch {k}" for k in range(len(branches))])


def _branch(index, branches, operands, names):
    """Bind a ``cond`` of the functions ``branches`` (named ``names`` in errors)."""
    leaves, in_tree = tree_util.flatten(operands)
    avals = _avals(leaves)
    out_tree = []
    traced = []
    for k, b in enumerate(branches):
        def flat(*a, b=b):
            out = b(*tree_util.unflatten(in_tree, list(a)))
            out_leaves, td = tree_util.flatten(out)
            out_tree.append(td)
            return out_leaves
        traced.append(trace_closed(flat, avals))
    first = [v.aval for v in traced[0][0].outvars]
    for k, (ir, _) in enumerate(traced[1:], 1):
        got = [v.aval for v in ir.outvars]
        if out_tree[k] != out_tree[0] or got != first:
            raise TypeError(f"{names[k]} returns {out_tree[k]} of ({_describe(got)}), {names[0]} returns "
                            f"{out_tree[0]} of ({_describe(first)}); every branch must return the same "
                            "structure, shapes and dtypes")
    outs = bind_cond(index, traced, leaves)
    return _fresh(tree_util.unflatten(out_tree[0], outs), operands)


def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands) if pred else false_fun(*operands)``, running one
    branch only (JAX's ``lax.cond``).  ``pred`` is a boolean (or integer)
    scalar; both branches return the same structure, shapes and dtypes."""
    _check_function(true_fun, "cond: true_fun")
    _check_function(false_fun, "cond: false_fun")
    pav = aval_of(pred)
    if pav.shape != ():
        raise TypeError(f"cond: the predicate must be a scalar, got {pav}; use np.where to choose "
                        "elementwise")
    if pav.dtype != np.bool_:
        pred = P.ne(pred, np.zeros((), pav.dtype)[()])
    return _branch(P.convert(pred, np.dtype(np.int32)), [false_fun, true_fun], operands,
                   ["cond: false_fun", "cond: true_fun"])


def checkpoint(fun=None, *, prevent_cse=True, policy=None, static_argnums=()):
    """Make reverse mode recompute ``fun``'s intermediates instead of keeping
    them (JAX's ``jax.checkpoint``, also ``remat``).  The values are the same;
    the gradient's memory holds ``fun``'s inputs instead of its internals.
    ``policy`` and ``prevent_cse`` are accepted for compatibility (everything
    is recomputed).  Keyword arguments holding arrays are operands like the
    positional ones; other keyword arguments are passed through as they are."""
    if fun is None:
        return functools.partial(checkpoint, prevent_cse=prevent_cse, policy=policy,
                                 static_argnums=static_argnums)
    check_callable(fun, "checkpoint")
    static = tuple(static_argnums) if isinstance(static_argnums, (tuple, list)) else (static_argnums,)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if not is_tracing():
            # nothing to differentiate: nothing to recompute
            return _fresh(fun(*args, **kwargs), args, kwargs)
        dyn = [a for i, a in enumerate(args) if i not in static]
        # keyword arguments holding arrays are operands; others (flags, names) are fixed
        dyn_kw = {k: v for k, v in kwargs.items() if _all_arrays(v)}

        def call(dyn_args, kw):
            it = iter(dyn_args)
            return fun(*[a if i in static else next(it) for i, a in enumerate(args)],
                       **{**kwargs, **kw})
        return _branch(np.int32(0), [call], (dyn, dyn_kw), ["checkpoint"])
    return wrapped


def _all_arrays(x):
    return all(isinstance(v, (Tracer, np.ndarray, np.generic, bool, int, float))
               for v in tree_util.flatten(x)[0])


remat = checkpoint
