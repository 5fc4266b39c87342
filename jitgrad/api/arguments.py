"""What users pass to the transforms, checked and normalised.

Leaves become arrays jitgrad computes on (or a ``TypeError`` that names the
argument and the fix); ``argnums`` and ``static_argnums`` are checked against
the call and the function's signature; an IR is checked for values jitgrad
cannot compute on (dtypes other than booleans, integers, floats and complex
numbers), wherever they entered it.
"""
from __future__ import annotations

import inspect
import operator

import numpy as np

from ..core.trace import Tracer
from ..core.ir import IR, Lit


# ---------------------------------------------------------------------------
# Leaves and values


# ndarray subclasses whose meaning is more than their values: computing on
# the plain array underneath would silently drop it (a mask, units, matrix
# products).  A subclass is one of them when it overrides NumPy's protocols or
# the arithmetic operators; the advice for the common ones is more specific.
_SEMANTIC_HOOKS = ("__array_ufunc__", "__array_function__", "__add__", "__radd__", "__sub__",
                   "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__matmul__",
                   "__rmatmul__", "__pow__", "__neg__")
_ADVICE = [
    (np.ma.MaskedArray, "np.ma.MaskedArray", "its mask would be ignored: pass x.filled(fill_value) "
     "(or np.asarray(x) to use the data under the mask)"),
    (np.matrix, "np.matrix", "its operators (* is a matrix product) would not be kept: pass "
     "np.asarray(x)"),
]


def _reject_semantic_subclass(x, where):
    cls = type(x)
    hooks = [h for h in _SEMANTIC_HOOKS if getattr(cls, h, None) is not getattr(np.ndarray, h)]
    if not hooks:
        return
    for base, name, why in _ADVICE:
        if isinstance(x, base):
            raise TypeError(f"{where} is a {name}, which jitgrad does not support: {why}")
    raise TypeError(f"{where} is a {cls.__name__}, an ndarray subclass that changes what NumPy "
                    f"computes ({', '.join(hooks)}), which jitgrad would not keep: pass "
                    "np.asarray(x) to compute on its values as a plain array")


def coerce(x, where):
    """Turn a leaf into something with a shape and dtype (Python numbers: 0-d
    float64/int64; ndarray subclasses: a plain ndarray view), or raise a
    TypeError naming ``where`` for values jitgrad cannot compute on."""
    if isinstance(x, Tracer):
        value = x
    elif type(x) is np.ndarray or isinstance(x, np.generic):
        value = x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))
    elif isinstance(x, np.ndarray):
        _reject_semantic_subclass(x, where)
        value = x.view(np.ndarray)     # a subclass that only adds methods or metadata: its values
        value = value if value.dtype.isnative else value.astype(value.dtype.newbyteorder("="))
    elif isinstance(x, bool):
        value = np.bool_(x)
    elif isinstance(x, int):
        if not -2**63 <= x < 2**63:
            raise OverflowError(f"{where}: the Python integer {x} does not fit in int64, the dtype "
                                "jitgrad gives Python integers; pass a float or a NumPy array")
        value = np.int64(x)
    elif isinstance(x, float):
        value = np.float64(x)
    elif hasattr(x, "__jitgrad_value__"):
        value = x.__jitgrad_value__()
    else:
        try:
            value = np.asarray(x)
        except Exception:
            value = None
        if value is None or value.dtype.kind not in "biufc":
            raise TypeError(f"{where}: jitgrad cannot use a value of type {type(x).__name__} "
                            "as an array argument (mark it static with static_argnums, or pass arrays)")
    check_dtype(value.dtype, where)
    return value


