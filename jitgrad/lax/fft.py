"""The discrete Fourier transform: one primitive, ``fft``, the complex
transform (forward, or inverse with NumPy's 1/n) over given axes.

It is linear, so its jvp is itself on the tangent; and the DFT matrix is
symmetric (``F[j, k] = exp(-2 pi i j k / n)``), so under the real pairing
``Re(sum(a * b))`` of :mod:`jitgrad.lax.complex` its transpose is also
itself (no conjugation).  The real transforms (``rfft``, ``irfft``) are
built on it in :mod:`jitgrad.numpy.fft`.

The compiled code calls NumPy's ``np.fft`` (pocketfft) from an ``objmode``
block: Numba has no FFT of its own.  Part of the primitive set assembled in
:mod:`jitgrad.lax`; import it from there.
"""
from __future__ import annotations

import numpy as np

from ..core.trace import bind
from ..core.ir import Aval
from .elementwise import _new

__all__ = ["fft_p", "fft"]

fft_p = _new("fft", "opaque")


def _impl(x, axes, inverse):
    x = np.asarray(x)
    y = (np.fft.ifftn if inverse else np.fft.fftn)(x, axes=axes)
    return np.asarray(y, x.dtype)


def _shape(x, axes, inverse):
    if np.dtype(x.dtype).kind != "c":
        raise TypeError(f"fft takes complex arrays, got {np.dtype(x.dtype)} (convert first)")
    if any(not 0 <= a < len(x.shape) for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"fft: axes {axes} do not name distinct axes of an array of shape {x.shape}")
    return Aval(x.shape, x.dtype)


def _code(out, ins, in_avals, out_aval, lit, axes, inverse):
    dt = np.dtype(out_aval.dtype)
    typ = f"{dt.name}[{', '.join([':'] * (len(out_aval.shape) - 1) + ['::1'])}]"
    call = "np.fft.ifftn" if inverse else "np.fft.fftn"
    return [f"with objmode({out}='{typ}'):   # NumPy's FFT (Numba has none)",
            f"    {out} = np.ascontiguousarray({call}({ins[0]}, axes={tuple(axes)!r}), np.{dt.name})"]


fft_p.impl = _impl
fft_p.shape = _shape
fft_p.jvp = lambda primals, tangents, out, axes, inverse: (
    None if tangents[0] is None else fft(tangents[0], axes, inverse))
fft_p.transpose = lambda ct, x, axes, inverse: [fft(ct, axes, inverse)]
fft_p.code = _code
fft_p.batch = lambda args, batched, size, axes, inverse: fft(
    args[0], tuple(a + 1 for a in axes), inverse)


def fft(x, axes, inverse=False):
    """The DFT of complex ``x`` over ``axes`` (the inverse, with 1/n, if ``inverse``)."""
    axes = tuple(int(a) for a in axes)
    if not axes:
        return x
    return bind(fft_p, x, axes=axes, inverse=bool(inverse))
