"""jitgrad.testing: check_grads over a table of primitives (both modes, order 2
and 3), check_grads catching a wrong rule, numerical_grad against known
gradients, and a property-based check in the README's style."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import jitgrad
from jitgrad.testing import check_grads, numerical_grad


@pytest.fixture(autouse=True)
def _interpreter():
    with jitgrad.config(compile="never"):
        yield


_R = np.random.default_rng(7)
ANY = _R.uniform(-1.5, 1.5, (3, 4))
ANY2 = _R.uniform(-1.5, 1.5, (3, 4))
POS = _R.uniform(0.5, 2.0, (3, 4))
MAT = _R.standard_normal((4, 2))
# pairwise distinct values, spaced 0.3 apart, and at least 0.1 away from the clip bounds +-1
DISTINCT = (np.arange(12) * 0.3 - 1.75)[_R.permutation(12)].reshape(3, 4)

# name: (f, args, orders to check) -- order 2 for all, order 3 for a selection
TABLE = {
    "sin": (np.sin, (ANY,), (2, 3)),
    "exp": (np.exp, (ANY,), (2, 3)),
    "log": (np.log, (POS,), (2, 3)),
    "tanh": (np.tanh, (ANY,), (2, 3)),
    "sqrt": (np.sqrt, (POS,), (2, 3)),
    "arctan": (np.arctan, (ANY,), (2, 3)),
    "matmul": (lambda x, w: np.tanh(x @ w), (ANY, MAT), (2, 3)),
    "sum_axis0": (lambda x: np.sum(x ** 2, axis=0), (ANY,), (2,)),
    "sum_axis1_keepdims": (lambda x: np.sum(np.sin(x), axis=1, keepdims=True), (ANY,), (2, 3)),
    "max": (np.max, (DISTINCT,), (2,)),
    "max_axis": (lambda x: np.max(x * x, axis=1), (DISTINCT,), (2, 3)),
    "min_axis": (lambda x: np.min(x, axis=0), (DISTINCT,), (2,)),
    "prod": (np.prod, (POS,), (2,)),
    "prod_axis": (lambda x: np.prod(x, axis=0), (ANY,), (2, 3)),
    "logaddexp": (np.logaddexp, (ANY, ANY2), (2,)),
    "hypot": (np.hypot, (ANY, POS), (2, 3)),
    "where": (lambda x, y: np.where(x > 0, x * y, np.sin(y)), (DISTINCT, ANY), (2, 3)),
    "clip": (lambda x: np.clip(x, -1.0, 1.0) * x, (DISTINCT,), (2,)),
    "reshape_transpose_slice": (lambda x: x.reshape(4, 3).T[1:, ::2] ** 2, (ANY,), (2, 3)),
    "concatenate": (lambda x, w: np.concatenate([np.sin(x), w.T * x[:2, :]], axis=0),
                    (ANY, MAT), (2,)),
    "mean_var": (lambda x: np.var(x, axis=0) + np.mean(x), (ANY,), (2,)),
    "power": (lambda x, y: x ** y, (POS, ANY), (2, 3)),
    "divide": (lambda x, y: x / y, (ANY, POS), (2, 3)),
    "maximum": (lambda x, y: np.maximum(x, y + 0.05), (DISTINCT, DISTINCT[::-1]), (2,)),
}

# (name, order, mode) combinations known to fail: (strict, reason).  None today.
BROKEN = {}


def _params():
    out = []
    for name, (_, _, orders) in sorted(TABLE.items()):
        for order in orders:
            for mode in ("fwd", "rev"):
                marks = ()
                if (name, order, mode) in BROKEN:
                    strict, reason = BROKEN[(name, order, mode)]
                    marks = pytest.mark.xfail(strict=strict, reason=reason)
                out.append(pytest.param(name, order, mode, marks=marks,
                                        id=f"{name}-order{order}-{mode}"))
    return out


@pytest.mark.parametrize("name,order,mode", _params())
def test_check_grads_table(name, order, mode):
    f, args, _ = TABLE[name]
    check_grads(f, args, order=order, modes=(mode,))


def test_check_grads_float32():
    x = _R.uniform(-1, 1, (3, 2)).astype(np.float32)
    check_grads(lambda x: np.tanh(x) * x, (x,), order=2)


def test_check_grads_pytree_args_and_outputs():
    p = {"w": ANY[0], "pair": (POS[0], 0.7)}
    check_grads(lambda p: (np.sin(p["w"]) * p["pair"][1], [np.log(p["pair"][0])]), (p,), order=2)


@jitgrad.custom_jvp
def _bad_exp(x):
    return np.exp(x)


@_bad_exp.defjvp
def _bad_exp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return np.exp(x), 1.01 * np.exp(x) * t      # 1% too large


@jitgrad.custom_jvp
def _good_exp(x):
    return np.exp(x)


@_good_exp.defjvp
def _good_exp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = _good_exp(x)
    return y, y * t


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_check_grads_catches_wrong_custom_jvp(mode):
    x = _R.uniform(-1, 1, 5)
    with pytest.raises(AssertionError, match="JVP" if mode == "fwd" else "VJP"):
        check_grads(_bad_exp, (x,), order=1, modes=(mode,))
    check_grads(_good_exp, (x,), order=3)


def test_check_grads_catches_wrong_second_order_only():
    # first derivative right, second derivative wrong: caught at order 2, not at order 1
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(x), jitgrad.stop_gradient(np.cos(x)) * t

    x = _R.uniform(-1, 1, 4)
    check_grads(f, (x,), order=1)
    with pytest.raises(AssertionError):
        check_grads(f, (x,), order=2)


def test_numerical_grad_known_gradients():
    x = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(numerical_grad(lambda x: np.sum(np.sin(x)), x), np.cos(x),
                               rtol=1e-8, atol=1e-9)
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    y = np.array([1.0, -2.0])
    gx, ga = numerical_grad(lambda x, a: x[:2] @ a @ x[:2], x, a)
    np.testing.assert_allclose(ga, np.outer(x[:2], x[:2]), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(gx[:2], (a + a.T) @ x[:2], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(gx[2], 0.0, atol=1e-9)
    g = numerical_grad(lambda x: np.sum(np.exp(x) * y), y)
    np.testing.assert_allclose(g, np.exp(y) * y, rtol=1e-8)
    # and jitgrad agrees with it
    f = lambda x: np.sum(np.tanh(x) ** 2 * x)       # noqa: E731
    np.testing.assert_allclose(jitgrad.grad(f)(x), numerical_grad(f, x), rtol=1e-7, atol=1e-9)
    # float32 keeps its dtype
    assert numerical_grad(lambda x: np.sum(x ** 2), x.astype(np.float32)).dtype == np.float32


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (3, 2), elements=st.floats(-2, 2)))
def test_property_check_grads(x):
    check_grads(lambda x: np.sum(np.tanh(x) * np.sin(x) + np.exp(-x ** 2), axis=0), (x,), order=2)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (4,), elements=st.floats(-2, 2)))
def test_property_rosenbrock_hessian_symmetric_and_matches_fd(x):
    def rosen(x):
        return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    h = jitgrad.hessian(rosen)(x)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-12)
    g = jitgrad.grad(rosen)
    fd = np.stack([(g(x + 1e-5 * e) - g(x - 1e-5 * e)) / 2e-5 for e in np.eye(4)])
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-4)
