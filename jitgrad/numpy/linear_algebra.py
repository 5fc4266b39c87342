"""``np.linalg`` on traced arrays (the :class:`linalg` namespace; NumPy's
functions dispatch to it by name, see :mod:`jitgrad.numpy.dispatch`).

Every function takes stacks of matrices in the last two axes, as NumPy's do,
and returns NumPy's result types (named tuples where NumPy has them).  The
decompositions are primitives (:mod:`jitgrad.lax.decompositions`); the rest
compose from them: ``norm`` of every order, ``matrix_power``, ``multi_dot``,
``lstsq`` (the solution is pinv(A) b, NumPy's minimum-norm solution),
``matrix_rank``, ``cond``, ``tensorsolve``, ``tensorinv``.

What the functions read follows NumPy: ``cholesky`` and ``eigh`` read one
triangle (the lower by default), so they are applied to the symmetric matrix
built from it, and their derivatives are those of the functions NumPy
computes: a perturbation of the other triangle has no effect.  (JAX instead
symmetrizes, (A + A^T) / 2, which agrees for symmetric perturbations.)

Real dtypes only: integers and booleans become float64, float16 is refused
as NumPy refuses it, complex arrays raise NotImplementedError.
"""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer
from .base import _float_dtype, _operand, _shape, _to, astype, result_dtype
from .indexing import diagonal, trace
from .products import matmul
from .reductions import max, min, sum
from .shapes import moveaxis, reshape, squeeze, swapaxes
from .ufuncs import absolute, add, divide, less, multiply, not_equal, power, sqrt, subtract

_EighResult = namedtuple("EighResult", "eigenvalues eigenvectors")
_SVDResult = namedtuple("SVDResult", "U S Vh")
_QRResult = namedtuple("QRResult", "Q R")
_SlogdetResult = namedtuple("SlogdetResult", "sign logabsdet")


def _matrices(a, who, *others):
    """``a`` (and ``others``) as float arrays of one dtype, at least 2-D."""
    xs = [_operand(x) for x in (a,) + others]
    dt = result_dtype(*xs)
    if dt.kind == "c":
        raise NotImplementedError(f"np.linalg.{who}: complex linalg is not supported by jitgrad "
                                  "(real dtypes only)")
    dt = _float_dtype(dt)
    if dt == _np.float16:
        raise TypeError("array type float16 is unsupported in linalg")
    if len(_shape(xs[0])) < 2:
        raise _np.linalg.LinAlgError(f"{len(_shape(xs[0]))}-dimensional array given. Array must be "
                                     "at least two-dimensional")
    xs = [_to(x, dt, _shape(x)) if isinstance(x, Tracer) else _np.asarray(x, dt) for x in xs]
    return xs if others else xs[0]


def _square(a, who):
    a = _matrices(a, who)
    if _shape(a)[-1] != _shape(a)[-2]:
        raise _np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
    return a


def _parts(packed, prim, shape, **params):
    return P.unpack(packed, P.part_shapes(prim, shape, **params))


def _symmetric_from(a, lower=True):
    """The symmetric matrix whose lower (or upper) triangle is ``a``'s."""
    n = _shape(a)[-1]
    keep, mirror = _np.tril(_np.ones((n, n))), _np.tril(_np.ones((n, n)), -1)
    if not lower:
        keep, mirror = keep.T, mirror.T
    dt = result_dtype(a)
    return add(multiply(a, keep.astype(dt)), swapaxes(multiply(a, mirror.astype(dt)), -1, -2))


def _uplo(UPLO):
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    return UPLO == "L"


def _svdvals(a):
    return P.svd(a, full_matrices=False, compute_uv=False)


