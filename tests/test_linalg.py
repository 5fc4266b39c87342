"""np.linalg and scipy.linalg inside traced functions: values against NumPy and
SciPy (both tiers, float32 and float64, stacks), derivatives against finite
differences (forward, reverse, second order), the dot-product test, vmap, and
errors.  Eigenvector and singular-vector tests use gauge-invariant functions
of them (V f(w) V^T, U S V^T, |Q|), since their signs are not determined."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

import jitgrad
from jitgrad.testing import check_grads

from helpers import dot_product_check

RNG = np.random.default_rng(12)
A4 = RNG.standard_normal((4, 4))
SPD = A4 @ A4.T + 4 * np.eye(4)
# a symmetric positive-definite matrix plus junk in the upper triangle, which
# cholesky and eigh (lower) must ignore
SPD_JUNK = SPD + np.triu(RNG.standard_normal((4, 4)), 1)
GEN = A4 + 3 * np.eye(4)
TALL = RNG.standard_normal((5, 3))
WIDE = TALL.T.copy()
VEC = RNG.standard_normal(5)


def eig_fn(a):
    w, v = np.linalg.eigh(a)
    return v * np.sin(w)[..., None, :] @ np.swapaxes(v, -1, -2)


def usv(b, full=False):
    u, s, vt = np.linalg.svd(b, full_matrices=full)
    k = s.shape[-1]
    return u[..., :, :k] * s[..., None, :] @ vt[..., :k, :]


# name -> (function, arguments, derivative order checked)
CASES = {
    "cholesky": (np.linalg.cholesky, (SPD_JUNK,), 2),
    "cholesky_upper": (lambda a: np.linalg.cholesky(a, upper=True), (SPD_JUNK.T,), 1),
    "eigvalsh": (np.linalg.eigvalsh, (SPD_JUNK,), 2),
    "eigvalsh_U": (lambda a: np.linalg.eigvalsh(a, UPLO="U"), (SPD_JUNK.T,), 1),
    "eigh_gauge_free": (eig_fn, (SPD_JUNK,), 1),
    "eigh_v_squared": (lambda a: np.linalg.eigh(a)[1] ** 2, (SPD,), 1),
    "svd_values": (lambda b: np.linalg.svd(b, compute_uv=False), (TALL,), 2),
    "svd_usv_tall": (usv, (TALL,), 1),
    "svd_usv_wide": (usv, (WIDE,), 1),
    "svd_full_square": (lambda a: usv(a, True), (GEN,), 1),
    "svd_u_squared": (lambda b: np.linalg.svd(b, full_matrices=False)[0] ** 2, (TALL,), 1),
    "qr_q_abs": (lambda b: np.abs(np.linalg.qr(b)[0]), (TALL,), 1),
    "qr_r_abs": (lambda b: np.abs(np.linalg.qr(b, mode="r")), (TALL,), 1),
    "qr_product": (lambda b: np.matmul(*np.linalg.qr(b)), (TALL,), 1),
    "qr_complete_square": (lambda a: np.abs(np.linalg.qr(a, mode="complete")[1]), (GEN,), 1),
    "qr_wide": (lambda b: np.matmul(*np.linalg.qr(b)) + np.abs(np.linalg.qr(b, mode="r")), (WIDE,), 1),
    "svd_values_of_full": (lambda b: np.linalg.svd(b)[1], (TALL,), 1),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], (GEN,), 2),
    "slogdet_sign": (lambda a: np.linalg.slogdet(a)[0] * np.sum(a), (GEN,), 1),
    "pinv_tall": (np.linalg.pinv, (TALL,), 1),
    "pinv_wide": (np.linalg.pinv, (WIDE,), 1),
    "lstsq": (lambda b, y: np.linalg.lstsq(b, y)[0], (TALL, VEC), 1),
    "lstsq_resid": (lambda b, y: np.linalg.lstsq(b, y)[1], (TALL, VEC[:, None] * [1.0, 2.0]), 1),
    "matrix_power_5": (lambda a: np.linalg.matrix_power(a, 5), (GEN / 3,), 1),
    "matrix_power_-2": (lambda a: np.linalg.matrix_power(a, -2), (GEN,), 1),
    "matrix_power_0": (lambda a: np.linalg.matrix_power(a, 0) * a, (GEN,), 1),
    "multi_dot": (lambda a, b: np.linalg.multi_dot([VEC, b, a[:3, :3], b.T, VEC]), (GEN, TALL), 1),
    "cond": (np.linalg.cond, (GEN,), 1),
    "cond_fro": (lambda a: np.linalg.cond(a, "fro"), (GEN,), 1),
    "tensorinv": (lambda a: np.linalg.tensorinv(a.reshape(4, 2, 2), ind=1), (GEN,), 1),
    "tensorsolve": (lambda a, y: np.linalg.tensorsolve(a.reshape(2, 2, 4), y[:4].reshape(2, 2)),
                    (GEN, VEC), 1),
    "solve_triangular": (lambda a, y: sl.solve_triangular(a, y[:4]), (GEN, VEC), 2),
    "solve_triangular_flags": (lambda a, y: sl.solve_triangular(
        a, np.outer(y[:4], y[:2]), lower=True, trans="T", unit_diagonal=True), (GEN, VEC), 1),
    "scipy_cholesky": (lambda a: sl.cholesky(a), (SPD_JUNK.T,), 1),
    "cho_solve": (lambda a, y: sl.cho_solve(sl.cho_factor(a), y[:4]), (SPD_JUNK.T, VEC), 1),
    "cho_solve_lower": (lambda a, y: sl.cho_solve(sl.cho_factor(a, lower=True), y[:4]),
                        (SPD_JUNK, VEC), 1),
    "expm": (lambda a: sl.expm(a * 0.5), (A4,), 2),
    "expm_large_norm": (lambda a: sl.expm(a * 2.0), (A4,), 1),
    "scipy_solve_sym": (lambda a, y: sl.solve(a, y[:4], assume_a="sym", lower=True),
                        (SPD_JUNK, VEC), 1),
}

CASES["vector_norm_axes"] = (lambda b: np.linalg.vector_norm(b.reshape(5, 3, 1), axis=(2, 0), ord=3,
                                                             keepdims=True), (TALL,), 2)
CASES["matrix_norm_nuc"] = (lambda b: np.linalg.matrix_norm(np.stack([b, 2 * b]), ord="nuc"), (TALL,), 1)
CASES["array_api"] = (lambda a: np.linalg.trace(np.linalg.matmul(a, np.linalg.matrix_transpose(a)))
                      + np.linalg.diagonal(a, offset=1), (GEN,), 1)

NORM_VECTOR = [None, 2, 1, np.inf, -np.inf, 0, 3, 0.5, -1.5]
NORM_MATRIX = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]
for _o in NORM_VECTOR:
    CASES[f"norm_vec_{_o}"] = (lambda b, o=_o: np.linalg.norm(b, o, axis=0), (TALL,), 2)
for _o in NORM_MATRIX:
    CASES[f"norm_mat_{_o}"] = (lambda b, o=_o: np.linalg.norm(b, o), (TALL,), 2 if _o in (None, "fro") else 1)


@pytest.mark.parametrize("name", list(CASES))
def test_value_and_derivatives(name):
    f, args, order = CASES[name]
    ref = f(*args)
    out = jitgrad.jit(f)(*args)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    assert np.asarray(out).dtype == np.asarray(ref).dtype
    check_grads(f, args, order=order)


@pytest.mark.parametrize("name", ["cholesky", "eigh_gauge_free", "svd_usv_tall", "qr_product",
                                  "slogdet", "pinv_tall", "solve_triangular", "cho_solve", "expm",
                                  "norm_mat_nuc", "lstsq"])
def test_dot_product(name):
    f, args, _ = CASES[name]
    dot_product_check(f, args, np.random.default_rng(1))


def test_float32_values():
    a32, b32 = SPD_JUNK.astype(np.float32), TALL.astype(np.float32)
    for f, x in [(np.linalg.cholesky, a32), (np.linalg.eigvalsh, a32), (eig_fn, a32),
                 (lambda b: np.linalg.svd(b, compute_uv=False), b32), (usv, b32),
                 (lambda a: np.linalg.slogdet(a)[1], a32), (np.linalg.pinv, b32),
                 (lambda b: np.linalg.norm(b, "nuc"), b32), (lambda a: sl.expm(a * 0.2), a32),
                 (lambda a: sl.solve_triangular(a, a[0]), a32)]:
        out, ref = jitgrad.jit(f)(x), f(x)
        assert out.dtype == ref.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=2e-5, atol=2e-5)


def test_float32_gradients():
    a32 = SPD_JUNK.astype(np.float32)
    for f in [lambda a: np.sum(np.linalg.cholesky(a)), lambda a: np.sum(eig_fn(a)),
              lambda a: np.linalg.norm(a, 2), lambda a: np.sum(sl.expm(0.1 * a)),
              lambda a: np.linalg.slogdet(a)[1], lambda a: np.sum(np.linalg.qr(a)[1] ** 2),
              lambda a: np.sum(sl.solve_triangular(a, a[0]))]:
        g, g64 = jitgrad.grad(f)(a32), jitgrad.grad(f)(a32.astype(np.float64))
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-4 * np.abs(g64).max())


def test_result_types():
    def f(a):
        e, u, q, s = np.linalg.eigh(a), np.linalg.svd(a), np.linalg.qr(a), np.linalg.slogdet(a)
        return e.eigenvalues, e.eigenvectors ** 2, u.S, q.R ** 2, s.sign, s.logabsdet
    for out, ref in zip(jitgrad.jit(f)(SPD), f(SPD)):
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def _stack(*mats):
    return np.stack(mats)


STACKED = {
    "cholesky": (np.linalg.cholesky, _stack(SPD, SPD + np.eye(4))),
    "eigh": (eig_fn, _stack(SPD, SPD_JUNK)),
    "svd": (usv, _stack(TALL, 2 * TALL)),
    "svdvals": (lambda b: np.linalg.svd(b, compute_uv=False), _stack(TALL, TALL[::-1])),
    "qr": (lambda b: np.matmul(*np.linalg.qr(b)), _stack(TALL, 3 * TALL)),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], _stack(GEN, GEN.T)),
    "pinv": (np.linalg.pinv, _stack(TALL, -TALL)),
    "expm": (lambda a: sl.expm(a * 0.3), _stack(A4, A4.T)),
    "norm2": (lambda a: np.linalg.norm(a, 2, axis=(-2, -1), keepdims=True), _stack(A4, GEN)),
    "matrix_power": (lambda a: np.linalg.matrix_power(a, 3), _stack(A4, GEN)),
}


@pytest.mark.parametrize("name", list(STACKED))
def test_stacked_and_vmap(name):
    f, x = STACKED[name]
    ref = f(x)
    np.testing.assert_allclose(jitgrad.jit(f)(x), ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(jitgrad.vmap(f)(x), ref, rtol=1e-10, atol=1e-10)
    # the gradient of each matrix under vmap is the gradient of that matrix alone
    g = jitgrad.grad(lambda a: np.sum(np.sin(f(a[None]))))
    np.testing.assert_allclose(jitgrad.vmap(g)(x), np.stack([g(m) for m in x]), rtol=1e-9, atol=1e-12)


def test_vmap_second_order():
    h = jitgrad.hessian(lambda a: np.linalg.slogdet(a)[1] + np.sum(np.linalg.cholesky(a @ a.T)))
    xs = _stack(GEN, GEN + np.eye(4))
    np.testing.assert_allclose(jitgrad.vmap(h)(xs), np.stack([h(x) for x in xs]), rtol=1e-9)


def test_symmetric_input_reads_one_triangle():
    # the upper triangle is never read: its gradient is zero, as the function ignores it
    g = jitgrad.grad(lambda a: np.sum(np.linalg.cholesky(a)) + np.sum(np.linalg.eigvalsh(a) ** 2))(
        SPD_JUNK)
    assert np.all(np.triu(g, 1) == 0)
    gu = jitgrad.grad(lambda a: np.sum(np.linalg.eigvalsh(a, UPLO="U") ** 3))(SPD_JUNK.T)
    assert np.all(np.tril(gu, -1) == 0)


def test_repeated_eigenvalues_and_singular_values():
    # eigenvalue and singular-value derivatives stay finite at ties (only the
    # vectors' rules divide by the gaps, as JAX's do)
    for f in [lambda a: np.sum(np.linalg.eigvalsh(a) ** 2), lambda a: np.sum(np.linalg.eigh(a)[0] ** 2)]:
        np.testing.assert_allclose(jitgrad.grad(f)(np.eye(3)), 2 * np.eye(3))
    for f in [lambda a: np.sum(np.linalg.svd(a)[1]), lambda a: np.linalg.norm(a, "nuc")]:
        np.testing.assert_allclose(jitgrad.grad(f)(np.eye(3)), np.eye(3))


def test_extras_values():
    f = lambda a, b: (np.linalg.matrix_rank(a), np.linalg.matrix_rank(b[:, :2] @ b[:, :2].T),
                      np.linalg.lstsq(b, VEC)[2], np.linalg.lstsq(b, VEC)[3],
                      np.linalg.matrix_power(a, 0), np.linalg.svd(b)[0] ** 2,
                      np.linalg.qr(b, mode="complete")[0] ** 2, np.linalg.svdvals(b))
    for out, ref in zip(jitgrad.jit(f)(GEN, TALL), f(GEN, TALL)):
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
        assert np.asarray(out).dtype == np.asarray(ref).dtype
    ints = np.arange(4).reshape(2, 2) + 2 * np.eye(2, dtype=int)
    assert jitgrad.jit(lambda a: np.linalg.matrix_power(a, 3))(ints).dtype == ints.dtype
    assert jitgrad.jit(np.linalg.inv)(ints).dtype == np.float64
    assert jitgrad.jit(lambda a: np.linalg.norm(a, axis=1))(ints).dtype == np.float64


def test_empty_and_special_inputs():
    cases = [(np.linalg.cholesky, np.zeros((0, 0))), (np.linalg.eigvalsh, np.zeros((2, 0, 0))),
             (lambda a: np.linalg.svd(a, compute_uv=False), np.zeros((0, 3))),
             (lambda a: np.linalg.norm(a, np.inf), np.zeros(0)),
             (lambda a: np.linalg.norm(a, 1), np.zeros((0, 3))),
             (lambda a: np.linalg.norm(a, np.inf), np.zeros((3, 0))), (np.linalg.norm, np.float64(-3.0)),
             (np.linalg.eigvalsh, np.full((2, 2), np.nan)),
             (lambda a: np.linalg.cholesky(a[::2, ::2]), 3 * np.eye(6)),
             (np.linalg.cholesky, 4 * np.eye(3, dtype=int)), (np.linalg.det, np.eye(3, dtype=bool)),
             (np.linalg.matrix_rank, np.ones(3)), (lambda a: sl.expm(a), np.ones((1, 1)))]
    for f, x in cases:
        out, ref = jitgrad.jit(f)(x), f(x)
        np.testing.assert_allclose(out, ref, rtol=1e-12)
        assert np.shape(out) == np.shape(ref) and np.asarray(out).dtype == np.asarray(ref).dtype


def test_compiled_tier():
    """One compiled function for many decompositions, then a compiled gradient."""
    def f(a, b):
        w, v = np.linalg.eigh(a)
        qc, rc = np.linalg.qr(b, mode="complete")
        return (np.linalg.cholesky(a), w, v @ np.diag(w) @ v.T, usv(b), usv(b, True),
                np.abs(np.linalg.qr(b)[1]), qc @ rc, np.abs(rc), np.abs(qc),
                np.linalg.slogdet(a)[1], np.linalg.pinv(b), np.linalg.norm(b, -2),
                sl.solve_triangular(a, b[:4], lower=True, trans=1), sl.expm(0.3 * a),
                sl.expm(a))

    def loss(a):
        return np.sum(np.linalg.cholesky(a)) + np.linalg.slogdet(a)[1] + np.sum(sl.expm(0.1 * a))
    args = (SPD_JUNK, RNG.standard_normal((5, 4)))
    with jitgrad.config(compile="always"):
        out = jitgrad.jit(f)(*args)
        grad = jitgrad.grad(loss)(SPD_JUNK)
    for o, r in zip(out, f(*args)):
        np.testing.assert_allclose(o, r, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad, jitgrad.grad(loss)(SPD_JUNK), rtol=1e-10, atol=1e-12)


def test_compiled_float32_and_stack():
    x = np.stack([SPD_JUNK, SPD]).astype(np.float32)
    f = lambda a: (np.linalg.cholesky(a), np.linalg.eigvalsh(a), sl.expm(0.1 * a))
    with jitgrad.config(compile="always"):
        out = jitgrad.jit(f)(x)
    for o, r in zip(out, f(x)):
        assert o.dtype == np.float32
        np.testing.assert_allclose(o, r, rtol=3e-5, atol=3e-5)


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("mode", ["never", "always"])
def test_not_positive_definite(mode):
    with jitgrad.config(compile=mode):
        with pytest.raises(np.linalg.LinAlgError):
            jitgrad.jit(lambda a: np.linalg.cholesky(a) + 1)(-np.eye(2))
        with pytest.raises(np.linalg.LinAlgError):
            jitgrad.jit(lambda a: sl.solve_triangular(a, a[0]) + 1)(np.zeros((2, 2)))


@pytest.mark.parametrize("fn", [np.linalg.cholesky, np.linalg.eigh, np.linalg.slogdet, np.linalg.inv,
                                sl.expm, lambda a: np.linalg.matrix_power(a, 2)])
def test_non_square(fn):
    with pytest.raises(np.linalg.LinAlgError) as ours:
        jitgrad.jit(fn)(TALL)
    with pytest.raises((np.linalg.LinAlgError, ValueError)):
        fn(TALL)
    assert "square" in str(ours.value)


def test_argument_errors_match_numpy():
    for fn, exc in [(lambda b: np.linalg.norm(b, "fro", axis=0), ValueError),
                    (lambda b: np.linalg.norm(b, 3), ValueError),
                    (lambda b: np.linalg.qr(b, mode="bogus"), ValueError),
                    (lambda a: np.linalg.eigh(a, UPLO="X"), ValueError),
                    (lambda a: np.linalg.cholesky(a.astype(np.float16)), TypeError)]:
        with pytest.raises(exc):
            fn(GEN)
        with pytest.raises(exc):
            jitgrad.jit(fn)(GEN)


def test_complement_vectors_have_nan_tangents():
    # the extra columns of a full U / complete Q have no unique derivative
    _, t = jitgrad.jvp(lambda b: np.linalg.svd(b)[0], (TALL,), (np.ones_like(TALL),))
    assert np.all(np.isfinite(t[:, :3])) and np.all(np.isnan(t[:, 3:]))
    _, t = jitgrad.jvp(lambda b: np.linalg.qr(b, mode="complete"), (TALL,), (np.ones_like(TALL),))
    assert np.all(np.isnan(t[0][:, 3:])) and np.all(t[1][3:] == 0)


def test_unsupported_scipy_linalg_names_itself():
    with pytest.raises(NotImplementedError, match=r"scipy\.linalg\.lu_factor"):
        jitgrad.jit(lambda a: sl.lu_factor(a)[0])(GEN)
    with pytest.raises(NotImplementedError, match=r"scipy\.linalg\.sqrtm"):
        jitgrad.grad(lambda a: np.sum(sl.sqrtm(a)))(SPD)
    # outside traces SciPy's functions are SciPy's own
    assert "jitgrad" not in sl.expm.__code__.co_filename and sl.lu_factor.__module__.startswith("scipy")
    np.testing.assert_allclose(sl.expm(np.zeros((2, 2))), np.eye(2))


def test_scipy_names_bound_before_tracing():
    from scipy.linalg import cho_factor, cho_solve, expm
    np.testing.assert_allclose(jitgrad.jit(expm)(0.1 * A4), sl.expm(0.1 * A4), rtol=1e-12)
    f = lambda a, y: cho_solve(cho_factor(a, lower=True), y)
    np.testing.assert_allclose(jitgrad.jit(f)(SPD, VEC[:4]), f(SPD, VEC[:4]), rtol=1e-12)
    check_grads(f, (SPD, VEC[:4]), order=1)
    # SciPy's batching decorator loops over a stack, calling jitgrad per matrix
    x = np.stack([SPD, SPD + np.eye(4)])
    np.testing.assert_allclose(jitgrad.jit(lambda a: sl.cholesky(a, lower=True))(x),
                               np.linalg.cholesky(x), rtol=1e-12)
    # and SciPy is itself again outside traces
    assert expm.__code__.co_filename.endswith("_matfuncs.py")
    assert "jitgrad" not in type(sl.cholesky.__closure__[0].cell_contents).__module__
    assert "jitgrad" not in sl.cholesky.__closure__[0].cell_contents.__code__.co_filename


def test_scipy_on_other_threads_while_tracing():
    import threading
    seen = []

    def f(a):
        # while this thread traces, another thread's SciPy calls are SciPy's
        t = threading.Thread(target=lambda: seen.append(sl.expm(np.zeros((2, 2)))))
        t.start()
        t.join()
        return sl.expm(a)
    np.testing.assert_allclose(jitgrad.jit(f)(0.1 * A4), sl.expm(0.1 * A4), rtol=1e-12)
    assert isinstance(seen[0], np.ndarray)
    np.testing.assert_allclose(seen[0], np.eye(2))


def test_complex_linalg_is_refused():
    with pytest.raises(NotImplementedError, match="complex"):
        jitgrad.jit(lambda a: np.linalg.eigh(a * (1 + 1j)))(SPD)


def test_norm_of_complex_values_except_the_singular_value_ords():
    z = np.array([[1 + 2j, 3.0], [4j, -1 - 1j]])
    cases = [((z[0], None), {}), ((z[0], 1), {}), ((z[0], np.inf), {}), ((z[0], 3), {}),
             ((z, "fro"), {}), ((z, 1), {}), ((z, -np.inf), {}), ((z, None), {"axis": 1})]
    for (a, ord_), kw in cases:
        got = jitgrad.jit(lambda x: np.linalg.norm(x, ord_, **kw))(a)
        np.testing.assert_allclose(got, np.linalg.norm(a, ord_, **kw), rtol=1e-13)
    check_grads(lambda x: np.linalg.norm(x, 3), (z[0] + 0.5,), order=2)
    with pytest.raises(NotImplementedError, match="complex"):
        jitgrad.jit(lambda x: np.linalg.norm(x, 2))(z)
