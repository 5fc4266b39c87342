"""The top of ``jitgrad.tf``: making tensors, their dtypes and shapes.

Shapes are tuples; dtypes are NumPy's (``jitgrad.tf.float32 is np.float32``).
"""
from __future__ import annotations

import numpy as np

from ..tape.variables import Tensor, Variable
from .convert import (as_dtype, axis_arg, is_python, pair, same_dtype, shape_arg, tensor,
                      tensor_result)


@tensor_result
def constant(value, dtype=None, shape=None, name=None):
    """An immutable Tensor, as ``tf.constant``: Python floats become float32,
    Python ints int32, NumPy values keep their dtype unless ``dtype`` is given.
    With ``shape``, a scalar ``value`` fills that shape (or ``value`` is
    reshaped to it)."""
    t = tensor(value.numpy() if isinstance(value, (Tensor, Variable)) else value, as_dtype(dtype))
    if shape is None:
        return t
    shape = shape_arg(shape)
    v = t.numpy()
    if np.size(v) == 1:
        return tensor(np.full(shape, v, t.dtype))
    return tensor(np.reshape(v, shape))


@tensor_result
def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None):
    """``value`` as a Tensor: a Tensor as it is, a Variable's current value (a
    read the tapes record), anything else converted (``dtype_hint`` is the
    dtype of Python values when ``dtype`` is not given)."""
    if isinstance(value, Variable):
        value = value.value()
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != np.dtype(dtype):
            raise ValueError(f"convert_to_tensor: dtype {np.dtype(dtype).name} was requested for a "
                             f"Tensor of dtype {value.dtype.name}")
        return value
    if dtype is None and dtype_hint is not None and is_python(value):
        dtype = dtype_hint
    return tensor(value, as_dtype(dtype))


@tensor_result
def is_tensor(x):
    """Whether ``x`` is a Tensor or a Variable."""
    return isinstance(x, (Tensor, Variable))


@tensor_result
def identity(input, name=None):
    """A copy of ``input``, as a Tensor (the gradient passes through)."""
    return np.copy(tensor(input))


@tensor_result
def cast(x, dtype, name=None):
    """``x`` in ``dtype`` (the gradient flows between floating dtypes)."""
    return tensor(x).astype(as_dtype(dtype))


def _filled(shape, dtype, fill):
    return tensor(np.full(shape_arg(shape), fill, as_dtype(dtype)))


@tensor_result
def zeros(shape, dtype=np.float32, name=None):
    """Zeros of ``shape`` (float32 by default)."""
    return _filled(shape, dtype, 0)


@tensor_result
def ones(shape, dtype=np.float32, name=None):
    """Ones of ``shape`` (float32 by default)."""
    return _filled(shape, dtype, 1)


@tensor_result
def fill(dims, value, name=None):
    """``value`` repeated to shape ``dims`` (the dtype of ``value``)."""
    v = tensor(value)
    return tensor(np.full(shape_arg(dims), v.numpy(), v.dtype))


@tensor_result
def zeros_like(input, dtype=None, name=None):
    """Zeros of ``input``'s shape (and dtype, unless ``dtype``)."""
    x = tensor(input)
    return tensor(np.zeros(x.shape, as_dtype(dtype) or x.dtype))


@tensor_result
def ones_like(input, dtype=None, name=None):
    """Ones of ``input``'s shape (and dtype, unless ``dtype``)."""
    x = tensor(input)
    return tensor(np.ones(x.shape, as_dtype(dtype) or x.dtype))


@tensor_result
def eye(num_rows, num_columns=None, dtype=np.float32, name=None):
    """The identity matrix (float32 by default)."""
    return tensor(np.eye(num_rows, num_columns, dtype=as_dtype(dtype)))


@tensor_result
def range(start, limit=None, delta=1, dtype=None, name=None):
    """``start, start + delta, ...`` below ``limit``, as ``tf.range``: int32 for
    Python ints, float32 when one bound is a Python float."""
    if limit is None:
        start, limit = 0, start
    vals = [v.numpy() if isinstance(v, (Tensor, Variable)) else v for v in (start, limit, delta)]
    if dtype is None:
        dtype = tensor(np.asarray(vals[0]) if not is_python(vals[0]) else vals[0]).dtype
        for v in vals:
            d = tensor(v).dtype if is_python(v) else np.asarray(v).dtype
            dtype = np.promote_types(dtype, d)
    return tensor(np.arange(*vals, dtype=as_dtype(dtype)))


