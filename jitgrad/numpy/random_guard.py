"""NumPy's own random functions while a function is traced: an error, not a frozen draw.

A call such as ``np.random.randn(3)`` or ``rng.normal()`` inside a function that
jitgrad traces runs once, at trace time, and its numbers would become
constants of the trace, reused by every later call.  Installed at import, this
module wraps every random entry point NumPy offers so that such a call raises
:class:`FrozenRandomError` at the user's line instead, saying what to use
(``jitgrad.random`` with a key argument).  ``with constant_draws():`` allows
the call when a constant is what is meant.

What is wrapped: the functions of ``np.random`` (the legacy global state's
methods, ``default_rng``, ``seed``, ...), and the methods of
``np.random.RandomState`` and ``np.random.Generator``.  NumPy's classes are
immutable, so ``np.random.RandomState`` and ``np.random.Generator`` become
subclasses of them, and ``np.random.default_rng`` returns such a subclass
(``isinstance`` answers as before for instances of either).  The checking
wrappers are installed only while some thread traces (see
``core.trace.while_tracing``): the rest of the time every name is NumPy's own
function or method, at NumPy's own speed.  Objects made
before jitgrad was imported or copied by ``pickle``/``copy`` (NumPy rebuilds
its own class), bit generators' own methods, and names bound before import
(``from numpy.random import randn``) are not wrapped.
"""
from __future__ import annotations

import functools
import sys
import threading
import types

import numpy as np

from ..core import trace as _trace
from ..core.errors import JitgradError


class FrozenRandomError(JitgradError, RuntimeError):
    """NumPy's random numbers were drawn while jitgrad traced a function: they
    would be constants of the trace, the same on every call."""


class _Allowed(threading.local):
    depth = 0


_allowed = _Allowed()


class constant_draws:
    """Context manager (and decorator): NumPy's random functions called inside
    it, on this thread, may run while a function is traced; their numbers are
    then constants of the trace, on purpose."""

    def __enter__(self):
        _allowed.depth += 1
        return self

    def __exit__(self, *exc):
        _allowed.depth -= 1

    def __call__(self, fn):
        @functools.wraps(fn)
        def allowed(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return allowed


def _frozen(name):
    f = sys._getframe(2)
    where = f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else "unknown line"
    return FrozenRandomError(
        f"{name} was called while jitgrad traces a function ({where}): it would draw once, now, "
        "and every later call would reuse the same numbers as a constant of the trace. Draw "
        "inside the function with jitgrad.random and a key argument (for example "
        "eps = jitgrad.random.normal(key, shape), with a new key per call from "
        "jitgrad.random.split, or let jitgrad.random.with_key / with_rng pass one), or, if a "
        "constant is what you want, call it inside `with jitgrad.random.constant_draws():`.")


def _guard_function(name, fn):
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        if _trace.traces_open and _trace.state.stack and not _allowed.depth:
            raise _frozen(name)
        return fn(*args, **kwargs)
    guarded.__jitgrad_guarded__ = fn
    return guarded


def _guard_method(cls_name, name, method):
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if _trace.traces_open and _trace.state.stack and not _allowed.depth:
            raise _frozen(f"{cls_name}.{name}")
        return method(self, *args, **kwargs)
    guarded.__jitgrad_guarded__ = method
    return guarded


def public_methods(cls):
    """The names of ``cls``'s public methods (the entry points that are wrapped)."""
    return sorted(n for n, v in vars(cls).items() if not n.startswith("_") and callable(v))


def public_functions(module):
    """The names of ``module``'s public functions (not its classes, modules or test runner)."""
    return sorted(n for n, v in vars(module).items()
                  if not n.startswith("_") and callable(v) and n != "test"
                  and not isinstance(v, (type, types.ModuleType)))


class _SameInstances(type):
    """``isinstance(x, np.random.Generator)`` stays true for NumPy's own
    instances (made before import, or by NumPy itself)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.__numpy_class__)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.__numpy_class__)


def _subclass(base):
    """A subclass of NumPy's ``base`` with the same name: it gets the guarded
    methods only while something is traced."""
    namespace = dict(__numpy_class__=base, __module__=base.__module__,
                     __qualname__=base.__qualname__, __doc__=base.__doc__, __slots__=())
    return _SameInstances(base.__name__, (base,), namespace)


# (owner, name, original or None, guarded): set while tracing, restored after.
_GUARDS = []


def _watch(tracing):
    """Install the guards when the first trace opens, remove them when the last closes."""
    for owner, name, original, guarded in _GUARDS:
        if tracing:
            setattr(owner, name, guarded)
        elif original is None:
            delattr(owner, name)          # the subclass's method: NumPy's is found again
        else:
            setattr(owner, name, original)


def _install():
    rnd = np.random
    if getattr(rnd, "__jitgrad_guarded__", False):
        return
    functions = public_functions(rnd)
    numpy_generator = rnd.Generator
    for base in (rnd.RandomState, numpy_generator):
        sub = _subclass(base)
        _GUARDS.extend((sub, name, None, _guard_method(base.__name__, name, getattr(base, name)))
                       for name in public_methods(base))
        setattr(rnd, base.__name__, sub)
    numpy_default_rng = rnd.default_rng

    @functools.wraps(numpy_default_rng)
    def default_rng(seed=None):
        # NumPy's constructs NumPy's class; the same stream in the subclass
        g = numpy_default_rng(seed)
        return rnd.Generator(g.bit_generator) if type(g) is numpy_generator and seed is not g else g

    rnd.default_rng = default_rng
    _GUARDS.extend((rnd, name, getattr(rnd, name), _guard_function(f"np.random.{name}", getattr(rnd, name)))
                   for name in functions)
    rnd.__jitgrad_guarded__ = True
    _trace.while_tracing(lambda: _watch(True), lambda: _watch(False))


_install()
