"""NumPy's interface, built from jitgrad's primitives.

Every function here accepts tracers, NumPy arrays and Python scalars, follows
NumPy's promotion (Python scalars are weak) and broadcasting rules, and inserts
the explicit ``convert`` and ``broadcast_in_dim`` equations the primitives
expect.  Traced arrays dispatch here from NumPy itself (``__array_ufunc__`` and
``__array_function__``), so user code keeps ``import numpy as np``; this module
also offers what NumPy cannot dispatch, such as building an array from traced
scalars (:func:`stack`, :func:`array`).
"""
from __future__ import annotations

import builtins
import math
import operator

import numpy as _np

from ..lax import elementwise as P
from ..core.trace import Tracer, aval_of

_PY_SCALARS = (bool, int, float)
pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, None
float32, float64, int32, int64, bool_ = _np.float32, _np.float64, _np.int32, _np.int64, _np.bool_


def _operand(x):
    """Accept tracers, arrays, NumPy scalars and Python scalars; lists become arrays."""
    if isinstance(x, (Tracer, _np.ndarray, _np.generic) + _PY_SCALARS):
        return x
    if isinstance(x, (list, tuple)):
        return array(x)
    if hasattr(x, "__jitgrad_value__"):
        return x.__jitgrad_value__()
    return _np.asarray(x)


def _dtype_arg(x):
    return x if isinstance(x, _PY_SCALARS) else aval_of(x).dtype


def result_dtype(*xs):
    return _np.result_type(*[_dtype_arg(x) for x in xs])


def _float_dtype(dtype):
    """float64 for integers (the dtype of mean, true_divide and np.linalg)."""
    dtype = _np.dtype(dtype)
    return dtype if _np.issubdtype(dtype, _np.floating) else _np.dtype(_np.float64)


def _ufunc_float_dtype(dtype):
    """The dtype of a float ufunc (exp, sqrt, arctan2, ...) of integers: the
    smallest float that holds them (float16 for booleans and 8-bit integers,
    float32 for 16-bit ones, float64 above), as NumPy chooses its loop."""
    dtype = _np.dtype(dtype)
    return dtype if _np.issubdtype(dtype, _np.floating) else _np.result_type(dtype, _np.float16)


def _int8_for_bool(dtype):
    """Arithmetic without a boolean loop (power, floor_divide) runs booleans as int8."""
    return _np.dtype(_np.int8) if dtype == _np.bool_ else _np.dtype(dtype)


def _is_exact(x):
    return result_dtype(x).kind in "biu"


def _shape(x):
    return () if isinstance(x, _PY_SCALARS) else aval_of(x).shape


def _to(x, dtype, shape):
    """Convert to dtype and broadcast to shape (scalars stay scalars: primitives broadcast them)."""
    if isinstance(x, _PY_SCALARS) or (not isinstance(x, Tracer) and _np.ndim(x) == 0):
        return _np.asarray(x, dtype)[()]
    x = P.convert(x, dtype)
    xs = aval_of(x).shape
    if xs != shape:
        x = P.broadcast_in_dim(x, shape, tuple(range(len(shape) - len(xs), len(shape))))
    return x


def _elementwise(op, *xs, dtype=None, float_only=False):
    xs = [_operand(x) for x in xs]
    dt = result_dtype(*xs) if dtype is None else _np.dtype(dtype)
    if float_only:
        dt = _ufunc_float_dtype(dt)
    try:
        shape = _np.broadcast_shapes(*[_shape(x) for x in xs])
    except ValueError:
        raise ValueError("operands could not be broadcast together with shapes "
                         + " ".join(str(_shape(x)) for x in xs)) from None
    return op(*[_to(x, dt, shape) for x in xs])


def _unary_fn(op, float_only=True, name=None):
    def fn(x, /, *args, **kwargs):
        _no_out(kwargs)
        return _elementwise(op, x, float_only=float_only)
    fn.__name__ = name or op.__name__
    return fn


def _binary_fn(op, float_only=False, name=None, dtype=None):
    def fn(x, y, /, **kwargs):
        _no_out(kwargs)
        return _elementwise(op, x, y, float_only=float_only, dtype=dtype)
    fn.__name__ = name or op.__name__
    return fn


def _no_out(kwargs):
    if kwargs.get("out") is not None:
        raise TypeError("jitgrad does not support out= (arrays are immutable while traced)")


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
absolute = _unary_fn(P.abs_, float_only=False, name="absolute")
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
sign = _no_bool(_unary_fn(P.sign, float_only=False, name="sign"), "sign")
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
    return _operand(x)


def power(x, y, /, **kwargs):
    _no_out(kwargs)
    x, y = _operand(x), _operand(y)
    if not isinstance(y, Tracer) and _np.ndim(y) == 0:
        yv = float(y)
        if yv.is_integer() and builtins.abs(yv) <= 64 and not isinstance(x, _PY_SCALARS):
            dt = _int8_for_bool(result_dtype(x, y))
            if _np.issubdtype(dt, _np.integer) and yv < 0:
                raise ValueError("Integers to negative integer powers are not allowed.")
            return P.integer_pow(_to(x, dt, _shape(x)), int(yv))
    return _elementwise(P.pow_, x, y, dtype=_int8_for_bool(result_dtype(x, y)))


