"""The primitive set: every rule of a primitive in one block.

Each block defines ``impl`` (NumPy reference), ``shape`` (aval rule), ``jvp``
(tangent rule written with the ops below, so derivatives are ordinary IR),
``transpose`` (linear primitives only) and ``code`` (what the code generator
needs).  The set is small and closed; NumPy's wider surface is built from it in
:mod:`jitgrad.numpy`.

The ops in this module are the low-level interface the rules use.  Their
operands already agree in shape (broadcasting is explicit: the NumPy layer
inserts ``broadcast_in_dim``); a scalar literal may stand beside any array.
"""
from __future__ import annotations

import math

import numpy as np

from .core import Primitive, Tracer, Undefined, aval_of, bind
from .ir import Aval

PRIMITIVES: dict[str, Primitive] = {}


def _new(name, kind):
    p = Primitive(name, kind)
    PRIMITIVES[name] = p
    return p


# ---------------------------------------------------------------------------
# Helpers shared by the rules


def _is_float(dtype):
    return np.issubdtype(np.dtype(dtype), np.floating)


def _as_operand(x, like_dtype):
    """Python scalars take the dtype of the other operand (NumPy's weak scalars)."""
    if isinstance(x, (bool, int, float)):
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
    dtype = next((aval_of(x).dtype for x in xs if not isinstance(x, (bool, int, float))), np.float64)
    xs = [_as_operand(x, dtype) for x in xs]
    shape = next((aval_of(x).shape for x in xs if aval_of(x).shape != ()), ())
    if shape:
        xs = [broadcast_in_dim(x, shape, ()) if isinstance(x, Tracer) and x.shape == () else x
              for x in xs]
    return xs


def zeros(aval):
    return full(aval.shape, 0, aval.dtype)


def full(shape, value, dtype):
    return broadcast_in_dim(np.asarray(value, dtype)[()], tuple(shape), ())


def instantiate(t, aval):
    return zeros(aval) if t is None else t


