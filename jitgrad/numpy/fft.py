"""``np.fft`` on traced arrays: ``fft``, ``ifft``, ``fft2``, ``ifft2``,
``fftn``, ``ifftn``, the real transforms ``rfft``, ``irfft``, ``rfft2``,
``irfft2``, ``rfftn``, ``irfftn``, and ``fftshift``/``ifftshift``, with
NumPy's ``n``/``s`` (cropping or zero-padding), ``axis``/``axes`` and
``norm`` ("backward", "ortho", "forward").

Everything is built on the complex transform of :mod:`jitgrad.lax.fft`:

- ``rfft(x)`` is the first ``n // 2 + 1`` entries of ``fft(x + 0j)``;
- ``irfft(X, n)`` is ``Re(ifft(w * X))`` with ``X`` zero-padded to ``n``
  entries and weights ``w`` of 1 for the zero frequency (and the Nyquist
  one when ``n`` is even) and 2 for the others, which counts each
  frequency's conjugate partner; it ignores the imaginary parts of those
  two entries, as NumPy's does.

So the derivatives of all of them come from the linear transform's rules.
"""
from __future__ import annotations

import math

import numpy as _np

from .. import lax as P
from ..core.trace import aval_of
from .base import _axis_index, _operand, _shape, result_dtype
from .arrays import roll

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "fftshift", "ifftshift"]

_NORMS = (None, "backward", "ortho", "forward")


def _complex(a):
    """``a`` in the complex dtype of NumPy's FFT (complex64 for float32 and complex64)."""
    dt = result_dtype(a)
    want = P.complex_dtype(dt if dt.kind in "fc" else _np.float64)
    if dt.kind == "f" and dt.itemsize < 4:
        want = _np.dtype(_np.complex64)
    return P.convert(a, want)


def _resize(x, n, axis):
    """``x`` cropped or zero-padded to ``n`` entries along ``axis``."""
    shape = _shape(x)
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    if n == shape[axis]:
        return x
    if n < shape[axis]:
        stop = shape[:axis] + (n,) + shape[axis + 1:]
        return P.slice_(x, (0,) * len(shape), stop, (1,) * len(shape))
    new = shape[:axis] + (n,) + shape[axis + 1:]
    return P.pad(x, new, (0,) * len(shape), (1,) * len(shape))


def _scale(y, n, norm, inverse):
    """NumPy's normalisation: the transform computes 1 forward and 1/n inverse."""
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm}; should be "backward","ortho" or "forward".')
    if norm in (None, "backward"):
        return y
    factor = (math.sqrt(n) if norm == "ortho" else n) if inverse else \
        (1 / math.sqrt(n) if norm == "ortho" else 1 / n)
    dt = aval_of(y).dtype
    return P.mul(y, _np.asarray(factor, P.real_dtype(dt)).astype(dt)[()])


def _axes_and_sizes(a, s, axes, last_default=None):
    """NumPy's rules for ``s`` and ``axes`` of the n-dimensional transforms:
    all axes by default, the last ``len(s)`` when only ``s`` is given."""
    shape = _shape(a)
    nd = len(shape)
    if axes is None:
        axes = tuple(range(nd)) if s is None else tuple(range(nd - len(s), nd))
    axes = tuple(_axis_index(ax, nd) for ax in axes)
    if s is None:
        s = [shape[ax] for ax in axes]
        if last_default is not None and axes:
            s[-1] = last_default(shape[axes[-1]])
    elif len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    return axes, [int(n) for n in s]


def _check_ndim(a):
    if len(_shape(a)) == 0:
        raise IndexError("tuple index out of range (an FFT needs an array of at least one dimension)")


def _complex_transform(a, s, axes, norm, inverse):
    a = _operand(a)
    _check_ndim(a)
    axes, s = _axes_and_sizes(a, s, axes)
    x = _complex(a)
    for ax, n in zip(axes, s):
        x = _resize(x, n, ax)
    return _scale(P.fft(x, axes, inverse), math.prod(s), norm, inverse)


def fft(a, n=None, axis=-1, norm=None, out=None):
    """The one-dimensional DFT along ``axis``."""
    return _complex_transform(a, None if n is None else [n], [axis], norm, False)


def ifft(a, n=None, axis=-1, norm=None, out=None):
    """The one-dimensional inverse DFT along ``axis``."""
    return _complex_transform(a, None if n is None else [n], [axis], norm, True)


def fftn(a, s=None, axes=None, norm=None, out=None):
    return _complex_transform(a, s, axes, norm, False)


def ifftn(a, s=None, axes=None, norm=None, out=None):
    return _complex_transform(a, s, axes, norm, True)


def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    return _complex_transform(a, s, axes, norm, False)


def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    return _complex_transform(a, s, axes, norm, True)


def rfftn(a, s=None, axes=None, norm=None, out=None):
    """The DFT of a real array: over the last of ``axes``, only the
    frequencies 0 ... n // 2 (the others are their conjugates)."""
    a = _operand(a)
    _check_ndim(a)
    if result_dtype(a).kind == "c":
        raise TypeError("rfft takes real arrays, got a complex one (use fft)")
    axes, s = _axes_and_sizes(a, s, axes)
    y = _complex_transform(a, s, axes, norm, False)
    return _resize(y, s[-1] // 2 + 1, axes[-1])


def irfftn(a, s=None, axes=None, norm=None, out=None):
    """The inverse of :func:`rfftn`: a real array of ``s`` entries along
    ``axes`` (by default 2 (m - 1) along the last, for m entries there)."""
    a = _operand(a)
    _check_ndim(a)
    axes, s = _axes_and_sizes(a, s, axes, last_default=lambda m: 2 * (m - 1))
    x = _complex(a)
    for ax, n in zip(axes[:-1], s[:-1]):
        x = _resize(x, n, ax)
    last, n = axes[-1], s[-1]
    if n < 1:
        raise ValueError(f"Invalid number of data points ({n}) specified")
    m = n // 2 + 1
    x = _resize(x, m, last)
    # the weights: 1 for frequency 0 (and n / 2 when n is even), 2 for the others
    w = _np.full(m, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    shape = [1] * len(_shape(x))
    shape[last] = m
    x = P.mul(x, P.broadcast_in_dim(w.reshape(shape).astype(aval_of(x).dtype), _shape(x),
                                    tuple(range(len(shape)))))
    y = P.real(P.fft(_resize(x, n, last), axes, True))
    return _scale(y, math.prod(s), norm, True)


def rfft(a, n=None, axis=-1, norm=None, out=None):
    return rfftn(a, None if n is None else [n], [axis], norm)


def irfft(a, n=None, axis=-1, norm=None, out=None):
    return irfftn(a, None if n is None else [n], [axis], norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    return rfftn(a, s, axes, norm)


def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    return irfftn(a, s, axes, norm)


def fftshift(x, axes=None):
    """The zero frequency moved to the centre (``roll`` by n // 2 along ``axes``)."""
    x = _operand(x)
    axes = tuple(range(len(_shape(x)))) if axes is None else \
        ((axes,) if isinstance(axes, int) else tuple(axes))
    return roll(x, [_shape(x)[ax] // 2 for ax in axes], axes)


def ifftshift(x, axes=None):
    """The inverse of :func:`fftshift`."""
    x = _operand(x)
    axes = tuple(range(len(_shape(x)))) if axes is None else \
        ((axes,) if isinstance(axes, int) else tuple(axes))
    return roll(x, [-(_shape(x)[ax] // 2) for ax in axes], axes)