def _as_float(x):
    """x in the dtype of a float ufunc of it (see _ufunc_float_dtype)."""
    x = _operand(x)
    if isinstance(x, _PY_SCALARS):
        return float(x)            # (stays weak)
    return astype(x, _ufunc_float_dtype(result_dtype(x))) if _is_exact(x) else x


def float_power(x, y, /, **kwargs):
    return power(astype(x, _np.float64), y)


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


def logaddexp(x, y, /, **kwargs):
    # max(x, y) + log1p(exp(-|x - y|)), which is NaN with a NaN operand, value
    # and derivatives; x + y where both are the same infinity (x - y is NaN).
    x, y = _as_float(x), _as_float(y)
    delta = subtract(x, y)
    smooth = add(maximum(x, y), log1p(exp(negative(absolute(delta)))))
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


# ---------------------------------------------------------------------------
# Reductions


def _axes(x, axis):
    ndim = len(_shape(x))
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(out))


def _keep(y, x_shape, axes, keepdims):
    if not keepdims:
        return y
    return P.reshape(y, tuple(1 if i in axes else s for i, s in enumerate(x_shape)))


def _reduction(op, default_dtype=None):
    def fn(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if out is not None:
            raise TypeError("jitgrad does not support out=")
        if kwargs.get("initial", None) is not None or kwargs.get("where", True) is not True:
            raise NotImplementedError(f"jitgrad's {op.__name__} does not support initial= or where=")
        a = _operand(a)
        axes = _axes(a, axis)
        dt = dtype or (default_dtype(aval_of(a).dtype) if default_dtype else None)
        if dt is not None:
            a = astype(a, dt)
        if isinstance(a, _PY_SCALARS):
            a = _np.asarray(a)
        return _keep(op(a, axes), _shape(a), axes, keepdims)
    return fn


def _sum_dtype(dtype):
    return _np.dtype(_np.int64) if dtype.kind in "bi" else (
        _np.dtype(_np.uint64) if dtype.kind == "u" else dtype)


sum = _reduction(P.reduce_sum, _sum_dtype)
prod = _reduction(P.reduce_prod, _sum_dtype)
max = amax = _reduction(P.reduce_max)
min = amin = _reduction(P.reduce_min)


def ptp(a, axis=None, out=None, keepdims=False):
    """Peak to peak, max - min (raises on an empty axis, as both do)."""
    if out is not None:
        raise TypeError("jitgrad does not support out= (arrays are immutable while traced)")
    return subtract(max(a, axis=axis, keepdims=keepdims), min(a, axis=axis, keepdims=keepdims))


def cumsum(a, axis=None, dtype=None, out=None):
    """Running totals along ``axis`` (of the flattened array when None)."""
    if out is not None:
        raise TypeError("jitgrad does not support out= (arrays are immutable while traced)")
    a = _operand(a)
    if axis is None:
        a, axis = ravel(a), 0
    nd = len(_shape(a))
    if nd == 0:
        a, axis, nd = reshape(a, (1,)), 0, 1
    if not -nd <= axis < nd:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {nd}")
    dt = _np.dtype(dtype) if dtype is not None else _sum_dtype(aval_of(a).dtype)
    return P.cumsum(P.convert(a, dt) if aval_of(a).dtype != dt else a, axis % nd)


def mean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    a = _operand(a)
    axes = _axes(a, axis)
    n = math.prod(_shape(a)[i] for i in axes)
    dt = dtype or _float_dtype(aval_of(a).dtype)
    return divide(sum(astype(a, dt), axis=axes, keepdims=keepdims), float(n))


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    a = _operand(a)
    axes = _axes(a, axis)
    n = math.prod(_shape(a)[i] for i in axes)
    dev = subtract(a, mean(a, axis=axes, dtype=dtype, keepdims=True))
    # (NumPy divides by 0 when ddof >= n: nan, or inf)
    return divide(sum(multiply(dev, dev), axis=axes, keepdims=keepdims), float(builtins.max(n - ddof, 0)))


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    return sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


# ---------------------------------------------------------------------------
# Shapes and data movement


def astype(x, dtype, copy=True):
    x = _operand(x)
    if isinstance(x, _PY_SCALARS):
        return _np.asarray(x, dtype)[()]
    return P.convert(x, _np.dtype(dtype))


def asarray(a, dtype=None, **kwargs):
    a = _operand(a)
    return a if dtype is None else astype(a, dtype)


def array(obj, dtype=None, **kwargs):
    """Like np.array, and also builds an array from (nested lists of) traced values."""
    if isinstance(obj, (list, tuple)):
        if any(isinstance(o, (Tracer, list, tuple)) for o in obj):
            items = [array(o) for o in obj]
            return asarray(stack(items), dtype)
        return _np.array(obj, dtype=dtype)
    return asarray(obj, dtype)


def reshape(a, shape=None, order="C", **kwargs):
    shape = kwargs.pop("newshape", shape)
    if order != "C":
        raise NotImplementedError("jitgrad supports only order='C' in reshape")
    a = _operand(a)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    size = math.prod(_shape(a))
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of shape {_shape(a)} (size {size}) into shape {shape}")
    if isinstance(a, _PY_SCALARS):
        a = _np.asarray(a)
    return P.reshape(a, shape)


def ravel(a, order="C"):
    return reshape(a, (-1,), order)


def transpose(a, axes=None):
    a = _operand(a)
    nd = len(_shape(a))
    axes = tuple(reversed(range(nd))) if axes is None else tuple(int(i) % nd for i in axes)
    return P.transpose(a, axes)


def swapaxes(a, axis1, axis2):
    nd = len(_shape(a))
    perm = list(range(nd))
    perm[axis1 % nd], perm[axis2 % nd] = perm[axis2 % nd], perm[axis1 % nd]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    nd = len(_shape(a))
    src, dst = _np.atleast_1d(source) % nd, _np.atleast_1d(destination) % nd
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def expand_dims(a, axis):
    a = _operand(a)
    shape = _shape(a)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(shape) + len(axes)
    axes = sorted(int(x) % nd for x in axes)
    out = list(shape)
    for ax in axes:
        out.insert(ax, 1)
    return reshape(a, out)


def squeeze(a, axis=None):
    a = _operand(a)
    shape = _shape(a)
    if axis is None:
        axes = [i for i, s in enumerate(shape) if s == 1]
    else:
        axes = list(_axes(a, axis))
        bad = [i for i in axes if shape[i] != 1]
        if bad:
            raise ValueError(f"cannot select an axis to squeeze out which has size not equal to one "
                             f"(axis {bad[0]} of shape {shape})")
    return reshape(a, [s for i, s in enumerate(shape) if i not in axes])


def broadcast_to(a, shape):
    a = _operand(a)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if _np.broadcast_shapes(_shape(a), shape) != shape:
        raise ValueError(f"cannot broadcast shape {_shape(a)} to {shape}")
    return _to(_np.asarray(a) if isinstance(a, _PY_SCALARS) else a, result_dtype(a), shape) \
        if _shape(a) != () or not isinstance(a, Tracer) else P.broadcast_in_dim(a, shape, ())


def atleast_1d(a):
    a = _operand(a)
    return reshape(a, (1,)) if _shape(a) == () else a


def concatenate(arrays, axis=0, **kwargs):
    arrays = [_operand(a) for a in arrays]
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    dt = result_dtype(*arrays)
    nd = len(_shape(arrays[0]))
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    arrays = [_to(a, dt, _shape(a)) for a in arrays]
    arrays = [_np.asarray(a) if _np.ndim(a) == 0 and not isinstance(a, Tracer) else a for a in arrays]
    return P.concatenate(arrays, int(axis) % nd)


def stack(arrays, axis=0, **kwargs):
    arrays = [_operand(a) for a in arrays]
    nd = len(_shape(arrays[0])) + 1
    return concatenate([expand_dims(a, int(axis) % nd) for a in arrays], axis=int(axis) % nd)


def hstack(arrays):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, axis=0 if len(_shape(arrays[0])) == 1 else 1)


