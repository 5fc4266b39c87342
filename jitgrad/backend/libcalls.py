"""NumPy library calls of generated code, as functions compiled once.

Numba compiles its implementations of ``np.empty``, ``np.dot``, ``reshape``
and of storing an array into rows of another anew in every process, for
every argument layout, together with the code that formats their error
messages: about 0.2 s for the first ``np.empty`` of a process, 0.4-0.7 s for
the first ``np.dot``, about 1 s for the first ``a[t] = row`` (its
shape-mismatch message), and so most of the first compile of a small
generated function.  Generated code calls the functions here instead; they
are compiled with ``cache=True``, so Numba's disk cache (beside this file,
or in its user-wide cache folder) serves every later process, and the
generated function's compile only links their machine code in (LLVM may
still inline them).  Each is the one NumPy operation it is named after,
nothing more: the values are NumPy's.  (A concatenate is written as loops
by the emitter itself, see ``emit._emit_concatenate``.)
"""
import numpy as np
from numba import njit

__all__ = ["empty", "dot_into", "reshape", "store", "copy_rows"]

_jit = njit(cache=True, nogil=True)


@_jit
def empty(shape, dtype):
    """``np.empty(shape, dtype)`` (about 0.2 s of every process's first compile)."""
    return np.empty(shape, dtype)


@_jit
def dot_into(a, b, out):
    """``np.dot(a, b, out)``: the product written into ``out`` (BLAS, no allocation)."""
    np.dot(a, b, out)


@_jit
def reshape(a, shape):
    """``a`` reshaped to the tuple ``shape`` (a copy when ``a`` is not C-contiguous)."""
    return np.ascontiguousarray(a).reshape(shape)


@_jit
def store(a, i, v):
    """``a[i] = v``: the array ``v`` stored as row ``i`` of ``a``."""
    a[i] = v


@_jit
def copy_rows(dst, src, n):
    """``dst[:n] = src[:n]``."""
    dst[:n] = src[:n]
