"""The matrix exponential and its Frechet derivative: expm, expm_frechet.

``expm_frechet(A, E)`` is L(A, E) = d/dt expm(A + t E) at t = 0, the
upper-right block of expm([[A, E], [0, A]]) (Mathias 1996).  It is linear in
E, with the adjoint L(A, .)^T = L(A^T, .), so:

    d expm(A)          = L(A, dA)
    d L(A, E)          = L(A, dE) + L(M, [[dA, 0], [0, dA]])_{12},   M = [[A, E], [0, A]]
    transpose of L(A, .) = L(A^T, .)

The second line is the block trick applied to L itself (L(A, E) is a block
of expm(M), whose derivative along dM = [[dA, dE], [0, dA]] is L(M, dM)), so
every order of derivative is the same primitive on a matrix twice as large.
Part of the primitive set assembled in :mod:`jitgrad.lax`.
"""
from __future__ import annotations

import numpy as np

from ..core.ir import Aval
from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from .elementwise import _add_tangents, _new
from ..core.expm import expm_frechet_host, expm_host
from .linalg import _square, _swap_last2
from .structural import concatenate, slice_, with_batch_axis, zeros

__all__ = ["expm_p", "expm_frechet_p", "expm", "expm_frechet"]

expm_p = _new("expm", "opaque")
expm_frechet_p = _new("expm_frechet", "opaque")


def _block(a, e):
    """[[A, E], [0, A]] of each matrix."""
    nd = aval_of(a).ndim
    zero = zeros(aval_of(a))
    return concatenate([concatenate([a, e], nd - 1), concatenate([zero, a], nd - 1)], nd - 2)


def _upper_right(x, n):
    shape = aval_of(x).shape
    lead = len(shape) - 2
    return slice_(x, (0,) * lead + (0, n), shape[:-2] + (n, 2 * n), (1,) * len(shape))


def _object_call(out, ins, out_aval, host):
    """Lines calling ``lm.<host>`` on whole stacks from an objmode block."""
    dt = np.dtype(out_aval.dtype).name
    typ = f"{dt}[{', '.join([':'] * (len(out_aval.shape) - 1) + ['::1'])}]"
    args = ", ".join(f"np.ascontiguousarray({x})" for x in ins)
    return [f"with objmode({out}='{typ}'):", f"    {out} = lm.{host}({args})"]


def _expm_shape(a):
    _square(a, "expm")
    return Aval(tuple(a.shape), a.dtype)


def _frechet_shape(a, e):
    _square(a, "expm_frechet")
    if tuple(e.shape) != tuple(a.shape) or e.dtype != a.dtype:
        raise ValueError(f"expm_frechet: direction of shape {e.shape} ({e.dtype}) does not match "
                         f"matrices of shape {a.shape} ({a.dtype})")
    return Aval(tuple(a.shape), a.dtype)


def _frechet_jvp(p, t, out):
    (a, e), (da, de) = p, t
    n = aval_of(a).shape[-1]
    d = None if de is None else expm_frechet(a, de)
    if da is not None:
        zero = zeros(aval_of(a))
        nd = aval_of(a).ndim
        dm = concatenate([concatenate([da, zero], nd - 1), concatenate([zero, da], nd - 1)], nd - 2)
        d = _add_tangents(d, _upper_right(expm_frechet(_block(a, e), dm), n))
    return d


def _frechet_transpose(ct, a, e):
    if isinstance(a, Undefined):
        raise ValueError("expm_frechet is not linear in its matrix")
    return [None, expm_frechet(_swap_last2(a), ct)]


def _frechet_batch(args, batched, size):
    return expm_frechet(*[x if b else with_batch_axis(x, size) for x, b in zip(args, batched)])


expm_p.impl = expm_host
expm_p.shape = _expm_shape
expm_p.jvp = lambda p, t, out: None if t[0] is None else expm_frechet(p[0], t[0])
expm_p.batch = lambda args, batched, size: expm(args[0])
expm_p.code = lambda out, ins, in_avals, out_aval, lit: _object_call(out, ins, out_aval, "expm_host")

expm_frechet_p.impl = expm_frechet_host
expm_frechet_p.shape = _frechet_shape
expm_frechet_p.jvp = _frechet_jvp
expm_frechet_p.transpose = _frechet_transpose
expm_frechet_p.batch = _frechet_batch
expm_frechet_p.code = lambda out, ins, in_avals, out_aval, lit: _object_call(
    out, ins, out_aval, "expm_frechet_host")


def expm(a):
    return bind(expm_p, a)


def expm_frechet(a, e):
    """L(A, E): the derivative of expm at A along E."""
    return bind(expm_frechet_p, a, e)
