"""Products and linear algebra of NumPy's interface on traced arrays: ``dot``,
``matmul``, ``vdot``, ``inner``, ``outer``, ``tensordot`` and ``np.linalg``
(``norm``, ``inv``, ``solve``, ``det``).  Part of :mod:`jitgrad.numpy`;
import them from there.
"""
from __future__ import annotations

import numpy as _np

from .. import lax as P
from .complex import conj
from .base import _float_dtype, _no_out, _operand, result_dtype, _shape, _to
from .reductions import sum
from .shapes import ravel, reshape, squeeze
from .ufuncs import multiply, sqrt

# ---------------------------------------------------------------------------
# Products


def dot(a, b, out=None):
    a, b = _operand(a), _operand(b)
    if _shape(a) == () or _shape(b) == ():
        return multiply(a, b)
    dt = result_dtype(a, b)
    a, b = _to(a, dt, _shape(a)), _to(b, dt, _shape(b))
    nb = len(_shape(b))
    return P.dot_general(a, b, ((len(_shape(a)) - 1,), (0 if nb == 1 else nb - 2,)))


def matmul(a, b, /, **kwargs):
    _no_out(kwargs)
    a, b = _operand(a), _operand(b)
    sa, sb = _shape(a), _shape(b)
    if sa == () or sb == ():
        raise ValueError("matmul: input operand does not have enough dimensions (use * for scalars)")
    dt = result_dtype(a, b)
    a1, b1 = len(sa) == 1, len(sb) == 1
    if a1:
        a, sa = reshape(a, (1,) + sa), (1,) + sa
    if b1:
        b, sb = reshape(b, sb + (1,)), sb + (1,)
    if sa[-1] != sb[-2]:
        raise ValueError(f"matmul: mismatch in contracted dimension: shapes {_shape(a)} and {_shape(b)}")
    batch = _np.broadcast_shapes(sa[:-2], sb[:-2])
    a = _to(a, dt, batch + sa[-2:])
    b = _to(b, dt, batch + sb[-2:])
    nb = len(batch)
    bd = tuple(range(nb))
    out = P.dot_general(a, b, ((nb + 1,), (nb,)), (bd, bd))
    if a1:
        out = squeeze(out, -2)
    if b1:
        out = squeeze(out, -1)
    return out


def vdot(a, b):
    """sum(conj(a) * b) over the flattened arrays (the first one conjugated)."""
    return dot(conj(ravel(a)), ravel(b))


def inner(a, b):
    a, b = _operand(a), _operand(b)
    if _shape(a) == () or _shape(b) == ():
        return multiply(a, b)
    dt = result_dtype(a, b)
    return P.dot_general(_to(a, dt, _shape(a)), _to(b, dt, _shape(b)),
                         ((len(_shape(a)) - 1,), (len(_shape(b)) - 1,)))


def outer(a, b, out=None):
    a, b = ravel(a), ravel(b)
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def tensordot(a, b, axes=2):
    a, b = _operand(a), _operand(b)
    na, nb = len(_shape(a)), len(_shape(b))
    if isinstance(axes, int):
        ca, cb = tuple(range(na - axes, na)), tuple(range(axes))
    else:
        ca, cb = (tuple(_np.atleast_1d(x) % n) for x, n in zip(axes, (na, nb)))
    dt = result_dtype(a, b)
    return P.dot_general(_to(a, dt, _shape(a)), _to(b, dt, _shape(b)), (ca, cb))


# ---------------------------------------------------------------------------
# Linear algebra (the differentiable part that composes from primitives)


class linalg:
    @staticmethod
    def norm(x, ord=None, axis=None, keepdims=False):
        if ord not in (None, 2, "fro") or (ord == 2 and axis is None and len(_shape(x)) > 1):
            raise NotImplementedError("jitgrad supports np.linalg.norm with the default (2/Frobenius) norm")
        x = _operand(x)
        x = _to(x, _float_dtype(result_dtype(x)), _shape(x))        # (as NumPy: integers as floats)
        return sqrt(sum(P.abs2(x), axis=axis, keepdims=keepdims))

    @staticmethod
    def inv(a):
        a = _operand(a)
        return P.inv(_to(a, _float_dtype(result_dtype(a)), _shape(a)))

    @staticmethod
    def det(a):
        a = _operand(a)
        return P.det(_to(a, _float_dtype(result_dtype(a)), _shape(a)))

    @staticmethod
    def solve(a, b):
        """NumPy 2's rule: ``b`` is a vector when 1-D, else a stack of matrices;
        leading (batch) axes broadcast."""
        a, b = _operand(a), _operand(b)
        dt = _float_dtype(result_dtype(a, b))
        sa, sb = _shape(a), _shape(b)
        if len(sa) < 2:
            raise ValueError(f"solve: a must be at least 2-dimensional, got shape {sa}")
        vector = len(sb) == 1
        if vector:
            b, sb = reshape(b, sb + (1,)), sb + (1,)
        lead = _np.broadcast_shapes(sa[:-2], sb[:-2])
        a = _to(a, dt, lead + sa[-2:])
        b = _to(b, dt, lead + sb[-2:])
        x = P.solve(a, b)
        return reshape(x, _shape(x)[:-1]) if vector else x