class linalg:
    """The functions of ``np.linalg`` that jitgrad traces."""

    # -- inverse, solve, det (primitives of jitgrad.lax.linalg)

    @staticmethod
    def inv(a):
        return P.inv(_square(a, "inv"))

    @staticmethod
    def det(a):
        return P.det(_square(a, "det"))

    @staticmethod
    def solve(a, b):
        """NumPy 2's rule: ``b`` is a vector when 1-D, else a stack of matrices;
        leading (batch) axes broadcast."""
        b = _operand(b)
        vector = len(_shape(b)) == 1
        if vector:
            b = reshape(b, _shape(b) + (1,))
        a, b = _matrices(a, "solve", b)
        if _shape(a)[-1] != _shape(a)[-2]:
            raise _np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
        x = P.solve(*_broadcast_lead(a, b))
        return reshape(x, _shape(x)[:-1]) if vector else x

    # -- decompositions

    @staticmethod
    def cholesky(a, /, *, upper=False):
        a = _square(a, "cholesky")
        L = P.cholesky(_symmetric_from(a, lower=not upper))
        return swapaxes(L, -1, -2) if upper else L

    @staticmethod
    def eigh(a, UPLO="L"):
        a = _square(a, "eigh")
        sym = _symmetric_from(a, _uplo(UPLO))
        # the eigenvalues from the primitive of their own (finite derivatives at ties)
        v = _parts(P.eigh(sym), P.eigh_p, _shape(a))[1]
        return _EighResult(P.eigh(sym, vectors=False), v)

    @staticmethod
    def eigvalsh(a, UPLO="L"):
        a = _square(a, "eigvalsh")
        return P.eigh(_symmetric_from(a, _uplo(UPLO)), vectors=False)

    @staticmethod
    def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
        a = _matrices(a, "svd")
        if not compute_uv:
            return _svdvals(a)
        packed = P.svd(a, full_matrices=full_matrices, compute_uv=True)
        u, _, vt = _parts(packed, P.svd_p, _shape(a), full_matrices=bool(full_matrices),
                          compute_uv=True)
        # the singular values from the primitive of their own (finite derivatives at ties)
        return _SVDResult(u, _svdvals(a), vt)

    @staticmethod
    def svdvals(x, /):
        return _svdvals(_matrices(x, "svdvals"))

    @staticmethod
    def qr(a, mode="reduced"):
        if mode not in ("reduced", "complete", "r"):
            raise ValueError(f"Unrecognized mode '{mode}'" if mode != "raw" else
                             "jitgrad does not support np.linalg.qr(mode='raw')")
        a = _matrices(a, "qr")
        parts = _parts(P.qr(a, mode), P.qr_p, _shape(a), mode=mode)
        return parts[0] if mode == "r" else _QRResult(*parts)

    @staticmethod
    def slogdet(a):
        a = _square(a, "slogdet")
        return _SlogdetResult(*_parts(P.slogdet(a), P.slogdet_p, _shape(a)))

    @staticmethod
    def pinv(a, rcond=None, hermitian=False, *, rtol=_np._NoValue):
        a = _matrices(a, "pinv")
        if rcond is None:
            rcond = 1e-15 if rtol is _np._NoValue else (
                builtins.max(_shape(a)[-2:]) * _np.finfo(result_dtype(a)).eps if rtol is None else rtol)
        elif rtol is not _np._NoValue:
            raise ValueError("`rtol` and `rcond` can't be both set.")
        if _np.ndim(rcond) != 0 or isinstance(rcond, Tracer):
            raise NotImplementedError("jitgrad's np.linalg.pinv takes one concrete rcond/rtol")
        return P.pinv(a, float(rcond))

    @staticmethod
    def lstsq(a, b, rcond=None):
        """(x, residuals, rank, s).  x = pinv(a) b, NumPy's minimum-norm
        solution; its derivative is that of a matrix of constant rank.  The
        residuals are the squared column norms of b - a x when a has more rows
        than columns (NumPy returns an empty array instead when a turns out
        rank-deficient, which a traced shape cannot follow); the rank is a
        traced integer."""
        b_vector = len(_shape(_operand(b))) == 1
        b2 = reshape(b, _shape(_operand(b)) + (1,)) if b_vector else b
        a, b2 = _matrices(a, "lstsq", b2)
        if len(_shape(a)) != 2 or len(_shape(b2)) != 2:
            raise _np.linalg.LinAlgError(f"{len(_shape(a))}-dimensional array given. Array must be "
                                         "two-dimensional")
        (m, n), dt = _shape(a), result_dtype(a)
        if _shape(b2)[0] != m:
            raise _np.linalg.LinAlgError("Incompatible dimensions")
        if rcond is None:
            rcond = _np.finfo(dt).eps * builtins.max(m, n)
        x = matmul(P.pinv(a, float(rcond)), b2)
        s = _svdvals(a)
        if m > n:
            r = subtract(b2, matmul(a, x))
            resid = sum(multiply(r, r), axis=0)
        else:
            resid = _np.zeros((0,), dt)
        rank = astype(_rank(s, rcond), _np.int32)      # (NumPy: an int32)
        return (squeeze(x, -1) if b_vector else x), resid, rank, s

    # -- compositions

    @staticmethod
    def matrix_power(a, n):
        a = _operand(a)
        if not isinstance(n, (int, _np.integer)) or isinstance(n, bool):
            raise TypeError("exponent must be an integer")
        sa = _shape(a)
        if len(sa) < 2 or sa[-1] != sa[-2]:
            raise _np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
        if n == 0:
            eye = _np.broadcast_to(_np.eye(sa[-1], dtype=result_dtype(a)), sa)
            return add(multiply(a, 0), eye) if isinstance(a, Tracer) else eye.copy()
        if n < 0:
            a, n = linalg.inv(a), -n
        result, z = None, a
        while True:        # binary powering, the bits of n from the lowest
            if n & 1:
                result = z if result is None else matmul(result, z)
            n >>= 1
            if not n:
                return result
            z = matmul(z, z)

    @staticmethod
    def multi_dot(arrays, *, out=None):
        if out is not None:
            raise TypeError("jitgrad does not support out=")
        arrays = [_operand(x) for x in arrays]
        if len(arrays) < 2:
            raise ValueError("Expecting at least two arrays.")
        first, last = len(_shape(arrays[0])) == 1, len(_shape(arrays[-1])) == 1
        if first:
            arrays[0] = reshape(arrays[0], (1, -1))
        if last:
            arrays[-1] = reshape(arrays[-1], (-1, 1))
        out = _chain(arrays, _chain_order([_shape(x) for x in arrays]), 0, len(arrays) - 1)
        if first and last:
            return reshape(out, ())
        return squeeze(out, 0) if first else (squeeze(out, -1) if last else out)

    @staticmethod
    def norm(x, ord=None, axis=None, keepdims=False):
        return _norm(x, ord, axis, keepdims)

    @staticmethod
    def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
        x = _operand(x)
        shape, nd = _shape(x), len(_shape(x))
        axes = tuple(range(nd)) if axis is None else (
            tuple(a % nd for a in axis) if isinstance(axis, tuple) else (axis % nd,))
        if len(axes) == 1:
            return _norm(x, ord, axes, keepdims)
        # a vector norm over several axes: of the vectors they hold together
        rest = [i for i in range(nd) if i not in axes]
        y = reshape(P.transpose(x, tuple(rest) + axes) if isinstance(x, Tracer) else
                    _np.transpose(x, rest + list(axes)), tuple(shape[i] for i in rest) + (-1,))
        out = _norm(y, ord, -1, False)
        return reshape(out, tuple(1 if i in axes else shape[i] for i in range(nd))) if keepdims else out

    @staticmethod
    def matrix_norm(x, /, *, keepdims=False, ord="fro"):
        return _norm(x, ord, (-2, -1), keepdims)

    @staticmethod
    def matrix_transpose(x, /):
        x = _operand(x)
        if len(_shape(x)) < 2:
            raise ValueError("Input array must be at least 2-dimensional")
        return swapaxes(x, -1, -2)

    @staticmethod
    def matmul(x1, x2, /):
        return matmul(x1, x2)

    @staticmethod
    def diagonal(x, /, *, offset=0):
        return diagonal(x, offset, -2, -1)

    @staticmethod
    def trace(x, /, *, offset=0, dtype=None):
        return trace(x, offset, -2, -1, dtype)

    @staticmethod
    def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
        A = _operand(A)
        if len(_shape(A)) < 2:
            return astype(P.reduce_max(astype(not_equal(A, 0), _np.int64), tuple(range(len(_shape(A))))),
                          _np.int64)
        A = _matrices(A, "matrix_rank")
        s = P.stop_gradient(_svdvals(A))
        if tol is not None:
            return sum(astype(less(_np.asarray(tol)[..., None], s), _np.int64), axis=-1)
        if rtol is None:
            rtol = builtins.max(_shape(A)[-2:]) * _np.finfo(result_dtype(A)).eps
        return _rank(s, rtol)

    @staticmethod
    def cond(x, p=None):
        x = _matrices(x, "cond")
        if p in (None, 2, -2):
            s = _svdvals(x)
            big, small = max(s, axis=-1), min(s, axis=-1)
            return divide(small, big) if p == -2 else divide(big, small)
        return multiply(_norm(x, p, (-2, -1), False), _norm(linalg.inv(x), p, (-2, -1), False))

    @staticmethod
    def tensorsolve(a, b, axes=None):
        a, b = _operand(a), _operand(b)
        an = len(_shape(a))
        if axes is not None:
            allaxes = list(range(an))
            for k in axes:
                allaxes.remove(k)
                allaxes.insert(an, k)
            a = P.transpose(a, tuple(allaxes)) if isinstance(a, Tracer) else _np.transpose(a, allaxes)
        oldshape = _shape(a)[-(an - len(_shape(b))):]
        prod = int(_np.prod(oldshape))
        if int(_np.prod(_shape(a))) != prod * prod:
            raise _np.linalg.LinAlgError("Input arrays must satisfy the requirement "
                                         "prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
        x = linalg.solve(reshape(a, (prod, prod)), reshape(b, (prod,)))
        return reshape(x, oldshape)

    @staticmethod
    def tensorinv(a, ind=2):
        a = _operand(a)
        if ind <= 0:
            raise ValueError("Invalid ind argument.")
        oldshape = _shape(a)
        prod = int(_np.prod(oldshape[:ind]))
        invshape = oldshape[ind:] + oldshape[:ind]
        if int(_np.prod(oldshape[ind:])) != prod:
            raise _np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
        return reshape(linalg.inv(reshape(a, (prod, -1))), invshape)


# ---------------------------------------------------------------------------
# Helpers


def _broadcast_lead(a, b):
    sa, sb = _shape(a), _shape(b)
    lead = _np.broadcast_shapes(sa[:-2], sb[:-2])
    dt = result_dtype(a, b)
    return _to(a, dt, lead + sa[-2:]), _to(b, dt, lead + sb[-2:])


def _rank(s, rtol):
    """The number of singular values above rtol * the largest (an int64)."""
    s = P.stop_gradient(s)
    cut = multiply(max(s, axis=-1, keepdims=True), rtol)
    return sum(astype(less(cut, s), _np.int64), axis=-1)


def _chain_order(shapes):
    """The cheapest parenthesization of a matrix chain (dynamic programming):
    split[i][j] is where the product of matrices i..j splits."""
    dims = [s[0] for s in shapes] + [shapes[-1][1]]
    n = len(shapes)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(arrays, split, i, j):
    if i == j:
        return arrays[i]
    k = split[i][j]
    return matmul(_chain(arrays, split, i, k), _chain(arrays, split, k + 1, j))


def _root_of_squares(x, axis, keepdims):
    """sqrt(sum(|x|^2)); its derivative at x = 0 is NaN, as JAX's (sqrt's
    infinite slope times zero)."""
    squares = P.abs2(x) if result_dtype(x).kind == "c" else multiply(x, x)
    return sqrt(sum(squares, axis=axis, keepdims=keepdims))


def _max0(x, axes, keepdims):
    """max over axes of values >= 0, 0 when they are empty (NumPy's initial=0)."""
    if any(_shape(x)[a] == 0 for a in axes):
        return sum(multiply(x, 0), axis=axes, keepdims=keepdims)
    return max(x, axis=axes, keepdims=keepdims)


def _norm(x, ord, axis, keepdims):
    x = _operand(x)
    dt = result_dtype(x)
    nd = len(_shape(x))
    # NumPy's own checks of ord and axis, on a stand-in of the same rank
    _np.linalg.norm(_np.ones((1,) * nd), ord, axis, keepdims)
    if dt.kind not in "fc":
        x = astype(x, _np.float64)
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            out = _root_of_squares(x, None, False)
            return reshape(out, (1,) * nd) if keepdims else out
        axis = tuple(range(nd))
    elif not isinstance(axis, tuple):
        axis = (int(axis),)
    if len(axis) == 1:
        ax = axis
        if ord == _np.inf:
            return _max0(absolute(x), ax, keepdims)
        if ord == -_np.inf:
            return min(absolute(x), axis=ax, keepdims=keepdims)
        if ord == 0:
            return sum(astype(not_equal(x, 0), result_dtype(x)), axis=ax, keepdims=keepdims)
        if ord == 1:
            return sum(absolute(x), axis=ax, keepdims=keepdims)
        if ord is None or ord == 2:
            return _root_of_squares(x, ax, keepdims)
        p = float(ord)
        return power(sum(power(absolute(x), p), axis=ax, keepdims=keepdims), 1.0 / p)
    row, col = (a % nd for a in axis)
    if ord in (2, -2, "nuc"):
        if dt.kind == "c":
            raise NotImplementedError(f"np.linalg.norm(ord={ord!r}) of a complex matrix: complex "
                                      "linalg (its singular values) is not supported by jitgrad")
        s = _svdvals(moveaxis(x, (row, col), (-2, -1)))
        ret = max(s, axis=-1) if ord == 2 else (min(s, axis=-1) if ord == -2 else sum(s, axis=-1))
    elif ord in (1, -1):
        sums, ax = sum(absolute(x), axis=row), col - (col > row)
        ret = _max0(sums, (ax,), False) if ord == 1 else min(sums, axis=ax)
    elif ord in (_np.inf, -_np.inf):
        sums, ax = sum(absolute(x), axis=col), row - (row > col)
        ret = _max0(sums, (ax,), False) if ord > 0 else min(sums, axis=ax)
    else:                                   # None, 'fro', 'f'
        ret = _root_of_squares(x, (row, col), False)
    if keepdims:
        shape = list(_shape(x))
        shape[row] = shape[col] = 1
        ret = reshape(ret, tuple(shape))
    return ret
