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
- ``expm``: scaling and squaring with the Pade approximant of degree 3, 5, 7,
  9 or 13 chosen from the 1-norm (Higham 2005, "The scaling and squaring
  method for the matrix exponential revisited"), in float64.
- ``expm_frechet``: the Frechet derivative L(A, E), the upper-right block of
  expm([[A, E], [0, A]]).
"""
import numpy as np
from numba import njit

__all__ = ["tri_solve", "eigh_packed", "svd_packed", "qr_packed", "slogdet_packed", "expm",
           "expm_frechet"]

_jit = njit(cache=True, nogil=True)


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


# Higham (2005), table 2.3 (float64) and the Pade coefficients b_0..b_m
_THETA = (1.495585217958292e-2, 2.539398330063230e-1, 9.504178996162932e-1,
          2.097847961257068e0, 5.371920351148152e0)
_B3 = np.array([120., 60., 12., 1.])
_B5 = np.array([30240., 15120., 3360., 420., 30., 1.])
_B7 = np.array([17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.])
_B9 = np.array([17643225600., 8821612800., 2075673600., 302702400., 30270240., 2162160.,
                110880., 3960., 90., 1.])
_B13 = np.array([64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
                 129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
                 40840800., 960960., 16380., 182., 1.])


@_jit
def _pade_low(a, ident, b):
    """U, V of the Pade approximant of degree len(b) - 1 <= 9."""
    a2 = a @ a
    u = b[1] * ident
    v = b[0] * ident
    p = ident
    for j in range(1, (len(b) + 1) // 2):
        p = p @ a2
        u = u + b[2 * j + 1] * p
        v = v + b[2 * j] * p
    return a @ u, v


@_jit
def _expm64(a):
    n = a.shape[0]
    ident = np.eye(n)
    if n == 0:
        return ident
    norm = np.max(np.sum(np.abs(a), axis=0))
    if norm <= _THETA[0]:
        u, v = _pade_low(a, ident, _B3)
    elif norm <= _THETA[1]:
        u, v = _pade_low(a, ident, _B5)
    elif norm <= _THETA[2]:
        u, v = _pade_low(a, ident, _B7)
    elif norm <= _THETA[3]:
        u, v = _pade_low(a, ident, _B9)
    else:
        s = 0
        if norm > _THETA[4]:
            s = int(np.ceil(np.log2(norm / _THETA[4])))
        a = a / 2.0 ** s
        b = _B13
        a2 = a @ a
        a4 = a2 @ a2
        a6 = a4 @ a2
        u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2)
                 + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * ident)
        v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 \
            + b[0] * ident
        r = np.linalg.solve(v - u, v + u)
        for _ in range(s):
            r = r @ r
        return r
    return np.linalg.solve(v - u, v + u)


@_jit
def expm(a):
    return _expm64(np.ascontiguousarray(a).astype(np.float64)).astype(a.dtype)


@_jit
def expm_frechet(a, e):
    n = a.shape[0]
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n] = a
    block[n:, n:] = a
    block[:n, n:] = e
    return np.ascontiguousarray(_expm64(block)[:n, n:]).astype(a.dtype)
