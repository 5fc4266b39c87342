"""The objects that ``grad(f)``, ``jit(f)``, ``vmap(f)``, ... return.

A :class:`Transformed` calls its :class:`~jitgrad.api.functions.Staged` (the
per-signature cache of executables) and remembers how it was made: the
transform (the public function, such as ``grad``), the function it transforms
and the transform's arguments.  That is all pickle needs: a transformed
function pickles as "apply this transform to this function", with the
function itself pickled as pickle does (by qualified name for a module-level
function), never with its traces or compiled code.  A worker that unpickles
it rebuilds the transform and reaches native code through the disk cache.

One instance per (function, transform, arguments) and process.  Calling
``grad(f)`` again for the same ``f`` returns the same object, with its caches,
so that a task that builds its transform on every call (or a worker that
unpickles it for every task) still gets hot and compiles.  Functions that
live as long as their module (found by their qualified name) have their
transforms kept for the process; the transforms of other functions (lambdas,
closures) are found again only while the user holds them, and die with them.
"""
from __future__ import annotations

import functools
import types
import weakref

import numpy as np

from ..core import trace as core
from ..core.names import by_qualified_name
from ..core.trace import state


# ---------------------------------------------------------------------------
# Calling


class Transformed:
    """A transformed function: ``f``'s name, docstring and signature, calling
    its staged computation.

    Keyword arguments are passed to ``f`` as further (traced, not
    differentiated) arguments: ``remake(g, static_argnums)`` builds the same
    transform of ``g(*args, *kwarg_values)``, once per set of keyword names;
    a keyword naming a parameter in ``static_argnums`` stays static.
    """

    # the call path reads these slots (they cannot be shadowed by the
    # attributes functools.update_wrapper copies from a wrapped Transformed)
    __slots__ = ("_staged", "_fast", "_static", "_remake", "_by_names",
                 "_maker", "_fun", "_params", "_pin_key", "__dict__", "__weakref__")

    def __init__(self, f, staged, remake, maker, params):
        functools.update_wrapper(self, f)
        self._staged = staged
        self._fast = staged.fast
        self._static = staged.static_argnums
        self._remake = remake
        self._by_names = {}
        self._maker = maker       # the public transform: maker(f, **params) makes this again
        self._fun = f
        self._params = params
        self._pin_key = None      # its key in the registry, when kept for the process

    def __call__(self, *args, **kwargs):
        if not kwargs:
            # the hot path of Staged.__call__, inlined: one call level less
            if self._static or (core.traces_open and state.stack):
                return self._staged.miss(args, None)
            # The key of _fast_key, made at C speed: the argument types, and
            # for arrays their shape and dtype.  It may hold types that
            # _fast_key refuses (ints, lists): no entry is ever stored under
            # such a key (see the miss below), so it just misses.
            key = tuple(map(type, args))
            if _ndarray in key:
                key = ((args[0].shape, args[0].dtype),) if len(args) == 1 else tuple(
                    [(a.shape, a.dtype) if type(a) is _ndarray else type(a) for a in args])
            e = self._fast.get(key)
            if e is not None:
                return e.finish(e.exe.call(args))
            return self._staged.miss(args, _fast_key(args))
        return self._with_keywords(args, kwargs)

    def _with_keywords(self, args, kwargs):
        if self._remake is None:
            raise TypeError(f"{getattr(self, '__name__', 'this function')}: this transform takes "
                            "positional arguments only")
        from .arguments import static_with_keywords
        names = tuple(sorted(kwargs))
        inner = self._by_names.get((len(args), names))
        if inner is None:
            n, f = len(args), self._fun

            @functools.wraps(f)
            def with_keywords(*a):
                return f(*a[:n], **dict(zip(names, a[n:])))
            inner = self._by_names[(len(args), names)] = self._remake(
                with_keywords, static_with_keywords(f, self._static, n, names))
        return inner(*args, *[kwargs[k] for k in names])

    def __get__(self, obj, cls=None):
        # as a plain function would: a class attribute binds to its instance
        return self if obj is None else types.MethodType(self, obj)

    def __repr__(self):
        return f"<jitgrad.{self._maker.__name__} of {self._fun!r}>"

    def __reduce__(self):
        if by_qualified_name(self) is self:
            # a module attribute (a decorated function): by reference
            return self.__qualname__
        fun = self._fun
        holder = _holder_of(fun)
        if holder is not None:
            # f itself is not found by name, because its module attribute
            # holds a transform of it (``@jit def f``): name it through that
            return _transform_of_wrapped, (self._maker, holder, self._params)
        return _rebuild, (self._maker, fun, self._params)


_ndarray = np.ndarray


def _fast_key(args):
    """The cheap cache key of a call with positional arrays and floats only, or None."""
    key = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            key.append((a.shape, a.dtype))
        elif t is float or t is np.float64 or t is np.float32:
            key.append(t)
        else:
            return None
    return tuple(key)


# ---------------------------------------------------------------------------
# Pickling


def _rebuild(maker, fun, params):
    return maker(fun, **params)


def _transform_of_wrapped(maker, holder, params):
    return maker(innermost(holder), **params)


def innermost(f):
    """The user's function below any number of transforms."""
    while isinstance(f, Transformed):
        f = f._fun
    return f


def _holder_of(fun):
    """The module attribute that is a transform of the plain function ``fun``
    (``@grad def f`` leaves ``f`` only inside ``module.f``), or None."""
    if isinstance(fun, Transformed):
        return None
    held = by_qualified_name(fun)
    if held is not fun and isinstance(held, Transformed) and innermost(held) is fun:
        return held
    return None


# ---------------------------------------------------------------------------
# One instance per (function, transform, arguments)


_pinned = {}                              # (maker, params, name) -> Transformed, for the process
_live = weakref.WeakValueDictionary()     # (maker, params, id(f)) -> Transformed, while it lives


def _long_lived_name(f):
    """A name under which ``f`` lives as long as its module, or None:
    ``(module, qualname)`` for a function found by its qualified name, and a
    pinned transform's own key for a transform of one."""
    is_transform = isinstance(f, Transformed)
    if is_transform and f._pin_key is not None:
        return f._pin_key
    if by_qualified_name(f) is f or (not is_transform and _holder_of(f) is not None):
        return ("name", f.__module__, f.__qualname__, is_transform)
    return None


def _freeze(x):
    """A hashable stand-in for the transform arguments ``x`` (in_axes may hold lists and dicts)."""
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(_freeze(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((repr(k), _freeze(v)) for k, v in x.items())))
    hash(x)
    return (type(x).__name__, x)


def transformed(maker, f, params, staged, remake=None):
    """The one :class:`Transformed` for ``maker(f, **params)`` in this process:
    found again, or made around ``staged()`` (a new Staged) and remembered."""
    def make():
        return Transformed(f, staged(), remake, maker, params)
    try:
        frozen = _freeze(params)
    except TypeError:          # arguments that cannot be keys: a new instance each time
        return make()
    name = _long_lived_name(f)
    if name is not None:
        key = (maker, frozen, name)
        t = _pinned.get(key)
        if t is None or t._fun is not f:      # (a function defined again under its name replaces it)
            t = _pinned[key] = make()
            t._pin_key = key
        return t
    key = (maker, frozen, id(f))
    t = _live.get(key)
    if t is None or t._fun is not f:          # (ids are unique among live objects; t holds f)
        t = make()
        _live[key] = t
    return t