def _add_tangents(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return add(a, b)


# ---------------------------------------------------------------------------
# Elementwise primitives.  code: a format string over the operands' scalar
# expressions (math.* is used where Numba keeps float32 as float32).


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
exp_p = _unary("exp", np.exp, "math.exp({0})", _chain(lambda x, y: y))
log_p = _unary("log", np.log, "math.log({0})", _chain(lambda x, y: reciprocal(x)))
log1p_p = _unary("log1p", np.log1p, "math.log1p({0})", _chain(lambda x, y: reciprocal(add(x, 1.0))))
expm1_p = _unary("expm1", np.expm1, "math.expm1({0})", _chain(lambda x, y: add(y, 1.0)))
sin_p = _unary("sin", np.sin, "math.sin({0})", _chain(lambda x, y: cos(x)))
cos_p = _unary("cos", np.cos, "math.cos({0})", _chain(lambda x, y: neg(sin(x))))
tan_p = _unary("tan", np.tan, "math.tan({0})", _chain(lambda x, y: add(mul(y, y), 1.0)))
asin_p = _unary("asin", np.arcsin, "math.asin({0})",
                _chain(lambda x, y: rsqrt(sub(1.0, mul(x, x)))))
acos_p = _unary("acos", np.arccos, "math.acos({0})",
                _chain(lambda x, y: neg(rsqrt(sub(1.0, mul(x, x))))))
atan_p = _unary("atan", np.arctan, "math.atan({0})",
                _chain(lambda x, y: reciprocal(add(mul(x, x), 1.0))))
sinh_p = _unary("sinh", np.sinh, "math.sinh({0})", _chain(lambda x, y: cosh(x)))
cosh_p = _unary("cosh", np.cosh, "math.cosh({0})", _chain(lambda x, y: sinh(x)))
tanh_p = _unary("tanh", np.tanh, "math.tanh({0})", _chain(lambda x, y: sub(1.0, mul(y, y))))
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
sign_p = _unary("sign", np.sign, "np.sign({0})", _zero_jvp)
floor_p = _unary("floor", np.floor, "np.floor({0})", _zero_jvp)
ceil_p = _unary("ceil", np.ceil, "np.ceil({0})", _zero_jvp)
round_p = _unary("round", np.rint, "np.rint({0})", _zero_jvp)
not_p = _unary("not", np.logical_not, "(not {0})", _zero_jvp)

neg, exp, log, log1p, expm1 = map(_op1, (neg_p, exp_p, log_p, log1p_p, expm1_p))
sin, cos, tan, asin, acos, atan = map(_op1, (sin_p, cos_p, tan_p, asin_p, acos_p, atan_p))
sinh, cosh, tanh, asinh, acosh, atanh = map(_op1, (sinh_p, cosh_p, tanh_p, asinh_p, acosh_p, atanh_p))
sqrt, cbrt, abs_, sign = map(_op1, (sqrt_p, cbrt_p, abs_p, sign_p))
floor, ceil, round_, logical_not = map(_op1, (floor_p, ceil_p, round_p, not_p))


def rsqrt(x):
    return div(1.0, sqrt(x))


def reciprocal(x):
    return integer_pow(x, -1)


# integer_pow: x ** n for a fixed integer n; the code multiplies.
integer_pow_p = _new("integer_pow", "elementwise")
integer_pow_p.impl = lambda x, n: np.asarray(np.power(x, n) if n >= 0 else 1 / np.power(x, -n))
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
convert_p.impl = lambda x, dtype: np.asarray(x).astype(dtype)
convert_p.shape = lambda x, dtype: Aval(x.shape, np.dtype(dtype))
convert_p.jvp = lambda p, t, out, dtype: (
    None if t[0] is None or not _is_float(dtype) else convert(t[0], dtype))
convert_p.transpose = lambda ct, x, dtype: [convert(ct, x.aval.dtype)]
convert_p.code = lambda args, lit, dtype: (
    f"({args[0]} != 0)" if np.dtype(dtype) == _BOOL else f"np.{np.dtype(dtype).name}({args[0]})")


def convert(x, dtype):
    dtype = np.dtype(dtype)
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
    # Ties split the derivative evenly (so max(x, x) has derivative 1).
    (x, y), (tx, ty) = p, t
    wx = select(pick(x, y), full_like(out, 1.0), select(eq(x, y), full_like(out, 0.5), zeros(aval_of(out))))
    a = None if tx is None else mul(tx, wx)
    b = None if ty is None else mul(ty, sub(1.0, wx))
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
pow_p = _binary("pow", np.power, "({0} ** {1})", _pow_jvp)
max_p = _binary("max", np.maximum, "max({0}, {1})", lambda p, t, o: _max_jvp(p, t, o, gt))
min_p = _binary("min", np.minimum, "min({0}, {1})", lambda p, t, o: _max_jvp(p, t, o, lt))
atan2_p = _binary("atan2", np.arctan2, "math.atan2({0}, {1})", _atan2_jvp)
hypot_p = _binary("hypot", np.hypot, "math.hypot({0}, {1})", _hypot_jvp)
# max/min in code: NumPy propagates NaN; Python's max(a, b) would not.
max_p.code = "_nanmax({0}, {1})"
min_p.code = "_nanmin({0}, {1})"

add, sub, mul, div, pow_ = map(_op2, (add_p, sub_p, mul_p, div_p, pow_p))
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
    dtype = next((aval_of(x).dtype for x in (a, b) if not isinstance(x, (bool, int, float))),
                 np.float64)
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
# Structural primitives.  These move data without arithmetic; the fuser folds
# the 'view' kind into index expressions.

broadcast_in_dim_p = _new("broadcast_in_dim", "view")


def _broadcast_shape(x, shape, dims):
    if len(dims) != x.ndim or any(x.shape[i] not in (1, shape[d]) for i, d in enumerate(dims)):
        raise ValueError(f"cannot broadcast shape {x.shape} to {shape} along dims {dims}")
    return Aval(tuple(shape), x.dtype)


def _broadcast_impl(x, shape, dims):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape).copy()


