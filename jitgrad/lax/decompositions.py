"""Matrix decompositions: cholesky, triangular_solve, eigh, svd, qr, slogdet, pinv.

Each acts on the last two axes; leading axes are a batch (so a batching rule
only has to give unbatched operands the batch axis).  A decomposition with
several results returns them *packed* into one array of shape (..., total):
every result flattened and concatenated in order (the NumPy layer slices
them apart with :func:`unpack`).  One output per equation keeps them ordinary
primitives for every transform.

The derivative rules, with A symmetric for cholesky and eigh (the NumPy layer
builds the symmetric matrix from the triangle NumPy reads, so these rules may
symmetrize the tangent as JAX's do):

- cholesky, A = L L^T:  dL = L Phi(L^-1 dA L^-T), Phi = the lower triangle
  with the diagonal halved (Murray 2016).
- triangular_solve, op(A) X = B (only A's triangle read; op is A or A^T):
  dX = op(A)^-1 (dB - op(dA) X); linear in B, with transpose op(A)^-T.
- eigh, A = V diag(w) V^T:  C = V^T dA V, dw = diag(C),
  dV = V (F * C), F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it.  As in
  JAX, nothing guards the division: repeated eigenvalues give inf/nan
  eigenvector tangents (the eigenvalue tangents stay finite).
- svd (thin), A = U diag(s) V^T:  dS = U^T dA V, ds = diag(dS),
  dU = U (F * (dS S + S dS^T)) + (I - U U^T) dA V S^-1 (m > n),
  dV = V (F * (S dS + dS^T S)) + (I - V V^T) dA^T U S^-1 (n > m),
  F_ij = 1 / (s_j^2 - s_i^2) off the diagonal (distinct singular values).
  The singular values alone (compute_uv=False) have the first rule only.
  With full_matrices and m != n, the extra singular vectors (as the extra
  columns of a complete Q) span a complement with no unique basis: their
  tangents are NaN.
- qr (m >= n, thin):  with X = Q^T dA R^-1 and Omega = tril(X, -1) - tril(X, -1)^T,
  dQ = Q (Omega - X) + dA R^-1, dR = (X - Omega) R; a wide A = [A1 | A2] as
  Q R1 = A1, R2 = Q^T A2.
- slogdet: the sign has zero derivative, d logabsdet = tr(A^-1 dA).
- pinv (constant rank):  dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P.

The compiled code calls :mod:`jitgrad.backend.linalgmath` (Numba's LAPACK
bindings, and Householder QR for the complete Q) once per matrix of a stack.
Part of the primitive set assembled in :mod:`jitgrad.lax`.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.ir import Aval
from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from .elementwise import _add_tangents, _new, add, div, mul, neg, reciprocal, sub
from .linalg import _square, _stacked, _swap_last2, inv, matmul_last2
from .structural import (broadcast_in_dim, concatenate, reduce_sum, reshape, slice_, with_batch_axis,
                         zeros)

__all__ = ["cholesky_p", "triangular_solve_p", "eigh_p", "svd_p", "qr_p", "slogdet_p", "pinv_p",
           "cholesky", "triangular_solve", "eigh", "svd", "qr", "slogdet", "pinv", "unpack",
           "part_shapes"]

cholesky_p = _new("cholesky", "opaque")
triangular_solve_p = _new("triangular_solve", "opaque")
eigh_p = _new("eigh", "opaque")
svd_p = _new("svd", "opaque")
qr_p = _new("qr", "opaque")
slogdet_p = _new("slogdet", "opaque")
pinv_p = _new("pinv", "opaque")


# ---------------------------------------------------------------------------
# Packing several results into one array


def part_shapes(prim, shape, **params):
    """The core shapes of the results packed by ``prim`` for matrices of ``shape``."""
    m, n = shape[-2:]
    k = min(m, n)
    if prim is eigh_p:
        return [(n,), (n, n)]
    if prim is svd_p:
        if not params["compute_uv"]:
            return [(k,)]
        ku, kv = (m, n) if params["full_matrices"] else (k, k)
        return [(m, ku), (k,), (kv, n)]
    if prim is qr_p:
        mode = params["mode"]
        if mode == "r":
            return [(k, n)]
        return [(m, m), (m, n)] if mode == "complete" else [(m, k), (k, n)]
    if prim is slogdet_p:
        return [(), ()]
    raise ValueError(prim)


def _packed_aval(prim, a, **params):
    total = sum(math.prod(s) for s in part_shapes(prim, a.shape, **params))
    return Aval(tuple(a.shape[:-2]) + (total,), a.dtype)


def unpack(packed, cores):
    """The results packed into ``packed`` (..., total), of core shapes ``cores``."""
    shape = aval_of(packed).shape
    lead, out, at = shape[:-1], [], 0
    for core in cores:
        size = math.prod(core)
        start = (0,) * len(lead) + (at,)
        part = slice_(packed, start, lead + (at + size,), (1,) * len(shape))
        out.append(reshape(part, lead + tuple(core)))
        at += size
    return out


def _pack(parts, lead):
    flat = [reshape(p, lead + (math.prod(aval_of(p).shape[len(lead):]),)) for p in parts]
    return flat[0] if len(flat) == 1 else concatenate(flat, len(lead))


def _pack_np(parts, lead):
    return np.concatenate([np.asarray(p).reshape(lead + (-1,)) for p in parts], axis=-1)


# ---------------------------------------------------------------------------
# Helpers for the rules


def _tril_mask(n, k=0, diagonal=1.0, dtype=np.float64):
    """An (n, n) constant: 1 on and below diagonal ``k`` (the diagonal itself
    ``diagonal``), 0 above."""
    m = np.tril(np.ones((n, n)), k)
    if k >= 0:
        m[np.diag_indices(n)] = diagonal
    return m.astype(dtype)


def _like(const, x):
    """A constant of the matrices' core shape, broadcast to ``x``."""
    av = aval_of(x)
    nd = len(av.shape)
    return broadcast_in_dim(np.asarray(const, av.dtype), av.shape, (nd - 2, nd - 1))


