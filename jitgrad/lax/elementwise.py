"""The primitive set: every rule of a primitive in one block.

Each block defines ``impl`` (NumPy reference), ``shape`` (aval rule), ``jvp``
(tangent rule written with the ops below, so derivatives are ordinary IR),
``transpose`` (linear primitives only) and ``code`` (what the code generator
needs).  The set is small and closed; NumPy's wider surface is built from it in
:mod:`jitgrad.numpy`.  This module holds the shared helpers and the elementwise
primitives, and re-exports the structural ones (:mod:`jitgrad.structural`) and
the reductions and ``dot_general`` (:mod:`jitgrad.reductions`) and ``gather``
and ``scatter_add`` (:mod:`jitgrad.gather`) and ``inv``, ``solve`` and ``det``
(:mod:`jitgrad.linalg`): import them all from here.

The ops in this module are the low-level interface the rules use.  Their
operands already agree in shape (broadcasting is explicit: the NumPy layer
inserts ``broadcast_in_dim``); a scalar literal may stand beside any array.
"""
from __future__ import annotations

import numpy as np

from ..core.primitive import Primitive, Undefined
from ..core.trace import Tracer, aval_of, bind
from ..core.ir import Aval
from .structural import broadcast_in_dim, full, instantiate, zeros



def _new(name, kind):
    """A new primitive; an elementwise one gets the elementwise batching rule."""
    p = Primitive(name, kind)
    if kind == "elementwise":
        p.batch = _elementwise_batch(p)
    return p


def _elementwise_batch(prim):
    """Batching an elementwise primitive: give every operand the batched shape
    (unbatched operands and batched 0-d ones are broadcast), then apply it."""
    def rule(args, batched, size, **params):
        inner = max((aval_of(a).shape[1:] if b else aval_of(a).shape for a, b in zip(args, batched)),
                    key=len)
        shape = (size,) + inner
        out = []
        for a, b in zip(args, batched):
            av = aval_of(a)
            if b and av.shape != shape:              # a batched 0-d value
                a = broadcast_in_dim(a, shape, (0,))
            elif not b and (av.shape != () or isinstance(a, Tracer)):
                a = broadcast_in_dim(a, shape, tuple(range(1 + len(inner) - av.ndim, len(shape))))
            out.append(a)
        return bind(prim, *out, **params)
    return rule


# ---------------------------------------------------------------------------
# Helpers shared by the rules


def _is_float(dtype):
    """Floating or complex: a dtype that carries derivatives."""
    return np.issubdtype(np.dtype(dtype), np.inexact)


_SCALARS = (bool, int, float, complex)


def _as_operand(x, like_dtype):
    """Python scalars take the dtype of the other operand (NumPy's weak scalars)."""
    if isinstance(x, _SCALARS):
        if isinstance(x, complex) and np.dtype(like_dtype).kind != "c":
            raise TypeError(f"the complex scalar {x} needs a complex operand beside it "
                            f"(got {np.dtype(like_dtype)}): convert that one first")
        return np.asarray(x, like_dtype)[()]
    return x


def _elementwise_shape(*avals, dtype=None):
    shapes = {a.shape for a in avals if a.shape != ()}
    if len(shapes) > 1:
        raise ValueError(f"elementwise operands must agree in shape, got {sorted(shapes)}")
    shape = shapes.pop() if shapes else ()
    return Aval(shape, np.dtype(dtype if dtype is not None else avals[0].dtype))


def _prepare(*xs):
    """Give Python scalars a dtype and broadcast 0-d traced values to the common shape."""
    dtype = next((aval_of(x).dtype for x in xs if not isinstance(x, _SCALARS)),
                 np.complex128 if any(isinstance(x, complex) for x in xs) else np.float64)
    xs = [_as_operand(x, dtype) for x in xs]
    shape = next((aval_of(x).shape for x in xs if aval_of(x).shape != ()), ())
    if shape:
        xs = [broadcast_in_dim(x, shape, ()) if isinstance(x, Tracer) and x.shape == () else x
              for x in xs]
    return xs


