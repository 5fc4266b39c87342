"""``tf.nn``: activations and losses, composed from recorded NumPy operations."""
from __future__ import annotations

import numpy as np

from ..tape.variables import stop_gradient
from . import math as tfm
from .convert import pair, tensor, tensor_result

sigmoid = tfm.sigmoid
tanh = tfm.tanh
softplus = tfm.softplus


@tensor_result
def relu(features, name=None):
    """``max(x, 0)`` (gradient 0 at 0, and NaN stays NaN, as TensorFlow)."""
    x = tensor(features)
    return np.where((x > 0) | np.isnan(x), x, np.zeros_like(x))


@tensor_result
def relu6(features, name=None):
    """``min(max(x, 0), 6)``."""
    x = relu(features)
    return np.where(x > 6, np.full_like(x, 6), x)


@tensor_result
def leaky_relu(features, alpha=0.2, name=None):
    """``x`` where positive, ``alpha * x`` elsewhere."""
    x = tensor(features)
    return np.where(x > 0, x, x * np.asarray(alpha, x.dtype))


@tensor_result
def elu(features, name=None):
    """``x`` where positive, ``exp(x) - 1`` elsewhere."""
    x = tensor(features)
    return np.where(x > 0, x, np.expm1(np.minimum(x, np.zeros_like(x))))


@tensor_result
def silu(features, beta=1.0, name=None):
    """``x * sigmoid(beta * x)`` (swish)."""
    x = tensor(features)
    return x * tfm.sigmoid(x * np.asarray(beta, x.dtype))


swish = silu


def _shifted(logits, axis):
    """``logits`` minus their maximum along ``axis`` (constant for the gradient:
    softmax does not change when every logit moves by the same amount)."""
    x = tensor(logits)
    return x - stop_gradient(np.max(x, axis=axis, keepdims=True))


@tensor_result
def softmax(logits, axis=None, name=None):
    """``exp(x) / sum(exp(x))`` along ``axis`` (the last by default)."""
    e = np.exp(_shifted(logits, -1 if axis is None else axis))
    return e / np.sum(e, axis=-1 if axis is None else axis, keepdims=True)


@tensor_result
def log_softmax(logits, axis=None, name=None):
    """``x - log(sum(exp(x)))`` along ``axis`` (the last by default)."""
    ax = -1 if axis is None else axis
    s = _shifted(logits, ax)
    return s - np.log(np.sum(np.exp(s), axis=ax, keepdims=True))


@tensor_result
def l2_loss(t, name=None):
    """``sum(t ** 2) / 2``."""
    t = tensor(t)
    return np.sum(np.square(t)) * np.asarray(0.5, t.dtype)


@tensor_result
def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """``-labels * log(sigmoid(x)) - (1 - labels) * log(1 - sigmoid(x))``, computed
    stably as ``max(x, 0) - x * labels + log(1 + exp(-|x|))``."""
    labels, logits = pair(labels, logits, "sigmoid_cross_entropy_with_logits")
    zeros = np.zeros_like(logits)
    return (np.maximum(logits, zeros) - logits * labels
            + np.log1p(np.exp(-np.absolute(logits))))


@tensor_result
def softmax_cross_entropy_with_logits(labels, logits, axis=-1, name=None):
    """``-sum(labels * log_softmax(logits))`` along ``axis``."""
    labels, logits = pair(labels, logits, "softmax_cross_entropy_with_logits")
    return -np.sum(labels * log_softmax(logits, axis), axis=axis)
