"""Complex scalar operations for generated code where Numba's own differ
from NumPy's: division (Numba raises ZeroDivisionError on a zero divisor;
NumPy returns infinities or NaN), power (Numba's 0 ** w is NaN; NumPy's is
0 for Re(w) > 0, and z ** 0 is 1), log2 (which scales the parts of the
logarithm, where a complex division would make NaN of log(0) = -inf + 0j)
and expm1 (exp(z) - 1 cancels at small |z|).  The other complex functions of
the generated code are Numba's ``cmath`` ones.
"""
from __future__ import annotations

import cmath
import math

from numba import njit

_INV_LN2 = 1.0 / math.log(2.0)


@njit(inline="always", error_model="numpy")
def cdiv(a, b):
    """a / b by Smith's method, as NumPy computes it (a zero divisor divides
    the parts by +0, giving infinities or NaN)."""
    ar, ai, br, bi = a.real, a.imag, b.real, b.imag
    abs_br, abs_bi = abs(br), abs(bi)
    if abs_br >= abs_bi:
        if abs_br == 0 and abs_bi == 0:
            return complex(ar / abs_br, ai / abs_br)
        rat = bi / br
        scl = 1.0 / (br + bi * rat)
        return complex((ar + ai * rat) * scl, (ai - ar * rat) * scl)
    rat = br / bi
    scl = 1.0 / (bi + br * rat)
    return complex((ar * rat + ai) * scl, (ai * rat - ar) * scl)


@njit(inline="always", error_model="numpy")
def cpow(a, b):
    """a ** b with NumPy's values at b = 0 (1) and at a = 0 (0 when Re(b) > 0)."""
    if b.real == 0 and b.imag == 0:
        return complex(1.0, 0.0)
    if a.real == 0 and a.imag == 0 and b.real > 0:
        return complex(0.0, 0.0)
    return a ** b


@njit(inline="always", error_model="numpy")
def clog2(z):
    w = cmath.log(z)
    return complex(w.real * _INV_LN2, w.imag * _INV_LN2)


@njit(inline="always", error_model="numpy")
def cexpm1(z):
    """exp(z) - 1 as NumPy computes it, without the cancellation at small |z|:
    Re = e^x cos y - 1 = expm1(x) cos y + (cos y - 1), and cos y - 1 = -2 sin^2(y/2)."""
    x, y = z.real, z.imag
    h = math.sin(y / 2)
    return complex(math.expm1(x) * math.cos(y) - 2.0 * h * h, math.exp(x) * math.sin(y))
