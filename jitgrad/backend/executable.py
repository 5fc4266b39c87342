"""Executables: run an IR, compiled by Numba when it pays, interpreted until then.

Tiers.  Importing Numba costs about half a second and compiling a function
from a fraction of a second to seconds, so a cold signature first runs on the
NumPy reference interpreter (no compile at all).  A signature that is called
again, or whose arrays are large, is queued for compiling in the background;
calls switch to native code as soon as it is ready.  ``config.compile`` chooses:

- ``"auto"`` (default): the tiers above;
- ``"always"``: compile on the first call and wait for it (benchmarks, tests of
  the compiled code);
- ``"never"``: always interpret.

Background compiles.  One queue and one worker thread, started when there is
work and gone when there is none.  The queue holds weak references, so a queued
signature whose function the user dropped is skipped, and a signature must be
called more often to join a longer queue (a burst of new shapes called once or
twice each compiles a few of them, not all).

Disk cache.  Generated source goes to a file in the cache folder
(``JITGRAD_CACHE_DIR``, default ``~/.cache/jitgrad``) named by a hash of the
source, jitgrad's version, Numba's and the vectorised math kernels' source, so
that Numba's own on-disk cache serves the next process (Numba's cache also
checks the CPU).  A damaged cache entry (the load fails) is deleted and built
again; a folder that cannot be written means compiling without a disk cache.

Threads and processes.  Compiled functions release the GIL.  Numba's
threading layer is its "forksafe" choice (TBB if installed, else its own
workqueue), unless ``NUMBA_THREADING_LAYER`` says otherwise; the workqueue
cannot run two parallel loops at once, so parallel functions then take turns.
A fork waits for a compile in progress, so that the child's locks are free.
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import contextvars
import functools
import glob
import hashlib
import importlib.util
import linecache
import numbers
import os
import signal
import sys
import threading
import types
import warnings
import weakref
from typing import NamedTuple

import numpy as np

from ..core.trace import eval_ir
from ..core.ir import Var

COMPILE_MODES = ("auto", "always", "never")


def _check_setting(name, value, where=None):
    """``value`` checked (and normalised) for the setting ``name``; ``where``
    names its source in the message (default ``config.<name>``)."""
    where = where or f"jitgrad.config.{name}"
    if name == "compile":
        if not isinstance(value, str) or value not in COMPILE_MODES:
            raise ValueError(f"{where} must be one of {', '.join(map(repr, COMPILE_MODES))}, "
                             f"got {value!r}")
        return value
    if name in ("hot_calls", "big_elements"):
        least = 1 if name == "hot_calls" else 0
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
            raise ValueError(f"{where} must be an integer >= {least}, got {value!r}")
        return int(value)
    if name == "cache_dir":
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ValueError(f"{where} must be a folder path (str or os.PathLike), got {value!r}")
        return os.fspath(value)
    raise AttributeError(f"jitgrad.config has no setting {name!r}; the settings are "
                         f"{', '.join(_Config.SETTINGS)}")


class _Config:
    """jitgrad's settings.  Assignment (``jitgrad.config.compile = "never"``)
    sets a setting for every thread; ``with jitgrad.config(...)`` overrides
    settings for the code in the block, on this thread only (as JAX's
    configuration context managers), so that threads never undo each other's
    overrides.  Every value is checked (see ``_check_setting``)."""

    SETTINGS = ("compile", "hot_calls", "big_elements", "cache_dir")

    def __init__(self):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_overrides", contextvars.ContextVar("jitgrad.config", default={}))
        self._values["compile"] = _check_setting(
            "compile", os.environ.get("JITGRAD_COMPILE", "auto"),
            "the environment variable JITGRAD_COMPILE")
        self.hot_calls = 2            # compile when a signature is called this many times
        self.big_elements = 200_000   # ... or at once when its arrays are this large
        # (an empty JITGRAD_CACHE_DIR means the default, not the current folder)
        self.cache_dir = os.environ.get("JITGRAD_CACHE_DIR") or os.path.join(
            os.path.expanduser("~"), ".cache", "jitgrad")

    def __getattr__(self, name):      # only for names that are not attributes: the settings
        if name not in _Config.SETTINGS:
            raise AttributeError(f"jitgrad.config has no setting {name!r}; the settings are "
                                 f"{', '.join(_Config.SETTINGS)}")
        overrides = self._overrides.get()
        return overrides[name] if name in overrides else self._values[name]

    def __setattr__(self, name, value):
        self._values[name] = _check_setting(name, value)

    def __call__(self, **kw):
        """Override settings in a block, on this thread:
        ``with jitgrad.config(compile="always"): ...``."""
        return _Override(self, {k: _check_setting(k, v) for k, v in kw.items()})


class _Override:
    def __init__(self, cfg, kw):
        self.cfg, self.kw, self.tokens = cfg, kw, []

    def __enter__(self):
        self.tokens.append(self.cfg._overrides.set({**self.cfg._overrides.get(), **self.kw}))
        return self.cfg

    def __exit__(self, *exc):
        self.cfg._overrides.reset(self.tokens.pop())


config = _Config()
# source key -> Native, shared by equal IRs.  (Kept: Numba does not free the
# machine code of a function it compiled, about a megabyte each.)
_compiled = {}
_lock = threading.Lock()          # guards _compiled
# Held while compiling (Numba compiles one function at a time anyway); a fork
# waits for it, so that the child never inherits a compile half done.
_compile_lock = threading.RLock()


def _debug_level():
    try:
        return int(os.environ.get("JITGRAD_DEBUG", "0"))
    except ValueError:
        return 0


# ---------------------------------------------------------------------------
# The background compile queue


class _CompileQueue:
    """Executables waiting to be compiled, and the one worker thread that
    compiles them in order.  Jobs are weak references: a job whose function
    is gone is skipped."""

    def __init__(self):
        self.cond = threading.Condition()
        self.jobs = collections.deque()
        self.busy = False           # the worker is compiling a job
        self.worker = None
        self.closing = False        # the interpreter is exiting: start nothing new

    def __len__(self):
        """The number of compiles waiting or running."""
        return len(self.jobs) + self.busy

    def put(self, exe):
        """Queue ``exe`` unless it is queued already; make sure a worker runs
        (a forked child inherits the jobs but not the worker)."""
        with self.cond:
            if not exe.queued and not self.closing:
                exe.queued = True
                self.jobs.append(weakref.ref(exe))
            self._ensure_worker()

    def _ensure_worker(self):
        if self.worker is None and self.jobs and not self.closing:
            self.worker = threading.Thread(target=self._work, daemon=True, name="jitgrad-compile")
            self.worker.start()

    def _work(self):
        try:
            while self._work_one():
                pass
        finally:
            with self.cond:
                self.worker = None
                self.busy = False
                self.cond.notify_all()
                self._ensure_worker()       # a job put while this worker was leaving

    def _work_one(self):
        """Compile the next live job; False when there is none."""
        # the job is taken with the compile lock held, so that a fork never
        # happens between taking a job and compiling it (see _before_fork)
        with _compile_lock:
            with self.cond:
                exe = None
                while exe is None and self.jobs and not self.closing:
                    exe = self.jobs.popleft()()
                if exe is None:
                    return False
                self.busy = True
            exe.compile()
            with self.cond:
                self.busy = False
                self.cond.notify_all()
        return True

    def wait(self):
        with self.cond:
            while (self.jobs and not self.closing) or self.busy:
                self._ensure_worker()       # after a fork, the child has no worker yet
                self.cond.wait()

    def close(self):
        """At exit: drop the waiting jobs (the one running finishes or is cut short;
        Numba writes its cache files atomically)."""
        with self.cond:
            self.closing = True
            self.jobs.clear()
            self.cond.notify_all()

    def reset_after_fork(self):
        # only the forking thread lives on in the child: fresh locks, no worker;
        # the waiting jobs stay, for a worker started when the child asks
        self.cond = threading.Condition()
        self.busy = False
        self.worker = None


_queue = _CompileQueue()
atexit.register(_queue.close)


def wait_for_compiles():
    """Block until every queued background compile has finished."""
    _queue.wait()


# ---------------------------------------------------------------------------
# Parallel loops, threads and fork


class _ParallelLaunch:
    """Numba's workqueue threading layer aborts the process when two threads
    run parallel loops at once: with it, native calls of parallel functions
    take turns under this lock (replaced in a forked child)."""

    def __init__(self):
        self.lock = threading.Lock()


_launch = _ParallelLaunch()
_fork_held = False


def _before_fork():
    global _fork_held
    # wait (a while) for a compile in progress: a child that inherits Numba's
    # compiler lock held by a thread it does not have would hang compiling
    _fork_held = _compile_lock.acquire(timeout=60)


def _after_fork_parent():
    if _fork_held:
        _compile_lock.release()


def _after_fork_child():
    global _compile_lock, _lock
    _compile_lock = threading.RLock()
    _lock = threading.Lock()
    _launch.lock = threading.Lock()
    _queue.reset_after_fork()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)


@functools.lru_cache(maxsize=None)
def _numba():
    """Import Numba, choosing its threading layer first: "forksafe" (TBB if
    installed, else the workqueue; GNU OpenMP aborts a forked child), unless the
    user chose one with NUMBA_THREADING_LAYER."""
    with _interrupts_deferred():
        import numba
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "forksafe"
    return numba


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold a Ctrl-C (SIGINT) until the block is done: an import of Numba cut
    short leaves it broken for the rest of the process.  Signals reach the
    main thread only, so elsewhere there is nothing to hold."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield                   # (None: a handler installed from C, which cannot be restored)
        return
    held = []
    signal.signal(signal.SIGINT, lambda *args: held.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)    # delivered now, to the usual handler


def _launches_take_turns():
    """Whether parallel native calls must hold ``_launch.lock`` (the threading
    layer is the workqueue, or not known yet)."""
    try:
        return _numba().threading_layer() == "workqueue"
    except ValueError:           # not initialised: assume the worst
        return True


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
        if e.prim.kind in ("view", "call") or e.prim.name == "reshape":
            operands = e.inputs if e.prim.kind == "call" else e.inputs[:1]
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


def _uncompilable_dtype(ir):
    """The first dtype of ``ir`` that Numba's native code cannot take (arrays
    in a non-native byte order, float16, long double), or None."""
    for v in [*ir.invars, *ir.constvars, *(o for e in ir.eqns for o in e.outputs)]:
        dt = np.dtype(v.aval.dtype)
        if not dt.isnative:
            return f"arrays in non-native byte order ({dt})"
        if dt.kind not in "biuf" or (dt.kind == "f" and dt.itemsize not in (4, 8)):
            return f"{dt} values"
    return None


class Executable:
    """One IR at one signature."""

    def __init__(self, ir, label=""):
        self.ir = ir
        self.label = label or "f"
        self.fn = None            # the compiled function, once ready
        self.calls = 0
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
        outs = self.interpret(args)
        # queue after answering, so the compile does not slow this call
        if mode == "auto" and self.error is None and (self.queued or self.worth_compiling()):
            _queue.put(self)
        return outs

    def worth_compiling(self):
        """A compile costs as much as hundreds of interpreted calls of a small
        function, so compile what is large or called again; while compiles are
        waiting, a signature must be called more often to join them."""
        return (self.size >= config.big_elements
                or self.calls >= config.hot_calls * (1 + len(_queue)))

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
        ns = {"fn": native.fn, "ndarray": np.ndarray, "interpret": self.interpret,
              "launch": _launch}
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
        run = f"r = fn({', '.join(args)})"
        if native.parallel and _launches_take_turns():
            run = f"with launch.lock:\n            {run}"

        def function(name, guarded):
            src = f"def {name}(args):\n    {unpack or '_'} = {'args' if unpack else '()'}\n"
            if guarded:
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

    def compile(self):
        """Compile now, in this thread (unless done, or failed before); returns
        the native function, or None when it could not be compiled (warned)."""
        with _compile_lock:
            if self.fn is not None or self.error is not None:
                return self.fn
            try:
                native = compile_ir(self.ir, self.label, self.consts)
                self.call = self._native_caller(native)
                self.fn = native.fn
            except Exception as exc:   # keep answering from the interpreter
                self.error = _without_tracebacks(exc)
                warnings.warn(f"jitgrad could not compile {self.label} ({type(exc).__name__}: "
                              f"{exc}); it will keep running on the NumPy interpreter",
                              RuntimeWarning)
        return self.fn


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


# ---------------------------------------------------------------------------
# From IR to a compiled Numba function


class Native(NamedTuple):
    fn: object                # the Numba dispatcher, compiled for the signature
    range_checked: bool       # fn returns the sin/cos range count last (see codegen)
    parallel: bool            # fn runs prange loops


@functools.lru_cache(maxsize=None)
def _vecmath_hash():
    from . import vecmath
    with open(vecmath.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def compile_ir(ir, label="f", consts=None):
    """Generate, write, import and compile the Numba function for ``ir`` at
    its signature (``consts``: its constants as they will be passed)."""
    numba = _numba()             # first: the code generator imports it too
    from ..version import __version__
    from .emit import generate
    gen = generate(ir, label)
    if _debug_level() >= 4:
        print(gen.source, file=sys.stderr)
    # the generated module calls jitgrad.backend.vecmath, whose machine code Numba's
    # cache stores with the module's: a change there must change the file name
    key = hashlib.sha256(f"{gen.key}/{__version__}/{numba.__version__}/{_vecmath_hash()}".encode()
                         ).hexdigest()[:24]
    with _lock:
        native = _compiled.get(key)
    if native is None:
        # Numba compiles lazily, at the first call; compile now, for the
        # argument types this signature will be called with.
        sig = tuple(numba.typeof(np.zeros((), v.aval.dtype)[()] if v.aval.shape == ()
                                 else np.zeros(v.aval.shape, v.aval.dtype)) for v in ir.invars)
        sig += tuple(numba.typeof(c) for c in (ir.consts if consts is None else consts))
        fn = _build(gen.source, f"jitgrad_gen_{key}", gen.fn_name, sig)
        # no compiles at call time, for other layouts, on the caller's thread
        # (see Executable._native_caller)
        fn.disable_compile()
        native = Native(fn, gen.range_checked, gen.parallel)
        with _lock:
            _compiled[key] = native
    return native


def _build(source, modname, fn_name, sig):
    """Import ``source`` and compile its ``fn_name`` for ``sig``, with the disk cache.

    A damaged cache entry makes the load fail (an unpickling error, say): its
    files are deleted and the function built once more, which writes them
    anew.  A cache that cannot be written (a full disk, a read-only folder)
    makes that fail too, with an OSError: then compile without a disk cache."""
    try:
        return _compile_module(source, modname, fn_name, sig, disk=True)
    except Exception:
        pass                    # its cache files are gone: once more
    try:
        return _compile_module(source, modname, fn_name, sig, disk=True)
    except OSError as exc:
        _warn_no_disk_cache(exc)
        return _compile_module(source, modname, fn_name, sig, disk=False)


def _compile_module(source, modname, fn_name, sig, disk):
    module = _load_module(source, modname, disk)
    fn = getattr(module, fn_name)
    try:
        fn.compile(sig)
    except BaseException:
        sys.modules.pop(modname, None)
        _discard_cache(modname, fn)
        raise
    return fn


def _discard_cache(modname, fn):
    """Delete Numba's cache files (index and data) of the module ``modname``:
    in the cache folder's ``__pycache__``, or where Numba put them for ``fn``
    (its user-wide cache, when that folder is not writable)."""
    folders = {os.path.join(config.cache_dir, "__pycache__"),
               getattr(getattr(fn, "_cache", None), "_cache_path", None)}
    for folder in filter(None, folders):
        for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(modname) + ".*")):
            try:
                os.remove(path)
            except OSError:
                pass


_warned_folders = set()


def _warn_no_disk_cache(exc):
    """Warn, once per folder, that compiles go without a disk cache."""
    folder = config.cache_dir
    if folder not in _warned_folders:
        _warned_folders.add(folder)
        warnings.warn(f"jitgrad cannot use the compile cache in {folder!r} ({type(exc).__name__}: "
                      f"{exc}); compiling without a disk cache (set JITGRAD_CACHE_DIR to a "
                      "writable folder)", RuntimeWarning, stacklevel=2)


def _load_module(source, modname, disk=True):
    """Import ``source`` as the module ``modname``: from a file in the cache
    folder (written unless an identical file is there), or, without ``disk`` or
    when that folder cannot be written, from memory with Numba's cache off."""
    if disk:
        try:
            path = _write_source(source, modname)
        except OSError as exc:
            _warn_no_disk_cache(exc)
            disk = False
    if disk:
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        return module
    # Numba caches only functions defined in files; linecache keeps the source
    # visible to inspect, tracebacks and debuggers
    source = source.replace("@njit(cache=True,", "@njit(cache=False,", 1)
    filename = f"<jitgrad {modname}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(modname)
    module.__file__ = filename
    sys.modules[modname] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def _write_source(source, modname):
    os.makedirs(config.cache_dir, exist_ok=True)
    path = os.path.join(config.cache_dir, modname + ".py")
    existing = None
    try:
        with open(path) as f:
            existing = f.read()
    except (OSError, UnicodeDecodeError):
        pass
    if existing != source:           # missing, stale or damaged: (re)write it
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(source)
            os.replace(tmp, path)
        except OSError:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
    return path
