"""Native code: generated source compiled by Numba, its disk cache, and the one
background compile queue.

Background compiles.  One queue and one worker thread, started when there is
work and gone when there is none; the thread has the compile worker process
compile (see compile_worker) and loads the result from the disk cache, unless
``config.compile_worker`` is off.  The queue holds weak references, so a queued
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
import os
import sys
import threading
import types
import warnings
import weakref
from typing import NamedTuple

import numpy as np

from . import compile_worker, numba_import
from .config import _debug_level, config
from .numba_import import numba as _numba

_compiled = {}
_lock = threading.Lock()          # guards _compiled and counts
# How native functions were obtained in this process: "compiled" by Numba,
# "loaded" from the disk cache, or "reused" (an equal IR compiled before here).
counts = collections.Counter()
# Held while compiling (Numba compiles one function at a time anyway); a fork
# waits for it, so that the child never inherits a compile half done.
_compile_lock = threading.RLock()


# ---------------------------------------------------------------------------
# The background compile queue


class _CompileQueue:
    """Executables waiting to be compiled, and the one worker thread that
    compiles them in order.  Jobs are weak references: a job whose function
    is gone is skipped.  Each job is compiled in the context it was queued
    from, so that the settings of a ``with jitgrad.config(...)`` block (the
    cache folder) hold for its background compiles too."""

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
                self.jobs.append((weakref.ref(exe), contextvars.copy_context()))
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
                    ref, context = self.jobs.popleft()
                    exe = ref()
                if exe is None:
                    return False
                self.busy = True
            with _short_switches():
                context.run(exe.compile_in_background)
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


# While a background compile runs Python code in this process (importing
# Numba, generating source, loading the native code), the interpreter hands
# the GIL to a waiting thread every this many seconds instead of every 5 ms:
# a caller's call that waits for the GIL after each NumPy operation that
# released it (an interpreted call of a large program makes dozens) would
# otherwise wait up to 5 ms each time.
SWITCH_INTERVAL = 0.0005


@contextlib.contextmanager
def _short_switches():
    """Use ``SWITCH_INTERVAL`` in the block (unless the process uses a
    shorter one); the interval found is restored after, unless someone set
    another meanwhile."""
    previous = sys.getswitchinterval()
    if previous <= SWITCH_INTERVAL:
        yield
        return
    sys.setswitchinterval(SWITCH_INTERVAL)
    mine = sys.getswitchinterval()           # (as the interpreter rounds it)
    try:
        yield
    finally:
        if sys.getswitchinterval() == mine:
            sys.setswitchinterval(previous)


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
    # (or its import lock: the warm-up imports Numba)
    if _warming is not None:
        _warming.join(timeout=60)
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


def _launches_take_turns():
    """Whether parallel native calls must hold ``_launch.lock`` (the threading
    layer is the workqueue, or not known yet)."""
    try:
        return _numba().threading_layer() == "workqueue"
    except ValueError:           # not initialised: assume the worst
        return True


# ---------------------------------------------------------------------------
# From IR to a compiled Numba function


class Native(NamedTuple):
    fn: object                # the Numba dispatcher, compiled for the signature
    range_checked: bool       # fn returns the sin/cos range count last (see codegen)
    parallel: bool            # fn runs prange loops
    workspace: int = 0        # > 0: fn takes a workspace of this many bytes last (backend.workspace)


@functools.lru_cache(maxsize=None)
def _vecmath_hash():
    """A hash of the kernel modules that generated code calls (their code is
    compiled into the generated functions, so a change to any must miss).
    Read from their files: importing them imports Numba."""
    h = hashlib.sha256()
    for name in ("vecmath", "specialmath", "linalgmath", "libcalls", "complexmath", "randmath",
                 "tripcount"):
        with open(os.path.join(os.path.dirname(__file__), name + ".py"), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def compile_ir(ir, label="f", consts=None, worker=False):
    """Generate, write, import and compile the Numba function for ``ir`` at
    its signature (``consts``: its constants as they will be passed).  With
    ``worker``, the compile worker process compiles it into the disk cache
    and this process loads it from there (see compile_worker): the job is
    sent before this process imports Numba, so that the two overlap, unless
    the disk cache has the module already (then no worker is started)."""
    from ..version import __version__
    from .emit import generate
    gen = generate(ir, label)
    if _debug_level() >= 4:
        print(gen.source, file=sys.stderr)
    # the generated module calls jitgrad.backend.vecmath, whose machine code Numba's
    # cache stores with the module's: a change there must change the file name
    key = hashlib.sha256(f"{gen.key}/{__version__}/{numba_import.version()}/{_vecmath_hash()}"
                         .encode()).hexdigest()[:24]
    with _lock:
        native = _compiled.get(key)
        if native is not None:
            counts["reused"] += 1
    if native is None:
        modname = f"jitgrad_gen_{key}"
        # Numba compiles lazily, at the first call; compile now, for the
        # argument types this signature will be called with.
        values = [np.zeros((), v.aval.dtype)[()] if v.aval.shape == ()
                  else np.zeros(v.aval.shape, v.aval.dtype) for v in ir.invars]
        values += list(ir.consts if consts is None else consts)
        values += [np.empty(1, np.uint8)] if gen.workspace else []
        specs = [numba_import.arg_spec(x) for x in values]
        job = None
        if worker and None not in specs and not _in_disk_cache(modname):
            job = compile_worker.submit({"source": gen.source, "modname": modname,
                                         "fn_name": gen.fn_name, "specs": specs,
                                         "cache_dir": config.cache_dir})
        numba = _numba()
        sig = tuple(map(numba.typeof, values))
        if job is not None and numba_import.types_of(specs) != sig:
            job = None      # (not the types the worker compiled for: compile here)
        fn = _build(gen.source, modname, gen.fn_name, sig, worker, job)
        # no compiles at call time, for other layouts, on the caller's thread
        # (see Executable._native_caller)
        fn.disable_compile()
        native = Native(fn, gen.range_checked, gen.parallel, gen.workspace)
        with _lock:
            _compiled[key] = native
            counts["loaded" if sum(fn.stats.cache_hits.values()) else "compiled"] += 1
    return native


def _in_disk_cache(modname):
    """Whether the cache folder holds Numba's cache index of module ``modname``."""
    folder = os.path.join(config.cache_dir, "__pycache__")
    return bool(glob.glob(os.path.join(glob.escape(folder), glob.escape(modname) + ".*.nbi")))