def vstack(arrays):
    return concatenate([reshape(a, (1, -1)) if len(_shape(a)) < 2 else a for a in arrays], axis=0)


def zeros_like(a, dtype=None, **kwargs):
    return full_like(a, 0, dtype)


def ones_like(a, dtype=None, **kwargs):
    return full_like(a, 1, dtype)


def empty_like(a, dtype=None, **kwargs):
    return full_like(a, 0, dtype)


def full_like(a, fill_value, dtype=None, **kwargs):
    a = _operand(a)
    dt = _np.dtype(dtype) if dtype is not None else aval_of(a).dtype
    return P.full(_shape(a), fill_value, dt)


def copy(a, **kwargs):
    return _operand(a)


def shape(a):
    return _shape(_operand(a))


def ndim(a):
    return len(_shape(_operand(a)))


def size(a, axis=None):
    s = _shape(_operand(a))
    return math.prod(s) if axis is None else s[axis]


from .rounding import (around, bitwise_and, bitwise_not, bitwise_or, bitwise_xor,  # noqa: E402,F401
                       ceil, divmod, fix, floor, floor_divide, invert, mod, remainder, round, trunc)
from .products import dot, inner, linalg, matmul, outer, tensordot, vdot  # noqa: E402,F401
from .indexing import (argmax, argmin, argsort, diag, diagonal, diff, getitem,  # noqa: E402,F401
                       sort, take, trace)
from .einsum import einsum  # noqa: E402,F401
from . import dispatch as _dispatch  # noqa: E402,F401  (makes tracers behave like arrays)
