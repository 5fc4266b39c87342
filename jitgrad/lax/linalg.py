"""Linear-algebra primitives: inv, solve and det of (stacks of) square matrices.

Each acts on the last two axes; leading axes are a batch.  Their JVP rules
are written with ``dot_general`` and each other, so reverse mode comes from
transposing those (``solve`` is linear in its right-hand side, and that is
the only transpose rule needed):

    d inv(A)      = -inv(A) dA inv(A)
    d solve(A, B) = solve(A, dB - dA X),   X = solve(A, B)
    d det(A)      = det(A) * sum(inv(A)^T * dA)

The compiled code calls Numba's LAPACK-backed ``np.linalg`` functions, one
matrix at a time.  Part of the primitive set assembled in
:mod:`jitgrad.lax`; import it from there.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from ..core.ir import Aval
from .elementwise import _add_tangents, _new, mul, neg
from .reductions import dot_general
from .structural import reduce_sum, transpose, with_batch_axis

__all__ = ["inv_p", "solve_p", "det_p", "inv", "solve", "det", "matmul_last2"]

inv_p = _new("inv", "opaque")
solve_p = _new("solve", "opaque")
det_p = _new("det", "opaque")


def _square(a, who):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{who}: expected square matrices in the last two axes, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{who}: expected a floating-point array, got {a.dtype}")


def matmul_last2(a, b):
    """a @ b on the last two axes, leading axes batched (equal in both)."""
    nd = aval_of(a).ndim
    batch = tuple(range(nd - 2))
    return dot_general(a, b, ((nd - 1,), (nd - 2,)), (batch, batch))


def _swap_last2(a):
    nd = aval_of(a).ndim
    return transpose(a, tuple(range(nd - 2)) + (nd - 1, nd - 2))


# -- inv

def _inv_shape(a):
    _square(a, "inv")
    return Aval(tuple(a.shape), a.dtype)


def _inv_jvp(p, t, out):
    return None if t[0] is None else neg(matmul_last2(matmul_last2(out, t[0]), out))


inv_p.impl = lambda a: np.linalg.inv(np.asarray(a))
inv_p.shape = _inv_shape
inv_p.jvp = _inv_jvp


# -- solve(A, B): A (..., n, n), B (..., n, k) with the same leading axes

def _solve_shape(a, b):
    _square(a, "solve")
    if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1] or b.dtype != a.dtype:
        raise ValueError(f"solve: right-hand side of shape {b.shape} ({b.dtype}) does not match "
                         f"matrices of shape {a.shape} ({a.dtype})")
    return Aval(tuple(b.shape), b.dtype)


def _solve_jvp(p, t, out):
    (a, _), (ta, tb) = p, t
    rhs = tb
    if ta is not None:
        rhs = _add_tangents(rhs, neg(matmul_last2(ta, out)))
    return None if rhs is None else solve(a, rhs)


def _solve_transpose(ct, a, b):
    if isinstance(a, Undefined):
        raise ValueError("solve is not linear in its matrix")
    return [None, solve(_swap_last2(a), ct)]


solve_p.impl = lambda a, b: np.linalg.solve(np.asarray(a), np.asarray(b))
solve_p.shape = _solve_shape
solve_p.jvp = _solve_jvp
solve_p.transpose = _solve_transpose


# -- det

def _det_shape(a):
    _square(a, "det")
    return Aval(tuple(a.shape[:-2]), a.dtype)


def _det_jvp(p, t, out):
    (a,), (ta,) = p, t
    if ta is None:
        return None
    nd = aval_of(a).ndim
    trace = reduce_sum(mul(_swap_last2(inv(a)), ta), (nd - 2, nd - 1))
    return mul(out, trace)


det_p.impl = lambda a: np.asarray(np.linalg.det(np.asarray(a)))
det_p.shape = _det_shape
det_p.jvp = _det_jvp


# -- code: one LAPACK call per matrix of the stack

def _stacked(out, ins, in_avals, out_aval, call):
    """Lines applying ``call`` (a format string over per-matrix operands
    ``{0}``, ``{1}``) to every matrix of the stack."""
    lead = in_avals[0].shape[:-2]
    dt = np.dtype(out_aval.dtype).name
    if not lead:
        return [f"{out} = {call.format(*[f'np.ascontiguousarray({x})' for x in ins])}"]
    B = math.prod(lead)
    lines = [f"{out}_{i} = np.ascontiguousarray({x}).reshape(({B},) + {tuple(av.shape[-2:])})"
             for i, (x, av) in enumerate(zip(ins, in_avals))]
    item = tuple(out_aval.shape[len(lead):])
    lines.append(f"{out}_r = np.empty(({B},) + {item}, np.{dt})")
    lines.append(f"for b_ in range({B}):")
    lines.append(f"    {out}_r[b_] = {call.format(*[f'{out}_{i}[b_]' for i in range(len(ins))])}")
    lines.append(f"{out} = {out}_r.reshape({tuple(out_aval.shape)})")
    return lines


inv_p.code = lambda out, ins, in_avals, out_aval, lit: _stacked(
    out, ins, in_avals, out_aval, "np.linalg.inv({0})")
solve_p.code = lambda out, ins, in_avals, out_aval, lit: _stacked(
    out, ins, in_avals, out_aval, "np.linalg.solve({0}, {1})")
det_p.code = lambda out, ins, in_avals, out_aval, lit: _stacked(
    out, ins, in_avals, out_aval, "np.linalg.det({0})")


# -- batching: the primitives already take stacks

def _solve_batch(args, batched, size):
    return solve(*[x if b else with_batch_axis(x, size) for x, b in zip(args, batched)])


inv_p.batch = lambda args, batched, size: inv(args[0])
det_p.batch = lambda args, batched, size: det(args[0])
solve_p.batch = _solve_batch


def inv(a):
    return bind(inv_p, a)


def solve(a, b):
    return bind(solve_p, a, b)


def det(a):
    return bind(det_p, a)

