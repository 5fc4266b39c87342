"""The compile worker's side (see :mod:`jitgrad.backend.compile_worker`): read
jobs from the pipe, compile each generated module into the disk cache, answer
with success or the error's name and text.

Run as ``python -c "...; serve()" <package root> <parent pid>``.  The protocol
uses copies of the standard streams; the streams themselves are pointed
elsewhere, so that a stray print cannot corrupt a message.
"""
from __future__ import annotations

import gc
import glob
import os
import sys
import threading
import time
import warnings

from . import numba_import
from .compile_worker import receive, send

# Numba never frees the machine code it compiled: a worker that has grown past
# this (resident memory) answers its job and exits; the next job starts a new one.
RETIRE_BYTES = 2 << 30
# Allocations between two collections of the young objects (Python's default: 700).
GC_YOUNG_THRESHOLD = 100_000


def serve():
    parent = int(sys.argv[2])
    jobs = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)                      # prints go where errors go (nowhere, unless debugging)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    gc.disable()                       # (until set up: see _set_up)
    from . import compile as compiler
    _set_up(compiler)
    send(answers, {"ready": True})
    while True:
        job = receive(jobs)
        if job is None:                # the parent closed the pipe (or is gone)
            return
        answer = _run(compiler, job)
        answer["retiring"] = _resident_bytes() > RETIRE_BYTES
        send(answers, answer)
        if answer["retiring"]:
            return


def _set_up(compiler):
    """Import Numba and what generated code imports, and set up Numba's
    compiler, before the first job arrives."""
    compiler._numba()
    from ..core import callbacks  # noqa: F401
    from . import randmath, specialmath, vecmath  # noqa: F401
    from numba.core.registry import cpu_target
    cpu_target.target_context.refresh()
    # This process only compiles.  What its set-up made lives as long as it
    # does: frozen, no collection traverses it again.  And collections run
    # seldom: a compile makes short-lived cycles by the hundred thousand, and
    # collecting every 700 allocations took 9% of a large compile's time.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    gc.enable()


def _run(compiler, job):
    try:
        with compiler.config(cache_dir=job["cache_dir"]), warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            sig = job.get("sig") or numba_import.types_of(job["specs"])
            fn = compiler._build(job["source"], job["modname"], job["fn_name"], sig)
        cached = _has_cache_files(compiler, job["modname"], fn)
        return {"ok": True, "cached": cached,
                "warnings": [f"{w.category.__name__}: {w.message}" for w in ws]}
    except BaseException as exc:        # (MemoryError included: the answer says so)
        return {"ok": False, "type": type(exc).__name__, "message": str(exc)}


def _has_cache_files(compiler, modname, fn):
    """Whether Numba wrote ``modname``'s cache index (a read-only cache folder
    means compiling without a disk cache, and the caller must compile itself)."""
    for folder in compiler._cache_folders(fn):
        if glob.glob(os.path.join(glob.escape(folder), glob.escape(modname) + ".*.nbi")):
            return True
    return False


def _watch_parent(parent):
    """Exit when the parent process is gone (even in the middle of a compile)."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.25)


def _resident_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