def _broadcast_transpose(ct, x, shape, dims):
    in_shape = x.aval.shape
    summed = tuple(d for d in range(len(shape)) if d not in dims)
    # also sum over the input's size-1 axes that were stretched
    stretched = tuple(d for i, d in enumerate(dims) if in_shape[i] == 1 and shape[d] != 1)
    y = reduce_sum(ct, tuple(sorted(summed + stretched)))
    return [reshape(y, in_shape)]


broadcast_in_dim_p.impl = _broadcast_impl
broadcast_in_dim_p.shape = _broadcast_shape
broadcast_in_dim_p.jvp = lambda p, t, out, shape, dims: (
    None if t[0] is None else broadcast_in_dim(t[0], shape, dims))
broadcast_in_dim_p.transpose = _broadcast_transpose
# index map: output index -> input index (size-1 input axes read index 0)
broadcast_in_dim_p.code = lambda idx, in_shape, shape, dims: [
    "0" if in_shape[i] == 1 and shape[d] != 1 else idx[d] for i, d in enumerate(dims)]


def broadcast_in_dim(x, shape, dims):
    shape, dims = tuple(int(s) for s in shape), tuple(int(d) for d in dims)
    if aval_of(x).shape == shape and dims == tuple(range(len(shape))):
        return x
    return bind(broadcast_in_dim_p, x, shape=shape, dims=dims)


transpose_p = _new("transpose", "view")
transpose_p.impl = lambda x, perm: np.ascontiguousarray(np.transpose(x, perm))
transpose_p.shape = lambda x, perm: Aval(tuple(x.shape[p] for p in perm), x.dtype)
transpose_p.jvp = lambda p, t, out, perm: None if t[0] is None else transpose(t[0], perm)
transpose_p.transpose = lambda ct, x, perm: [transpose(ct, tuple(np.argsort(perm)))]
transpose_p.code = lambda idx, in_shape, perm: [idx[int(np.argsort(perm)[i])] for i in range(len(perm))]


def transpose(x, perm):
    perm = tuple(int(p) for p in perm)
    if perm == tuple(range(len(perm))):
        return x
    return bind(transpose_p, x, perm=perm)


# slice: x[start:stop:step] along every axis (steps may be negative).
slice_p = _new("slice", "view")


def _slice_len(start, stop, step):
    return len(range(start, stop, step))


slice_p.impl = lambda x, start, stop, step: np.ascontiguousarray(
    np.asarray(x)[tuple(builtin_slice(a, None if b < 0 else b, c) for a, b, c in zip(start, stop, step))])
slice_p.shape = lambda x, start, stop, step: Aval(
    tuple(_slice_len(*s) for s in zip(start, stop, step)), x.dtype)
slice_p.jvp = lambda p, t, out, start, stop, step: (
    None if t[0] is None else slice_(t[0], start, stop, step))
slice_p.transpose = lambda ct, x, start, stop, step: [
    pad(ct, x.aval.shape, start, step)]
slice_p.code = lambda idx, in_shape, start, stop, step: [
    (f"{a} + {i}" if c == 1 else f"{a} + ({c}) * {i}") if a else (i if c == 1 else f"({c}) * {i}")
    for i, a, c in zip(idx, start, step)]
builtin_slice = slice


def slice_(x, start, stop, step):
    start, stop, step = (tuple(int(v) for v in s) for s in (start, stop, step))
    return bind(slice_p, x, start=start, stop=stop, step=step)


# pad: the transpose of slice.  Places x at positions start + i*step of a zero
# array of the given shape.  A view: a read maps the index back into x, under
# the condition that it lands on one of x's positions (else the value is 0).
pad_p = _new("pad", "view")


def _pad_impl(x, shape, start, step):
    out = np.zeros(shape, np.asarray(x).dtype)
    out[tuple(builtin_slice(a, None, c) for a, c in zip(start, step))][
        tuple(builtin_slice(0, n) for n in np.shape(x))] = x
    return out


