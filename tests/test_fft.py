"""np.fft on traced arrays: values and dtypes against NumPy (n/s, axis/axes,
norm), derivatives against finite differences (forward, reverse, second
order), vmap, errors, and one small compiled function for the compiled tier.
"""
from __future__ import annotations

import numpy as np
import pytest

import jitgrad
from jitgrad.testing import check_grads

_rng = np.random.default_rng(12)
X = _rng.standard_normal((4, 6))
Z = X + 1j * _rng.standard_normal((4, 6))

COMPLEX_IN = {
    "fft": np.fft.fft, "fft_n8": lambda a: np.fft.fft(a, n=8), "fft_n3_axis0": lambda a: np.fft.fft(a, n=3, axis=0),
    "ifft": np.fft.ifft, "ifft_ortho": lambda a: np.fft.ifft(a, norm="ortho"),
    "fft_forward": lambda a: np.fft.fft(a, norm="forward"), "ifft_forward": lambda a: np.fft.ifft(a, norm="forward"),
    "fft2": np.fft.fft2, "ifft2": np.fft.ifft2, "fftn": np.fft.fftn,
    "ifftn_s": lambda a: np.fft.ifftn(a, s=(3, 7), axes=(0, 1)), "fftn_axis0": lambda a: np.fft.fftn(a, axes=(0,)),
    "fftshift": lambda a: np.fft.fftshift(np.fft.fft(a)), "ifftshift": lambda a: np.fft.ifftshift(a, axes=1),
    "irfft": np.fft.irfft, "irfft_n7": lambda a: np.fft.irfft(a, n=7),
    "irfft_n4_forward": lambda a: np.fft.irfft(a, n=4, norm="forward"), "irfft2": np.fft.irfft2,
    "irfftn": np.fft.irfftn, "irfftn_s": lambda a: np.fft.irfftn(a, s=(5, 9), axes=(0, 1)),
    "irfft_axis0_ortho": lambda a: np.fft.irfft(a, axis=0, norm="ortho"),
}
REAL_IN = {
    "fft_of_real": np.fft.fft, "rfft": np.fft.rfft, "rfft_n5": lambda a: np.fft.rfft(a, n=5),
    "rfft_axis0_ortho": lambda a: np.fft.rfft(a, axis=0, norm="ortho"), "rfft2": np.fft.rfft2,
    "rfftn": np.fft.rfftn, "rfftn_s": lambda a: np.fft.rfftn(a, s=(3, 5), axes=(0, 1)),
    "roundtrip": lambda a: np.fft.irfft(np.fft.rfft(a), n=6),
}
CASES = [(k, f, Z) for k, f in COMPLEX_IN.items()] + [(k, f, X) for k, f in REAL_IN.items()]


def _same(got, ref, rtol):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.dtype == ref.dtype and got.shape == ref.shape, (got.dtype, ref.dtype, got.shape, ref.shape)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.max(np.abs(ref)))


@pytest.mark.parametrize("name, f, a", CASES, ids=[c[0] for c in CASES])
def test_values_and_dtypes(name, f, a):
    _same(jitgrad.jit(f)(a), f(a), 1e-12)
    low = a.astype(np.complex64 if a.dtype.kind == "c" else np.float32)
    _same(jitgrad.jit(f)(low), f(low), 1e-5)


@pytest.mark.parametrize("name, f, a", CASES, ids=[c[0] for c in CASES])
def test_derivatives(name, f, a):
    check_grads(f, (a,), order=2)


def test_known_gradients_and_vmap():
    # Parseval: sum |fft(x)|^2 = n sum |x|^2, so its gradient is 2 n conj(x) (as grad's convention gives)
    g = jitgrad.grad(lambda z: np.sum(np.abs(np.fft.fft(z)) ** 2))(Z[0])
    np.testing.assert_allclose(g, 2 * 6 * np.conj(Z[0]), rtol=1e-12)
    np.testing.assert_allclose(jitgrad.vmap(np.fft.fft)(Z), np.fft.fft(Z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jitgrad.vmap(lambda x: np.fft.irfft(x, n=5))(Z), np.fft.irfft(Z, n=5, axis=1),
                               rtol=1e-12, atol=1e-12)
    hv = jitgrad.vmap(jitgrad.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2)))(X)
    np.testing.assert_allclose(hv, [jitgrad.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2))(r) for r in X])


def test_errors_follow_numpy():
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        jitgrad.jit(lambda a: np.fft.fft(a, n=0))(Z)
    with pytest.raises(ValueError, match="Invalid norm value"):
        jitgrad.jit(lambda a: np.fft.fft(a, norm="bad"))(Z)
    with pytest.raises(TypeError, match="real arrays"):
        jitgrad.jit(np.fft.rfft)(Z)
    with pytest.raises(NotImplementedError, match="numpy.fft.hfft"):
        jitgrad.jit(np.fft.hfft)(Z)


def test_compiled():
    def f(z, x):
        return (np.fft.fft(z), np.fft.irfft(z[:, :4], n=6), np.fft.rfft2(x), np.fft.ifftn(z, axes=(0,), norm="ortho"),
                jitgrad.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2 * np.arange(4)))(x[0]))
    with jitgrad.config(compile="always"):
        got = jitgrad.jit(f)(Z, X)
    ref = f(Z, X)          # (outside jit, jitgrad.grad runs on the interpreter)
    for g, r in zip(got, ref):
        _same(g, r, 1e-12)
