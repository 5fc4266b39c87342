"""``np.r_`` and ``np.c_`` of traced values.

They are objects, not functions, so NumPy's dispatch never sees what they are
indexed with: they would convert traced values to NumPy arrays.  While a
trace is open, ``numpy.r_`` and ``numpy.c_`` are replaced (by
:mod:`jitgrad.numpy.intercept`) with stand-ins that join traced values from
user code with ``concatenate`` and leave every other use to NumPy's objects.

Supported items: arrays (traced or not), scalars and slices (``1:10``,
``0:1:5j``: constants, as NumPy makes them).  String directives (``'0,2'``,
``'r'``, ``'c'``) are not: use ``np.concatenate`` or ``np.stack``.
"""
from __future__ import annotations

import numpy as _np

from ..core.trace import state
from . import intercept
from .base import _holds_tracer, _operand, _shape, _to, result_dtype
from .shapes import concatenate, reshape


def _join(key, columns):
    items = key if isinstance(key, tuple) else (key,)
    if any(isinstance(item, str) for item in items):
        raise NotImplementedError(
            "jitgrad supports np.r_ and np.c_ of arrays, scalars and slices on traced values; "
            "string directives ('0,2', 'r', 'c') are not supported: use np.concatenate or np.stack")
    items = [_np.r_[item] if isinstance(item, slice) else _operand(item) for item in items]
    dt = result_dtype(*items)      # (Python scalars are weak, as in NumPy's r_)
    parts = []
    for item in items:
        shape = _shape(item)
        if columns and len(shape) < 2:           # c_: 1-d arrays become columns
            want = (1, 1) if not shape else (shape[0], 1)
        else:
            want = shape or (1,)
        parts.append(reshape(_to(item, dt, shape), want) if want != shape else _to(item, dt, shape))
    return concatenate(parts, axis=-1 if columns else 0)


class _Joiner:
    """Stands for ``np.r_`` (or ``np.c_``) while tracing."""

    def __init__(self, original, columns):
        self._original, self._columns = original, columns

    def __getitem__(self, key):
        if _holds_tracer(key) and state.stack and intercept._from_user():
            return _join(key, self._columns)
        return self._original[key]

    def __len__(self):
        return len(self._original)

    def __getattr__(self, name):
        return getattr(self._original, name)


intercept.register("r_", _Joiner(_np.r_, columns=False))
intercept.register("c_", _Joiner(_np.c_, columns=True))