def _pad_shape(x, shape, start, step):
    return Aval(tuple(shape), x.dtype)


pad_p.impl = _pad_impl
pad_p.shape = _pad_shape
pad_p.jvp = lambda p, t, out, shape, start, step: (
    None if t[0] is None else pad(t[0], shape, start, step))
pad_p.transpose = lambda ct, x, shape, start, step: [
    slice_(ct, start, tuple(a + c * (n - 1) + (1 if c > 0 else -1) for a, c, n in zip(start, step, x.aval.shape)), step)]


def _pad_code(idx, in_shape, shape, start, step):
    src, conds = [], []
    for i, a, c, n, m in zip(idx, start, step, in_shape, shape):
        if c == 1:
            src.append(f"{i} - {a}" if a else i)
            if a != 0 or n != m:
                conds.append(f"{a} <= {i} < {a + n}")
        else:
            q = f"(({i} - {a}) // ({c}))"
            src.append(q)
            conds.append(f"({i} - {a}) % ({c}) == 0 and 0 <= {q} < {n}")
    return src, conds


pad_p.code = _pad_code


def pad(x, shape, start, step):
    return bind(pad_p, x, shape=tuple(int(s) for s in shape),
                start=tuple(int(s) for s in start), step=tuple(int(s) for s in step))


reshape_p = _new("reshape", "opaque")
reshape_p.impl = lambda x, shape: np.reshape(np.asarray(x), shape)
reshape_p.shape = lambda x, shape: (
    Aval(tuple(shape), x.dtype) if math.prod(shape) == x.size else
    (_ for _ in ()).throw(ValueError(f"cannot reshape {x.shape} into {shape}")))
reshape_p.jvp = lambda p, t, out, shape: None if t[0] is None else reshape(t[0], shape)
reshape_p.transpose = lambda ct, x, shape: [reshape(ct, x.aval.shape)]


def _reshape_code(out, ins, in_avals, out_aval, lit, shape):
    (x,), (xa,) = ins, in_avals
    if xa.shape == ():
        return [f"{out} = np.full({shape}, {x})"]
    if shape == ():
        return [f"{out} = {x}.ravel()[0]"]
    return [f"{out} = np.ascontiguousarray({x}).reshape({shape})"]


reshape_p.code = _reshape_code


def _reshape_index_map(idx, in_shape, shape):
    """A reshape that only inserts or removes size-1 axes (keepdims, ``x[:, None]``,
    squeeze) moves no data, so the fuser reads through it like a view: the
    input's size-1 axes read index 0, its other axes take the output's
    non-unit indices in order.  Any other reshape returns None (opaque)."""
    kept = [d for d, n in enumerate(shape) if n != 1]
    if [n for n in in_shape if n != 1] != [shape[d] for d in kept]:
        return None
    if idx is None:
        return True
    it = iter(kept)
    return ["0" if n == 1 else idx[next(it)] for n in in_shape]


reshape_p.index_map = _reshape_index_map


def reshape(x, shape):
    shape = tuple(int(s) for s in shape)
    if aval_of(x).shape == shape:
        return x
    return bind(reshape_p, x, shape=shape)


# ---------------------------------------------------------------------------
# Reductions over a set of axes.  code: (initial value, combine template).


def _reduce_shape(x, axes):
    return Aval(tuple(s for i, s in enumerate(x.shape) if i not in axes), x.dtype)


def _kept_dims(ndim, axes):
    return tuple(i for i in range(ndim) if i not in axes)


def _expand_back(y, in_aval, axes):
    """Broadcast a reduced value back to the input's shape."""
    return broadcast_in_dim(y, in_aval.shape, _kept_dims(len(in_aval.shape), axes))


reduce_sum_p = _new("reduce_sum", "reduce")
reduce_sum_p.impl = lambda x, axes: np.asarray(np.sum(x, axis=axes))
reduce_sum_p.shape = _reduce_shape
reduce_sum_p.jvp = lambda p, t, out, axes: None if t[0] is None else reduce_sum(t[0], axes)
reduce_sum_p.transpose = lambda ct, x, axes: [_expand_back(ct, x.aval, axes)]
reduce_sum_p.code = ("0", "{acc} + {x}")


