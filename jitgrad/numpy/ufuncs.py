"""NumPy's elementwise functions (the ufuncs and ``where``, ``clip``), lowered to
elementwise primitives with NumPy's promotion and broadcasting.
"""
from __future__ import annotations

import builtins
import operator

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer
from .base import (_PY_SCALARS, _binary_fn, _elementwise, _float_dtype, _fresh, _int8_for_bool,
                   _is_exact, _no_out, _operand, _shape, _to, _ufunc_float_dtype, _unary_fn, astype,
                   result_dtype)

# ---------------------------------------------------------------------------
# Elementwise functions

exp, log, log1p, expm1 = (_unary_fn(f) for f in (P.exp, P.log, P.log1p, P.expm1))
log2, log10 = _unary_fn(P.log2), _unary_fn(P.log10)
sin, cos, tan = (_unary_fn(f) for f in (P.sin, P.cos, P.tan))
arcsin, arccos, arctan = (_unary_fn(f, name=n) for f, n in
                          ((P.asin, "arcsin"), (P.acos, "arccos"), (P.atan, "arctan")))
sinh, cosh, tanh = (_unary_fn(f) for f in (P.sinh, P.cosh, P.tanh))
arcsinh, arccosh, arctanh = (_unary_fn(f, name=n) for f, n in
                             ((P.asinh, "arcsinh"), (P.acosh, "arccosh"), (P.atanh, "arctanh")))
sqrt, cbrt = _unary_fn(P.sqrt), _unary_fn(P.cbrt)
rint = _unary_fn(P.round_, name="rint")
absolute = _unary_fn(P.absolute, float_only=False, name="absolute")    # (|z| real for complex z)
abs = fabs = absolute
logical_not = _unary_fn(P.logical_not, float_only=False, name="logical_not")


def _no_bool(fn, what):
    """negative, subtract and sign have no boolean loop in NumPy."""
    def wrapped(*xs, **kwargs):
        xs = [_operand(x) for x in xs]
        if result_dtype(*xs) == _np.bool_:
            raise TypeError(f"numpy boolean {what} is not supported; use the logical functions "
                            "(np.logical_not, np.logical_xor) or convert to int first")
        return fn(*xs, **kwargs)
    wrapped.__name__ = fn.__name__
    return wrapped


negative = _no_bool(_unary_fn(P.neg, float_only=False, name="negative"), "negative, the `-` operator,")
sign = _no_bool(_unary_fn(P.signum, float_only=False, name="sign"), "sign")    # (z/|z| for complex z)
subtract = _no_bool(_binary_fn(P.sub, name="subtract"), "subtract, the `-` operator,")


def _bool_as_logical(fn, logical):
    """add and multiply of booleans are NumPy's logical or and and."""
    def wrapped(x, y, /, **kwargs):
        x, y = _operand(x), _operand(y)
        if result_dtype(x, y) == _np.bool_:
            return logical(x, y, **kwargs)
        return fn(x, y, **kwargs)
    wrapped.__name__ = fn.__name__
    return wrapped


def true_divide(x, y, /, **kwargs):
    _no_out(kwargs)
    x, y = _operand(x), _operand(y)
    return _elementwise(P.div, x, y, dtype=_float_dtype(result_dtype(x, y)))


divide = true_divide
maximum, minimum = _binary_fn(P.maximum, name="maximum"), _binary_fn(P.minimum, name="minimum")
arctan2 = _binary_fn(P.atan2, float_only=True, name="arctan2")
hypot = _binary_fn(P.hypot, float_only=True, name="hypot")


def _comparison(prim, pyop, name):
    """A comparison.  A Python integer outside the range of the other operand's
    integer dtype compares as its exact value (NumPy 2): every element is on
    the same side of it, so the answer is that of 0 against it."""
    compare = _binary_fn(prim, name=name)

    def fn(x, y, /, **kwargs):
        x, y = _operand(x), _operand(y)
        for arr, k, k_first in ((x, y, False), (y, x, True)):
            if type(k) is int and not isinstance(arr, _PY_SCALARS) and result_dtype(arr).kind in "iu":
                info = _np.iinfo(result_dtype(arr))
                if not info.min <= k <= info.max:
                    answer = pyop(k, 0) if k_first else pyop(0, k)
                    return P.full(_shape(arr), answer, _np.bool_)
        return compare(x, y, **kwargs)
    fn.__name__ = name
    return fn


less = _comparison(P.lt, operator.lt, "less")
less_equal = _comparison(P.le, operator.le, "less_equal")
greater = _comparison(P.gt, operator.gt, "greater")
greater_equal = _comparison(P.ge, operator.ge, "greater_equal")
equal = _comparison(P.eq, operator.eq, "equal")
not_equal = _comparison(P.ne, operator.ne, "not_equal")
logical_and = _binary_fn(P.logical_and, name="logical_and", dtype=bool)
logical_or = _binary_fn(P.logical_or, name="logical_or", dtype=bool)
add = _bool_as_logical(_binary_fn(P.add, name="add"), logical_or)
multiply = _bool_as_logical(_binary_fn(P.mul, name="multiply"), logical_and)


