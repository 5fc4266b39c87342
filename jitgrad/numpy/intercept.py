"""The NumPy functions that have no dispatch protocol, made to work inside traces.

NumPy sends traced arrays given to most of its functions to
``__array_function__``, but not those that build arrays: ``np.array``,
``np.asarray``, ``np.asanyarray``, ``np.ascontiguousarray`` (which would
build an object array of tracers, or call ``Tracer.__array__``), and the
constructors from a shape (``np.zeros``, ``np.ones``, ``np.empty``,
``np.full``, ``np.eye``, ``np.identity``, and the ``*_like`` functions of a
NumPy array), whose results could not hold a traced value written into them.

While a trace is open on any thread, the attributes of the ``numpy`` module
with these names are replaced by thin wrappers (installed when the first trace
opens, restored when the last one closes: outside traces NumPy is untouched
and costs nothing extra).  A wrapper answers from jitgrad only when three
things hold: this thread is tracing, the call comes from outside jitgrad and
NumPy (the user's code, or a library such as SciPy that it calls), and, for the
converting functions, the argument holds a traced value.  Otherwise it calls
NumPy's own function with the same arguments, so other threads, jitgrad's own
internals and ordinary arguments see NumPy's behaviour exactly.

The same holds for the NumPy functions that do dispatch, when their traced
values sit inside lists: NumPy's dispatchers look at the arguments, not into
them, so ``np.mean([x, x + 2])`` would convert the list; while tracing, such a
call from user code goes where ``__array_function__`` would send it.

Inside a traced function the shape constructors therefore return traced
arrays (filled with their value), which can be written into (see
:mod:`jitgrad.numpy.inplace`).  Code that imported a name before jitgrad was
imported (``from numpy import zeros``) keeps NumPy's function.
"""
from __future__ import annotations

import os
import sys
from itertools import compress
from operator import is_

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer, state, while_tracing
from .base import _fresh, _holds_tracer, _operand, astype, from_sequence
from .shapes import _shape_argument, broadcast_to, reshape

# jitgrad's own code and NumPy's (np.broadcast_shapes calls np.empty) keep NumPy's functions
_INTERNAL = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
             os.path.dirname(os.path.abspath(_np.__file__)))


def _from_user(depth=2):
    """Whether the caller of the wrapper (``depth`` frames up) is outside jitgrad and NumPy."""
    return not sys._getframe(depth).f_code.co_filename.startswith(_INTERNAL)


# ---------------------------------------------------------------------------
# jitgrad's answers (called only while this thread traces, from user code)


def _traced_array(obj, dtype=None, *, copy=True, ndmin=0, **kwargs):
    """np.array of a value holding tracers: a new traced array.  As NumPy's
    ``copy``: True copies, None copies only to convert, False never does."""
    if isinstance(copy, _np._CopyMode):
        copy = _COPY_MODES[copy.name]
    value = from_sequence(obj) if isinstance(obj, (list, tuple)) else _operand(obj)
    if dtype is not None:
        value = astype(value, dtype)
    nd = _np.ndim(value) if not isinstance(value, Tracer) else value.ndim
    if ndmin > nd:
        value = reshape(value, (1,) * (ndmin - nd) + tuple(_np.shape(value)
                                                              if not isinstance(value, Tracer)
                                                              else value.shape))
    if value is not obj:
        if copy is False:
            raise ValueError("Unable to avoid copy while creating an array as requested.")
        return value
    return _fresh(value) if copy else value


_COPY_MODES = {"ALWAYS": True, "IF_NEEDED": None, "NEVER": False}


def _traced_asarray(obj, dtype=None, *args, copy=None, **kwargs):
    """np.asarray and friends: the traced value itself when it already is one
    (no copy, as NumPy), else a new traced array."""
    if isinstance(copy, _np._CopyMode):
        copy = _COPY_MODES[copy.name]
    return _traced_array(obj, dtype, copy=copy)


def _filled(shape, value, dtype):
    shape = _shape_argument(shape)
    return _fresh(_np.full(shape, value, dtype)) if not shape else P.full(shape, value, dtype)


def _traced_full(shape, fill_value, dtype=None, **kwargs):
    if isinstance(fill_value, Tracer) or _holds_tracer(fill_value):
        value = _operand(fill_value)
        dt = _np.dtype(dtype) if dtype is not None else value.dtype
        return _fresh(broadcast_to(astype(value, dt), _shape_argument(shape)))
    dt = _np.dtype(dtype) if dtype is not None else _np.asarray(fill_value).dtype
    return _filled(shape, fill_value, dt)


def _like_dtype(a, dtype):
    return _np.dtype(dtype) if dtype is not None else _np.asarray(a).dtype


# (name, answer(original, *args, **kwargs) or None to defer, converting?)
def _converting(name):
    def answer(orig, obj, *args, **kwargs):
        if not _holds_tracer(obj):
            return None
        if name == "array":
            return _traced_array(obj, *args, **kwargs)
        return _traced_asarray(obj, *args, **kwargs)
    return answer


def _constructor(build):
    return lambda orig, *args, **kwargs: build(*args, **kwargs)


def _like(build):
    """A *_like constructor: traced arguments go to __array_function__ (NumPy's own)."""
    return lambda orig, a, *args, **kwargs: None if _holds_tracer(a) else build(a, *args, **kwargs)


