"""Tracing: primitives, the trace stack, and the Tracer that stands in for arrays.

There is one kind of trace: a *staging* trace that records every primitive
applied to its tracers as an equation of an :class:`~jitgrad.core.ir.IR`.  All
transforms are IR -> IR functions.  When a transform is applied to tracers of an
enclosing trace (``grad(grad(f))``), it builds its IR on fresh variables and then
*inlines* the result into the enclosing trace by evaluating it on those tracers;
that is all higher-order differentiation needs.

A tracer of an enclosing trace that reaches an inner trace (through a closure)
becomes a constant input of the inner IR, so inner transforms treat it as a
constant while the outer trace still sees the dependence.
"""
from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np

from .errors import JitgradError, PerformanceWarning, TracerBoolError
from .primitive import Undefined
from .ir import IR, Aval, Eqn, Lit, Var

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the jitgrad package


# ---------------------------------------------------------------------------
# The trace stack


class Trace:
    """Records equations for one level of tracing (on the thread that opened it)."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.eqns = []
        self.invars = []
        self.constvars = []
        self.consts = []
        self._const_ids = {}   # id(value) -> Var, for arrays and outer tracers
        self.alive = True

    def new_arg(self, aval):
        v = Var(aval)
        self.invars.append(v)
        return Tracer(self, v)

    def atom(self, x):
        """Turn an operand into a Var or Lit of this trace."""
        if isinstance(x, Tracer):
            if x._trace is self:
                return x._var
            if not x._trace.alive:
                raise escaped_tracer_error()
            if x._trace.thread != self.thread:
                raise _other_thread_error()
            return self._const(x, x.aval)
        if isinstance(x, (bool, int, float, complex, np.generic)) or (isinstance(x, np.ndarray) and x.ndim == 0):
            arr = np.asarray(x)
            return Lit(arr.item(), arr.dtype)
        arr = np.asarray(x)
        if arr.dtype == object:
            raise TypeError(f"jitgrad cannot use a value of type {type(x).__name__} as an array")
        return self._const(arr, Aval(arr.shape, arr.dtype))

    def _const(self, value, aval):
        key = id(value)
        v = self._const_ids.get(key)
        if v is None:
            v = Var(aval)
            self._const_ids[key] = v
            self.constvars.append(v)
            self.consts.append(value)
        return v

    def to_ir(self, outs):
        outvars = [self.atom(o) for o in outs]
        if len(self.eqns) > UNROLLED_EQNS:
            _warn_unrolled(self.eqns)
        return IR(self.invars, self.constvars, self.consts, self.eqns, outvars)


# A trace longer than this is almost always a Python loop unrolled at trace
# time; its compile time grows with its length (see backend.split).
UNROLLED_EQNS = 2000
_warned_lines = set()


def _warn_unrolled(eqns):
    """Warn once per source line: the line that produced the most equations
    is the loop body to rewrite."""
    counts = {}
    for e in eqns:
        counts[e.where] = counts.get(e.where, 0) + 1
    line, n = max(counts.items(), key=lambda kv: kv[1])
    if line in _warned_lines:
        return
    _warned_lines.add(line)
    warnings.warn(
        f"the traced function has {len(eqns)} operations, {n} of them from {line or 'one line'}: a "
        "Python loop there is unrolled while tracing, so the program (and its compile time) grows "
        "with the trip count. Write the loop with jitgrad.fori_loop or jitgrad.scan: it then stays "
        "one loop, traced and compiled once", PerformanceWarning, stacklevel=user_stacklevel())


def user_stacklevel():
    """The ``stacklevel`` that makes a warning raised here point at the
    innermost caller outside jitgrad."""
    f, level = sys._getframe(1), 1
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f, level = f.f_back, level + 1
    return level


class _TraceState(threading.local):
    """What tracing knows on one thread.  Every thread has its own: a trace
    opened on one thread never records another thread's operations.

    ``stack``  the active traces, innermost last (empty: operations execute);
    ``line``   while a transform rewrites an equation, the user's source line
               of the original, given to every equation it emits.
    """

    def __init__(self):
        self.stack: list[Trace] = []
        self.line = None


state = _TraceState()

# How many traces are open on all threads together: a cheap first test for the
# hot path of every transformed function (``if not core.traces_open``: no
# thread traces, so this one does not), before the per-thread look-up.
traces_open = 0
_open_lock = threading.Lock()

# Hooks run when the first trace opens on any thread (``install``) and after the
# last one closes (``uninstall``), under the lock that counts them: the NumPy
# layer uses them to intercept the few NumPy functions that have no dispatch
# protocol (np.array, np.zeros, ...) only while something is being traced.
_tracing_hooks: list = []


def while_tracing(install, uninstall):
    """Call ``install()`` whenever tracing starts (no trace was open on any
    thread) and ``uninstall()`` whenever it stops.  Both run under a lock; the
    functions they install must still check :func:`is_tracing` themselves,
    since other threads run while one thread traces."""
    with _open_lock:
        _tracing_hooks.append((install, uninstall))
        if traces_open:
            install()


def _after_fork_child():
    # only the forking thread survives in the child: its traces are the open ones,
    # and the lock may have been held by a thread that no longer exists
    global traces_open, _open_lock
    _open_lock = threading.Lock()
    was, traces_open = traces_open, len(state.stack)
    if was and not traces_open:
        for _, uninstall in _tracing_hooks:
            uninstall()


os.register_at_fork(after_in_child=_after_fork_child)


def _other_thread_error():
    return JitgradError(
        "a traced value of a function being traced on another thread was used here; traced "
        "values belong to the thread that traces them: pass arrays between threads, not traced values")


def escaped_tracer_error():
    return JitgradError(
        "a traced value escaped from the function that produced it (for example stored in a "
        "global or a list) and was used after that function returned; return it instead")


class new_trace:
    """Context manager: push a fresh trace on this thread's stack, and mark it
    dead when done."""

    def __enter__(self):
        global traces_open
        self.trace = Trace()
        with _open_lock:
            traces_open += 1
            if traces_open == 1:
                for install, _ in _tracing_hooks:
                    install()
        self.stack = state.stack
        self.stack.append(self.trace)
        return self.trace

    def __exit__(self, *exc):
        global traces_open
        self.stack.pop()
        self.trace.alive = False
        with _open_lock:
            traces_open -= 1
            if not traces_open:
                for _, uninstall in _tracing_hooks:
                    uninstall()


def is_tracing():
    """Whether a function is being traced on this thread."""
    return traces_open > 0 and bool(state.stack)


class at_line:
    """Context manager: equations bound inside are attributed to ``where``
    (a transform rewriting one equation keeps its user's source line)."""

    __slots__ = ("where", "old")

    def __init__(self, where):
        self.where = where

    def __enter__(self):
        self.old, state.line = state.line, self.where

    def __exit__(self, *exc):
        state.line = self.old


def _user_line():
    """File:line of the innermost frame outside jitgrad, for comments and errors."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back
    if f is None:
        return ""
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def bind(prim, *args, **params):
    """Apply a primitive: record it in the innermost trace, or run its impl when
    nothing is being traced."""
    stack = state.stack if traces_open else None
    if not stack:
        for a in args:
            if isinstance(a, Tracer):     # a finished trace's, or another thread's
                raise escaped_tracer_error() if not a._trace.alive else _other_thread_error()
        return prim.impl(*args, **params)     # (a list, for multiple results)
    trace = stack[-1]
    atoms = [trace.atom(a) for a in args]
    avals = prim.shape_rule(*[a.aval for a in atoms], **params)
    outs = [Var(av) for av in avals]
    trace.eqns.append(Eqn(prim, atoms, outs, params, state.line or _user_line()))
    tracers = [Tracer(trace, v) for v in outs]
    return tracers if prim.multiple_results else tracers[0]


def aval_of(x):
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, Undefined):
        return x.aval
    arr = np.asarray(x)
    return Aval(arr.shape, arr.dtype)


def walk(ir: IR, args, rule, consts=None, lift=None, env=None, free=False):
    """The one forward interpreter of an IR: every other one is a ``rule``.

    Binds the constants (``consts``, default ``ir.consts``) and ``args`` to the
    IR's variables, then for each equation in order calls ``rule(eqn, inputs)``
    with the values of its inputs and binds its output (a list of values for a
    primitive with multiple results), with the equation's source line current
    (so equations the rule emits keep the user's line).  Returns the values of
    the outputs.

    ``lift(x)`` turns a literal's NumPy scalar (and, for the constants, the
    caller passes lifted values) into the interpreter's kind of value: the
    JVP walks (primal, tangent) pairs, batching (value, batched) pairs.
    ``env``: a dict to fill, for a caller that reads intermediates afterwards.
    ``free``: drop each intermediate after its last use (see :func:`eval_ir`).
    """
    lift = lift or (lambda x: x)
    env = {} if env is None else env
    env.update(zip(ir.constvars, ir.consts if consts is None else consts))
    env.update(zip(ir.invars, args))

    def read(a):
        return lift(a.array) if isinstance(a, Lit) else env[a]

    dead = _last_uses(ir) if free else None
    for i, e in enumerate(ir.eqns):
        with at_line(e.where):
            out = rule(e, [read(a) for a in e.inputs])
        if e.prim.multiple_results:
            env.update(zip(e.outputs, out))
        else:
            env[e.outputs[0]] = out
        if dead:
            for v in dead[i]:
                del env[v]
    return [read(v) for v in ir.outvars]


def _last_uses(ir):
    """Per equation, the variables read for the last time there (outputs excepted)."""
    last = {}
    for i, e in enumerate(ir.eqns):
        for a in e.inputs:
            if not isinstance(a, Lit):
                last[a] = i
    for v in ir.outvars:
        last.pop(v, None)
    dead = [[] for _ in ir.eqns]
    for v, i in last.items():
        dead[i].append(v)
    return dead


def apply_eqn(e, ins):
    """The rule of plain evaluation: bind the equation's primitive to ``ins``."""
    return bind(e.prim, *ins, **e.params)


def eval_ir(ir: IR, args, consts=None):
    """Evaluate an IR on NumPy values (the reference interpreter) or on tracers
    (which inlines it into the current trace).

    Each intermediate is dropped after its last use: large arrays are freed as
    soon as possible, so the allocator hands their memory to the next ones
    instead of mapping (and page-faulting) fresh memory for every equation."""
    return walk(ir, args, apply_eqn, consts, free=True)


# ---------------------------------------------------------------------------
# The Tracer


_CONVERSIONS = ("float()", "int()", "complex()")
_NUMPY_TARGET_HINT = (
    " (NumPy also does this when a traced value is written into a NumPy array, a[i] = v: "
    "make that array inside the function, with np.zeros(...), np.array(...) or the copy of "
    "a traced array, so that it is traced too.)")


class Tracer:
    """Stands in for an array while a function is traced.

    It supports Python's operators, NumPy's ufunc and function protocols, and the
    array methods people use, by forwarding to :mod:`jitgrad.numpy`.
    """

    # _view, _views: see jitgrad.numpy.inplace (unset on most tracers)
    __slots__ = ("_trace", "_var", "_view", "_views", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, trace, var):
        self._trace = trace
        self._var = var

    @property
    def aval(self):
        return self._var.aval

    shape = property(lambda self: self._var.aval.shape)
    dtype = property(lambda self: np.dtype(self._var.aval.dtype))
    ndim = property(lambda self: len(self._var.aval.shape))
    size = property(lambda self: self._var.aval.size)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        return f"Traced<{self.aval}>"

    # Python's control flow cannot branch on a value that is not known yet.
    def _concrete_error(self, what):
        if not self._trace.alive:
            raise escaped_tracer_error()
        raise TracerBoolError(
            f"{what} on a traced array ({self.aval}) at {_user_line() or 'unknown line'}: the value is "
            "not known while jitgrad traces the function. Python `if`/`while`/`and`/`or` and "
            "conversions to Python numbers cannot depend on an argument's value. Use "
            "np.where(cond, a, b) to choose between values, or make the argument static: "
            "jit(f, static_argnums=...); grad, value_and_grad and the Jacobians keep Python "
            "int, bool, str and None arguments outside argnums static by themselves (pass 200, "
            "not 200.0 or np.int64(200))." + (_NUMPY_TARGET_HINT if what in _CONVERSIONS else ""))

    def __bool__(self):
        self._concrete_error("bool()")

    def __float__(self):
        self._concrete_error("float()")

    def __int__(self):
        self._concrete_error("int()")

    def __index__(self):
        self._concrete_error("use as an index")

    def __complex__(self):
        self._concrete_error("complex()")

    def item(self):
        self._concrete_error(".item()")

    def tolist(self):
        self._concrete_error(".tolist()")

    def __array__(self, dtype=None, copy=None):
        if not self._trace.alive:
            raise escaped_tracer_error()
        raise TracerBoolError(
            f"a traced array ({self.aval}) was converted to a NumPy array (np.asarray, np.array or a "
            "function jitgrad does not know). Inside a transformed function, use NumPy functions "
            "directly on the traced values; to build an array from traced scalars use "
            "np.array([...]) or np.stack." + _NUMPY_TARGET_HINT)

    def __setitem__(self, key, value):
        raise TypeError(
            "in-place assignment into a traced array (x[...] = v) is not supported: arrays are "
            "immutable while jitgrad traces. Build the new array instead, for example with "
            "np.where(mask, v, x) or np.concatenate.")

    def __hash__(self):
        return id(self)

    # The rest (operators, methods, NumPy protocols) is attached by jitgrad.numpy.