def _reduce_max_jvp(p, t, out, axes):
    # The derivative flows to the arg-max positions, shared evenly between ties.
    (x,), (tx,) = p, t
    if tx is None:
        return None
    mask = convert(eq(x, _expand_back(out, aval_of(x), axes)), aval_of(x).dtype)
    return div(reduce_sum(mul(tx, mask), axes), reduce_sum(mask, axes))


reduce_max_p = _new("reduce_max", "reduce")
reduce_max_p.impl = lambda x, axes: np.asarray(np.max(x, axis=axes))
reduce_max_p.shape = _reduce_shape
reduce_max_p.jvp = _reduce_max_jvp
reduce_max_p.code = ("-np.inf", "_nanmax({acc}, {x})")

reduce_min_p = _new("reduce_min", "reduce")
reduce_min_p.impl = lambda x, axes: np.asarray(np.min(x, axis=axes))
reduce_min_p.shape = _reduce_shape
reduce_min_p.jvp = _reduce_max_jvp
reduce_min_p.code = ("np.inf", "_nanmin({acc}, {x})")


def _reduce_prod_jvp(p, t, out, axes):
    # d prod = sum_i dx_i * prod_{j != i} x_j.  The product of the others is
    # P/x_i when no element is zero; with exactly one zero it is the product of
    # the non-zeros at that element and 0 elsewhere; with two or more it is 0.
    (x,), (tx,) = p, t
    if tx is None:
        return None
    av = aval_of(x)
    is_zero = eq(x, 0.0)
    safe = select(is_zero, full_like(x, 1.0), x)
    p_nonzero = _expand_back(reduce_prod(safe, axes), av, axes)
    n_zero = _expand_back(reduce_sum(convert(is_zero, av.dtype), axes), av, axes)
    others = select(eq(n_zero, 0.0), div(p_nonzero, safe),
                    select(logical_and(eq(n_zero, 1.0), is_zero), p_nonzero, zeros(av)))
    return reduce_sum(mul(tx, others), axes)


reduce_prod_p = _new("reduce_prod", "reduce")
reduce_prod_p.impl = lambda x, axes: np.asarray(np.prod(x, axis=axes))
reduce_prod_p.shape = _reduce_shape
reduce_prod_p.jvp = _reduce_prod_jvp
reduce_prod_p.code = ("1", "{acc} * {x}")


def _reducer(p):
    def op(x, axes):
        axes = tuple(sorted(int(a) for a in axes))
        if not axes:
            return x
        return bind(p, x, axes=axes)
    return op


reduce_sum, reduce_max, reduce_min, reduce_prod = map(
    _reducer, (reduce_sum_p, reduce_max_p, reduce_min_p, reduce_prod_p))


# ---------------------------------------------------------------------------
# dot_general: contraction over paired axes with optional batch axes.  Output
# layout: batch axes, then x's free axes, then y's free axes (each in order).

dot_general_p = _new("dot_general", "opaque")


def _free(ndim, contract, batch):
    return [i for i in range(ndim) if i not in contract and i not in batch]


def _dot_shape(x, y, contract, batch):
    (xc, yc), (xb, yb) = contract, batch
    for a, b in zip(xc, yc):
        if x.shape[a] != y.shape[b]:
            raise ValueError(f"dot: contracted axes differ in size: {x.shape} and {y.shape}")
    if x.dtype != y.dtype:
        raise TypeError(f"dot: operands differ in dtype: {x.dtype} and {y.dtype}")
    shape = tuple(x.shape[i] for i in xb)
    shape += tuple(x.shape[i] for i in _free(x.ndim, xc, xb))
    shape += tuple(y.shape[i] for i in _free(y.ndim, yc, yb))
    return Aval(shape, x.dtype)