def positive(x, /, **kwargs):
    x = _operand(x)
    return _fresh(x) if isinstance(x, Tracer) else _np.positive(x)


def power(x, y, /, **kwargs):
    _no_out(kwargs)
    x, y = _operand(x), _operand(y)
    if not isinstance(y, Tracer) and _np.ndim(y) == 0 and _np.asarray(y).dtype.kind != "c":
        yv = float(y)
        if yv.is_integer() and builtins.abs(yv) <= 64 and not isinstance(x, _PY_SCALARS):
            dt = _int8_for_bool(result_dtype(x, y))
            if _np.issubdtype(dt, _np.integer) and yv < 0:
                raise ValueError("Integers to negative integer powers are not allowed.")
            return P.integer_pow(_to(x, dt, _shape(x)), int(yv))
    return _elementwise(P.pow_, x, y, dtype=_int8_for_bool(result_dtype(x, y)))


def _as_float(x):
    """x in the dtype of a float ufunc of it (see _ufunc_float_dtype); such
    ufuncs have no complex loop in NumPy."""
    x = _operand(x)
    if result_dtype(x).kind == "c":
        raise TypeError("this ufunc is not supported for complex inputs (NumPy has no complex loop for it)")
    if isinstance(x, _PY_SCALARS):
        return float(x)            # (stays weak)
    return astype(x, _ufunc_float_dtype(result_dtype(x))) if _is_exact(x) else x


def float_power(x, y, /, **kwargs):
    return power(astype(x, _np.result_type(result_dtype(x, y), _np.float64)), y)


def square(x, /, **kwargs):
    x = _operand(x)
    return power(astype(x, _np.int8) if result_dtype(x) == _np.bool_ else x, 2)


def reciprocal(x, /, **kwargs):
    x = _operand(x)
    if _is_exact(x):     # NumPy: 1 / x in float64, truncated back to x's dtype
        return astype(divide(1.0, astype(x, _np.float64)), _int8_for_bool(result_dtype(x)))
    return power(x, -1)


def exp2(x, /, **kwargs):
    x = _operand(x)
    return power(_np.asarray(2.0, _ufunc_float_dtype(result_dtype(x)))[()], x)


def _larger_first(x, y):
    """(hi, lo): x and y ordered by ``where`` rather than max/min and |x - y|,
    so that hi + f(lo - hi) is, on each side of x == y, one smooth expression
    in x and y: derivatives of every order are right at ties too (max and |.|
    have kinks there that would cancel in the value but not in the rules)."""
    first = greater_equal(x, y)
    return where(first, x, y), where(first, y, x)


def logaddexp(x, y, /, **kwargs):
    # hi + log1p(exp(lo - hi)), which is NaN with a NaN operand, value and
    # derivatives; x + y where both are the same infinity (lo - hi is NaN).
    x, y = _as_float(x), _as_float(y)
    hi, lo = _larger_first(x, y)
    smooth = add(hi, log1p(exp(subtract(lo, hi))))
    return where(logical_and(equal(x, y), isinf(x)), add(x, y), smooth)


def isnan(x, /, **kwargs):
    return not_equal(x, x)


def isinf(x, /, **kwargs):
    return equal(absolute(x), _np.inf)


def isfinite(x, /, **kwargs):
    return logical_not(logical_or(isnan(x), isinf(x)))


def logical_xor(x, y, /, **kwargs):
    return not_equal(astype(x, bool), astype(y, bool))


def deg2rad(x, /, **kwargs):
    return multiply(_as_float(x), _np.pi / 180)


def rad2deg(x, /, **kwargs):
    return multiply(_as_float(x), 180 / _np.pi)


radians, degrees = deg2rad, rad2deg


def where(condition, x=None, y=None, /):
    """Elementwise choice.  Only the three-argument form is differentiable."""
    if x is None or y is None:
        raise NotImplementedError("jitgrad supports np.where(cond, x, y); the one-argument form "
                                  "(np.nonzero) has a data-dependent shape")
    c, x, y = _operand(condition), _operand(x), _operand(y)
    dt = result_dtype(x, y)
    shape = _np.broadcast_shapes(_shape(c), _shape(x), _shape(y))
    return P.select(_to(c, _np.dtype(bool), shape), _to(x, dt, shape), _to(y, dt, shape))


def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    a = _operand(a)
    if result_dtype(a).kind in "iu":     # Python integer bounds beyond the dtype's range clip nothing
        info = _np.iinfo(result_dtype(a))
        a_min = info.min if type(a_min) is int and a_min < info.min else a_min
        a_max = info.max if type(a_max) is int and a_max > info.max else a_max
    # the bound first: maximum and minimum return their second operand on a
    # tie, so clip(-0.0, 0.0, 1.0) keeps -0.0, as NumPy's clip does
    if a_min is not None:
        a = maximum(a_min, a)
    if a_max is not None:
        a = minimum(a_max, a)
    return _operand(a)


