"""``tf.linalg``: matrix products and a few matrix functions, on Tensors."""
from __future__ import annotations

import numpy as np

from .convert import pair, tensor, tensor_result


def _t(x):
    """The last two axes swapped."""
    return np.swapaxes(x, -1, -2)


@tensor_result
def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           name=None):
    """The matrix product ``a @ b`` (over leading batch axes), of one dtype;
    ``transpose_*`` (``adjoint_*``, for real values) transposes an operand first."""
    a, b = pair(a, b, "matmul")
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: both operands must have at least 2 dimensions, got shapes "
                         f"{a.shape} and {b.shape} (use matvec, or reshape)")
    if transpose_a or adjoint_a:
        a = _t(a)
    if transpose_b or adjoint_b:
        b = _t(b)
    return np.matmul(a, b)


@tensor_result
def matvec(a, b, transpose_a=False, name=None):
    """The matrix-vector product ``a @ b``."""
    a, b = pair(a, b, "matvec")
    return np.matmul(_t(a) if transpose_a else a, b)


@tensor_result
def matrix_transpose(a, name=None, conjugate=False):
    """``a`` with its last two axes swapped."""
    return _t(tensor(a))


@tensor_result
def trace(x, name=None):
    """The sum of the diagonal of the last two axes."""
    return np.trace(tensor(x), axis1=-2, axis2=-1)


@tensor_result
def diag_part(input, name=None):
    """The diagonal of a matrix."""
    return np.diagonal(tensor(input), axis1=-2, axis2=-1)


@tensor_result
def det(input, name=None):
    """The determinant."""
    return np.linalg.det(tensor(input))


@tensor_result
def inv(input, adjoint=False, name=None):
    """The inverse matrix."""
    out = np.linalg.inv(tensor(input))
    return _t(out) if adjoint else out


@tensor_result
def solve(matrix, rhs, adjoint=False, name=None):
    """``x`` with ``matrix @ x == rhs``."""
    matrix, rhs = pair(matrix, rhs, "solve")
    return np.linalg.solve(_t(matrix) if adjoint else matrix, rhs)


@tensor_result
def norm(tensor_, ord="euclidean", axis=None, keepdims=False, name=None):
    """The Euclidean norm (of all entries, or along ``axis``)."""
    if ord not in ("euclidean", 2, "fro") or (ord == 2 and axis is None):
        raise NotImplementedError("jitgrad.tf.linalg.norm: only the Euclidean norm is supported")
    x = tensor(tensor_)
    ax = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.sqrt(np.sum(np.square(x), axis=ax, keepdims=keepdims))