def _masked(x, mask):
    return mul(x, _like(mask, x))


def _sym(t):
    return mul(add(t, _swap_last2(t)), 0.5)


def _diag(x):
    """The diagonal of each matrix: (..., n, n) -> (..., n)."""
    av = aval_of(x)
    n = av.shape[-1]
    return reduce_sum(_masked(x, np.eye(n)), (len(av.shape) - 1,))


def _row(v, n):
    """(..., k) -> (..., n, k), each row v."""
    shape = aval_of(v).shape
    return broadcast_in_dim(v, shape[:-1] + (n, shape[-1]), tuple(range(len(shape) - 1)) + (len(shape),))


def _col(v, n):
    """(..., k) -> (..., k, n), each column v."""
    shape = aval_of(v).shape
    return broadcast_in_dim(v, shape + (n,), tuple(range(len(shape))))


def _gap_inverse(w):
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it."""
    n = aval_of(w).shape[-1]
    gaps = sub(_row(w, n), _col(w, n))
    eye = _like(np.eye(n), gaps)
    return sub(reciprocal(add(eye, gaps)), eye)


def _mm(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = matmul_last2(out, x)
    return out


def _eye_like(x, n):
    av = aval_of(x)
    return broadcast_in_dim(np.eye(n, dtype=av.dtype), av.shape[:-2] + (n, n),
                            (len(av.shape) - 2, len(av.shape) - 1))


def _nan(shape, like):
    return broadcast_in_dim(np.asarray(np.nan, aval_of(like).dtype), shape, ())


def _batch_unary(bind_fn):
    return lambda args, batched, size, **params: bind_fn(args[0], **params)


def _float_square(a, who):
    _square(a, who)
    return a


# ---------------------------------------------------------------------------
# cholesky: the lower factor L of a symmetric positive-definite A


def _cholesky_jvp(p, t, L):
    if t[0] is None:
        return None
    n = aval_of(L).shape[-1]
    # X = L^-1 dA L^-T (dA symmetric), then dL = L Phi(X)
    y = triangular_solve(L, _sym(t[0]), lower=True)
    x = triangular_solve(L, _swap_last2(y), lower=True)
    return matmul_last2(L, _masked(x, _tril_mask(n, 0, 0.5)))


cholesky_p.impl = lambda a: np.linalg.cholesky(np.asarray(a))
cholesky_p.shape = lambda a: Aval(tuple(_float_square(a, "cholesky").shape), a.dtype)
cholesky_p.jvp = _cholesky_jvp
cholesky_p.batch = _batch_unary(lambda a: cholesky(a))
cholesky_p.code = lambda out, ins, in_avals, out_aval, lit: _stacked(
    out, ins, in_avals, out_aval, "lm.cholesky({0})")


def cholesky(a):
    return bind(cholesky_p, a)


# ---------------------------------------------------------------------------
# triangular_solve: op(A) X = B, A triangular (only its triangle is read)


def _op(a, lower, transpose_a, unit_diagonal):
    """op(A) with only the triangle the solve reads (ones on a unit diagonal)."""
    n = aval_of(a).shape[-1]
    mask = _tril_mask(n, 0, 0.0 if unit_diagonal else 1.0)
    mask = mask if lower else mask.T
    out = _masked(a, mask)
    if unit_diagonal:
        out = add(out, _like(np.eye(n), a))
    return _swap_last2(out) if transpose_a else out


def _tri_impl(a, b, lower, transpose_a, unit_diagonal):
    a = np.asarray(a)
    n = a.shape[-1]
    mask = _tril_mask(n, 0, 0.0 if unit_diagonal else 1.0)
    op = a * (mask if lower else mask.T) + (np.eye(n) if unit_diagonal else 0)
    op = np.swapaxes(op, -1, -2) if transpose_a else op
    if n and np.any(np.diagonal(op, axis1=-2, axis2=-1) == 0):
        raise np.linalg.LinAlgError("singular matrix: a zero on the diagonal of a triangular matrix")
    return np.linalg.solve(op.astype(a.dtype), np.asarray(b))


def _tri_shape(a, b, lower, transpose_a, unit_diagonal):
    _square(a, "triangular_solve")
    if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1] or b.dtype != a.dtype:
        raise ValueError(f"triangular_solve: right-hand side of shape {b.shape} ({b.dtype}) does "
                         f"not match matrices of shape {a.shape} ({a.dtype})")
    return Aval(tuple(b.shape), b.dtype)


def _tri_jvp(p, t, x, **flags):
    (a, _), (ta, tb) = p, t
    rhs = tb
    if ta is not None:
        d_op = _op(ta, flags["lower"], flags["transpose_a"], False)
        if flags["unit_diagonal"]:
            d_op = _masked(d_op, 1 - np.eye(aval_of(a).shape[-1]))
        rhs = _add_tangents(rhs, neg(matmul_last2(d_op, x)))
    return None if rhs is None else triangular_solve(a, rhs, **flags)


def _tri_transpose(ct, a, b, lower, transpose_a, unit_diagonal):
    if isinstance(a, Undefined):
        raise ValueError("triangular_solve is not linear in its matrix")
    return [None, triangular_solve(a, ct, lower=lower, transpose_a=not transpose_a,
                                   unit_diagonal=unit_diagonal)]


def _tri_batch(args, batched, size, **flags):
    a, b = [x if bt else with_batch_axis(x, size) for x, bt in zip(args, batched)]
    return triangular_solve(a, b, **flags)


def _tri_code(out, ins, in_avals, out_aval, lit, lower, transpose_a, unit_diagonal):
    return _stacked(out, ins, in_avals, out_aval,
                    f"lm.tri_solve({{0}}, {{1}}, {lower}, {transpose_a}, {unit_diagonal})")


triangular_solve_p.impl = _tri_impl
triangular_solve_p.shape = _tri_shape
triangular_solve_p.jvp = _tri_jvp
triangular_solve_p.transpose = _tri_transpose
triangular_solve_p.batch = _tri_batch
triangular_solve_p.code = _tri_code


def triangular_solve(a, b, lower=True, transpose_a=False, unit_diagonal=False):
    """Solve op(A) X = B for X, reading only A's lower (or upper) triangle."""
    return bind(triangular_solve_p, a, b, lower=bool(lower), transpose_a=bool(transpose_a),
                unit_diagonal=bool(unit_diagonal))