_warned_no_worker = []


def _compile_in_worker(source, modname, fn_name, sig, job=None):
    """Have the worker compile the module into the disk cache (this thread
    waits without holding the GIL), so that ``_build`` then only loads it;
    ``job``: the worker's job for it, sent already.  Its errors are raised
    here (see compile_worker).  False when the worker could not write the
    disk cache or cannot run: the module is then compiled here."""
    try:
        if job is None:
            job = compile_worker.submit({"source": source, "modname": modname,
                                         "fn_name": fn_name, "sig": sig,
                                         "cache_dir": config.cache_dir})
        answer = job.result()
    except compile_worker.WorkerUnavailable as exc:
        if not _warned_no_worker:
            _warned_no_worker.append(True)
            warnings.warn(f"jitgrad compiles in this process: {exc} (set "
                          "JITGRAD_COMPILE_WORKER=0 to compile here from the start)",
                          RuntimeWarning, stacklevel=2)
        return False
    return answer["cached"]


def _build(source, modname, fn_name, sig, worker=False, job=None):
    """Import ``source`` and compile its ``fn_name`` for ``sig``, with the disk cache.

    A damaged cache entry makes the load fail (an unpickling error, say): its
    files are deleted and the function built once more, which writes them
    anew.  A cache that cannot be written (a full disk, a read-only folder)
    makes that fail too, with an OSError: then compile without a disk cache.
    With ``worker``, a function not in the disk cache is compiled there by the
    worker process (``job``: the job sent for it already); its errors are final."""
    try:
        return _compile_module(source, modname, fn_name, sig, disk=True, worker=worker, job=job)
    except (compile_worker.CompileFailed, compile_worker.WorkerDied, MemoryError):
        raise                   # (errors of the worker's compile: final)
    except Exception:
        pass                    # its cache files are gone: once more
    try:
        return _compile_module(source, modname, fn_name, sig, disk=True)
    except OSError as exc:
        _warn_no_disk_cache(exc)
        return _compile_module(source, modname, fn_name, sig, disk=False)


