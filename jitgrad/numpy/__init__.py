"""NumPy's interface, built from jitgrad's primitives (``jitgrad.numpy``).

Every function here accepts tracers, NumPy arrays and Python scalars, follows
NumPy's promotion (Python scalars are weak) and broadcasting rules, and inserts
the explicit ``convert`` and ``broadcast_in_dim`` equations the primitives
expect.  Traced arrays dispatch here from NumPy itself (``__array_ufunc__`` and
``__array_function__``), so user code keeps ``import numpy as np``; this
namespace also offers what NumPy cannot dispatch, such as building an array
from traced scalars (:func:`stack`, :func:`array`).

The functions live in one module per family:

- ``base``: operands, dtype promotion, broadcasting, axes, ``astype``;
- ``ufuncs``: the elementwise functions, ``where`` and ``clip``;
- ``reductions``: sums, products, extrema, cumsum and statistics;
- ``shapes``: reshaping, transposing, joining, creation and copies;
- ``rounding``: rounding, integer division and bitwise functions;
- ``products``: dot, matmul, tensordot, ...;
- ``linear_algebra``: ``linalg`` (np.linalg; ``scipy_linalg`` answers scipy.linalg while tracing);
- ``indexing``: ``x[key]``, take, diagonal, trace, diff, sort, arg*;
- ``einsum``;
- ``elementwise``: fmin, fmax, logaddexp2, sinc, nan_to_num, select;
- ``arrays``: flipping, rolling, repeating, splitting, joins, pad, kron, meshgrid, linspace;
- ``statistics``: nan-reductions, average, median, quantiles, partition, cov, corrcoef;
- ``calculus``: cumprod, gradient, trapezoid, cross, convolve, correlate, interp, searchsorted;
- ``complex``: real, imag, conj, angle, iscomplexobj and the other complex tests.

This namespace is every public function they define (a new one appears here,
and NumPy dispatches to it by name: see :mod:`jitgrad.numpy.dispatch`).
"""
from .base import bool_, e, float32, float64, inf, int32, int64, nan, newaxis, pi  # noqa: F401
from .dispatch import IMPLEMENTATIONS as _IMPLEMENTATIONS

globals().update(_IMPLEMENTATIONS)