def _add_tangents(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return add(a, b)


# ---------------------------------------------------------------------------
# Elementwise primitives.  code: a format string over the operands' scalar
# expressions (math.* is used where Numba keeps float32 as float32; v* are the
# vectorisable kernels of jitgrad.backend.vecmath).


def _unary(name, impl, code, jvp):
    p = _new(name, "elementwise")
    p.impl = lambda x: np.asarray(impl(x))
    p.shape = lambda x: _elementwise_shape(x)
    p.jvp = jvp
    p.code = code
    return p


def _binary(name, impl, code, jvp, out_dtype=None):
    p = _new(name, "elementwise")
    p.impl = lambda x, y: np.asarray(impl(x, y))
    p.shape = lambda x, y: _elementwise_shape(x, y, dtype=out_dtype)
    p.jvp = jvp
    p.code = code
    return p


def _op1(p):
    return lambda x: bind(p, x)


def _op2(p):
    def op(x, y):
        return bind(p, *_prepare(x, y))
    op.__name__ = p.name
    return op


# Unary jvp rules: d out = f'(x) * dx.  Each receives (primals, tangents, out).
def _chain(deriv):
    def jvp(primals, tangents, out):
        (x,), (t,) = primals, tangents
        return None if t is None else mul(t, deriv(x, out))
    return jvp


def _zero_jvp(primals, tangents, out):
    return None


neg_p = _unary("neg", np.negative, "(-{0})",
               lambda p, t, out: None if t[0] is None else neg(t[0]))
exp_p = _unary("exp", np.exp, "vexp({0})", _chain(lambda x, y: y))
log_p = _unary("log", np.log, "vlog({0})", _chain(lambda x, y: reciprocal(x)))
# (log2, log10: their own primitives, exact where NumPy's are, log2(8) == 3)
log2_p = _unary("log2", np.log2, "math.log2({0})",
                _chain(lambda x, y: reciprocal(mul(x, np.asarray(np.log(2), x.dtype)[()]))))
log10_p = _unary("log10", np.log10, "math.log10({0})",
                 _chain(lambda x, y: reciprocal(mul(x, np.asarray(np.log(10), x.dtype)[()]))))
log1p_p = _unary("log1p", np.log1p, "vlog1p({0})", _chain(lambda x, y: reciprocal(add(x, 1.0))))
expm1_p = _unary("expm1", np.expm1, "vexpm1({0})", _chain(lambda x, y: add(y, 1.0)))
sin_p = _unary("sin", np.sin, "vsin({0})", _chain(lambda x, y: cos(x)))
cos_p = _unary("cos", np.cos, "vcos({0})", _chain(lambda x, y: neg(sin(x))))
tan_p = _unary("tan", np.tan, "math.tan({0})", _chain(lambda x, y: add(mul(y, y), 1.0)))
asin_p = _unary("asin", np.arcsin, "math.asin({0})",
                _chain(lambda x, y: rsqrt(sub(1.0, mul(x, x)))))
acos_p = _unary("acos", np.arccos, "math.acos({0})",
                _chain(lambda x, y: neg(rsqrt(sub(1.0, mul(x, x))))))
atan_p = _unary("atan", np.arctan, "math.atan({0})",
                _chain(lambda x, y: reciprocal(add(mul(x, x), 1.0))))
sinh_p = _unary("sinh", np.sinh, "math.sinh({0})", _chain(lambda x, y: cosh(x)))
cosh_p = _unary("cosh", np.cosh, "math.cosh({0})", _chain(lambda x, y: sinh(x)))
tanh_p = _unary("tanh", np.tanh, "vtanh({0})", _chain(lambda x, y: sub(1.0, mul(y, y))))
asinh_p = _unary("asinh", np.arcsinh, "math.asinh({0})",
                 _chain(lambda x, y: rsqrt(add(mul(x, x), 1.0))))
# 1/sqrt(x^2 - 1) written as 1/(sqrt(x-1) sqrt(x+1)) to keep precision near x = 1.
acosh_p = _unary("acosh", np.arccosh, "math.acosh({0})",
                 _chain(lambda x, y: reciprocal(mul(sqrt(sub(x, 1.0)), sqrt(add(x, 1.0))))))
atanh_p = _unary("atanh", np.arctanh, "math.atanh({0})",
                 _chain(lambda x, y: reciprocal(mul(sub(1.0, x), add(x, 1.0)))))
sqrt_p = _unary("sqrt", np.sqrt, "math.sqrt({0})", _chain(lambda x, y: div(0.5, y)))
cbrt_p = _unary("cbrt", np.cbrt, "np.cbrt({0})",
                _chain(lambda x, y: div(np.asarray(1 / 3, y.dtype)[()], mul(y, y))))
abs_p = _unary("abs", np.abs, "abs({0})", _chain(lambda x, y: sign(x)))
# (+ 0 makes sign(-0.0) +0.0, as NumPy's)
sign_p = _unary("sign", np.sign, lambda args, lit: f"(np.sign({args[0]}) + {lit(0)})", _zero_jvp)
floor_p = _unary("floor", np.floor, "np.floor({0})", _zero_jvp)
ceil_p = _unary("ceil", np.ceil, "np.ceil({0})", _zero_jvp)
round_p = _unary("round", np.rint, "np.rint({0})", _zero_jvp)
not_p = _unary("not", np.logical_not, "(not {0})", _zero_jvp)

neg, exp, log, log1p, expm1 = map(_op1, (neg_p, exp_p, log_p, log1p_p, expm1_p))
log2, log10 = map(_op1, (log2_p, log10_p))
sin, cos, tan, asin, acos, atan = map(_op1, (sin_p, cos_p, tan_p, asin_p, acos_p, atan_p))
sinh, cosh, tanh, asinh, acosh, atanh = map(_op1, (sinh_p, cosh_p, tanh_p, asinh_p, acosh_p, atanh_p))
sqrt, cbrt, abs_, sign = map(_op1, (sqrt_p, cbrt_p, abs_p, sign_p))
floor, ceil, round_, logical_not = map(_op1, (floor_p, ceil_p, round_p, not_p))


def rsqrt(x):
    return div(1.0, sqrt(x))


def reciprocal(x):
    return integer_pow(x, -1)


# integer_pow: x ** n for a fixed integer n.  The code multiplies (exact for
# integers, which wrap as NumPy's; for floats and |n| > 2 within a few ulp of
# NumPy's pow, whose SIMD kernels no scalar code reproduces bit for bit).
integer_pow_p = _new("integer_pow", "elementwise")
integer_pow_p.impl = lambda x, n: np.asarray(np.power(x, n) if n != -1 else 1 / np.asarray(x))
integer_pow_p.shape = lambda x, n: _elementwise_shape(x)


def _integer_pow_jvp(primals, tangents, out, n):
    (x,), (t,) = primals, tangents
    if t is None or n == 0:
        return None
    d = mul(integer_pow(x, n - 1), float(n)) if n != 1 else None
    return t if d is None else mul(t, d)


def _integer_pow_code(args, lit, n):
    (x,) = args
    if n == 0:
        return lit(1)
    factors = " * ".join([x] * abs(n))
    return f"({factors})" if n > 0 else f"({lit(1)} / ({factors}))"


integer_pow_p.jvp = _integer_pow_jvp
integer_pow_p.code = _integer_pow_code


def integer_pow(x, n):
    return x if n == 1 else bind(integer_pow_p, x, n=int(n))


# convert: change of dtype.  Linear between float types.
convert_p = _new("convert", "elementwise")
convert_p.impl = lambda x, dtype: np.asarray(
    np.real(x) if np.dtype(dtype).kind != "c" else x).astype(dtype)
convert_p.shape = lambda x, dtype: Aval(x.shape, np.dtype(dtype))
convert_p.jvp = lambda p, t, out, dtype: (
    None if t[0] is None or not _is_float(dtype) else convert(t[0], dtype))
convert_p.transpose = lambda ct, x, dtype: [convert(ct, x.aval.dtype)]
def _convert_code(args, lit, dtype):
    (x,), dtype = args, np.dtype(dtype)
    if dtype == _BOOL:
        return f"({x} != 0)"
    if dtype.kind == "u":
        # through int64, as NumPy converts a negative float (-1.5 -> 2**32 - 1),
        # except for uint64 values from 2**63 on, which int64 cannot hold
        wrapped = f"np.{dtype.name}(np.int64({x}))"
        return wrapped if dtype.itemsize < 8 else \
            f"({wrapped} if {x} < 9223372036854775808.0 else np.uint64({x}))"
    return f"np.{dtype.name}({x})"


convert_p.code = _convert_code

# real(z): linear; its transpose makes a real cotangent complex.  (With the
# other complex primitives in lax.complex; here because convert needs it.)
real_p = _new("real", "elementwise")
real_p.impl = lambda x: np.asarray(np.real(x)).copy()
real_p.shape = lambda x: Aval(x.shape, np.empty((), x.dtype).real.dtype)
real_p.jvp = lambda p, t, out: None if t[0] is None else bind(real_p, t[0])
real_p.transpose = lambda ct, x: [convert(ct, x.aval.dtype)]
real_p.code = "({0}).real"


def convert(x, dtype):
    """``x`` in ``dtype``; complex to real keeps the real part (through a
    ``real`` equation, so that the generated code never converts a complex)."""
    dtype = np.dtype(dtype)
    if aval_of(x).dtype == dtype:
        return x
    if np.dtype(aval_of(x).dtype).kind == "c" and dtype == _BOOL:
        return ne(x, 0)
    if np.dtype(aval_of(x).dtype).kind == "c" and dtype.kind != "c":
        x = bind(real_p, x)
        if aval_of(x).dtype == dtype:
            return x
    return bind(convert_p, x, dtype=dtype)


def _add_jvp(p, t, out):
    return _add_tangents(t[0], t[1])


def _sub_jvp(p, t, out):
    if t[1] is None:
        return t[0]
    return neg(t[1]) if t[0] is None else sub(t[0], t[1])


def _mul_jvp(p, t, out):
    (x, y), (tx, ty) = p, t
    return _add_tangents(None if tx is None else mul(tx, y), None if ty is None else mul(x, ty))


def _div_jvp(p, t, out):
    (_, y), (tx, ty) = p, t
    a = None if tx is None else div(tx, y)
    b = None if ty is None else mul(ty, div(out, y))
    return a if b is None else (neg(b) if a is None else sub(a, b))


def _pow_jvp(p, t, out):
    (x, y), (tx, ty) = p, t
    a = None if tx is None else mul(tx, mul(y, pow_(x, sub(y, 1.0))))
    # d/dy x**y = log(x) x**y; taken as 0 where x == 0 (and y > 0) so that 0**y stays smooth.
    b = None if ty is None else mul(ty, select(eq(x, 0.0), zeros(aval_of(out)), mul(log(x), out)))
    return _add_tangents(a, b)


def _max_jvp(p, t, out, pick):
    # Ties split the derivative evenly (so max(x, x) has derivative 1).  A NaN
    # operand is the result (NumPy propagates it): its derivative is NaN, and
    # the other operand, which the result then ignores, gets none.
    (x, y), (tx, ty) = p, t
    zero, nan = zeros(aval_of(out)), full_like(out, np.nan)
    wx = select(pick(x, y), full_like(out, 1.0), select(eq(x, y), full_like(out, 0.5), zero))
    x_nan, y_nan = ne(x, x), ne(y, y)
    a = None if tx is None else mul(tx, select(x_nan, nan, select(y_nan, zero, wx)))
    b = None if ty is None else mul(ty, select(y_nan, nan, select(x_nan, zero, sub(1.0, wx))))
    return _add_tangents(a, b)


def _atan2_jvp(p, t, out):
    (y, x), (ty, tx) = p, t
    d = add(mul(x, x), mul(y, y))
    a = None if ty is None else mul(ty, div(x, d))
    b = None if tx is None else mul(tx, div(y, d))
    return a if b is None else (neg(b) if a is None else sub(a, b))


def _hypot_jvp(p, t, out):
    (x, y), (tx, ty) = p, t
    a = None if tx is None else mul(tx, div(x, out))
    b = None if ty is None else mul(ty, div(y, out))
    return _add_tangents(a, b)


add_p = _binary("add", np.add, "({0} + {1})", _add_jvp)
add_p.transpose = lambda ct, x, y: [ct if isinstance(x, Undefined) else None,
                                    ct if isinstance(y, Undefined) else None]
sub_p = _binary("sub", np.subtract, "({0} - {1})", _sub_jvp)
sub_p.transpose = lambda ct, x, y: [ct if isinstance(x, Undefined) else None,
                                    neg(ct) if isinstance(y, Undefined) else None]
neg_p.transpose = lambda ct, x: [neg(ct)]
mul_p = _binary("mul", np.multiply, "({0} * {1})", _mul_jvp)
mul_p.transpose = lambda ct, x, y: (
    [mul(ct, y), None] if isinstance(x, Undefined) else [None, mul(x, ct)])
div_p = _binary("div", np.true_divide, "({0} / {1})", _div_jvp)
div_p.transpose = lambda ct, x, y: [div(ct, y), None]
pow_p = _binary("pow", np.power, "_power({0}, {1})", _pow_jvp)   # (integers: checks y >= 0)
max_p = _binary("max", np.maximum, "max({0}, {1})", lambda p, t, o: _max_jvp(p, t, o, gt))
min_p = _binary("min", np.minimum, "min({0}, {1})", lambda p, t, o: _max_jvp(p, t, o, lt))
atan2_p = _binary("atan2", np.arctan2, "math.atan2({0}, {1})", _atan2_jvp)
hypot_p = _binary("hypot", np.hypot, "math.hypot({0}, {1})", _hypot_jvp)
# max/min in code: NumPy propagates NaN; Python's max(a, b) would not.
max_p.code = "_nanmax({0}, {1})"
min_p.code = "_nanmin({0}, {1})"

# floor_divide and remainder: NumPy's divmod, whose remainder is fmod's (exact
# for any quotient) moved into the divisor's sign and whose quotient is
# (x - remainder) / y rounded; integers divided by zero give 0 and 0 (as
# NumPy, which warns).  The generated code calls the _floor_divide and
# _remainder helpers of the generated module, written with the same rule.
def _remainder_jvp(p, t, out):
    # x % y = x - (x // y) * y, with x // y piecewise constant
    (x, y), (tx, ty) = p, t
    if ty is None:
        return tx
    b = mul(ty, floor_divide(x, y))
    return neg(b) if tx is None else sub(tx, b)


floor_divide_p = _binary("floor_divide", np.floor_divide, "_floor_divide({0}, {1})", _zero_jvp)
remainder_p = _binary("remainder", np.remainder, "_remainder({0}, {1})", _remainder_jvp)


add, sub, mul, div, pow_ = map(_op2, (add_p, sub_p, mul_p, div_p, pow_p))
floor_divide, remainder = map(_op2, (floor_divide_p, remainder_p))
maximum, minimum, atan2, hypot = map(_op2, (max_p, min_p, atan2_p, hypot_p))

_BOOL = np.dtype(bool)
lt_p = _binary("lt", np.less, "({0} < {1})", _zero_jvp, out_dtype=_BOOL)
le_p = _binary("le", np.less_equal, "({0} <= {1})", _zero_jvp, out_dtype=_BOOL)
gt_p = _binary("gt", np.greater, "({0} > {1})", _zero_jvp, out_dtype=_BOOL)
ge_p = _binary("ge", np.greater_equal, "({0} >= {1})", _zero_jvp, out_dtype=_BOOL)
eq_p = _binary("eq", np.equal, "({0} == {1})", _zero_jvp, out_dtype=_BOOL)
ne_p = _binary("ne", np.not_equal, "({0} != {1})", _zero_jvp, out_dtype=_BOOL)
and_p = _binary("and", np.logical_and, "({0} and {1})", _zero_jvp, out_dtype=_BOOL)
or_p = _binary("or", np.logical_or, "({0} or {1})", _zero_jvp, out_dtype=_BOOL)
lt, le, gt, ge, eq, ne = map(_op2, (lt_p, le_p, gt_p, ge_p, eq_p, ne_p))
logical_and, logical_or = map(_op2, (and_p, or_p))


# select(pred, on_true, on_false): NumPy's where.  Linear in the two branches.
select_p = _new("select", "elementwise")
select_p.impl = lambda c, a, b: np.asarray(np.where(c, a, b))
select_p.shape = lambda c, a, b: _elementwise_shape(c, a, b, dtype=a.dtype)


def _select_jvp(p, t, out):
    c, a, b = p
    _, ta, tb = t
    if ta is None and tb is None:
        return None
    return select(c, instantiate(ta, aval_of(out)), instantiate(tb, aval_of(out)))


def _select_transpose(ct, c, a, b):
    z = zeros(aval_of(ct))
    return [None,
            select(c, ct, z) if isinstance(a, Undefined) else None,
            select(c, z, ct) if isinstance(b, Undefined) else None]


select_p.jvp = _select_jvp
select_p.transpose = _select_transpose
select_p.code = "({1} if {0} else {2})"


def select(c, a, b):
    return bind(select_p, *_prepare_select(c, a, b))


def _prepare_select(c, a, b):
    dtype = next((aval_of(x).dtype for x in (a, b) if not isinstance(x, _SCALARS)),
                 np.complex128 if isinstance(a, complex) or isinstance(b, complex) else np.float64)
    a, b = _as_operand(a, dtype), _as_operand(b, dtype)
    c = _as_operand(c, _BOOL)
    shape = next((aval_of(x).shape for x in (c, a, b) if aval_of(x).shape != ()), ())
    if shape:
        c, a, b = [broadcast_in_dim(x, shape, ()) if isinstance(x, Tracer) and x.shape == () else x
                   for x in (c, a, b)]
    return c, a, b


def full_like(x, value):
    av = aval_of(x)
    return full(av.shape, value, av.dtype)


# ---------------------------------------------------------------------------
# stop_gradient: the identity whose derivative is zero.

stop_gradient_p = _unary("stop_gradient", lambda x: np.array(x, copy=True), "{0}", _zero_jvp)


def stop_gradient(x):
    return bind(stop_gradient_p, x) if isinstance(x, Tracer) else x