# ---------------------------------------------------------------------------
# eigh: eigenvalues (ascending) and eigenvectors of a symmetric A, packed
# (w, V); with vectors=False the eigenvalues alone, whose rule does not divide
# by the gaps (so they keep finite derivatives at repeated eigenvalues)


def _eigh_impl(a, vectors):
    a = np.asarray(a)
    if not vectors:
        return np.linalg.eigvalsh(a)
    w, v = np.linalg.eigh(a)
    return _pack_np([w, v], a.shape[:-2])


def _eigh_shape(a, vectors):
    _float_square(a, "eigh")
    if not vectors:
        return Aval(tuple(a.shape[:-1]), a.dtype)
    return _packed_aval(eigh_p, a)


def _eigh_jvp(p, t, out, vectors):
    if t[0] is None:
        return None
    a = p[0]
    lead, n = aval_of(a).shape[:-2], aval_of(a).shape[-1]
    w, v = unpack(out if vectors else eigh(a), [(n,), (n, n)])
    c = _mm(_swap_last2(v), _sym(t[0]), v)
    if not vectors:
        return _diag(c)
    dv = matmul_last2(v, mul(_gap_inverse(eigh(a, vectors=False)), c))
    return _pack([_diag(c), dv], lead)


eigh_p.impl = _eigh_impl
eigh_p.shape = _eigh_shape
eigh_p.jvp = _eigh_jvp
eigh_p.batch = _batch_unary(lambda a, vectors: eigh(a, vectors))
eigh_p.code = lambda out, ins, in_avals, out_aval, lit, vectors: _stacked(
    out, ins, in_avals, out_aval, "lm.eigh_packed({0})" if vectors else "lm.eigvalsh({0})")