_ANSWERS = {
    "array": _converting("array"),
    "asarray": _converting("asarray"),
    "asanyarray": _converting("asanyarray"),
    "ascontiguousarray": _converting("ascontiguousarray"),
    "zeros": _constructor(lambda shape, dtype=float, *a, **k: _filled(shape, 0, _np.dtype(dtype))),
    "ones": _constructor(lambda shape, dtype=float, *a, **k: _filled(shape, 1, _np.dtype(dtype))),
    "empty": _constructor(lambda shape, dtype=float, *a, **k: _filled(shape, 0, _np.dtype(dtype))),
    "full": _constructor(_traced_full),
    # of NumPy arrays (a traced argument goes through __array_function__ first)
    "zeros_like": _like(lambda a, dtype=None, *x, **k: _filled(_np.shape(a), 0, _like_dtype(a, dtype))),
    "ones_like": _like(lambda a, dtype=None, *x, **k: _filled(_np.shape(a), 1, _like_dtype(a, dtype))),
    "empty_like": _like(lambda a, dtype=None, *x, **k: _filled(_np.shape(a), 0, _like_dtype(a, dtype))),
    "full_like": _like(lambda a, fill_value, dtype=None, *x, **k: _traced_full(
        _np.shape(a), fill_value, _like_dtype(a, dtype))),
    "eye": lambda orig, *args, **kwargs: _fresh(orig(*args, **kwargs)),
    "identity": lambda orig, *args, **kwargs: _fresh(orig(*args, **kwargs)),
}

ORIGINALS = {name: getattr(_np, name) for name in _ANSWERS}


def _wrapper(name):
    orig, answer = ORIGINALS[name], _ANSWERS[name]

    def wrapper(*args, **kwargs):
        if state.stack and _from_user():       # (installed only while some thread traces)
            if kwargs.get("like") is None:
                kwargs.pop("like", None)
                out = answer(orig, *args, **kwargs)
                if out is not None:
                    return out
        return orig(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = orig.__doc__
    wrapper.__wrapped__ = orig
    wrapper.__jitgrad_intercepts__ = orig
    return wrapper


WRAPPERS = {name: _wrapper(name) for name in _ANSWERS}


def register(name, wrapper):
    """Replace ``numpy.<name>`` by ``wrapper`` while tracing, as the functions above."""
    ORIGINALS[name] = getattr(_np, name)
    WRAPPERS[name] = wrapper


def _nested_only(args, kwargs):
    """Traced values only inside lists or tuples: NumPy's dispatchers look at
    the arguments themselves (``np.mean([x, x + 2])`` would convert the list)."""
    found = False
    for v in (*args, *kwargs.values()) if kwargs else args:
        if isinstance(v, Tracer):
            return False
        found = found or isinstance(v, (list, tuple)) and _holds_tracer(v)
    return found


# NumPy's dispatchers of these already look inside their sequences, and
# shape, ndim, size and result_type are what jitgrad itself calls most
_UNWRAPPED = {"concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "einsum",
              "meshgrid", "atleast_1d", "atleast_2d", "atleast_3d", "select",
              "shape", "ndim", "size", "result_type"}


def register_sequence_functions(functions, array_function):
    """While tracing, the NumPy functions in ``functions`` (those NumPy sends
    to ``__array_function__``) also answer from jitgrad when called from user
    code with traced values inside lists: ``array_function`` is what
    ``Tracer.__array_function__`` does.  Other calls reach NumPy's function."""
    for func in functions:
        name = getattr(func, "__name__", None)
        if name in WRAPPERS or name in _UNWRAPPED or getattr(_np, name, None) is not func:
            continue

        def wrapper(*args, _func=func, **kwargs):
            if _nested_only(args, kwargs) and state.stack and _from_user():   # (cheapest first)
                return array_function(None, _func, (Tracer,), args, kwargs)
            return _func(*args, **kwargs)
        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__doc__ = func.__doc__
        wrapper.__wrapped__ = wrapper.__jitgrad_intercepts__ = func
        register(name, wrapper)

# Library modules that bound NumPy's functions at their import, and call them
# on what the user passes: their globals get the same wrappers while tracing
# (if they are loaded).  SciPy's polygamma starts with ``asarray(x)``.
LIBRARY_GLOBALS = {"scipy.special._basic": ("asarray",)}


def _targets():
    yield _np
    for module_name in LIBRARY_GLOBALS:
        module = sys.modules.get(module_name)
        if module is not None:
            yield module


# A swap of a module's names, prepared once per module and set of names.  The
# identity checks and the update run in C (map, compress): a Python loop over
# the names would cost more than the rest of opening a small trace.
_SWAPS = {}


def _swap(module):
    names = tuple(WRAPPERS if module is _np else LIBRARY_GLOBALS[module.__name__])
    key = (module.__name__, names)
    if key not in _SWAPS:
        _SWAPS[key] = (names, tuple(ORIGINALS[n] for n in names), tuple(WRAPPERS[n] for n in names),
                       tuple((n, WRAPPERS[n]) for n in names), tuple((n, ORIGINALS[n]) for n in names))
    return _SWAPS[key]


def _install():
    for module in _targets():
        names, originals, _, to_wrappers, _ = _swap(module)
        space = vars(module)
        space.update(compress(to_wrappers, map(is_, map(space.get, names), originals)))


def _uninstall():
    for module in _targets():
        names, _, wrappers, _, to_originals = _swap(module)
        space = vars(module)                                   # (never undo another's)
        space.update(compress(to_originals, map(is_, map(space.get, names), wrappers)))


while_tracing(_install, _uninstall)
