"""The matrix exponential on concrete stacks of matrices, for both tiers: the
interpreter's reference of ``expm`` and ``expm_frechet``
(:mod:`jitgrad.lax.matfuncs`), and what compiled code calls from an
``objmode`` block (:mod:`jitgrad.backend.linalgmath`).  SciPy computes it
(Al-Mohy and Higham's scaling and squaring).
"""
import numpy as np


def expm_host(a):
    """expm of a stack of matrices (plain Python, called from objmode)."""
    from scipy.linalg import expm as scipy_expm
    a = np.asarray(a)
    return np.ascontiguousarray(scipy_expm(a).astype(a.dtype, copy=False)) if a.size else a.copy()


def expm_frechet_host(a, e):
    """L(A, E), the upper-right block of expm([[A, E], [0, A]]), for stacks."""
    a, e = np.asarray(a), np.asarray(e)
    n = a.shape[-1]
    top = np.concatenate([a, e], axis=-1)
    block = np.concatenate([top, np.concatenate([np.zeros_like(a), a], axis=-1)], axis=-2)
    return np.ascontiguousarray(expm_host(block)[..., :n, n:])