def _dot_impl(x, y, contract, batch):
    x, y = np.asarray(x), np.asarray(y)
    (xc, yc), (xb, yb) = contract, batch
    xf, yf = _free(x.ndim, xc, xb), _free(y.ndim, yc, yb)
    xt = np.transpose(x, list(xb) + xf + list(xc))
    yt = np.transpose(y, list(yb) + list(yc) + yf)
    nb = len(xb)
    bshape = xt.shape[:nb]
    m = math.prod(xt.shape[nb:nb + len(xf)])
    k = math.prod(xt.shape[nb + len(xf):])
    n = math.prod(yt.shape[nb + len(yc):])
    out = np.matmul(xt.reshape(bshape + (m, k)), yt.reshape(bshape + (k, n)))
    return out.reshape(bshape + xt.shape[nb:nb + len(xf)] + yt.shape[nb + len(yc):])


def _dot_transpose_one(ct, other, contract, batch, other_is_y, lin_aval):
    """Cotangent of one operand of dot_general given the other."""
    (xc, yc), (xb, yb) = contract, batch
    if other_is_y:
        lc, oc, lb, ob = xc, yc, xb, yb
    else:
        lc, oc, lb, ob = yc, xc, yb, xb
    o_aval = aval_of(other)
    nb = len(xb)
    x_ndim = len(lin_aval.shape) if other_is_y else o_aval.ndim
    nxf = len(_free(x_ndim, xc, xb))
    # positions of ct's axes: batch [0, nb), x-free [nb, nb+nxf), y-free after
    if other_is_y:
        ct_free_other = tuple(range(nb + nxf, len(aval_of(ct).shape)))
    else:
        ct_free_other = tuple(range(nb, nb + nxf))
    o_free = tuple(_free(o_aval.ndim, oc, ob))
    # dot_general(ct, other)'s axes: batch, ct's remaining (the linear operand's
    # free axes in order), then other's remaining axes (its contracted axes in
    # increasing order), which pair with the linear operand's contracted axes.
    # dot_general(other, ct) has the last two groups swapped; take the order
    # that needs no transpose when there is one.
    lin_free = _free(len(lin_aval.shape), lc, lb)
    paired = [lc[j] for j in np.argsort(oc)]
    nd = len(lin_aval.shape)
    dims = list(lb) + lin_free + paired
    swapped = list(lb) + paired + lin_free
    bdims = (tuple(range(nb)), tuple(ob))
    if swapped == list(range(nd)) and dims != swapped:
        return dot_general(other, ct, (o_free, ct_free_other), (bdims[1], bdims[0]))
    r = dot_general(ct, other, (ct_free_other, o_free), bdims)
    return transpose(r, tuple(dims.index(i) for i in range(nd)))


def _dot_transpose(ct, x, y, contract, batch):
    if isinstance(x, Undefined):
        return [_dot_transpose_one(ct, y, contract, batch, True, x.aval), None]
    return [None, _dot_transpose_one(ct, x, contract, batch, False, y.aval)]


def _dot_jvp(p, t, out, contract, batch):
    (x, y), (tx, ty) = p, t
    a = None if tx is None else dot_general(tx, y, contract, batch)
    b = None if ty is None else dot_general(x, ty, contract, batch)
    return _add_tangents(a, b)