def eigh(a, vectors=True):
    """Packed (w, V) of symmetric matrices (see :func:`unpack`), or w alone."""
    return bind(eigh_p, a, vectors=bool(vectors))


# ---------------------------------------------------------------------------
# svd: packed (U, s, Vt), or s alone


def _svd_impl(a, full_matrices, compute_uv):
    a = np.asarray(a)
    if not compute_uv:
        return np.linalg.svd(a, compute_uv=False)
    return _pack_np(np.linalg.svd(a, full_matrices=full_matrices), a.shape[:-2])


def _svd_shape(a, full_matrices, compute_uv):
    if a.ndim < 2:
        raise ValueError(f"svd: expected matrices in the last two axes, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"svd: expected a floating-point array, got {a.dtype}")
    return _packed_aval(svd_p, a, full_matrices=full_matrices, compute_uv=compute_uv)


def _svd_jvp(p, t, packed, full_matrices, compute_uv):
    if t[0] is None:
        return None
    a, da = p[0], t[0]
    shape = aval_of(a).shape
    lead, (m, n) = shape[:-2], shape[-2:]
    k = min(m, n)
    thin = packed if compute_uv and (not full_matrices or m == n) else \
        svd(a, full_matrices=False, compute_uv=True)
    u, s, vt = unpack(thin, [(m, k), (k,), (k, n)])
    v = _swap_last2(vt)
    ds_mat = _mm(_swap_last2(u), da, v)
    ds = _diag(ds_mat)
    if not compute_uv:
        return ds
    s_row, s_col = _row(s, k), _col(s, k)
    f = _gap_inverse(mul(s, s))
    dss, sds = mul(ds_mat, s_row), mul(s_col, ds_mat)     # dS S and S dS
    du = matmul_last2(u, mul(f, add(dss, _swap_last2(dss))))
    dv = matmul_last2(v, mul(f, add(sds, _swap_last2(sds))))
    if m > n:
        dav = matmul_last2(da, v)
        du = add(du, div(sub(dav, _mm(u, _swap_last2(u), dav)), _row(s, m)))
    if n > m:
        dau = matmul_last2(_swap_last2(da), u)
        dv = add(dv, div(sub(dau, _mm(v, vt, dau)), _row(s, n)))
    dvt = _swap_last2(dv)
    if full_matrices and m != n:
        # the extra singular vectors (a basis of the complement) are not unique:
        # their tangents are NaN, the others' as for the thin decomposition
        if m > n:
            du = concatenate([du, _nan(lead + (m, m - k), du)], len(lead) + 1)
        else:
            dvt = concatenate([dvt, _nan(lead + (n - k, n), dvt)], len(lead))
    return _pack([du, ds, dvt], lead)


def _svd_code(out, ins, in_avals, out_aval, lit, full_matrices, compute_uv):
    return _stacked(out, ins, in_avals, out_aval, f"lm.svd_packed({{0}}, {full_matrices}, {compute_uv})")


svd_p.impl = _svd_impl
svd_p.shape = _svd_shape
svd_p.jvp = _svd_jvp
svd_p.batch = _batch_unary(lambda a, **params: svd(a, **params))
svd_p.code = _svd_code


def svd(a, full_matrices=False, compute_uv=True):
    """Packed (U, s, Vt) (or s alone) of matrices (see :func:`unpack`)."""
    return bind(svd_p, a, full_matrices=bool(full_matrices), compute_uv=bool(compute_uv))


# ---------------------------------------------------------------------------
# qr: packed (Q, R) ('reduced', 'complete'), or R alone ('r')


def _qr_impl(a, mode):
    a = np.asarray(a)
    parts = [np.linalg.qr(a, mode="r")] if mode == "r" else np.linalg.qr(a, mode=mode)
    return _pack_np(parts, a.shape[:-2])


def _qr_shape(a, mode):
    if a.ndim < 2:
        raise ValueError(f"qr: expected matrices in the last two axes, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"qr: expected a floating-point array, got {a.dtype}")
    return _packed_aval(qr_p, a, mode=mode)


def _qr_jvp(p, t, packed, mode):
    if t[0] is None:
        return None
    a, da = p[0], t[0]
    shape = aval_of(a).shape
    lead, (m, n) = shape[:-2], shape[-2:]
    if m < n:
        # A = [A1 | A2] with A1 square: Q R1 = A1, R2 = Q^T A2
        nd = len(shape)
        def cut(x, lo, hi):            # columns lo:hi
            return slice_(x, (0,) * (nd - 1) + (lo,), shape[:-1] + (hi,), (1,) * nd)
        q, r = unpack(packed if mode != "r" else qr(a, "reduced"), [(m, m), (m, n)])
        dq, dr1 = unpack(_qr_jvp((cut(a, 0, m),), (cut(da, 0, m),), qr(cut(a, 0, m)), "reduced"),
                         [(m, m), (m, m)])
        a2, da2 = cut(a, m, n), cut(da, m, n)
        dr2 = add(matmul_last2(_swap_last2(dq), a2), matmul_last2(_swap_last2(q), da2))
        dr = concatenate([dr1, dr2], nd - 1)
        return _pack([dr] if mode == "r" else [dq, dr], lead)
    q, r = unpack(packed if mode == "reduced" else qr(a, "reduced"), [(m, n), (n, n)])
    # dA R^-1 = (R^-T dA^T)^T
    da_rinv = _swap_last2(triangular_solve(r, _swap_last2(da), lower=False, transpose_a=True))
    x = matmul_last2(_swap_last2(q), da_rinv)
    low = _masked(x, _tril_mask(n, -1))
    omega = sub(low, _swap_last2(low))
    dr = matmul_last2(sub(x, omega), r)
    if mode == "r":
        return _pack([dr], lead)
    dq = add(matmul_last2(q, sub(omega, x)), da_rinv)
    if mode == "complete" and m > n:
        # the complete Q's extra columns (a basis of the complement) are not
        # unique: NaN tangents; R's extra rows are zero
        nd = len(shape)
        dq = concatenate([dq, _nan(lead + (m, m - n), dq)], nd - 1)
        dr = concatenate([dr, zeros(Aval(lead + (m - n, n), aval_of(a).dtype))], nd - 2)
    return _pack([dq, dr], lead)


qr_p.impl = _qr_impl
qr_p.shape = _qr_shape
qr_p.jvp = _qr_jvp
qr_p.batch = _batch_unary(lambda a, mode: qr(a, mode))
qr_p.code = lambda out, ins, in_avals, out_aval, lit, mode: _stacked(
    out, ins, in_avals, out_aval, f"lm.qr_packed({{0}}, {_QR_MODES.index(mode)})")
_QR_MODES = ("reduced", "complete", "r")


def qr(a, mode="reduced"):
    """Packed (Q, R) (or R alone, mode 'r') of matrices (see :func:`unpack`)."""
    return bind(qr_p, a, mode=mode)


# ---------------------------------------------------------------------------
# slogdet: packed (sign, log|det|)


def _slogdet_impl(a):
    a = np.asarray(a)
    return _pack_np(np.linalg.slogdet(a), a.shape[:-2])


def _slogdet_jvp(p, t, packed):
    if t[0] is None:
        return None
    a, nd = p[0], aval_of(p[0]).ndim
    dlog = reduce_sum(mul(_swap_last2(inv(a)), t[0]), (nd - 2, nd - 1))
    lead = aval_of(a).shape[:-2]
    return _pack([zeros(Aval(lead, aval_of(a).dtype)), dlog], lead)


slogdet_p.impl = _slogdet_impl
slogdet_p.shape = lambda a: _packed_aval(slogdet_p, _float_square(a, "slogdet"))
slogdet_p.jvp = _slogdet_jvp
slogdet_p.batch = _batch_unary(lambda a: slogdet(a))
slogdet_p.code = lambda out, ins, in_avals, out_aval, lit: _stacked(
    out, ins, in_avals, out_aval, "lm.slogdet_packed({0})")


def slogdet(a):
    """Packed (sign, log|det|) of square matrices (see :func:`unpack`)."""
    return bind(slogdet_p, a)


# ---------------------------------------------------------------------------
# pinv: the Moore-Penrose pseudo-inverse, singular values below rcond * the
# largest taken as zero


def _pinv_shape(a, rcond):
    if a.ndim < 2:
        raise ValueError(f"pinv: expected matrices in the last two axes, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"pinv: expected a floating-point array, got {a.dtype}")
    return Aval(tuple(a.shape[:-2]) + (a.shape[-1], a.shape[-2]), a.dtype)


def _pinv_jvp(p, t, pa, rcond):
    if t[0] is None:
        return None
    a, da = p[0], t[0]
    m, n = aval_of(a).shape[-2:]
    pt, dat = _swap_last2(pa), _swap_last2(t[0])
    first = neg(_mm(pa, da, pa))
    second = _mm(pa, pt, dat, sub(_eye_like(a, m), matmul_last2(a, pa)))
    third = _mm(sub(_eye_like(a, n), matmul_last2(pa, a)), dat, pt, pa)
    return add(add(first, second), third)


pinv_p.impl = lambda a, rcond: np.linalg.pinv(np.asarray(a), rcond=rcond)
pinv_p.shape = _pinv_shape
pinv_p.jvp = _pinv_jvp
pinv_p.batch = _batch_unary(lambda a, rcond: pinv(a, rcond))
pinv_p.code = lambda out, ins, in_avals, out_aval, lit, rcond: _stacked(
    out, ins, in_avals, out_aval, f"lm.pinv({{0}}, {rcond!r})")


def pinv(a, rcond):
    return bind(pinv_p, a, rcond=float(rcond))
