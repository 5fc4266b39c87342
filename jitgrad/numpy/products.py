"""Products and linear algebra of NumPy's interface on traced arrays: ``dot``,
``matmul``, ``vdot``, ``inner``, ``outer``, ``tensordot`` (``np.linalg`` is
:mod:`jitgrad.numpy.linear_algebra`).  Part of :mod:`jitgrad.numpy`; import
them from there.
"""
from __future__ import annotations

import numpy as _np

from .. import lax as P
from .complex import conj
from .base import _no_out, _operand, result_dtype, _shape, _to
from .reductions import sum
from .shapes import ravel, reshape, squeeze
from .ufuncs import multiply

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