@tensor_result
def linspace(start, stop, num, name=None, axis=0):
    """``num`` evenly spaced values from ``start`` to ``stop`` (both included),
    in their dtype (float32 for Python floats)."""
    a = tensor(start)
    if a.dtype.kind != "f":
        a = tensor(float(a.numpy()))
    return tensor(np.linspace(a.numpy(), tensor(stop).numpy(), int(num), axis=axis).astype(a.dtype))


@tensor_result
def reshape(tensor_, shape, name=None):
    """``tensor_`` with a new shape (one entry may be -1)."""
    return np.reshape(tensor(tensor_), shape_arg(shape))


@tensor_result
def transpose(a, perm=None, conjugate=False, name=None):
    """Axes permuted by ``perm`` (reversed when None)."""
    return np.transpose(tensor(a), None if perm is None else axis_arg(perm))


@tensor_result
def expand_dims(input, axis, name=None):
    """A new axis of length 1 at ``axis``."""
    return np.expand_dims(tensor(input), int(axis))


@tensor_result
def squeeze(input, axis=None, name=None):
    """``input`` without its axes of length 1 (those in ``axis``)."""
    return np.squeeze(tensor(input), axis=axis_arg(axis))


@tensor_result
def stack(values, axis=0, name=None):
    """The tensors in ``values`` (of one shape and dtype) along a new axis."""
    return np.stack(same_dtype(list(values), "stack"), axis=int(axis))


@tensor_result
def concat(values, axis, name=None):
    """The tensors in ``values`` joined along ``axis``."""
    return np.concatenate(same_dtype(list(values), "concat"), axis=int(axis))


@tensor_result
def where(condition, x=None, y=None, name=None):
    """``x`` where ``condition`` holds, else ``y`` (TensorFlow's ``where`` with
    one argument, the indices of true entries, is not supported)."""
    if x is None or y is None:
        raise NotImplementedError("jitgrad.tf.where needs x and y (the one-argument form, the "
                                  "indices of true entries, is not supported)")
    x, y = pair(x, y, "where")
    return np.where(tensor(condition), x, y)


@tensor_result
def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """Entries of ``t`` clipped to ``[clip_value_min, clip_value_max]``."""
    t = tensor(t)
    lo, hi = same_dtype([t, clip_value_min, clip_value_max], "clip_by_value")[1:]
    return np.minimum(np.maximum(t, lo), hi)


@tensor_result
def shape(input, out_type=np.int32, name=None):
    """The shape of ``input`` as an int32 Tensor."""
    return tensor(np.asarray(tensor(input).shape, as_dtype(out_type)))


@tensor_result
def size(input, out_type=np.int32, name=None):
    """The number of entries of ``input`` as an int32 Tensor."""
    return tensor(np.asarray(tensor(input).size, as_dtype(out_type)))


@tensor_result
def rank(input, name=None):
    """The number of axes of ``input`` as an int32 Tensor."""
    return tensor(np.asarray(tensor(input).ndim, np.int32))


@tensor_result
def gather(params, indices, axis=None, batch_dims=0, name=None):
    """Entries of ``params`` at ``indices`` along ``axis`` (0 by default)."""
    if batch_dims:
        raise NotImplementedError("jitgrad.tf.gather: batch_dims is not supported")
    idx = indices.numpy() if isinstance(indices, (Tensor, Variable)) else np.asarray(indices)
    return np.take(tensor(params), idx, axis=0 if axis is None else int(axis))


@tensor_result
def tensordot(a, b, axes, name=None):
    """``np.tensordot`` of two tensors of one dtype."""
    a, b = same_dtype([a, b], "tensordot")
    return np.tensordot(a, b, axes)


@tensor_result
def einsum(equation, *inputs, name=None):
    """``np.einsum`` of tensors of one dtype."""
    return np.einsum(equation, *same_dtype(list(inputs), "einsum"))
