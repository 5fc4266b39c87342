"""``tf.math``: elementwise arithmetic, comparisons and reductions.

Each function computes with NumPy on Tensors (recorded by the active tapes)
after TensorFlow's conversions (see :mod:`jitgrad.tf.convert`); ``name=`` is
accepted and ignored everywhere.
"""
from __future__ import annotations

import numpy as np

from ..tape.variables import stop_gradient
from .convert import axis_arg, pair, tensor, tensor_result


def _binary(ufunc, tf_name):
    def op(x, y, name=None):
        x, y = pair(x, y, tf_name)
        return ufunc(x, y)
    op.__name__ = op.__qualname__ = tf_name
    op.__doc__ = f"``tf.math.{tf_name}``: NumPy's ``{ufunc.__name__}`` on operands of one dtype."
    return tensor_result(op)


def _unary(fn, tf_name):
    def op(x, name=None):
        return fn(tensor(x))
    op.__name__ = op.__qualname__ = tf_name
    op.__doc__ = f"``tf.math.{tf_name}``, elementwise."
    return tensor_result(op)


add = _binary(np.add, "add")
subtract = _binary(np.subtract, "subtract")
multiply = _binary(np.multiply, "multiply")
maximum = _binary(np.maximum, "maximum")
minimum = _binary(np.minimum, "minimum")
pow = _binary(np.power, "pow")
equal = _binary(np.equal, "equal")
not_equal = _binary(np.not_equal, "not_equal")
less = _binary(np.less, "less")
less_equal = _binary(np.less_equal, "less_equal")
greater = _binary(np.greater, "greater")
greater_equal = _binary(np.greater_equal, "greater_equal")
logical_and = _binary(np.logical_and, "logical_and")
logical_or = _binary(np.logical_or, "logical_or")
floormod = mod = _binary(np.remainder, "floormod")
floordiv = _binary(np.floor_divide, "floordiv")
atan2 = _binary(np.arctan2, "atan2")


@tensor_result
def divide(x, y, name=None):
    """``x / y``; integers are divided as floats (float64), as ``tf.math.divide``."""
    x, y = pair(x, y, "divide")
    return np.true_divide(x, y)


truediv = divide


@tensor_result
def squared_difference(x, y, name=None):
    """``(x - y) ** 2``, elementwise."""
    x, y = pair(x, y, "squared_difference")
    return np.square(np.subtract(x, y))


abs = _unary(np.absolute, "abs")
negative = _unary(np.negative, "negative")
sign = _unary(np.sign, "sign")
square = _unary(np.square, "square")
sqrt = _unary(np.sqrt, "sqrt")
exp = _unary(np.exp, "exp")
expm1 = _unary(np.expm1, "expm1")
log = _unary(np.log, "log")
log1p = _unary(np.log1p, "log1p")
sin = _unary(np.sin, "sin")
cos = _unary(np.cos, "cos")
tan = _unary(np.tan, "tan")
asin = _unary(np.arcsin, "asin")
acos = _unary(np.arccos, "acos")
atan = _unary(np.arctan, "atan")
sinh = _unary(np.sinh, "sinh")
cosh = _unary(np.cosh, "cosh")
tanh = _unary(np.tanh, "tanh")
floor = _unary(np.floor, "floor")
ceil = _unary(np.ceil, "ceil")
round = _unary(np.rint, "round")        # TensorFlow rounds half to even, as rint
reciprocal = _unary(np.reciprocal, "reciprocal")
logical_not = _unary(np.logical_not, "logical_not")
is_nan = _unary(np.isnan, "is_nan")
is_inf = _unary(np.isinf, "is_inf")
is_finite = _unary(np.isfinite, "is_finite")


@tensor_result
def rsqrt(x, name=None):
    """``1 / sqrt(x)``."""
    return np.reciprocal(np.sqrt(tensor(x)))


@tensor_result
def sigmoid(x, name=None):
    """``1 / (1 + exp(-x))``, computed as ``(tanh(x / 2) + 1) / 2`` (no overflow)."""
    x = tensor(x)
    return (np.tanh(x * 0.5) + 1) * 0.5


