"""Numba, imported once and only when needed, and what can be known about it
before that: its version (part of the disk cache's key) and the Numba types
of a signature, described by plain values.

Importing Numba takes a third of a second of the caller's GIL; the caller
names a compile (its cache key and signature) without it, so that the
compile worker can start on it while the caller imports Numba for loading
the result (see :func:`jitgrad.backend.compile.compile_ir`).
"""
from __future__ import annotations

import contextlib
import functools
import gc
import glob
import importlib.util
import os
import signal
import sys
import threading

import numpy as np


@functools.lru_cache(maxsize=None)
def numba():
    """Import Numba, choosing its threading layer first: "forksafe" (TBB if
    installed, else the workqueue; GNU OpenMP aborts a forked child), unless the
    user chose one with NUMBA_THREADING_LAYER."""
    with _interrupts_deferred(), _collections_paused():
        _preload_cython_blas()
        import numba
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "forksafe"
    return numba


def _preload_cython_blas():
    """Load SciPy's Cython BLAS and LAPACK modules (which Numba's matrix
    products and its set-up import) by themselves, without running
    ``scipy.linalg``'s package import: 20 ms instead of 300.  A later
    ``import scipy.linalg`` finds them loaded and runs as usual."""
    if "scipy.linalg" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("scipy")
        folder = os.path.join(os.path.dirname(spec.origin), "linalg")
        for name in ("cython_blas", "cython_lapack"):
            full = "scipy.linalg." + name
            if full in sys.modules:
                continue
            paths = glob.glob(os.path.join(glob.escape(folder), name + ".*.so"))
            if len(paths) != 1:
                return
            module_spec = importlib.util.spec_from_file_location(full, paths[0])
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            sys.modules[full] = module
        sys.meta_path.insert(0, _LinalgAttributes())
    except Exception:           # (an unusual SciPy: Numba imports it its own way)
        pass


class _LinalgAttributes:
    """An import hook that, when ``scipy.linalg`` is imported, gives it the
    Cython modules loaded before it as attributes (as its own import would),
    then removes itself."""

    def find_spec(self, name, path=None, target=None):
        if name != "scipy.linalg":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            for child in ("cython_blas", "cython_lapack"):
                if "scipy.linalg." + child in sys.modules:
                    setattr(module, child, sys.modules["scipy.linalg." + child])
            run(module)
        spec.loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _collections_paused():
    """No garbage collection in the block, and the objects made in it moved to
    the oldest generation without one after it.  Numba's import makes some
    30,000 objects: the collections it triggers hold the GIL for 30-60 ms
    each (the oldest generation's traverses the whole heap), and so would
    the first young collection after it, in whichever thread comes next; a
    caller's call waits that long.  ``gc.freeze()`` then ``gc.unfreeze()``
    moves every tracked object to the oldest generation without traversing
    any (the program's young objects too: their cycles wait for the next
    full collection)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


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


@functools.lru_cache(maxsize=None)
def version():
    """Numba's version, as its installation records it (without importing it):
    the name of its ``.dist-info`` folder, found beside the package (0.5 ms;
    ``importlib.metadata`` scans every path entry, 20-30 ms)."""
    try:
        spec = importlib.util.find_spec("numba")
        site = os.path.dirname(list(spec.submodule_search_locations)[0])
        found = glob.glob(os.path.join(glob.escape(site), "numba-*.dist-info"))
        if len(found) == 1:
            return os.path.basename(found[0])[len("numba-"):-len(".dist-info")]
        from importlib import metadata
        return metadata.version("numba")
    except Exception:            # (an unusual installation: ask Numba itself)
        return numba().__version__


def arg_spec(x):
    """What Numba's type of the argument ``x`` (a NumPy array or scalar) is
    made of, as plain values (see :func:`types_of`); None for anything else."""
    if type(x) is np.ndarray:
        layout = "C" if x.flags.c_contiguous else "F" if x.flags.f_contiguous else "A"
        return ("array", x.dtype.str, x.ndim, layout, not x.flags.writeable)
    if isinstance(x, np.generic):
        return ("scalar", x.dtype.str)
    return None


def types_of(specs):
    """The Numba types that :func:`arg_spec` described: those ``numba.typeof``
    gives the described values."""
    nb = numba()
    from numba.np.numpy_support import from_dtype
    return tuple(nb.types.Array(from_dtype(np.dtype(s[1])), s[2], s[3], readonly=s[4])
                 if s[0] == "array" else from_dtype(np.dtype(s[1])) for s in specs)
