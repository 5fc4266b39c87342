"""Complex numbers: values and dtypes against NumPy (both tiers), derivatives
against finite differences (forward, reverse, second order, under vmap), the
convention of grad (JAX's: df/dx - i df/dy for real f of z = x + iy) on
examples with known answers, holomorphic=True, and the special points (0 for
abs, angle and log; the branch cut of sqrt and log along the negative reals).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import jitgrad
from jitgrad.testing import check_grads, numerical_grad
from helpers import dot_product_check

Z = np.array([0.4 + 0.03j, -1.0 + 2.0j, 3.0 - 1.0j, 0.7 + 0.6j])
M = np.array([[1 + 2j, 0.5 - 1j], [2.0 + 0.1j, -0.3 - 1j], [0.3 + 0.3j, 1.5 - 0.2j]])
# on the branch cut from both sides, at 0, on the axes, an infinity, a NaN
SPECIAL = np.array([-1.0 + 0.0j, complex(-1.0, -0.0), 0j, complex(-0.0, 0.0), 2.0 + 0j, 1j, -2j,
                    complex(np.inf, 0.0), complex(np.nan, 1.0)])

UNARY = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "reciprocal": np.reciprocal,
    "square": np.square, "negative": np.negative, "real": np.real, "imag": np.imag,
    "conj": np.conj, "conjugate": np.conjugate, "angle": np.angle, "abs": np.abs, "sign": np.sign,
    "log10": np.log10, "log2": np.log2, "log1p": np.log1p, "expm1": np.expm1,
    "arcsin": np.arcsin, "arctan": np.arctan, "arcsinh": np.arcsinh, "arctanh": np.arctanh,
    "cube": lambda z: z ** 3, "inverse_square": lambda z: z ** -2, "pow_real": lambda z: z ** 2.5,
    "pow_complex": lambda z: z ** (0.5 + 1j), "complex_base": lambda z: (1 + 2j) ** z,
    "attributes": lambda z: z.real * z.imag + z.conj(), "mixed": lambda z: 1j * z / (z + 2.0) - 3,
}
# smooth where Z is (away from branch cuts and 0)
SMOOTH = [k for k in UNARY if k not in ("arcsin", "arctanh")]


def _same(got, ref, rtol=1e-12):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol, equal_nan=True)


# ---------------------------------------------------------------------------
# Values and dtypes (interpreter; the compiled tier below)


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_unary_values(name, dtype):
    f = UNARY[name]
    for z in (Z.astype(dtype), SPECIAL.astype(dtype), dtype(0.4 + 0.3j)):
        with np.errstate(all="ignore"):
            _same(jitgrad.jit(f)(z), f(z), rtol=1e-12 if dtype == np.complex128 else 2e-6)


def test_promotion_follows_numpy():
    f32, f64 = np.ones(2, np.float32), np.ones(2)
    c64, c128 = np.ones(2, np.complex64), np.ones(2, np.complex128)
    cases = [
        (lambda x, z: x + z, (f32, c64)), (lambda x, z: x * z, (f64, c64)),
        (lambda x, z: x - z, (np.float64(2.0), c64)), (lambda x, z: x / z, (np.float32(2.0), c64)),
        (lambda x, z: x * z, (np.arange(2), c64)), (lambda z, _: z * 2.5, (c64, f32)),
        (lambda x, _: x + 1j, (f32, f32)), (lambda x, _: x * 1j, (np.arange(2), f32)),
        (lambda z, _: z * np.complex128(1j), (f32, f32)), (lambda z, w: z @ w, (c64, f64)),
        (lambda z, w: np.where(z.real > 0, z, w), (c64, f32)), (lambda z, w: z ** w, (c64, f64)),
        (lambda z, _: np.mean(z), (np.ones(2, np.complex64), f32)), (lambda z, _: z / 2, (c128, f32)),
    ]
    for f, args in cases:
        _same(jitgrad.jit(f)(*args), f(*args))


def test_python_complex_arguments_constants_and_outputs():
    _same(jitgrad.jit(lambda x, c: x * c)(np.ones(2), 2j), np.ones(2) * 2j)
    _same(jitgrad.jit(lambda x: 1j)(np.ones(2)), np.asarray(1j))
    const = np.array([1 + 1j, 2 - 1j])
    _same(jitgrad.jit(lambda x: x * const)(np.ones(2, np.float32)), np.ones(2, np.float32) * const)
    _same(jitgrad.jit(lambda x: complex(1, 2) * x)(np.float32(3)), complex(1, 2) * np.float32(3))


def test_complex_tests_and_attributes_on_traced_values():
    def f(z, x):
        return (np.iscomplexobj(z), np.iscomplexobj(x), np.isrealobj(x), np.iscomplex(z),
                np.isreal(z), np.real(x), np.imag(x), np.conj(x), np.angle(x), np.angle(z, deg=True),
                np.isnan(z), np.isinf(z), np.isfinite(z), z == 1j, z.imag, x.real, x.imag)
    z = np.array([1 + 0j, 1j, complex(np.inf, 1), complex(np.nan, 0)])
    x = np.array([-2.0, 0.0, 3.0, -0.0])
    for got, ref in zip(jitgrad.jit(f)(z, x), f(z, x)):
        _same(got, ref)
    i = np.arange(3)
    _same(jitgrad.jit(np.angle)(i), np.angle(i))
    _same(jitgrad.jit(np.imag)(i), np.imag(i))


def test_real_if_close():
    x = np.array([1.0, 2.0])
    _same(jitgrad.jit(np.real_if_close)(x), x)
    with pytest.raises(NotImplementedError, match="depends on the values"):
        jitgrad.jit(np.real_if_close)(Z)


def test_astype_to_real_warns_and_drops_the_imaginary_part():
    f = jitgrad.jit(lambda z: (z.astype(np.float32), z.astype(int), z.astype(bool), z.astype(np.complex64)))
    z = np.array([1.5 + 2j, -0.5 - 1j, 1j, 0j])
    with pytest.warns(np.exceptions.ComplexWarning):
        got = f(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        for g, r in zip(got, (z.astype(np.float32), z.astype(int), z.astype(bool), z.astype(np.complex64))):
            _same(g, r)
        # the derivative of the real part: the real part of the tangent
        _same(jitgrad.grad(lambda z: np.sum(z.astype(float) ** 2))(z), 2 * z.real + 0j)
        _same(jitgrad.jvp(lambda x: x.astype(complex) * 1j, (np.ones(2),), (np.ones(2),))[1], np.full(2, 1j))


def test_products_reductions_and_structure():
    a, b = M, M.T * 0.5 + 1
    fs = [np.dot, np.matmul, lambda a, b: np.einsum("ij,jk->ik", a, b), lambda a, b: np.tensordot(a, b, 1),
          np.vdot, lambda a, b: np.inner(a, b.T), lambda a, b: np.outer(a, b),
          lambda a, b: (np.sum(a), np.mean(a, axis=0), np.prod(a), np.cumsum(a, axis=1), np.var(a), np.std(b)),
          lambda a, b: (a.T[::-1], a.reshape(2, 3), a[[0, 2], 1], np.concatenate([a, b.T]), np.stack([a, a])),
          lambda a, b: (np.where(a.real > 0.5, a, 0), np.select([a.imag > 0], [a], 1j), np.linalg.norm(a)),
          lambda a, b: (np.trace(a @ b), np.diagonal(a @ b), np.diff(a, axis=0), np.sum(np.abs(a) ** 2))]
    for f in fs:
        got, ref = jitgrad.jit(f)(a, b), f(a, b)
        for g, r in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
            _same(g, r, rtol=1e-12)
    assert jitgrad.jit(np.vdot)(Z, Z).imag == 0       # the first argument is conjugated


# ---------------------------------------------------------------------------
# Derivatives against finite differences: forward and reverse, second order


@pytest.mark.parametrize("name", SMOOTH)
def test_unary_derivatives(name):
    f = UNARY[name]
    for z in (Z, 0.4 + 0.03j, M):
        check_grads(f, (z,), order=2)


def test_derivatives_at_complex64():
    check_grads(lambda z: np.exp(z) * z, (Z.astype(np.complex64),), order=2)


BINARY = [lambda a, b: a * b, lambda a, b: a / b, lambda a, b: a ** b, lambda a, b: a + b,
          lambda a, b: a - b, np.dot, np.vdot, lambda a, b: np.einsum("ij,ij->i", a, b),
          lambda a, b: np.tensordot(a, b, 2), lambda a, b: np.where(np.abs(b) > 1, a, b)]


@pytest.mark.parametrize("k", range(len(BINARY)))
def test_binary_derivatives_complex_and_mixed(k):
    f = BINARY[k]
    for a, b in ((M, M * 0.5 + 1), (M, np.abs(M)), (np.abs(M) + 0.5, M)):
        b = b.T if f is np.dot else b
        check_grads(f, (a, b), order=2)


def test_reductions_and_structure_derivatives():
    for f in (np.sum, np.mean, np.prod, lambda z: np.cumsum(z, axis=0), lambda z: np.var(z),
              lambda z: z.T @ z, lambda z: z.conj().T @ z, lambda z: z[:0:-1, 0] * z[1:, 1],
              lambda z: np.linalg.norm(z), lambda z: np.sum(z * z.conj()).real):
        check_grads(f, (M,), order=2)


def test_real_to_complex_and_back():
    x = np.array([0.3, -1.2, 2.0])
    for f in (lambda x: np.exp(1j * x), lambda x: np.abs(np.exp((1 + 2j) * x) + x),
              lambda x: np.angle(x + 1j), lambda x: (x + 0j) ** 0.5 + x.astype(complex)):
        check_grads(f, (x,), order=2)


def test_dot_product_helper_on_complex(rng):
    dot_product_check(lambda z, w: np.sin(z) * w.conj() + z.real, [Z, Z[::-1]], rng)


# ---------------------------------------------------------------------------
# The convention of grad, holomorphic=True, special points


def test_grad_convention_known_answers():
    g = jitgrad.grad
    _same(g(lambda z: np.abs(z) ** 2)(0.3 - 0.7j), np.complex128(2 * (0.3 + 0.7j)))
    _same(g(lambda z: np.sum(np.abs(z) ** 2))(Z), 2 * np.conj(Z))
    _same(g(lambda z: np.sum(np.real(z * z)))(Z), 2 * Z)
    _same(g(lambda z: np.sum(z.imag))(Z), np.full(4, -1j))
    _same(g(lambda z: np.sum(z.real))(Z), np.ones(4, complex))
    _same(g(lambda z: np.sum(np.abs(z)))(Z), np.conj(Z) / np.abs(Z))
    _same(g(lambda z: np.sum(np.angle(z)))(Z), -1j / Z)
    # JAX's example: x**2 + y**2 at 3 + 4i
    _same(g(lambda z: np.real(z) ** 2 + np.imag(z) ** 2)(3.0 + 4.0j), np.complex128(6 - 8j))
    # the same numbers as finite differences of the real and imaginary parts
    f = lambda z: np.sum(np.abs(np.sin(z) * z) + np.real(np.exp(z)))
    _same(g(f)(Z), numerical_grad(f, Z), rtol=1e-6)
    _same(jitgrad.value_and_grad(f)(Z)[1], numerical_grad(f, Z), rtol=1e-6)


def test_special_points():
    g = jitgrad.grad
    _same(g(lambda z: np.abs(z))(0j), np.complex128(0))            # as JAX: 0 at 0
    _same(g(lambda z: np.angle(z))(0j), np.complex128(0))
    _same(g(lambda z: np.abs(z) ** 2)(0j), np.complex128(0))
    _same(jitgrad.jit(np.angle)(SPECIAL), np.angle(SPECIAL))     # (the signs of zero kept)
    # sqrt and log on both sides of the cut: the derivative of the side NumPy picks
    for z in (complex(-1.0, 0.0), complex(-1.0, -0.0)):
        _same(g(np.sqrt, holomorphic=True)(z), 0.5 / np.sqrt(np.complex128(z)))
        _same(g(np.log, holomorphic=True)(z), np.complex128(1 / z))
    above = g(lambda z: np.imag(np.sqrt(z)))(complex(-4.0, 0.0))
    below = g(lambda z: np.imag(np.sqrt(z)))(complex(-4.0, -0.0))
    # (Im sqrt(-4 + dx) = 2 - dx / 4 above the cut, -2 + dx / 4 below it)
    assert above.real == pytest.approx(-0.25) and below.real == pytest.approx(0.25)
    with np.errstate(all="ignore"):
        assert np.isinf(g(lambda z: np.real(np.log(z)))(0j).real)


def test_holomorphic():
    z0 = 0.4 + 0.3j
    f = lambda z: np.sin(z) * z ** 2
    fp = lambda z: np.cos(z) * z ** 2 + 2 * z * np.sin(z)
    _same(jitgrad.grad(f, holomorphic=True)(z0), np.complex128(fp(z0)))
    v, d = jitgrad.value_and_grad(f, holomorphic=True)(z0)
    _same(v, np.complex128(f(z0)))
    _same(d, np.complex128(fp(z0)))
    h = lambda z: np.sin(z) * z
    jac = np.diag(np.cos(Z) * Z + np.sin(Z))
    _same(jitgrad.jacfwd(h, holomorphic=True)(Z), jac)
    _same(jitgrad.jacrev(h, holomorphic=True)(Z), jac)
    _same(jitgrad.hessian(lambda z: np.sum(z ** 3), holomorphic=True)(Z), np.diag(6 * Z))
    _same(jitgrad.grad(jitgrad.grad(f, holomorphic=True), holomorphic=True)(z0),
          np.complex128(-np.sin(z0) * z0 ** 2 + 4 * z0 * np.cos(z0) + 2 * np.sin(z0)), rtol=1e-10)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jitgrad.grad(f)(z0)
    with pytest.raises(TypeError, match="requires complex inputs"):
        jitgrad.jacrev(np.sin, holomorphic=True)(np.ones(2))


def test_jacobians_without_holomorphic():
    # real outputs of complex inputs (reverse mode), complex outputs of real inputs (forward mode)
    _same(jitgrad.jacrev(lambda z: np.abs(z) ** 2)(Z), np.diag(2 * np.conj(Z)))
    x = np.array([0.5, 1.0])
    _same(jitgrad.jacfwd(lambda x: np.exp(1j * x))(x), np.diag(1j * np.exp(1j * x)))
    with pytest.raises(TypeError, match="real-valued inputs"):
        jitgrad.jacfwd(np.abs)(Z)


def test_vmap():
    _same(jitgrad.vmap(lambda z: np.abs(z) ** 2 + z.real)(Z), np.abs(Z) ** 2 + Z.real)
    _same(jitgrad.vmap(lambda z: np.exp(z) * 1j)(M), np.exp(M) * 1j)
    _same(jitgrad.vmap(jitgrad.grad(lambda z: np.abs(z) ** 2))(Z), 2 * np.conj(Z))
    _same(jitgrad.vmap(lambda z, w: np.vdot(z, w))(M, M[::-1]), np.array([np.vdot(a, b) for a, b in zip(M, M[::-1])]))
    _same(jitgrad.vmap(jitgrad.grad(np.sin, holomorphic=True))(Z), np.cos(Z))


def test_check_grads_catches_a_conjugated_rule():
    @jitgrad.custom_jvp
    def square(z):
        return z * z

    @square.defjvp
    def square_jvp(primals, tangents):
        (z,), (t,) = primals, tangents
        return z * z, 2 * np.conj(z) * t          # wrong: the derivative is 2 z
    with pytest.raises(AssertionError, match="forward mode"):
        check_grads(square, (Z,), order=1, modes=("fwd",))
    with pytest.raises(AssertionError, match="reverse mode"):
        check_grads(square, (Z,), order=1, modes=("rev",))


# ---------------------------------------------------------------------------
# The compiled tier: few, small compiled functions, several checks each


# (Numba's complex inverse trigonometric functions are slow to compile: one of
# them stands for the others, which are the same kind of mapping to cmath)
_NOT_COMPILED = ("conjugate", "negative", "arcsin", "arcsinh", "arctanh")


def _everything(z):
    with np.errstate(all="ignore"):
        return tuple(f(z) for k, f in UNARY.items() if k not in _NOT_COMPILED) + (
            np.sum(z), np.prod(z), np.cumsum(z), np.dot(z, z), z * np.float32(2),
            np.where(z.real > 0, z, 1j), z.astype(np.complex64), np.abs(z) ** 2)


# complex64: the functions whose code differs by dtype (and promotion with float32)
_SOME = ("exp", "log", "sqrt", "tanh", "reciprocal", "abs", "angle", "pow_real", "sign", "log2")


def _some(z):
    with np.errstate(all="ignore"):
        return tuple(UNARY[k](z) for k in _SOME) + (np.sum(z), z * np.float32(2), z / z[::-1])


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_compiled_values(dtype):
    # (at infinities Numba's complex functions make NaN in other places than
    # NumPy's: those are left to the interpreter, which is NumPy)
    z = np.concatenate([Z, SPECIAL[np.isfinite(SPECIAL)]]).astype(dtype)
    f = _everything if dtype == np.complex128 else _some
    with jitgrad.config(compile="always"), np.errstate(all="ignore"):
        got = jitgrad.jit(f)(z)
    for g, r in zip(got, f(z)):
        _same(g, r, rtol=1e-12 if dtype == np.complex128 else 2e-6)


def test_compiled_expm1_keeps_its_digits_at_small_arguments():
    # exp(z) - 1 would keep about 6 of 16 digits of the real part at |z| = 1e-10
    z = np.array([1e-10 + 1e-10j, 1e-20 + 3e-20j, -1e-12 + 1e-8j, 0.3 - 2.0j, 1e-5j])
    with jitgrad.config(compile="always"):
        got = jitgrad.jit(lambda a, b: (np.expm1(a), np.expm1(b)))(z, z.astype(np.complex64))
    for g, ref, rtol in ((got[0], np.expm1(z), 1e-15), (got[1], np.expm1(z.astype(np.complex64)), 1e-6)):
        assert g.dtype == ref.dtype
        for part in (np.real, np.imag):      # each part to its own digits: no absolute floor
            np.testing.assert_allclose(part(g), part(ref), rtol=rtol, atol=0)


def test_compiled_derivatives():
    def loss(z, x):
        w = np.exp(z) * np.sin(z) + z ** 2.5 / np.sqrt(z) + np.log(z) * 1j + np.tanh(z) / np.cos(z)
        return np.sum(np.abs(w) ** 2 + np.angle(w) * x) + np.real(np.vdot(z, w)) + np.sum(w.imag * x)
    x = np.array([0.5, -1.0, 2.0, 0.25])
    with jitgrad.config(compile="always"):
        g = jitgrad.jit(jitgrad.grad(loss, argnums=(0, 1)))(Z, x)
        hol = jitgrad.jit(jitgrad.grad(lambda z: np.sum(np.exp(z) * z ** 3), holomorphic=True))(Z)
    g_ref = jitgrad.grad(loss, argnums=(0, 1))(Z, x)
    _same(g[0], g_ref[0], rtol=1e-10)
    _same(g[1], g_ref[1], rtol=1e-10)
    _same(g[0], numerical_grad(lambda z: loss(z, x), Z), rtol=1e-5)
    _same(hol, np.exp(Z) * Z ** 3 + 3 * np.exp(Z) * Z ** 2, rtol=1e-12)