def _compile_module(source, modname, fn_name, sig, disk, worker=False, job=None):
    module = _load_module(source, modname, disk)
    fn = getattr(module, fn_name)
    # (a module in memory, when the cache folder cannot be written, has no disk cache)
    disk = disk and not module.__file__.startswith("<")
    try:
        if not (disk and _load_cached(fn, sig)):
            if not (disk and worker and _compile_in_worker(source, modname, fn_name, sig, job)
                    and _load_cached(fn, sig)):
                fn.compile(sig)
    except BaseException:
        sys.modules.pop(modname, None)
        _discard_cache(modname, fn)
        raise
    return fn


def _load_cached(fn, sig):
    """Load ``fn`` at ``sig`` from Numba's disk cache, if it is there: what
    ``Dispatcher.compile`` does on a cache hit, without first setting up
    Numba's whole compiler (loading every typing and lowering registry, and
    with them scipy.linalg: half a second in a new process).  Loading needs
    only Numba's runtime.  True when loaded; False on a miss, or when this
    Numba's internals are not as expected (``fn.compile`` then does it all)."""
    try:
        from numba.core import sigutils
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.runtime import nrt
        cache, ctx = fn._cache, fn.targetctx
        with global_compiler_lock:
            args, _ = sigutils.normalize_signature(sig)
            if tuple(args) in fn.overloads:
                return True
            nrt.rtsys.initialize(ctx)
            cres = cache._load_overload(sig, ctx)
            if cres is None:
                return False
            fn._cache_hits[sig] += 1
            if not cres.objectmode:
                ctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            fn.add_overload(cres)
        return True
    except Exception:
        return False


def _cache_folders(fn):
    """Where Numba's cache files of ``fn``'s module are: the cache folder's
    ``__pycache__``, or Numba's user-wide cache (when that folder is not writable)."""
    folders = {os.path.join(config.cache_dir, "__pycache__"),
               getattr(getattr(fn, "_cache", None), "_cache_path", None)}
    return [f for f in folders if f]


def _discard_cache(modname, fn):
    """Delete Numba's cache files (index and data) of the module ``modname``."""
    for folder in _cache_folders(fn):
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


# ---------------------------------------------------------------------------
# Warming up


_WARM_UP_SOURCE = """\
from numba import njit
from jitgrad.backend.vecmath import vexp


@njit(cache=True, nogil=True)
def warm_up(x):
    return vexp(x) + 1.0
"""


def _warm_up():
    """Import Numba and load (or compile, once per cache folder) one tiny
    function: Numba's first compile or cache load in a process costs half a
    second or more of its own start-up, which the first call should not pay."""
    try:
        numba = _numba()
        digest = hashlib.sha256(f"{_WARM_UP_SOURCE}/{numba.__version__}/{_vecmath_hash()}".encode())
        _build(_WARM_UP_SOURCE, f"jitgrad_warm_up_{digest.hexdigest()[:16]}", "warm_up",
               (numba.float64,))
        # a cache hit loads without setting up the compiler (see _load_cached):
        # set it up now, for the compiles to come
        from numba.core.registry import cpu_target
        with _compile_lock:
            cpu_target.target_context.refresh()
    except Exception:            # (a compile then reports the problem itself)
        pass


# With compile="always" from the environment every first call compiles:
# warm up in the background while the program starts.
_warming = None
if config.compile == "always":
    _warming = threading.Thread(target=_warm_up, daemon=True, name="jitgrad-warm-up")
    _warming.start()
    atexit.register(_warming.join, 60)
