"""scipy.special inside transformed functions: values against SciPy (both tiers,
float32), derivatives against finite differences (forward, reverse, second
order), vmap, special points, and errors that name scipy.special."""
import numpy as np
import pytest
import scipy.special as sc
from scipy.special import logsumexp, softmax, log_softmax, polygamma

import jitgrad
from jitgrad.testing import check_grads

TIERS = ["never", "always"]

# name -> (function of one array, a point in its domain)
X = np.array([0.35, -1.2, 2.4])
CASES = {
    "expit": (sc.expit, X),
    "log_expit": (sc.log_expit, X),
    "logit": (sc.logit, np.array([0.2, 0.55, 0.9])),
    "gammaln": (sc.gammaln, np.array([0.3, 2.5, 7.0])),
    "gammaln_neg": (sc.gammaln, np.array([-0.4, -2.7])),
    "digamma": (sc.digamma, np.array([0.3, 2.5, 13.0, -0.6])),
    "psi": (sc.psi, np.array([0.7, 4.0])),
    "polygamma1": (lambda x: sc.polygamma(1, x), np.array([0.4, 3.0, 25.0])),
    "polygamma3": (lambda x: polygamma(3, x), np.array([0.8, 2.2, -1.5])),
    "erf": (sc.erf, X),
    "erfc": (sc.erfc, X),
    "erfinv": (sc.erfinv, np.array([-0.7, 0.1, 0.45, 0.93])),
    "erfcinv": (sc.erfcinv, np.array([0.2, 1.0, 1.7])),
    "ndtr": (sc.ndtr, X),
    "log_ndtr": (sc.log_ndtr, np.array([-25.0, -3.0, 0.5, 7.0])),
    "ndtri": (sc.ndtri, np.array([0.02, 0.3, 0.5, 0.97])),
    "xlogy": (lambda x: sc.xlogy(x, x + 3.0), X),
    "xlog1py": (lambda x: sc.xlog1py(x, x + 1.5), X),
    "betaln": (lambda x: sc.betaln(x + 3.0, 2.5 - x), X),
    "i0": (sc.i0, X), "i1": (sc.i1, X), "i0e": (sc.i0e, X * 20), "i1e": (sc.i1e, X * 20),
    "np_i0": (np.i0, X),
    "entr": (sc.entr, np.array([0.3, 1.0, 2.5])),
    "rel_entr": (lambda x: sc.rel_entr(x + 2.0, 1.5 - x / 4), X),
    "kl_div": (lambda x: sc.kl_div(x + 2.0, 1.5 - x / 4), X),
    "logsumexp": (logsumexp, X),
    "logsumexp_axis_b": (lambda x: logsumexp(np.stack([x, 2 * x]), axis=1, b=np.array([[1.0], [0.5]]),
                                             keepdims=True), X),
    "logsumexp_sign": (lambda x: logsumexp(x, b=np.array([1.0, -0.2, 0.3]), return_sign=True)[0], X),
    "softmax": (softmax, X),
    "log_softmax": (log_softmax, X),
    "softmax_axis": (lambda x: softmax(np.outer(x, x), axis=0), X),
}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", list(CASES))
def test_value_against_scipy(name, tier):
    f, x = CASES[name]
    with jitgrad.config(compile=tier):
        got = jitgrad.jit(f)(x)
    np.testing.assert_allclose(got, f(x), rtol=2e-14, atol=1e-300)
    assert np.asarray(got).dtype == np.asarray(f(x)).dtype


@pytest.mark.parametrize("name", list(CASES))
def test_derivatives(name):
    f, x = CASES[name]
    check_grads(lambda x: np.sum(f(x)), (x,), order=2)


@pytest.mark.parametrize("name", ["digamma", "erfinv", "log_ndtr", "ndtri", "i1e", "xlogy",
                                  "expit", "logsumexp", "polygamma3"])
def test_derivatives_compiled_and_vmap(name):
    f, x = CASES[name]
    with jitgrad.config(compile="always"):
        check_grads(lambda x: np.sum(f(x)), (x,), order=1)
    xs = np.stack([x, x * 0.9])
    np.testing.assert_allclose(jitgrad.vmap(f)(xs), np.stack([f(v) for v in xs]), rtol=1e-13)
    g = jitgrad.vmap(jitgrad.grad(lambda x: np.sum(f(x))))(xs)
    np.testing.assert_allclose(g[1], jitgrad.grad(lambda x: np.sum(f(x)))(xs[1]), rtol=1e-13)


@pytest.mark.parametrize("name", ["expit", "erf", "gammaln", "digamma", "erfinv", "log_ndtr", "i0e"])
def test_float32(name):
    f, x = CASES[name]
    x = x.astype(np.float32)
    for tier in TIERS:
        with jitgrad.config(compile=tier):
            got = jitgrad.jit(f)(x)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, f(x), rtol=2e-6)


# ---------------------------------------------------------------------------
# Special points


