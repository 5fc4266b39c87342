"""A TensorFlow-compatible namespace: ``import jitgrad.tf as tf``.

The functions TensorFlow programs reach for first (``tf.constant``,
``tf.Variable``, ``tf.GradientTape``, ``tf.reduce_sum``, ``tf.math.*``,
``tf.linalg.matmul``, ``tf.nn.relu``, ``tf.keras.optimizers.Adam``,
``tf.function`` ...), with TensorFlow's keyword names and dtype rules (see
:mod:`jitgrad.tf.convert`), computed eagerly with NumPy on jitgrad Tensors
and recorded by the active tapes.  Dtypes are NumPy's: ``tf.float32`` is
``np.float32``, and ``tensor.dtype`` is a ``np.dtype``.
"""
import numpy as _np

from ..tape.accumulator import ForwardAccumulator
from ..tape.derivatives import UnconnectedGradients
from ..tape.function import function
from ..tape.tape import GradientTape
from ..tape.variables import Tensor, Variable, stop_gradient
from . import data, keras, linalg, math, nn  # noqa: F401
from .convert import as_dtype  # noqa: F401
from .linalg import matmul, norm  # noqa: F401
from .math import (  # noqa: F401
    abs, add, add_n, argmax, argmin, cos, cumsum, divide, equal, exp, floor, greater, greater_equal,
    less, less_equal, log, logical_and, logical_not, logical_or, maximum, minimum, multiply,
    negative, not_equal, pow, reduce_all, reduce_any, reduce_logsumexp, reduce_max, reduce_mean,
    reduce_min, reduce_prod, reduce_std, reduce_sum, reduce_variance, round, rsqrt, sigmoid, sign,
    sin, sqrt, square, squared_difference, subtract, tanh, truediv)
from .ops import (  # noqa: F401
    cast, clip_by_value, concat, constant, convert_to_tensor, einsum, expand_dims, eye, fill,
    gather, identity, is_tensor, linspace, ones, ones_like, range, rank, reshape, shape, size,
    squeeze, stack, tensordot, transpose, where, zeros, zeros_like)

bool = _np.bool_
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8 = _np.uint8
DType = _np.dtype


class autodiff:
    """``tf.autodiff``: ``ForwardAccumulator`` and ``GradientTape``."""
    ForwardAccumulator = ForwardAccumulator
    GradientTape = GradientTape


class dtypes:
    """``tf.dtypes``: the dtypes, as NumPy's."""
    bool, float16, float32, float64 = _np.bool_, _np.float16, _np.float32, _np.float64
    int8, int16, int32, int64, uint8 = _np.int8, _np.int16, _np.int32, _np.int64, _np.uint8
    as_dtype = staticmethod(as_dtype)
    cast = staticmethod(cast)


__all__ = [n for n in dir() if not n.startswith("_")]
