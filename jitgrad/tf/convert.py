"""TensorFlow's conversion and dtype rules for the ``jitgrad.tf`` operations.

Every operation of the namespace takes Tensors, Variables, NumPy arrays and
Python values, and returns a :class:`~jitgrad.Tensor`, computed eagerly and
recorded by the active tapes (the operations are NumPy functions applied to
Tensors, which record themselves).  As in TensorFlow:

- a Python float (or list of floats) becomes float32, a Python int int32,
  NumPy values keep their dtype;
- a Python number beside a tensor takes the tensor's dtype (``multiply(0.01, g)``
  is float32 for a float32 ``g``); a Python float where an integer tensor
  is expected raises TypeError;
- the tensor operands of one operation must have the same dtype: TensorFlow
  does not promote (``add(float32, float64)`` raises), so neither does
  ``jitgrad.tf``.  Python's operators on Tensors follow NumPy's promotion.
"""
from __future__ import annotations

import functools
import numbers

import numpy as np

from ..core.trace import Tracer
from ..tape.variables import Tensor, Variable, constant as _tape_constant


def tensor_result(fn):
    """``fn``'s array result as a Tensor: NumPy's functions give bare NumPy
    values when no tape records them, and TensorFlow's functions return tensors."""
    @functools.wraps(fn)
    def op(*args, **kwargs):
        out = fn(*args, **kwargs)
        return Tensor(out) if isinstance(out, (np.ndarray, np.generic, Tracer)) else out
    return op


def is_python(x):
    """A Python number, or a (nested) list or tuple of them: converted by context."""
    if isinstance(x, (bool, numbers.Number)) and not isinstance(x, (np.generic, np.ndarray)):
        return True
    if isinstance(x, (list, tuple)):
        return all(is_python(v) for v in x)
    return False


def _python_as(x, dtype):
    """Python value ``x`` as a constant of ``dtype`` (TensorFlow refuses to drop a fraction)."""
    dtype = np.dtype(dtype)
    arr = np.asarray(x)
    if dtype.kind in "iub" and arr.dtype.kind == "f":
        if not np.all(arr == np.trunc(arr)):
            raise TypeError(f"cannot convert {x!r} to a tensor of dtype {dtype.name}")
    if dtype.kind == "b" and arr.dtype.kind != "b":
        raise TypeError(f"cannot convert {x!r} to a tensor of dtype bool")
    return _tape_constant(arr, dtype)


def as_dtype(dtype):
    """``dtype`` (a NumPy dtype or type, a name, a ``jitgrad.tf`` dtype) as a NumPy dtype."""
    return None if dtype is None else np.dtype(dtype)


def tensor(x, dtype=None):
    """An operand: Tensors and Variables as they are (a Variable is read by the
    operation, which the tapes record), anything else converted."""
    if isinstance(x, (Tensor, Variable)):
        if dtype is not None and x.dtype != np.dtype(dtype):
            raise TypeError(f"a tensor of dtype {np.dtype(dtype).name} was expected, got "
                            f"{x.dtype.name}; convert it with jitgrad.tf.cast")
        return x
    if is_python(x):
        return _python_as(x, dtype) if dtype is not None else _tape_constant(x)
    t = _tape_constant(x, dtype)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"jitgrad.tf computes on booleans, integers and floats, not on "
                        f"{t.dtype} values")
    return t


def pair(x, y, what):
    """Two operands of one operation in one dtype, as TensorFlow converts them."""
    if is_python(x) and not is_python(y):
        y = tensor(y)
        return _python_as(x, y.dtype), y
    if is_python(y) and not is_python(x):
        x = tensor(x)
        return x, _python_as(y, x.dtype)
    x, y = tensor(x), tensor(y)
    if x.dtype != y.dtype:
        raise TypeError(f"{what}: the operands have dtypes {x.dtype.name} and {y.dtype.name}; "
                        "TensorFlow does not promote between dtypes: cast one with jitgrad.tf.cast")
    return x, y


def same_dtype(values, what):
    """A list of operands in one dtype (Python values take the first tensor's)."""
    tensors = [v for v in values if not is_python(v)]
    if not tensors:
        return [tensor(v) for v in values]
    dt = tensor(tensors[0]).dtype
    out = [_python_as(v, dt) if is_python(v) else tensor(v) for v in values]
    for v in out:
        if v.dtype != dt:
            raise TypeError(f"{what}: the operands have dtypes {dt.name} and {v.dtype.name}; "
                            "cast them to one dtype with jitgrad.tf.cast")
    return out


def axis_arg(axis):
    """TensorFlow's ``axis`` (an int, a list or tuple of ints, a tensor, None)
    as NumPy's."""
    if axis is None:
        return None
    if isinstance(axis, (Tensor, Variable)):
        axis = axis.numpy()
    if isinstance(axis, np.ndarray):
        axis = axis.tolist()
    if isinstance(axis, (list, tuple)):
        return tuple(int(a) for a in axis)
    return int(axis)


def shape_arg(shape):
    """A shape given as an int, a list, a tuple or a tensor, as a tuple of ints."""
    if isinstance(shape, (Tensor, Variable)):
        shape = shape.numpy()
    if isinstance(shape, np.ndarray):
        shape = shape.tolist()
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)