def both(f, x):
    out = []
    for tier in TIERS:
        with jitgrad.config(compile=tier):
            out.append(jitgrad.jit(f)(x))
    return out


def test_expit_and_log_expit_far_out():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    for got in both(sc.expit, x):
        np.testing.assert_allclose(got, sc.expit(x), rtol=1e-15)
    for got in both(sc.log_expit, x):
        np.testing.assert_allclose(got, sc.log_expit(x), rtol=1e-15)
    g = jitgrad.vmap(jitgrad.grad(sc.expit))(x)
    np.testing.assert_allclose(g, sc.expit(x) * sc.expit(-x), rtol=1e-14)   # 4.2e-18 at +-40
    assert g[1] > 0 and g[3] > 0
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.grad(sc.log_expit))(x), sc.expit(-x), rtol=1e-14)


def test_log_ndtr_deep_tail():
    x = np.array([-40.0, -20.5, -19.5, -8.0, 0.0, 5.9, 6.1, 30.0])
    for got in both(sc.log_ndtr, x):
        # (at 30, -ndtr(-30) ~ -5e-198: x / sqrt(2) rounds, and erfc's slope makes that 1e-13)
        np.testing.assert_allclose(got, sc.log_ndtr(x), rtol=5e-13)
    # d/dx log ndtr(x) -> -x in the lower tail (about 40.02 at -40)
    g = jitgrad.grad(sc.log_ndtr)(-40.0)
    assert g == pytest.approx(40.0249, rel=1e-4)


def test_xlogy_at_zero():
    x, y = np.array([0.0, 0.0, 0.0, 2.0]), np.array([0.0, 3.0, np.inf, 0.0])
    for tier in TIERS:
        with jitgrad.config(compile=tier):
            np.testing.assert_array_equal(jitgrad.jit(sc.xlogy)(x, y), sc.xlogy(x, y))
    # finite derivatives at x = 0: d/dy = 0, d/dx = log(y) where finite
    gx, gy = jitgrad.grad(lambda x, y: np.sum(sc.xlogy(x, y)), argnums=(0, 1))(
        np.zeros(2), np.array([3.0, 0.0]))
    np.testing.assert_allclose(gx, [np.log(3.0), 0.0])
    np.testing.assert_array_equal(gy, [0.0, 0.0])
    assert jitgrad.jit(sc.entr)(np.array([0.0, -1.0])).tolist() == [0.0, -np.inf]


def test_digamma_near_poles():
    x = np.array([1e-8, -1e-8, -1 + 1e-7, -2 - 1e-6, -3.5, 1.4616321449683622])
    for got in both(sc.digamma, x):
        # psi(x + 1) = psi(x) + 1/x, exactly the relation near the poles
        np.testing.assert_allclose(got, sc.digamma(x + 1) - 1 / x, rtol=1e-9, atol=1e-15)
    for got in both(sc.digamma, np.array([0.0, -1.0, -2.0])):
        np.testing.assert_array_equal(got, sc.digamma(np.array([0.0, -1.0, -2.0])))
    # digamma' = polygamma(1, x) ~ 1/x^2 near 0
    assert jitgrad.grad(sc.digamma)(1e-4) == pytest.approx(sc.polygamma(1, 1e-4), rel=1e-12)


def test_inverse_functions_at_their_ends():
    p = np.array([0.0, 1e-300, 1e-20, 0.5, 1 - 1e-12, 1.0])
    for got in both(sc.ndtri, p):
        np.testing.assert_allclose(got, sc.ndtri(p), rtol=1e-12)
    e = np.array([-1.0, -0.999999, 1e-10, 0.5, 0.9999999999, 1.0, 1.5])
    for got in both(sc.erfinv, e):
        np.testing.assert_allclose(got, sc.erfinv(e), rtol=1e-13)
    for got in both(sc.i0e, np.array([0.0, 29.9, 30.1, 700.0, -1e4])):
        np.testing.assert_allclose(got, sc.i0e(np.array([0.0, 29.9, 30.1, 700.0, -1e4])), rtol=1e-14)
    assert jitgrad.grad(sc.i1e)(0.0) == 0.5


def test_nan_propagates():
    fs = [sc.digamma, sc.erfinv, sc.ndtri, sc.log_ndtr, sc.i0e, sc.i1e, sc.gammaln, sc.expit,
          lambda x: sc.polygamma(2, x)]
    for f in fs:
        for got in both(f, np.array([np.nan])):
            assert np.isnan(got).all()


# ---------------------------------------------------------------------------
# Errors


def test_unsupported_scipy_ufunc_names_scipy():
    with pytest.raises(NotImplementedError, match=r"scipy\.special\.wrightomega"):
        jitgrad.jit(sc.wrightomega)(X)
    with pytest.raises(NotImplementedError, match=r"numpy\.spacing"):
        jitgrad.jit(np.spacing)(X)


