"""Executables: run an IR, compiled by Numba when it pays, interpreted until then.

Tiers.  Importing Numba costs about half a second and compiling a function
from a fraction of a second to seconds, so a cold signature first runs on the
NumPy reference interpreter (no compile at all).  A signature that is called
again, or whose arrays are large, is queued for compiling in the background
(:mod:`jitgrad.backend.compile`); calls switch to native code as soon as it is
ready.  :mod:`jitgrad.backend.config` chooses.  Results are fresh arrays.
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from ..core.errors import PerformanceWarning
from ..core.ir import IR, Var
from ..core.trace import eval_ir, user_stacklevel
from . import compile as compiler   # (its locks are replaced in a fork child: read them there)
from . import workspace
from .compile import _launches_take_turns, compile_ir
from .config import _debug_level, config

# ---------------------------------------------------------------------------
# Executables


def shared_outputs(ir):
    """The positions of the array outputs of ``ir`` that may share memory with
    an input, a constant or an earlier output; the executable copies exactly
    these, so that every result is a fresh array (users mutate results in place).

    Only a few equations can return memory they did not allocate, in either
    tier: the views (broadcast_in_dim, transpose, slice, pad) and reshape may
    return a view of their operand, and a call of a custom rule may return any
    of its operands.  Every other equation writes a new array.  0-d outputs are
    returned as NumPy scalars, which are immutable.
    """
    roots = {}                 # var -> the vars whose memory it may share

    def roots_of(a):
        return roots.get(a, {a}) if isinstance(a, Var) else set()
    for e in ir.eqns:
        if e.prim.kind in ("view", "call", "control") or e.prim.name == "reshape":
            operands = e.inputs if e.prim.kind in ("call", "control") else e.inputs[:1]
            shared = set().union(*map(roots_of, operands))
            for o in e.outputs:
                roots[o] = shared | {o}
    held = set(ir.invars) | set(ir.constvars)
    copied = []
    for i, v in enumerate(ir.outvars):
        if v.aval.shape == ():
            continue
        r = roots_of(v)
        if r & held:
            copied.append(i)
        held |= r
    return copied


# The longest program "auto" mode compiles in the background (equations,
# loop bodies and branches included): compile time grows with the program,
# about a second per hundred equations here (see backend.split).
AUTO_COMPILE_MAX_EQNS = 3000


def count_eqns(ir):
    """The equations of ``ir`` and of the sub-IRs of its control flow."""
    n = 0
    for e in ir.eqns:
        n += 1
        if e.prim.kind == "control":
            for v in e.params.values():
                for sub in (v if isinstance(v, tuple) else (v,)):
                    if isinstance(sub, IR):
                        n += count_eqns(sub)
    return n


_NATIVE_INEXACT = tuple(map(np.dtype, (np.float32, np.float64, np.complex64, np.complex128)))


def _uncompilable_dtype(ir):
    """The first dtype of ``ir`` that Numba's native code cannot take (arrays
    in a non-native byte order, float16, long double), or None."""
    for v in [*ir.invars, *ir.constvars, *(o for e in ir.eqns for o in e.outputs)]:
        dt = np.dtype(v.aval.dtype)
        if not dt.isnative:
            return f"arrays in non-native byte order ({dt})"
        if dt.kind not in "biufc" or (dt.kind in "fc" and dt not in _NATIVE_INEXACT):
            return f"{dt} values"
    return None


class Executable:
    """One IR at one signature."""

    def __init__(self, ir, label=""):
        self.ir = ir
        self.label = label or "f"
        self.fn = None            # the compiled function, once ready
        self.calls = 0
        self.seconds = 0.0        # processor time spent in the interpreter (in "auto" mode)
        self.queued = False       # in the background queue, or compiled from it
        self.error = None
        # the captured arrays themselves, views included (Numba takes any
        # layout): both tiers read their values at call time, as NumPy would
        self.consts = list(ir.consts)
        unsupported = _uncompilable_dtype(ir)
        if unsupported is not None:
            # the interpreter answers (NumPy's results), and no compile is tried
            self.error = TypeError(f"native code does not take {unsupported}")
        self.scalar_out = [(i, np.dtype(v.aval.dtype).type) for i, v in enumerate(ir.outvars)
                           if v.aval.shape == ()]
        self.copied_out = shared_outputs(ir)
        self.n_eqns = count_eqns(ir)
        self.warned_long = False
        self.size = sum(v.aval.size for v in ir.invars) + sum(
            v.aval.size for e in ir.eqns for v in e.outputs)
        if _debug_level() >= 1:
            print(f"jitgrad: IR of {self.label}\n{ir}", file=sys.stderr)

    def __call__(self, args):
        """Run on a sequence of arguments (arrays or scalars, one per input);
        returns a sequence of outputs (arrays, and NumPy scalars for 0-d outputs)."""
        return self.call(args)

    def call(self, args):
        # Replaced by a direct call of the native function once it is compiled
        # (see _native_caller); until then, the interpreter tier.
        if self.fn is not None:
            return self.call(args)
        self.calls += 1
        mode = config.compile
        if mode == "always" and self.error is None:
            self.compile()
            return self(args)
        if mode != "auto" or self.error is not None:
            return self.interpret(args)
        # the processor time of this thread, not the clock: on a busy machine a
        # call that waited for a core has not cost more to interpret
        start = time.thread_time()
        outs = self.interpret(args)
        self.seconds += time.thread_time() - start
        # queue after answering, so the compile does not slow this call
        if self.queued or self.worth_compiling():
            compiler._queue.put(self)
        return outs

    def worth_compiling(self):
        """A compile costs as much as thousands of interpreted calls of a small
        function (0.3 s and more against 30-100 us), so compile what is large,
        or called again once the interpreter has spent ``hot_seconds`` on it: a
        throwaway function called a few times (a property-based test makes one
        per example) never compiles, and a hot one wastes at most that long.
        While compiles are waiting, a signature must be hotter to join them.
        A program too long to compile quickly is not compiled in the background."""
        if self.n_eqns > AUTO_COMPILE_MAX_EQNS:
            self._warn_too_long()
            return False
        waiting = 1 + len(compiler._queue)
        return (self.size >= config.big_elements
                or (self.calls >= config.hot_calls * waiting
                    and self.seconds >= config.hot_seconds * waiting))

    def _warn_too_long(self):
        if not self.warned_long:
            self.warned_long = True
            warnings.warn(
                f"jitgrad does not compile {self.label} in the background: its program has "
                f"{self.n_eqns} operations (a Python loop unrolled while tracing?), and compiling "
                "it would take minutes. It keeps running on the NumPy interpreter. Write the loop "
                "with jitgrad.fori_loop or jitgrad.scan, or set jitgrad.config.compile = 'always' "
                "to compile it anyway", PerformanceWarning, stacklevel=user_stacklevel())

    def interpret(self, args):
        """Run on the NumPy interpreter (IEEE results, no warnings, as the native code)."""
        args = [np.float64(a) if type(a) is float else np.asarray(a) for a in args]
        with np.errstate(all="ignore"):
            outs = [np.asarray(o) for o in eval_ir(self.ir, args)]
        for i, t in self.scalar_out:
            outs[i] = t(outs[i])
        for i in self.copied_out:
            outs[i] = outs[i].copy()
        return outs

    def _native_caller(self, native):
        """A closure calling ``native.fn`` with no per-call bookkeeping: written
        out for this signature so that each argument, constant and scalar output
        costs one expression (this is the hot path of every transformed function).
        With ``native.range_checked``, the function returns one more value, the
        number of sin/cos arguments outside the vectorised kernels' exact range;
        when it is not zero the call is answered by the interpreter (see codegen)."""
        ns = {"fn": _entry_point(native.fn, self.ir), "ndarray": np.ndarray,
              "interpret": self.interpret, "launch": compiler._launch}
        args = []
        for i, v in enumerate(self.ir.invars):
            # a 0-d array argument is passed as the scalar the native code expects
            args.append(f"(a{i}[()] if type(a{i}) is ndarray else a{i})" if v.aval.shape == ()
                        else f"a{i}")
        for i, c in enumerate(self.consts):
            ns[f"c{i}"] = c
            args.append(f"c{i}")
        outs = []
        for i, v in enumerate(self.ir.outvars):
            if v.aval.shape == ():
                ns[f"t{i}"] = np.dtype(v.aval.dtype).type
                outs.append(f"t{i}(r[{i}])")
            else:
                outs.append(f"r[{i}].copy()" if i in self.copied_out else f"r[{i}]")
        unpack = "".join(f"a{i}, " for i in range(len(self.ir.invars)))
        if native.workspace:       # the temporaries' buffer: one per running call
            pool = workspace.Pool(native.workspace)
            ns["take"], ns["give"] = pool.take, pool.give
            args.append("w")
        run = f"r = fn({', '.join(args)})"
        if native.parallel and _launches_take_turns():
            run = f"with launch.lock:\n            {run}"

        def function(name, guarded):
            src = f"def {name}(args):\n    {unpack or '_'} = {'args' if unpack else '()'}\n"
            if native.workspace:
                src += f"    w = take()\n    try:\n        {run}\n"
                if guarded:
                    src += "    except TypeError:\n        return unguarded(copies(args))\n"
                src += "    finally:\n        give(w)\n"
            elif guarded:
                src += f"    try:\n        {run}\n    except TypeError:\n" \
                       f"        return unguarded(copies(args))\n"
            else:
                src += f"    {run}\n".replace("\n        ", "\n    ")
            if native.range_checked:
                src += f"    if r[{len(outs)}]:\n        return interpret(args)\n"
            return src + f"    return ({''.join(o + ', ' for o in outs)})\n"
        # Numba compiled fn for contiguous, writable arrays and compiles no
        # more (see compile_ir): another layout (a strided view, a read-only
        # or unaligned array) is a TypeError, and the call is made with copies
        ns["copies"] = _contiguous_copies
        exec(function("unguarded", False) + function("call", True), ns)
        return ns["call"]

    # -- compiling

    def compile(self, worker=False):
        """Compile now, in this thread (unless done, or failed before); returns
        the native function, or None when it could not be compiled (warned).
        With ``worker``, the compile worker process compiles and this thread
        waits for it without holding the GIL (see compile_worker)."""
        with compiler._compile_lock:
            if self.fn is not None or self.error is not None:
                return self.fn
            try:
                native = compile_ir(self.ir, self.label, self.consts, worker)
                self.call = self._native_caller(native)
                self.fn = native.fn
            except Exception as exc:   # keep answering from the interpreter
                self.error = _without_tracebacks(exc)
                if compiler._queue.closing:
                    return None         # the process is exiting: the compile was cut short
                why = (f"it ran out of memory compiling a program of {self.n_eqns} operations (a "
                       "Python loop unrolled while tracing? jitgrad.fori_loop and jitgrad.scan keep "
                       "a loop one loop)" if isinstance(exc, MemoryError) else
                       f"{getattr(exc, 'type_name', type(exc).__name__)}: {exc}")
                warnings.warn(f"jitgrad could not compile {self.label} ({why}); it will keep "
                              "running on the NumPy interpreter", RuntimeWarning)
        return self.fn

    def compile_in_background(self):
        """The background queue's compile: in the worker process unless
        ``config.compile_worker`` is off."""
        return self.compile(worker=config.compile_worker)


def _entry_point(fn, ir):
    """What the native caller calls: with scalar inputs only, the compiled
    function's own entry point, skipping the dispatcher's type checks (a
    third of a bare call): the caller's cache key (the arguments' types)
    guarantees the types it was compiled for, and the entry point converts a
    scalar as the dispatcher would.  Arrays go through the dispatcher, which
    checks their layout (see _native_caller)."""
    if all(v.aval.shape == () for v in ir.invars) and len(fn.overloads) == 1:
        entry = next(iter(fn.overloads.values())).entry_point
        if callable(entry):
            return entry
    return fn


def _contiguous_copies(args):
    return [np.array(a, order="C") if type(a) is not float and np.ndim(a) else a for a in args]


def _without_tracebacks(exc):
    """``exc`` and the exceptions it chains, without their tracebacks: kept,
    a traceback keeps every frame of the failed call alive, the user's
    function and its arguments included."""
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        e.__traceback__ = None
        e = e.__cause__ or e.__context__
    return exc


