"""Complex numbers: the primitives that are not holomorphic (``real``,
``imag``, ``conj``, ``complex``, ``complex_abs``), and the scalar code of the
holomorphic elementwise primitives on complex operands.

The holomorphic primitives (add, mul, exp, log, sin, ...) need no rules of
their own: their jvp rules, written as ``f'(z) * dz``, hold for complex ``z``,
and their transposes are the plain linear ones (``ct * y`` for ``x * y``, not
``ct * conj(y)``).  Transposes are taken for the real pairing
``<a, b> = Re(sum(a * b))``, which is what non-conjugating transposes satisfy;
so a cotangent 1 pulled back through a real-valued ``f(x + iy)`` gives
``df/dx - i df/dy``, JAX's (and autograd's) convention for ``grad``.
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Undefined
from ..core.trace import aval_of, bind
from ..core.ir import Aval
from . import elementwise as E


def real_dtype(dtype):
    """float32 for complex64, float64 for complex128; a real dtype is itself."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32 if dtype == np.complex64 else np.float64) if dtype.kind == "c" else dtype


def complex_dtype(dtype):
    """complex64 for float32 (and narrower floats), complex128 otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return dtype
    return np.dtype(np.complex64 if dtype.kind == "f" and dtype.itemsize <= 4 else np.complex128)


def is_complex(x):
    return np.dtype(aval_of(x).dtype).kind == "c"


def _to_real_shape(x):
    return Aval(x.shape, real_dtype(x.dtype))


real_p = E.real_p       # (defined beside convert, which takes real parts with it)

# imag(z): Re(ct * imag z) = Re((-i ct) z), so the transpose is ct -> -i ct.
imag_p = E._new("imag", "elementwise")
imag_p.impl = lambda x: np.asarray(np.imag(x)).copy()
imag_p.shape = _to_real_shape
imag_p.jvp = lambda p, t, out: None if t[0] is None else imag(t[0])
imag_p.transpose = lambda ct, x: [complex_(E.zeros(aval_of(ct)), E.neg(ct))]
imag_p.code = "({0}).imag"

# conj(z): Re(ct * conj z) = Re(conj(ct) z), so the transpose is conj.
conj_p = E._new("conj", "elementwise")
conj_p.impl = lambda x: np.asarray(np.conj(x))
conj_p.shape = lambda x: E._elementwise_shape(x)
conj_p.jvp = lambda p, t, out: None if t[0] is None else conj(t[0])
conj_p.transpose = lambda ct, x: [conj(ct)]
conj_p.code = "({0}).conjugate()"

# complex(x, y) = x + i y from two real arrays; Re(ct (x + iy)) = Re(ct) x - Im(ct) y.
complex_p = E._new("complex", "elementwise")
complex_p.impl = lambda x, y: np.asarray(np.asarray(x) + 1j * np.asarray(y)).astype(
    complex_dtype(np.result_type(x, y)))
complex_p.shape = lambda x, y: E._elementwise_shape(x, y, dtype=complex_dtype(x.dtype))
complex_p.jvp = lambda p, t, out: None if t[0] is None and t[1] is None else complex_(
    E.instantiate(t[0], aval_of(p[0])), E.instantiate(t[1], aval_of(p[1])))


def _complex_transpose(ct, x, y):
    return [real(ct) if isinstance(x, Undefined) else None,
            E.neg(imag(ct)) if isinstance(y, Undefined) else None]


complex_p.transpose = _complex_transpose
complex_p.code = "complex({0}, {1})"


# |z|: d|z| = Re(conj(z) dz) / |z|, taken as 0 at z = 0 (as for real |x|).
complex_abs_p = E._new("complex_abs", "elementwise")
complex_abs_p.impl = lambda x: np.asarray(np.abs(x))
complex_abs_p.shape = _to_real_shape


def _complex_abs_jvp(p, t, out):
    (x,), (tx,) = p, t
    if tx is None:
        return None
    safe = E.select(E.eq(out, 0.0), E.full_like(out, 1.0), out)
    return real(E.mul(tx, E.div(conj(x), E.convert(safe, aval_of(x).dtype))))


complex_abs_p.jvp = _complex_abs_jvp
complex_abs_p.code = "abs({0})"


def real(x):
    return bind(real_p, x) if is_complex(x) else x


def imag(x):
    return bind(imag_p, x) if is_complex(x) else E.zeros(aval_of(x))


def conj(x):
    return bind(conj_p, x) if is_complex(x) else x


def complex_(x, y):
    return bind(complex_p, *E._prepare(x, y))


def absolute(x):
    """|x|: the modulus (a real array) for complex ``x``."""
    return bind(complex_abs_p, x) if is_complex(x) else E.abs_(x)


def abs2(x):
    """|x|**2 (real): x * conj(x) without a square root, x * x for real ``x``."""
    return real(E.mul(x, conj(x))) if is_complex(x) else E.mul(x, x)


def signum(x):
    """NumPy's sign: z / |z| (0 at 0) for complex ``z``, whose derivative this
    composition gives, with NumPy's values where a part is infinite (the
    sign of that part; NaN if both are); the piecewise constant sign for real ``x``."""
    if not is_complex(x):
        return E.sign(x)
    r, re, im = absolute(x), real(x), imag(x)
    safe = E.select(E.eq(r, 0.0), E.full_like(r, 1.0), r)
    out = E.select(E.eq(r, 0.0), E.zeros(aval_of(x)), complex_(E.div(re, safe), E.div(im, safe)))
    inf_re, inf_im = E.eq(E.abs_(re), np.inf), E.eq(E.abs_(im), np.inf)
    zero = E.zeros(aval_of(re))
    out = E.select(inf_re, complex_(E.sign(re), zero), out)
    out = E.select(inf_im, complex_(zero, E.sign(im)), out)
    return E.select(E.logical_and(inf_re, inf_im), E.full_like(out, complex(np.nan, np.nan)), out)


# ---------------------------------------------------------------------------
# Scalar code of the holomorphic primitives on complex operands (the custom
# kernels of backend.vecmath are for reals; cdiv, cpow, clog2 and cexpm1, of
# backend.complexmath, give NumPy's values where Numba's differ).  The code generator uses
# ``complex_code`` when an operand or the result is complex.

_CMATH = {"exp": "cmath.exp({0})", "log": "cmath.log({0})", "sqrt": "cmath.sqrt({0})",
          "sin": "cmath.sin({0})", "cos": "cmath.cos({0})", "tan": "cmath.tan({0})",
          "sinh": "cmath.sinh({0})", "cosh": "cmath.cosh({0})", "tanh": "cmath.tanh({0})",
          "asin": "cmath.asin({0})", "acos": "cmath.acos({0})", "atan": "cmath.atan({0})",
          "asinh": "cmath.asinh({0})", "acosh": "cmath.acosh({0})",
          "atanh": "cmath.atanh({0})", "log10": "cmath.log10({0})",
          "log2": "clog2({0})",
          "log1p": "cmath.log(1.0 + {0})", "expm1": "cexpm1({0})",
          "pow": "cpow({0}, {1})", "div": "cdiv({0}, {1})"}
for _name, _code in _CMATH.items():
    getattr(E, _name + "_p").complex_code = _code
del _name, _code


def _integer_pow_complex_code(args, lit, n):
    """x ** n by multiplication, a negative n through NumPy's division."""
    (x,) = args
    if n == 0:
        return lit(1)
    factors = "(" + " * ".join([x] * abs(n)) + ")"
    return factors if n > 0 else f"cdiv({lit(1)}, {factors})"


E.integer_pow_p.complex_code = _integer_pow_complex_code