def check_dtype(dtype, what):
    """Raise a TypeError naming ``what`` unless jitgrad computes on ``dtype``
    (booleans, integers, floats and complex numbers)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"{what} has dtype {dtype}, which jitgrad cannot compute on: "
                        "pass arrays of booleans, integers, floats or complex numbers")


def leaf_names(in_tree, positions):
    """'argument i' for each leaf of the tuple of arguments ``in_tree``
    (``positions``: the user's index of each), with the leaf's number inside a
    structured argument."""
    names = []
    for child, i in zip(in_tree.children, positions):
        n = child.num_leaves
        names += [f"argument {i}"] if child.kind is None else \
            [f"argument {i} (leaf {k} of {child})" for k in range(n)]
    return names


def check_values(ir, fname):
    """Reject values jitgrad cannot compute on (see :func:`check_dtype`) anywhere in
    ``ir``: captured constants, literals and intermediates, inner IRs included."""
    for v, c in zip(ir.constvars, ir.consts):
        check_dtype(v.aval.dtype, f"a constant of shape {v.aval.shape} captured by {fname}")
    for e in ir.eqns:
        where = f" at {e.where}" if e.where else ""
        for a in e.inputs:
            if isinstance(a, Lit):
                check_dtype(a.dtype, f"the literal {a.value!r} used by {fname}{where}")
        for o in e.outputs:
            check_dtype(o.aval.dtype, f"a value computed by {fname}{where} ({e.prim.name})")
        for p in e.params.values():
            if isinstance(p, IR):
                check_values(p, fname)


# ---------------------------------------------------------------------------
# The function and argnums


def _index(i):
    """``i`` as an int if it is one (NumPy integers too, not bools), else None."""
    if isinstance(i, (bool, np.bool_)):
        return None
    try:
        return operator.index(i)
    except TypeError:
        return None


def check_callable(f, transform):
    """A transform's first argument must be a function."""
    if not callable(f):
        raise TypeError(f"{transform} expects a function as its first argument, got a "
                        f"{type(f).__name__}")


def check_argnums(argnums, transform):
    """``argnums`` (an int, or a non-empty tuple or list of ints; NumPy
    integers too) as an int or a tuple of ints."""
    if _index(argnums) is not None:
        return _index(argnums)
    nums = tuple(map(_index, argnums)) if isinstance(argnums, (tuple, list)) else (None,)
    if None in nums:
        raise TypeError(f"{transform}: argnums must be an int or a tuple of ints, got {argnums!r}")
    if not nums:
        raise ValueError(f"{transform}: argnums is empty; name at least one argument to differentiate")
    return nums


def check_argnums_range(argnums, nargs, fname):
    """Each of ``argnums`` names one of the ``nargs`` arguments of a call, and
    no argument twice."""
    for a in argnums:
        if not -nargs <= a < nargs:
            raise ValueError(f"argnums={a} is out of range: {fname} was called with {nargs} "
                             f"positional argument{'s' if nargs != 1 else ''}")
    resolved = [a % nargs for a in argnums]
    for a in set(resolved):
        if resolved.count(a) > 1:
            # JAX fails here too; a gradient per entry would differentiate
            # only one of the copies and return zeros for the others
            raise ValueError(f"argnums={tuple(argnums)} names argument {a} of {fname} more than "
                             "once; name each argument once")


def check_float(leaf, argnum, fname, transform, holomorphic=False, real=False):
    """A differentiated leaf must be floating-point or complex (complex with
    ``holomorphic``; real for forward-mode Jacobians without it, as JAX's)."""
    dt = np.dtype(leaf.dtype)
    if holomorphic and dt.kind != "c":
        raise TypeError(
            f"{transform} with holomorphic=True requires complex inputs, but argument {argnum} of "
            f"{fname} has dtype {dt}. Pass complex values (x.astype(np.complex128)), or leave out "
            "holomorphic=True.")
    if real and dt.kind == "c" and not holomorphic:
        raise TypeError(
            f"{transform} requires real-valued inputs, but argument {argnum} of {fname} has dtype "
            f"{dt}. For a holomorphic function pass holomorphic=True; otherwise use jacrev, or "
            "pass the real and imaginary parts as separate real arguments.")
    if not np.issubdtype(dt, np.inexact):
        raise TypeError(
            f"{transform} requires floating-point inputs, but argument {argnum} of {fname} has dtype "
            f"{dt}. Pass floats (for example 3.0 instead of 3, or x.astype(np.float64)), or leave "
            f"this argument out of argnums.")


def check_output(dtype, what, fname, transform, holomorphic=False):
    """The output a reverse-mode derivative starts from must be real (JAX's
    rule: the gradient of a complex output is not defined without
    ``holomorphic``), or complex with ``holomorphic``."""
    dt = np.dtype(dtype)
    if holomorphic and dt.kind != "c":
        raise TypeError(f"{transform} with holomorphic=True requires complex outputs, but {what} "
                        f"of {fname} has dtype {dt}; leave out holomorphic=True")
    if dt.kind == "c" and not holomorphic:
        raise TypeError(
            f"{transform} requires real-valued outputs, but {what} of {fname} has dtype {dt}. "
            f"For a holomorphic function pass holomorphic=True (the result is f'(z)); otherwise "
            "differentiate a real-valued function of it (np.real, np.abs(...)**2), or use "
            "jitgrad.vjp with a complex cotangent.")
    if not np.issubdtype(dt, np.inexact):
        raise TypeError(f"{transform} requires floating-point outputs, but {what} of {fname} "
                        f"has dtype {dt}; convert the output with .astype(float)")


# ---------------------------------------------------------------------------
# Static arguments


def split_static(args, static_argnums):
    """(dynamic arguments, ((index, value) of each static argument)).

    A negative index counts from the end of the arguments passed; an index at
    or past their number names a parameter the caller left to its default,
    and is ignored (as JAX does)."""
    if not static_argnums:
        return args, ()
    n = len(args)
    for i in static_argnums:
        if i < -n:
            raise ValueError(f"static_argnums={i} is out of range: the function was called with {n} "
                             f"positional argument{'s' if n != 1 else ''}")
    static = tuple(sorted({i % n for i in static_argnums if i < n}))
    dyn = tuple(a for i, a in enumerate(args) if i not in static)
    st = tuple(args[i] for i in static)
    for i, s in zip(static, st):
        try:
            hash(s)
        except TypeError:
            raise TypeError(f"static argument {i} must be hashable (it is part of the cache key), "
                            f"got a {type(s).__name__}; pass a tuple instead of a list, or pass "
                            "arrays as ordinary (traced) arguments") from None
    return dyn, tuple(zip(static, st))


def merge_static(dyn, static):
    """The inverse of :func:`split_static`."""
    args = list(dyn)
    for i, s in static:
        args.insert(i, s)
    return args


def _positional_parameters(f):
    """The names of ``f``'s positional parameters, and whether it takes ``*args``
    (None when its signature cannot be read)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names, any(p.kind == p.VAR_POSITIONAL for p in params)


def check_static_argnums(f, static_argnums):
    """static_argnums as a tuple of ints, checked against ``f``'s signature."""
    single = _index(static_argnums)
    nums = (single,) if single is not None else tuple(map(_index, static_argnums)) \
        if isinstance(static_argnums, (tuple, list)) else (None,)
    if None in nums:
        raise TypeError(f"static_argnums must be an int or a tuple of ints, got {static_argnums!r}")
    sig = _positional_parameters(f)
    if sig is not None and not sig[1] and nums and max(nums) >= len(sig[0]):
        raise ValueError(f"static_argnums={static_argnums} is out of range: "
                         f"{getattr(f, '__name__', 'the function')} takes "
                         f"{len(sig[0])} positional argument{'s' if len(sig[0]) != 1 else ''}")
    return nums


def static_with_keywords(f, static_argnums, n, names):
    """The static positions of ``f(*args[:n], **dict(zip(names, args[n:])))``:
    the static positions passed positionally, and the keywords whose parameter
    is static."""
    if not static_argnums:
        return ()
    params = (_positional_parameters(f) or ([], False))[0]
    by_name = {params[i % len(params)] for i in static_argnums if -len(params) <= i < len(params)}
    return tuple(i % n for i in static_argnums if -n <= i < n) + \
        tuple(n + j for j, k in enumerate(names) if k in by_name)


def static_outside(argnums):
    """``auto_static`` for a differentiating transform: the arguments outside
    ``argnums`` that are Python control values (see :func:`is_control_value`)
    are static, as they would be concrete in JAX's (eager) ``grad``."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    def positions(args):
        n = len(args)
        diff = {a % n for a in nums if -n <= a < n}
        return tuple(i for i, a in enumerate(args) if i not in diff and is_control_value(a))
    return positions


def is_control_value(a):
    """Python ints, bools, strings, None, callables (not arrays), and tuples of
    them: values that steer the computation rather than enter it.  Python
    floats are not among them: like JAX's transforms under jit, jitgrad
    traces them (a float that changes every call would otherwise trace again
    every call)."""
    if a is None or type(a) in (int, bool, str):
        return True
    if type(a) is tuple:
        return all(is_control_value(x) for x in a)
    return callable(a) and not isinstance(a, (np.ndarray, Tracer)) and \
        not hasattr(a, "__jitgrad_value__")
