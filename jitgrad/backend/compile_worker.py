"""The compile worker: one helper process per user process that compiles
generated modules into the disk cache, so that compiles neither hold the
caller's GIL nor die with a short script.

The caller's process (the background compile thread of
:mod:`jitgrad.backend.compile`) sends a job (the generated source, its module
and function names, the Numba signature and the cache folder) and waits for the
answer without holding the GIL; the worker imports Numba once and stays warm
for the next job.  When the worker says the function is in the disk cache, the
caller loads it from there (a cache hit: no compile in the caller).

Lifetime.  Started by the first background compile that misses the disk
cache, before the caller imports Numba, so that the two overlap; kept for the
process, stopped and reaped at exit.  The worker exits by itself when its
parent is gone (the job pipe closes, or its parent process changes) and when it
has grown large (Numba never frees the machine code it compiled): the next job
starts a new one.  A worker that dies during a job (killed, out of memory)
fails that job with :class:`WorkerDied`; the next job starts a new worker.

Fork.  A forked child does not share its parent's worker (the pipes stay the
parent's): it starts its own when it needs one.  The worker is started with
``subprocess`` (fork and exec at once), which runs no fork handlers.

The wire format: each message is a pickle preceded by its length (8 bytes).
"""
from __future__ import annotations

import atexit
import os
import pickle
import signal
import struct
import sys
import threading

_HEADER = struct.Struct("<Q")


class CompileFailed(Exception):
    """An exception raised in the worker, carried back by name and text (the
    worker's exception classes, Numba's among them, are not imported here)."""

    def __init__(self, type_name, message):
        super().__init__(message)
        self.type_name = type_name


class WorkerDied(Exception):
    """The worker process ended during a job (killed, or out of memory)."""


class WorkerUnavailable(Exception):
    """The worker process cannot start here (it ended before it was ready):
    compiles then run in the caller's process."""


def send(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream):
    """The next message, or None at the end of the stream."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    n, = _HEADER.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)


def _package_root():
    """The folder holding the ``jitgrad`` package this process imported: the
    worker imports the same one."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The worker's start: the ``jitgrad`` package is entered without running its
# ``__init__`` (the whole NumPy layer, half a second), since compiling needs
# only the backend's modules and those the generated code imports.
_SERVE = """\
import os, sys, types
package = types.ModuleType("jitgrad")
package.__path__ = [os.path.join(sys.argv[1], "jitgrad")]
sys.modules["jitgrad"] = package
from jitgrad.backend.compile_server import serve
serve()
"""


class _Worker:
    """The handle on one worker process."""

    def __init__(self):
        import subprocess           # (here: importing jitgrad does not import it)
        env = dict(os.environ)
        env["JITGRAD_COMPILE"] = "never"          # the worker warms up nothing of its own
        env["JITGRAD_COMPILE_WORKER"] = "0"
        debug = env.get("JITGRAD_DEBUG", "0") not in ("", "0")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, _package_root(), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None if debug else subprocess.DEVNULL, env=env, close_fds=True,
            # a Ctrl-C in the terminal goes to the user's process alone
            start_new_session=True)
        self.retiring = False
        self.ready = False         # its set-up is done (it said so)

    def alive(self):
        return not self.retiring and self.proc.poll() is None

    def run(self, job):
        """Send ``job``, wait for the answer (the GIL is released while waiting)."""
        if not self.ready:
            try:
                self.ready = bool(receive(self.proc.stdout))
            except OSError:
                pass
            if not self.ready:
                self.stop()
                raise WorkerUnavailable(
                    f"the compile worker process {_how_it_ended(self.proc.returncode)} "
                    "while starting")
        try:
            send(self.proc.stdin, job)
            answer = receive(self.proc.stdout)
        except (BrokenPipeError, ConnectionError, OSError):
            answer = None
        if answer is None:
            self.stop()
            raise WorkerDied(f"the compile worker process {_how_it_ended(self.proc.returncode)}")
        self.retiring = answer.get("retiring", False)
        return answer

    def stop(self, timeout=2.0):
        """End the process and reap it (no zombie is left behind)."""
        import subprocess
        proc = self.proc
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=timeout)      # it exits at the end of its input
        except subprocess.TimeoutExpired:
            proc.kill()                     # compiling: cut short (Numba's cache writes are atomic)
            proc.wait()

    def forget(self):
        """In a forked child: close this process's copies of the pipes (no job
        is in flight: a fork waits for the compile lock) and drop the handle,
        leaving the parent's worker alone."""
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.returncode = 0            # not this process's child: never waited for


def _how_it_ended(code):
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


_lock = threading.Lock()       # one job at a time per process (and guards _worker)
_worker = None
unavailable = None             # why no worker can start in this process, once one could not


def compile_in_worker(job):
    """Run ``job`` (a dict: source, modname, fn_name, the signature as Numba
    types ``sig`` or as ``specs`` (see numba_import.arg_spec), cache_dir) in the
    worker, starting one if needed.  Returns the worker's answer (``cached``:
    the function is in the disk cache); raises :class:`CompileFailed` for an
    error in the compile, MemoryError when the worker ran out of memory, and
    :class:`WorkerDied` when it died, :class:`WorkerUnavailable` when it
    cannot start (and from then on)."""
    global _worker, unavailable
    if unavailable is not None:
        raise WorkerUnavailable(unavailable)
    with _lock:
        if _worker is None or not _worker.alive():
            if _worker is not None:
                _worker.stop()
            _worker = _Worker()
        try:
            answer = _worker.run(job)
        except WorkerUnavailable as exc:
            _worker, unavailable = None, str(exc)
            raise
        except WorkerDied:
            _worker = None
            raise
    if not answer["ok"]:
        if answer["type"] == "MemoryError":
            raise MemoryError(answer["message"])
        raise CompileFailed(answer["type"], answer["message"])
    return answer


class Pending:
    """A job sent to the worker by :func:`submit`; :meth:`result` waits for
    its answer (or raises its error, as :func:`compile_in_worker` would)."""

    def __init__(self, job):
        self.done = threading.Event()
        self.answer = self.error = None
        threading.Thread(target=self._run, args=(job,), daemon=True,
                         name="jitgrad-worker-job").start()

    def _run(self, job):
        try:
            self.answer = compile_in_worker(job)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def result(self):
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.answer


def submit(job):
    """Run ``job`` in the worker (see :func:`compile_in_worker`) while the
    calling thread goes on; returns its :class:`Pending` answer."""
    return Pending(job)


def start():
    """Start the worker now (a compile is coming), so that its start-up
    overlaps the caller's own preparations."""
    global _worker
    with _lock:
        if unavailable is None and (_worker is None or not _worker.alive()):
            _worker = _Worker()


def worker_pid():
    """The process id of the running worker, or None."""
    w = _worker
    return w.proc.pid if w is not None and w.proc is not None and w.proc.poll() is None else None


def shutdown():
    """At exit: stop the worker and reap it, cutting a compile in progress
    short (the job waiting for it then fails, and nothing is loaded)."""
    global _worker
    w, _worker = _worker, None
    if w is not None:
        w.proc.kill()
        w.proc.wait()


def _after_fork_child():
    global _lock, _worker
    _lock = threading.Lock()
    if _worker is not None:
        _worker.forget()
        _worker = None


atexit.register(shutdown)
os.register_at_fork(after_in_child=_after_fork_child)