def test_polygamma_order_must_be_concrete():
    # (SciPy's polygamma computes gamma(n + 1) of the traced order first)
    with pytest.raises(NotImplementedError, match=r"scipy\.special\.gamma"):
        jitgrad.jit(lambda n, x: sc.polygamma(n, x))(np.array([1.0, 2.0, 1.0]), X)


# ---------------------------------------------------------------------------
# pure_callback: SciPy functions jitgrad cannot trace, with user derivatives


def _wrightomega_host(v):
    return sc.wrightomega(v).real.astype(v.dtype)


@jitgrad.custom_jvp
def wright(x):
    return jitgrad.pure_callback(_wrightomega_host, jitgrad.ShapeDtypeStruct(x.shape, x.dtype), x)


@wright.defjvp
def _wright_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    w = wright(x)
    return w, t * w / (1 + w)        # W' = W / (1 + W)


@jitgrad.custom_vjp
def gammainc_a(x):
    return jitgrad.pure_callback(lambda v: sc.gammainc(2.5, v), x, x)


def _gi_fwd(x):
    return gammainc_a(x), x


def _gi_bwd(x, ct):
    # d/dx P(a, x) = x^(a-1) e^-x / Gamma(a)
    return (ct * x ** 1.5 * np.exp(-x) / sc.gamma(2.5),)


gammainc_a.defvjp(_gi_fwd, _gi_bwd)


@pytest.mark.parametrize("tier", TIERS)
def test_pure_callback_with_custom_jvp(tier):
    x = np.array([0.3, 1.5, -2.0])
    w = sc.wrightomega(x).real
    with jitgrad.config(compile=tier):
        np.testing.assert_allclose(jitgrad.jit(lambda x: wright(x) * 2)(x), 2 * w)
        np.testing.assert_allclose(jitgrad.grad(lambda x: np.sum(wright(x) ** 2))(x),
                                   2 * w * w / (1 + w), rtol=1e-13)
        np.testing.assert_allclose(jitgrad.vmap(wright)(np.stack([x, 2 * x])),
                                   sc.wrightomega(np.stack([x, 2 * x])).real)
    check_grads(lambda x: np.sum(wright(x)), (x,), order=2, modes=("fwd",))


@pytest.mark.parametrize("tier", TIERS)
def test_pure_callback_with_custom_vjp(tier):
    x = np.array([0.4, 1.1, 3.0])
    with jitgrad.config(compile=tier):
        g = jitgrad.grad(lambda x: np.sum(np.sin(gammainc_a(x))))(x)
    np.testing.assert_allclose(g, np.cos(sc.gammainc(2.5, x)) * x ** 1.5 * np.exp(-x) / sc.gamma(2.5))
    check_grads(lambda x: np.sum(gammainc_a(x)), (x,), order=1, modes=("rev",))


@pytest.mark.parametrize("tier", TIERS)
def test_pure_callback_structures_and_scalars(tier):
    x = np.array([1.0, 2.0, 3.5])
    decl = (jitgrad.ShapeDtypeStruct((), np.float64), {"twice": x, "n": np.zeros(2, np.int64)})

    def host(a):
        return a.sum(), {"twice": a * 2, "n": np.array([a.size, 7])}
    with jitgrad.config(compile=tier):
        s, d = jitgrad.jit(lambda x: jitgrad.pure_callback(host, decl, x * 1.0))(x)
    assert s == 6.5 and d["n"].tolist() == [3, 7]
    np.testing.assert_array_equal(d["twice"], 2 * x)
    # outside any transform it just calls the function
    assert jitgrad.pure_callback(host, decl, x)[0] == 6.5


@pytest.mark.parametrize("method", ["sequential", "expand_dims", "broadcast_all"])
def test_pure_callback_vmap_methods(method):
    calls = []

    def host(a, b):
        calls.append(a.shape)
        return a * b.sum(axis=-1, keepdims=True) if a.ndim > 1 else a * b.sum()
    xs, b = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 4.0])

    def f(x):
        return jitgrad.pure_callback(host, x, x, b, vmap_method=method)
    np.testing.assert_allclose(jitgrad.vmap(f)(xs), xs * 7)
    assert calls == ([(3,), (3,)] if method == "sequential" else [(2, 3)])


def test_pure_callback_errors():
    x = np.ones(3)
    with pytest.raises(TypeError, match="custom_jvp"):
        jitgrad.grad(lambda x: np.sum(jitgrad.pure_callback(np.sin, x, x)))(x)
    with pytest.raises(TypeError, match=r"declared"):
        jitgrad.jit(lambda x: jitgrad.pure_callback(lambda a: a[:2], x, x))(x)
    with pytest.raises(TypeError, match=r"declared"):
        jitgrad.jit(lambda x: jitgrad.pure_callback(lambda a: a.astype(np.float32), x, x))(x)
    with pytest.raises(ValueError, match="vmap_method"):
        jitgrad.pure_callback(np.sin, x, x, vmap_method="loop")
