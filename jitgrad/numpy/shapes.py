"""NumPy's shape functions, joining, creation and copies: reshape, transpose,
concatenate, stack, broadcast_to, the *_like constructors, array of traced
values, ...
"""
from __future__ import annotations

import math
import operator

import numpy as _np

from .. import lax as P
from ..core.trace import aval_of, Tracer
from .base import (_PY_SCALARS, _axes, _axis_index, _axis_tuple, _operand, _shape, _to, astype,
                   _fresh, from_sequence, result_dtype)

# ---------------------------------------------------------------------------
# Shapes and data movement


def asarray(a, dtype=None, **kwargs):
    a = _operand(a)
    return a if dtype is None else astype(a, dtype)


def array(obj, dtype=None, **kwargs):
    """Like np.array, and also builds an array from (nested lists of) traced values."""
    if isinstance(obj, (list, tuple)):
        return asarray(from_sequence(obj), dtype)
    return asarray(obj, dtype)


def _shape_argument(shape):
    """A shape argument (an integer or a sequence of them) as a tuple of ints.
    A traced value raises the tracer's error (a shape must be known while
    tracing: mark the argument static)."""
    if isinstance(shape, (tuple, list)) or _np.ndim(shape) > 0:
        return tuple(operator.index(s) for s in shape)
    return (operator.index(shape),)


def reshape(a, shape=None, order="C", **kwargs):
    shape = kwargs.pop("newshape", shape)
    if order != "C":
        raise NotImplementedError("jitgrad supports only order='C' in reshape")
    a = _operand(a)
    shape = _shape_argument(shape)
    size = math.prod(_shape(a))
    unknown = [i for i, s in enumerate(shape) if s < 0]
    if len(unknown) > 1:
        raise ValueError("can only specify one unknown dimension")
    if unknown:
        known = math.prod(s for s in shape if s >= 0)
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if s < 0 else s for s in shape)
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
    if axes is None:
        axes = tuple(reversed(range(nd)))
    else:
        axes = tuple(axes)
        if len(axes) != nd:
            raise ValueError("axes don't match array")
        axes = _axis_tuple(axes, nd)
    return P.transpose(a, axes)


def swapaxes(a, axis1, axis2):
    nd = len(_shape(a))
    perm = list(range(nd))
    axis1, axis2 = _axis_index(axis1, nd, "axis1"), _axis_index(axis2, nd, "axis2")
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    nd = len(_shape(a))
    src, dst = _axis_tuple(source, nd, "source"), _axis_tuple(destination, nd, "destination")
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def expand_dims(a, axis):
    a = _operand(a)
    shape = _shape(a)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(shape) + len(axes)
    axes = sorted(_axis_tuple(axes, nd))
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
    shape = _shape_argument(shape)
    if _np.broadcast_shapes(_shape(a), shape) != shape:
        raise ValueError(f"cannot broadcast shape {_shape(a)} to {shape}")
    if not isinstance(a, Tracer):
        return _np.broadcast_to(_np.asarray(a, result_dtype(a)), shape)
    return _to(a, result_dtype(a), shape) if _shape(a) != () else P.broadcast_in_dim(a, shape, ())


def atleast_1d(*arys):
    out = tuple(reshape(_operand(a), (1,)) if _shape(_operand(a)) == () else _operand(a) for a in arys)
    return out[0] if len(out) == 1 else out


def _joined_dtype(arrays, dtype, casting):
    """The dtype of a join: NumPy's promotion, or ``dtype`` if the inputs may
    be cast to it under ``casting`` (else NumPy's TypeError)."""
    if dtype is None:
        return result_dtype(*arrays)
    dtype = _np.dtype(dtype)
    for a in arrays:
        if not _np.can_cast(result_dtype(a), dtype, casting=casting):
            raise TypeError(f"Cannot cast array data from dtype('{result_dtype(a)}') to "
                            f"dtype('{dtype}') according to the rule '{casting}'")
    return dtype


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    arrays = [_operand(a) for a in arrays]
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    dt = _joined_dtype(arrays, dtype, casting)
    nd = len(_shape(arrays[0]))
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    arrays = [_to(a, dt, _shape(a)) for a in arrays]
    arrays = [_np.asarray(a) if _np.ndim(a) == 0 and not isinstance(a, Tracer) else a for a in arrays]
    return P.concatenate(arrays, _axis_index(axis, nd))


def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    arrays = [_operand(a) for a in arrays]
    nd = len(_shape(arrays[0])) + 1
    axis = _axis_index(axis, nd)
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis, out=out, dtype=dtype,
                       casting=casting)


def hstack(arrays, *, dtype=None, casting="same_kind"):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, axis=0 if len(_shape(arrays[0])) == 1 else 1, dtype=dtype,
                       casting=casting)


def vstack(arrays, *, dtype=None, casting="same_kind"):
    return concatenate([reshape(a, (1, -1)) if len(_shape(a)) < 2 else a for a in arrays], axis=0,
                       dtype=dtype, casting=casting)


def zeros_like(a, dtype=None, **kwargs):
    return full_like(a, 0, dtype)


def ones_like(a, dtype=None, **kwargs):
    return full_like(a, 1, dtype)


def empty_like(a, dtype=None, **kwargs):
    return full_like(a, 0, dtype)


def full_like(a, fill_value, dtype=None, **kwargs):
    a = _operand(a)
    dt = _np.dtype(dtype) if dtype is not None else aval_of(a).dtype
    if isinstance(fill_value, Tracer):     # a traced fill: its derivative is the sum of the output's
        return broadcast_to(astype(fill_value, dt), _shape(a))
    return P.full(_shape(a), fill_value, dt)


def copy(a, **kwargs):
    a = _operand(a)
    return _fresh(a) if isinstance(a, Tracer) else _np.array(a)


def shape(a):
    return _shape(_operand(a))


def ndim(a):
    return len(_shape(_operand(a)))


def size(a, axis=None):
    s = _shape(_operand(a))
    return math.prod(s) if axis is None else s[axis]

