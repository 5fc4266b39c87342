"""NumPy's functions on complex numbers: ``real``, ``imag``, ``conj``
(``conjugate``), ``angle``, ``iscomplexobj`` and ``isrealobj``, ``iscomplex``
and ``isreal``, ``real_if_close`` (of real arrays), and the ``.real``,
``.imag`` and ``.conj()`` of traced arrays.

On real arrays they do what NumPy's do: ``real`` and ``conj`` return the
values, ``imag`` zeros, ``angle`` 0 or pi.
"""
from __future__ import annotations

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer
from .base import _PY_SCALARS, _fresh, _operand, result_dtype
from .ufuncs import arctan2, equal, multiply, where


def _traced(x):
    return isinstance(x, Tracer)


def real(val):
    """The real part (the values themselves for a real array)."""
    val = _operand(val)
    if not _traced(val):
        return _np.real(val)
    return P.real(val) if result_dtype(val).kind == "c" else _fresh(val)


def imag(val):
    """The imaginary part (zeros of the array's dtype for a real array)."""
    val = _operand(val)
    if not _traced(val):
        return _np.imag(val)
    return P.imag(val)


def conjugate(x, /, **kwargs):
    """The complex conjugate (the values themselves for a real array)."""
    x = _operand(x)
    if not _traced(x):
        return _np.conjugate(x)
    return P.conj(x) if result_dtype(x).kind == "c" else _fresh(x)


conj = conjugate


def angle(z, deg=False):
    """The argument of ``z``, in (-pi, pi] (in degrees with ``deg``); its
    derivative is taken as 0 at z = 0, where it has none (as for |z|)."""
    z = _operand(z)
    if not _traced(z):
        return _np.angle(z, deg)
    zdt = result_dtype(z)
    if zdt.kind != "c":          # NumPy: the angle of x + 0j, in float64 for integers
        z = P.convert(z, P.complex_dtype(_np.result_type(zdt, _np.float16)))
    re, im = P.real(z), P.imag(z)
    at_zero = equal(z, 0)
    # atan2(im, re) itself at 0 (whose signs of zero NumPy's answer keeps),
    # differentiated only away from 0
    smooth = arctan2(where(at_zero, 0.0, im), where(at_zero, 1.0, re))
    a = where(at_zero, P.stop_gradient(arctan2(im, re)), smooth)
    return multiply(a, 180 / _np.pi) if deg else a


def iscomplexobj(x):
    """Whether ``x`` has a complex dtype (whatever its values)."""
    x = _operand(x)
    return result_dtype(x).kind == "c" if _traced(x) or isinstance(x, _PY_SCALARS) \
        else _np.iscomplexobj(x)


def isrealobj(x):
    return not iscomplexobj(x)


def iscomplex(x):
    """Elementwise: whether the imaginary part is nonzero."""
    x = _operand(x)
    if not _traced(x):
        return _np.iscomplex(x)
    return P.ne(P.imag(x), 0) if result_dtype(x).kind == "c" else P.full(x.shape, False, bool)


def isreal(x):
    """Elementwise: whether the imaginary part is zero."""
    x = _operand(x)
    if not _traced(x):
        return _np.isreal(x)
    return P.eq(P.imag(x), 0) if result_dtype(x).kind == "c" else P.full(x.shape, True, bool)


def real_if_close(a, tol=100):
    """The array itself for a real one.  For a traced complex array the
    answer's dtype would depend on its values, which tracing does not know:
    that raises (use ``np.real`` where the imaginary part is known to vanish)."""
    a = _operand(a)
    if not _traced(a):
        return _np.real_if_close(a, tol)
    if result_dtype(a).kind != "c":
        return _fresh(a)
    raise NotImplementedError("np.real_if_close of a traced complex array: its result's dtype "
                              "depends on the values; use np.real(a) (or keep the complex array)")