def _dot_code(out, ins, in_avals, out_aval, lit, contract, batch):
    """Move axes to (batch, free, contracted) x (batch, contracted, free) and call
    BLAS through np.dot, once per batch entry."""
    (x, y), (xa, ya) = ins, in_avals
    (xc, yc), (xb, yb) = contract, batch
    xf, yf = _free(xa.ndim, xc, xb), _free(ya.ndim, yc, yb)
    B = math.prod(xa.shape[i] for i in xb)
    M = math.prod(xa.shape[i] for i in xf)
    K = math.prod(xa.shape[i] for i in xc)
    N = math.prod(ya.shape[i] for i in yf)
    lines = []

    def arrange(name, aval, perm, shape3):
        if aval.shape == ():
            return f"np.full({shape3}, {name})"
        if list(perm) != list(range(aval.ndim)):
            name = f"np.ascontiguousarray(np.transpose({name}, {tuple(perm)}))"
        else:
            name = f"np.ascontiguousarray({name})"
        return f"{name}.reshape({shape3})"

    if B == 1 and xa.ndim == 2 and ya.ndim == 2 and out_aval.ndim == 2:
        # a plain matrix product: pass transposed views, BLAS takes either layout
        xe = x if list(xf + list(xc)) == [0, 1] else f"{x}.T"
        ye = y if list(list(yc) + yf) == [0, 1] else f"{y}.T"
        return [f"{out} = np.dot({xe}, {ye})"]
    lines.append(f"{out}_x = {arrange(x, xa, list(xb) + xf + list(xc), (B, M, K))}")
    lines.append(f"{out}_y = {arrange(y, ya, list(yb) + list(yc) + yf, (B, K, N))}")
    if B == 1:
        lines.append(f"{out}_r = np.dot({out}_x[0], {out}_y[0])")
    else:
        dt = np.dtype(out_aval.dtype).name
        lines.append(f"{out}_r = np.empty(({B}, {M}, {N}), np.{dt})")
        lines.append(f"for b in range({B}):")
        lines.append(f"    {out}_r[b] = np.dot({out}_x[b], {out}_y[b])")
    if out_aval.shape == ():
        lines.append(f"{out} = {out}_r.ravel()[0]")
    else:
        lines.append(f"{out} = {out}_r.reshape({out_aval.shape})")
    return lines


dot_general_p.code = _dot_code
dot_general_p.impl = _dot_impl
dot_general_p.shape = _dot_shape
dot_general_p.jvp = _dot_jvp
dot_general_p.transpose = _dot_transpose


def dot_general(x, y, contract, batch=((), ())):
    contract = tuple(tuple(int(i) for i in c) for c in contract)
    batch = tuple(tuple(int(i) for i in b) for b in batch)
    return bind(dot_general_p, x, y, contract=contract, batch=batch)


# ---------------------------------------------------------------------------
# concatenate along one axis.  Its transpose slices the cotangent apart.

concatenate_p = _new("concatenate", "opaque")


def _concat_shape(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                                       if i != axis):
            raise ValueError(f"concatenate: shapes {first.shape} and {x.shape} differ off axis {axis}")
        if x.dtype != first.dtype:
            raise TypeError(f"concatenate: dtypes {first.dtype} and {x.dtype} differ")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return Aval(tuple(shape), first.dtype)


def _concat_jvp(p, t, out, axis):
    if all(ti is None for ti in t):
        return None
    return concatenate([instantiate(ti, aval_of(pi)) for pi, ti in zip(p, t)], axis)


def _concat_transpose(ct, *xs, axis):
    shape = aval_of(ct).shape
    cts, offset = [], 0
    for x in xs:
        n = aval_of(x).shape[axis]
        if isinstance(x, Undefined):
            start = tuple(offset if i == axis else 0 for i in range(len(shape)))
            stop = tuple(offset + n if i == axis else s for i, s in enumerate(shape))
            cts.append(slice_(ct, start, stop, (1,) * len(shape)))
        else:
            cts.append(None)
        offset += n
    return cts


concatenate_p.code = lambda out, ins, in_avals, out_aval, lit, axis: [
    f"{out} = np.concatenate(({', '.join(ins)},), axis={axis})"]
concatenate_p.impl = lambda *xs, axis: np.concatenate([np.asarray(x) for x in xs], axis)
concatenate_p.shape = _concat_shape
concatenate_p.jvp = _concat_jvp
concatenate_p.transpose = _concat_transpose


def concatenate(xs, axis):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return bind(concatenate_p, *xs, axis=int(axis))


# ---------------------------------------------------------------------------
# stop_gradient: the identity whose derivative is zero.

stop_gradient_p = _unary("stop_gradient", lambda x: np.array(x, copy=True), "{0}", _zero_jvp)


def stop_gradient(x):
    return bind(stop_gradient_p, x) if isinstance(x, Tracer) else x