@tensor_result
def softplus(features, name=None):
    """``log(1 + exp(x))``, as ``logaddexp(0, x)`` (no overflow)."""
    x = tensor(features)
    return np.logaddexp(np.zeros_like(x), x)


@tensor_result
def log_sigmoid(x, name=None):
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -softplus(-tensor(x))


@tensor_result
def add_n(inputs, name=None):
    """The sum of a list of tensors of one shape and dtype."""
    out = tensor(inputs[0])
    for x in inputs[1:]:
        out = add(out, x)
    return out


# -- reductions (``axis``: None, an int or a list; ``keepdims`` as NumPy's)


def _reduction(np_fn, tf_name):
    def op(input_tensor, axis=None, keepdims=False, name=None):
        return np_fn(tensor(input_tensor), axis=axis_arg(axis), keepdims=keepdims)
    op.__name__ = op.__qualname__ = tf_name
    op.__doc__ = f"``tf.math.{tf_name}`` over ``axis`` (all axes when None)."
    return tensor_result(op)


reduce_sum = _reduction(np.sum, "reduce_sum")
reduce_max = _reduction(np.max, "reduce_max")
reduce_min = _reduction(np.min, "reduce_min")
reduce_prod = _reduction(np.prod, "reduce_prod")


@tensor_result
def reduce_mean(input_tensor, axis=None, keepdims=False, name=None):
    """The mean over ``axis``; of an integer tensor, an integer (truncated), as TensorFlow."""
    x = tensor(input_tensor)
    m = np.mean(x, axis=axis_arg(axis), keepdims=keepdims)
    if x.dtype.kind in "iu":
        return np.trunc(m).astype(x.dtype)
    return m


@tensor_result
def reduce_variance(input_tensor, axis=None, keepdims=False, name=None):
    """The (biased) variance over ``axis``."""
    return np.var(tensor(input_tensor), axis=axis_arg(axis), keepdims=keepdims)


@tensor_result
def reduce_std(input_tensor, axis=None, keepdims=False, name=None):
    """The (biased) standard deviation over ``axis``."""
    return np.std(tensor(input_tensor), axis=axis_arg(axis), keepdims=keepdims)


@tensor_result
def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None):
    """``log(sum(exp(x)))`` over ``axis``, shifted by the maximum (no overflow)."""
    x = tensor(input_tensor)
    ax = axis_arg(axis)
    m = stop_gradient(np.max(x, axis=ax, keepdims=True))
    m = np.where(np.isfinite(m), m, np.zeros_like(m))
    out = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=ax)


@tensor_result
def reduce_any(input_tensor, axis=None, keepdims=False, name=None):
    """Whether any entry along ``axis`` is true (not differentiable)."""
    x = np.asarray(tensor(input_tensor))
    return tensor(np.any(x, axis=axis_arg(axis), keepdims=keepdims))


@tensor_result
def reduce_all(input_tensor, axis=None, keepdims=False, name=None):
    """Whether every entry along ``axis`` is true (not differentiable)."""
    x = np.asarray(tensor(input_tensor))
    return tensor(np.all(x, axis=axis_arg(axis), keepdims=keepdims))


@tensor_result
def argmax(input, axis=None, output_type=np.int64, name=None):
    """Index of the largest entry along ``axis`` (TensorFlow's default: axis 0)."""
    return np.argmax(tensor(input), axis=0 if axis is None else axis_arg(axis)).astype(output_type)


@tensor_result
def argmin(input, axis=None, output_type=np.int64, name=None):
    """Index of the smallest entry along ``axis`` (TensorFlow's default: axis 0)."""
    return np.argmin(tensor(input), axis=0 if axis is None else axis_arg(axis)).astype(output_type)


@tensor_result
def cumsum(x, axis=0, exclusive=False, reverse=False, name=None):
    """The cumulative sum along ``axis`` (``exclusive`` and ``reverse`` are not supported)."""
    if exclusive or reverse:
        raise NotImplementedError("jitgrad.tf.math.cumsum: exclusive and reverse are not supported")
    return np.cumsum(tensor(x), axis=axis_arg(axis))
