"""Host callbacks: Python functions that compiled code calls by number.

Generated code cannot name a Python object (it is a module on disk, cached
across processes), so a callback is registered here under a small integer,
and the code calls :func:`call` with that number from a Numba ``objmode``
block.  The number is looked up when the call runs, so a cached module
compiled in another process calls this process's function.
"""
from __future__ import annotations

import threading

import numpy as np

_lock = threading.Lock()
_by_key: list = []
_keys: dict = {}


def register(host):
    """The number of ``host`` (an object with ``call(args) -> list of arrays``)."""
    with _lock:
        key = _keys.get(host)
        if key is None:
            key = _keys[host] = len(_by_key)
            _by_key.append(host)
        return key


def call(key, index, args):
    """Result ``index`` of callback ``key`` on ``args``, as a C-contiguous array
    (a NumPy scalar for a 0-d result)."""
    out = _by_key[key].call([np.asarray(a) for a in args])[index]
    return out[()] if out.ndim == 0 else np.ascontiguousarray(out)
