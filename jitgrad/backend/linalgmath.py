"""Matrix functions for generated code (the compiled tier of the decompositions).

Each takes one matrix (the generated code loops over a stack) and returns a
fresh array; the decompositions with several results return them packed into
one vector in the order of :mod:`jitgrad.lax.decompositions`.  Numba's own
``np.linalg`` (LAPACK) does the factorizations; written here:

- ``tri_solve``: forward or back substitution with a triangular matrix (or its
  transpose), reading only that triangle; a zero pivot raises LinAlgError.
- ``qr_packed`` in mode 'complete': Householder QR as LAPACK's dgeqr2/dorg2r
  (reflector H = I - tau v v^T with v_0 = 1, beta = -sign(alpha) ||x||), so
  the complete Q matches NumPy's, extra columns included (Numba's qr is the
  reduced one).
- ``expm_host``, ``expm_frechet_host``: plain Python, called from an
  ``objmode`` block: SciPy's expm, and the Frechet derivative L(A, E) as the
  upper-right block of expm([[A, E], [0, A]]).
"""
import numpy as np
from numba import njit

__all__ = ["cholesky", "eigvalsh", "pinv", "tri_solve", "eigh_packed", "svd_packed", "qr_packed",
           "slogdet_packed", "expm_host", "expm_frechet_host"]

_jit = njit(cache=True, nogil=True)


# Numba's LAPACK-backed functions, compiled once here (and cached on disk)
# rather than in every generated module that calls them


@_jit
def cholesky(a):
    return np.linalg.cholesky(a)


@_jit
def eigvalsh(a):
    return np.linalg.eigvalsh(a)


@_jit
def pinv(a, rcond):
    return np.linalg.pinv(a, rcond)


@_jit
def tri_solve(a, b, lower, trans, unit):
    n, k = b.shape
    x = b.copy()
    # op(A) lower-triangular when (lower and not trans) or (upper and trans)
    forward = lower != trans
    for j in range(k):
        for step in range(n):
            i = step if forward else n - 1 - step
            acc = x[i, j]
            lo, hi = (0, i) if forward else (i + 1, n)
            for p in range(lo, hi):
                acc -= (a[p, i] if trans else a[i, p]) * x[p, j]
            if not unit:
                if a[i, i] == 0:
                    raise np.linalg.LinAlgError("singular matrix: a zero on the diagonal of a "
                                                "triangular matrix")
                acc /= a[i, i]
            x[i, j] = acc
    return x


@_jit
def eigh_packed(a):
    n = a.shape[0]
    w, v = np.linalg.eigh(a)
    out = np.empty(n + n * n, a.dtype)
    out[:n] = w
    for i in range(n):
        for j in range(n):
            out[n + i * n + j] = v[i, j]
    return out


@_jit
def _put(out, at, x):
    r, c = x.shape
    for i in range(r):
        for j in range(c):
            out[at + i * c + j] = x[i, j]
    return at + r * c


@_jit
def svd_packed(a, full, uv):
    m, n = a.shape
    k = min(m, n)
    u, s, vt = np.linalg.svd(a, full_matrices=full)
    if not uv:
        return s.copy()
    ku, kv = (m, n) if full else (k, k)
    out = np.empty(m * ku + k + kv * n, a.dtype)
    at = _put(out, 0, u[:, :ku])
    out[at:at + k] = s
    _put(out, at + k, vt[:kv, :])
    return out


@_jit
def _householder_qr(a):
    m, n = a.shape
    r = a.astype(np.float64).copy()
    k = min(m, n)
    vs = np.zeros((m, k))
    taus = np.zeros(k)
    for j in range(k):
        alpha = r[j, j]
        xnorm = 0.0
        for i in range(j + 1, m):
            xnorm += r[i, j] * r[i, j]
        if xnorm == 0.0:
            vs[j, j] = 1.0
            continue              # tau = 0: H = I
        beta = -np.copysign(np.sqrt(alpha * alpha + xnorm), alpha)
        tau = (beta - alpha) / beta
        vs[j, j] = 1.0
        for i in range(j + 1, m):
            vs[i, j] = r[i, j] / (alpha - beta)
        taus[j] = tau
        for c in range(j, n):     # R <- H R
            dot = 0.0
            for i in range(j, m):
                dot += vs[i, j] * r[i, c]
            for i in range(j, m):
                r[i, c] -= tau * vs[i, j] * dot
        for i in range(j + 1, m):
            r[i, j] = 0.0
        r[j, j] = beta
    q = np.eye(m)
    for j in range(k - 1, -1, -1):    # Q = H_0 ... H_{k-1} I
        if taus[j] == 0.0:
            continue
        for c in range(m):
            dot = 0.0
            for i in range(j, m):
                dot += vs[i, j] * q[i, c]
            for i in range(j, m):
                q[i, c] -= taus[j] * vs[i, j] * dot
    return q, r


@_jit
def qr_packed(a, mode):
    m, n = a.shape
    k = min(m, n)
    if mode == 1:
        q, r = _householder_qr(a)
        out = np.empty(m * m + m * n, a.dtype)
        _put(out, _put(out, 0, q), r)
        return out
    q, r = np.linalg.qr(a)
    if mode == 2:
        out = np.empty(k * n, a.dtype)
        _put(out, 0, r)
        return out
    out = np.empty(m * k + k * n, a.dtype)
    _put(out, _put(out, 0, q), r)
    return out


@_jit
def slogdet_packed(a):
    sign, logdet = np.linalg.slogdet(a)
    out = np.empty(2, a.dtype)
    out[0] = sign
    out[1] = logdet
    return out


# The matrix exponential: SciPy's, from an objmode block (Numba would take
# about a minute to compile a Pade scaling-and-squaring kernel on a loaded
# machine; the call costs microseconds next to the O(n^3) work, and both tiers
# then give SciPy's values).
from jitgrad.core.expm import expm_frechet_host, expm_host  # noqa: E402
