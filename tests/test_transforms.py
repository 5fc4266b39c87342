"""Composed transforms: nesting, Jacobians/Hessians, pytrees, custom rules,
stop_gradient and the NaN-safe ``where``.

References are closed forms or plain-NumPy finite differences.  Most tests run
on the NumPy interpreter (``compile="never"``, the same IR that Numba
compiles); a handful marked in their name with ``compiled`` run through Numba
and compare against the interpreter.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import jitgrad
import jitgrad.api.functions
from jitgrad import (custom_jvp, custom_vjp, grad, hessian, hvp, jacfwd, jacrev, jvp, linearize,
                     stop_gradient, value_and_grad, vjp)
from jitgrad.testing import check_grads


@pytest.fixture(autouse=True)
def _interpreter():
    with jitgrad.config(compile="never"):
        yield


def close(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rtol, atol=atol)


RNG = np.random.default_rng(20240611)
X3 = np.array([0.3, -1.2, 2.1])
V3 = np.array([1.0, -0.5, 2.0])


# ---------------------------------------------------------------------------
# 1. Nesting


def _nth(f, n):
    for _ in range(n):
        f = grad(f)
    return f


_T = lambda x: np.tanh(x)   # noqa: E731

SCALAR_DERIVS = {
    # name: (f, [f', f'', f''', f''''] as closed forms)
    "sin": (np.sin, [np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), np.sin]),
    "exp": (np.exp, [np.exp] * 4),
    "x**5": (lambda x: x ** 5, [lambda x: 5 * x ** 4, lambda x: 20 * x ** 3,
                                lambda x: 60 * x ** 2, lambda x: 120 * x]),
    "tanh": (np.tanh, [lambda x: 1 - _T(x) ** 2,
                       lambda x: -2 * _T(x) * (1 - _T(x) ** 2),
                       lambda x: -2 * (1 - _T(x) ** 2) * (1 - 3 * _T(x) ** 2),
                       lambda x: 8 * _T(x) * (1 - _T(x) ** 2) * (2 - 3 * _T(x) ** 2)]),
    "log": (np.log, [lambda x: 1 / x, lambda x: -1 / x ** 2, lambda x: 2 / x ** 3,
                     lambda x: -6 / x ** 4]),
    "sin*exp": (lambda x: np.sin(x) * np.exp(x),
                [lambda x: np.exp(x) * (np.sin(x) + np.cos(x)),
                 lambda x: 2 * np.exp(x) * np.cos(x),
                 lambda x: 2 * np.exp(x) * (np.cos(x) - np.sin(x)),
                 lambda x: -4 * np.exp(x) * np.sin(x)]),
}


@pytest.mark.parametrize("name", sorted(SCALAR_DERIVS))
@pytest.mark.parametrize("x", [0.7, 1.9])
def test_scalar_derivatives_to_fourth_order(name, x):
    f, derivs = SCALAR_DERIVS[name]
    for n, d in enumerate(derivs, start=1):
        close(_nth(f, n)(x), d(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(SCALAR_DERIVS))
def test_scalar_mixed_modes_to_fourth_order(name):
    """Every mix of forward and reverse: jvp(grad(grad(jvp)))... all agree with the closed form."""
    f, derivs = SCALAR_DERIVS[name]
    x = 0.7

    def fwd(g):
        return lambda x: jvp(g, (x,), (1.0,))[1]

    for combo in ["ffff", "rrrr", "frfr", "rfrf", "ffrr", "rrff"]:
        g = f
        for c in combo:
            g = fwd(g) if c == "f" else grad(g)
        close(g(x), derivs[3](x), rtol=1e-9, atol=1e-9)


def test_scalar_compiled_fourth_order_matches_interpreter():
    f = _nth(lambda x: np.sin(x) * np.exp(x), 4)
    ref = f(0.7)
    with jitgrad.config(compile="always"):
        got = _nth(lambda x: np.sin(x) * np.exp(x), 4)(0.7)
    close(got, ref, rtol=1e-12)
    close(got, -4 * np.exp(0.7) * np.sin(0.7), rtol=1e-9)


def test_grad_of_grad_on_arrays():
    f = lambda x: np.sum(np.sin(x) * x ** 2)          # noqa: E731
    # d/dx of sum(grad f * v) = H v, H diagonal
    hv = grad(lambda x: np.sum(grad(f)(x) * V3))(X3)
    h = (2 - X3 ** 2) * np.sin(X3) + 4 * X3 * np.cos(X3)
    close(hv, h * V3)


def test_hessian_vector_product_by_jvp_of_grad():
    a = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 3.0]])
    f = lambda x: 0.5 * x @ a @ x + np.sum(np.exp(x))   # noqa: E731
    out, hv = jvp(grad(f), (X3,), (V3,))
    close(out, a @ X3 + np.exp(X3))
    close(hv, a @ V3 + np.exp(X3) * V3)


def test_grad_of_function_calling_jvp():
    # g(x) = directional derivative of f along v = sum(cos(x) * v); its gradient is -sin(x) * v
    g = lambda x: np.sum(jvp(np.sin, (x,), (V3,))[1])    # noqa: E731
    close(grad(g)(X3), -np.sin(X3) * V3)
    close(grad(lambda x: jvp(lambda y: y ** 4, (x,), (1.0,))[1])(1.5), 12 * 1.5 ** 2)


@pytest.mark.parametrize("name", [
    # deterministic: the sign of the result is flipped
    "logaddexp",
    "prod",
])
def test_grad_of_jvp_through_select_based_rules(name):
    x = np.array([1.5, 2.0, 0.5])
    if name == "logaddexp":
        y = np.array([0.3, -0.2, 1.0])
        f = lambda z: np.sum(np.logaddexp(z, y))     # noqa: E731
        s = 1 / (1 + np.exp(y - x))
        expected = s * (1 - s) * V3
    else:
        f = np.prod
        p = np.prod(x)
        expected = (p / np.outer(x, x) - np.diag(p / x ** 2)) @ V3
    close(jvp(grad(f), (x,), (V3,))[1], expected)   # forward-over-reverse is right
    # reverse-over-forward, repeated with fresh transforms (the bug depends on object ids)
    for _ in range(10):
        close(grad(lambda x: jvp(f, (x,), (V3,))[1])(x), expected)


def test_vjp_of_vjp():
    f = lambda x: np.sin(x) * x               # noqa: E731
    u = np.array([0.5, 2.0, -1.0])

    def g(x):   # x -> J(x)^T u, with J diagonal: (cos x * x + sin x) * u
        return vjp(f, x)[1](u)[0]

    out, g_vjp = vjp(g, X3)
    close(out, (np.cos(X3) * X3 + np.sin(X3)) * u)
    w = np.array([1.0, -3.0, 0.25])
    (ct,) = g_vjp(w)
    close(ct, (2 * np.cos(X3) - X3 * np.sin(X3)) * u * w)


def test_jvp_of_vjp_and_vjp_of_jvp_agree():
    f = lambda x: np.tanh(x) * np.sum(x ** 2)   # noqa: E731
    u = np.array([0.2, -1.0, 0.7])
    a = jvp(lambda x: vjp(f, x)[1](u)[0], (X3,), (V3,))[1]
    b = vjp(lambda x: jvp(f, (x,), (V3,))[1], X3)[1](u)[0]
    close(a, b, rtol=1e-9, atol=1e-12)


ARRAY_FUNS = {
    "sin*x^2": (lambda x: np.sin(x) * x ** 2, (RNG.uniform(-2, 2, (3, 4)),)),
    "softplus-sum": (lambda x: np.sum(np.log1p(np.exp(x)), axis=0), (RNG.uniform(-2, 2, (3, 4)),)),
    "tanh(XW+b)": (lambda x, w, b: np.tanh(x @ w + b),
                   (RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4)), RNG.standard_normal(4))),
    "normalize": (lambda x: x / np.sqrt(np.sum(x ** 2)), (RNG.uniform(0.5, 2, 5),)),
    "rosenbrock": (lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
                   (RNG.uniform(-1, 1, 5),)),
}


@pytest.mark.parametrize("name", sorted(ARRAY_FUNS))
def test_array_functions_second_order_both_modes(name):
    f, args = ARRAY_FUNS[name]
    check_grads(f, args, order=2)


# ---------------------------------------------------------------------------
# 2. Jacobians, Hessians, hvp, linearize


def rosen(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_grad(x):
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosen_hess(x):
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


@pytest.mark.parametrize("n", [2, 5, 8])
def test_rosenbrock_hessian_closed_form(n):
    x = np.random.default_rng(n).uniform(-1.5, 1.5, n)
    close(grad(rosen)(x), rosen_grad(x), rtol=1e-10, atol=1e-10)
    h = hessian(rosen)(x)
    assert h.shape == (n, n)
    close(h, rosen_hess(x), rtol=1e-10, atol=1e-10)
    close(jacrev(grad(rosen))(x), rosen_hess(x), rtol=1e-10, atol=1e-10)
    close(jacfwd(jacfwd(rosen))(x), rosen_hess(x), rtol=1e-10, atol=1e-10)
    v = np.linspace(-1, 1, n)
    close(hvp(rosen, (x,), (v,)), rosen_hess(x) @ v, rtol=1e-10, atol=1e-10)


def test_rosenbrock_hessian_compiled():
    x = np.array([1.2, 0.5, -0.3, 0.8])
    with jitgrad.config(compile="always"):
        h = hessian(rosen)(x)
    close(h, rosen_hess(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("jac", [jacfwd, jacrev], ids=["jacfwd", "jacrev"])
def test_jacobian_elementwise(jac):
    x = RNG.uniform(-2, 2, (2, 3))
    j = jac(lambda x: np.sin(x) * x ** 2)(x)
    assert j.shape == (2, 3, 2, 3)
    d = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    expected = np.zeros((2, 3, 2, 3))
    for idx in np.ndindex(2, 3):
        expected[idx + idx] = d[idx]
    close(j, expected)


@pytest.mark.parametrize("jac", [jacfwd, jacrev], ids=["jacfwd", "jacrev"])
def test_jacobian_matmul(jac):
    a = RNG.standard_normal((2, 3))
    x = RNG.standard_normal(3)
    close(jac(lambda x: a @ x)(x), a)
    X = RNG.standard_normal((2, 3))
    W = RNG.standard_normal((3, 4))
    jw = jac(lambda w: X @ w)(W)
    assert jw.shape == (2, 4, 3, 4)
    close(jw, np.einsum("ik,jl->ijkl", X, np.eye(4)))
    jx = jac(lambda x: x @ W)(X)
    assert jx.shape == (2, 4, 2, 3)
    close(jx, np.einsum("ik,lj->ijkl", np.eye(2), W))


def test_jacfwd_equals_jacrev_argnums_tuple_and_shapes():
    rng = np.random.default_rng(3)
    X, W, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    f = lambda X, W, b: np.tanh(X @ W + b)     # noqa: E731
    jf = jacfwd(f, argnums=(0, 1, 2))(X, W, b)
    jr = jacrev(f, argnums=(0, 1, 2))(X, W, b)
    assert isinstance(jf, tuple) and isinstance(jr, tuple)
    assert [j.shape for j in jf] == [(2, 4, 2, 3), (2, 4, 3, 4), (2, 4, 4)]
    assert [j.shape for j in jr] == [(2, 4, 2, 3), (2, 4, 3, 4), (2, 4, 4)]
    for p, q in zip(jf, jr):
        close(p, q, rtol=1e-12, atol=1e-14)
    # the bias block: diag(1 - y^2) per row
    y = np.tanh(X @ W + b)
    close(jr[2], np.einsum("ij,jk->ijk", 1 - y ** 2, np.eye(4)))
    # argnums as an int returns a bare array equal to the tuple entry
    close(jacrev(f, argnums=1)(X, W, b), jr[1])
    close(jacfwd(f, argnums=-1)(X, W, b), jf[2])


def test_jacobian_pytree_in_and_out():
    x = np.array([0.5, -1.0, 2.0])
    f = lambda d: (d["a"] * d["b"], np.sum(d["a"] ** 2))     # noqa: E731
    args = {"a": x, "b": x + 1}
    for jac in (jacfwd, jacrev):
        j = jac(f)(args)
        assert isinstance(j, tuple) and set(j[0]) == {"a", "b"}
        close(j[0]["a"], np.diag(x + 1))
        close(j[0]["b"], np.diag(x))
        assert j[1]["a"].shape == (3,) and j[1]["b"].shape == (3,)
        close(j[1]["a"], 2 * x)
        close(j[1]["b"], 0 * x)


def test_jacobian_vector_to_scalar_and_float32():
    x = np.array([0.5, -1.0, 2.0])
    close(jacrev(lambda a: np.sum(a ** 2))(x), 2 * x)
    close(jacfwd(lambda a: np.sum(a ** 2))(x), 2 * x)
    for jac in (jacfwd, jacrev):
        j = jac(np.sin)(x.astype(np.float32))
        assert j.dtype == np.float32
        close(j, np.diag(np.cos(x)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", ["sum_times_const_rev", "sum_times_const_fwd",
                                  "scalar_to_vector_fwd", "scalar_to_vector_rev",
                                  "sum_times_vector_fwd", "sum_times_vector_rev",
                                  "hessian_scalar", "hessian_sum_squared"])
def test_jacobian_scalar_broadcast_against_array(case):
    x = np.array([1.0, 2.0, 3.0])
    if case == "sum_times_const_rev":
        close(jacrev(lambda a: np.sum(a * x))(np.ones(3)), x)
    elif case == "sum_times_const_fwd":
        close(jacfwd(lambda a: np.sum(a * x))(np.ones(3)), x)
    elif case == "scalar_to_vector_fwd":
        close(jacfwd(lambda a: a * x)(2.0), x)
    elif case == "scalar_to_vector_rev":
        close(jacrev(lambda a: a * x)(2.0), x)
    elif case == "sum_times_vector_fwd":
        close(jacfwd(lambda a: np.sum(a) * x)(x), np.outer(x, np.ones(3)))
    elif case == "sum_times_vector_rev":
        close(jacrev(lambda a: np.sum(a) * x)(x), np.outer(x, np.ones(3)))
    elif case == "hessian_scalar":
        close(hessian(lambda a: a ** 4)(2.0), 48.0)
    else:
        close(hessian(lambda a: np.sum(a) ** 2)(x), 2 * np.ones((3, 3)))


def test_jacobian_scalar_to_scalar():
    close(jacfwd(np.sin)(0.4), np.cos(0.4))
    close(jacrev(np.sin)(0.4), np.cos(0.4))


def test_hessian_argnums_int_and_tuple():
    rng = np.random.default_rng(5)
    a, B = rng.standard_normal(3), rng.standard_normal((3, 2))
    g = lambda a, B: np.sum((np.sin(a) @ B) ** 2)     # noqa: E731
    h = hessian(g, argnums=(0, 1))(a, B)
    assert [[x.shape for x in row] for row in h] == [[(3, 3), (3, 3, 2)], [(3, 2, 3), (3, 2, 3, 2)]]
    close(h[0][1], np.transpose(h[1][0], (2, 0, 1)), rtol=1e-10, atol=1e-12)
    close(hessian(g, argnums=1)(a, B), h[1][1])
    close(hessian(g)(a, B), h[0][0])
    # h[1][1]: d^2/dB^2 sum_j (s @ B)_j^2 = 2 s_i s_k delta_jl
    s = np.sin(a)
    close(h[1][1], 2 * np.einsum("i,k,jl->ijkl", s, s, np.eye(2)))
    # jacrev(jacrev) agrees with forward-over-reverse
    close(jacrev(jacrev(g, argnums=(0, 1)), argnums=(0, 1))(a, B)[0][1], h[0][1],
          rtol=1e-10, atol=1e-12)


def test_hvp_one_and_several_primals():
    x = np.array([0.5, -1.0, 2.0])
    close(hvp(rosen, (x,), (V3,)), rosen_hess(x) @ V3)
    g = lambda a, b: np.sum(a * a * b)   # noqa: E731
    out = hvp(g, (x, V3), (np.ones(3), np.ones(3)))
    assert isinstance(out, tuple) and len(out) == 2
    # H = [[2 diag(b), 2 diag(a)], [2 diag(a), 0]]
    close(out[0], 2 * V3 + 2 * x)
    close(out[1], 2 * x)


def test_linearize():
    x = np.array([0.5, -1.0, 2.0])
    out, f_jvp = linearize(lambda x: np.sin(x) * x, x)
    close(out, np.sin(x) * x)
    close(f_jvp(V3), (np.cos(x) * x + np.sin(x)) * V3)
    close(f_jvp(np.ones(3)), np.cos(x) * x + np.sin(x))
    out, f_jvp = linearize(lambda a, b: a * b, x, 2 * x)
    close(f_jvp(np.ones(3), np.zeros(3)), 2 * x)
    close(f_jvp(np.zeros(3), np.ones(3)), x)
    out, f_jvp = linearize(np.exp, 0.3)
    close(f_jvp(2.0), 2 * np.exp(0.3))


def test_jacobian_is_one_staged_call():
    jac = jacrev(lambda x: np.tanh(x) * np.sum(x))
    for n in (5, 40):
        before = jitgrad.api.functions.trace_count
        j = jac(np.linspace(-1, 1, n))
        assert j.shape == (n, n)
        assert jitgrad.api.functions.trace_count == before + 1, "one trace per new signature, not one per row"
        before = jitgrad.api.functions.trace_count
        jac(np.linspace(-2, 2, n))
        assert jitgrad.api.functions.trace_count == before, "same signature: served from the cache"
    assert len(jac._staged.cache) == 2
    jf = jacfwd(np.sin)
    before = jitgrad.api.functions.trace_count
    jf(np.ones(30))
    assert jitgrad.api.functions.trace_count == before + 1


# ---------------------------------------------------------------------------
# 3. Pytrees


def _assert_same_structure(a, b):
    la, ta = jitgrad.tree.flatten(a)
    lb, tb = jitgrad.tree.flatten(b)
    assert ta == tb, (ta, tb)
    return la, lb


def test_grad_nested_pytree_argument():
    x = np.array([1.0, 2.0, 3.0])
    p = {"w": x, "b": (x + 1, 2.0), "l": [np.ones(2), None], "nested": {"z": [(0.5,)]}}

    def f(p):
        return (np.sum(p["w"] * p["b"][0]) + p["b"][1] ** 2 + np.sum(np.sin(p["l"][0]))
                + p["nested"]["z"][0][0] ** 3)

    g = grad(f)(p)
    _assert_same_structure(g, p)
    assert g["l"][1] is None
    close(g["w"], x + 1)
    close(g["b"][0], x)
    close(g["b"][1], 4.0)
    close(g["l"][0], np.cos(np.ones(2)))
    close(g["nested"]["z"][0][0], 0.75)
    assert isinstance(g["b"], tuple) and isinstance(g["l"], list)
    v, g2 = value_and_grad(f)(p)
    close(v, f(p))
    for a, b in zip(*_assert_same_structure(g, g2)):
        close(a, b)


def test_grad_argnums_tuple_with_pytrees():
    x = np.array([1.0, 2.0])
    f = lambda a, skip, c: np.sum(a[0] * c["k"]) + a[1] * c["s"]     # noqa: E731
    ga, gc = grad(f, argnums=(0, 2))((x, 3.0), None, {"k": x * 2, "s": 0.5})
    assert isinstance(ga, tuple) and isinstance(gc, dict)
    close(ga[0], 2 * x)
    close(ga[1], 0.5)
    close(gc["k"], x)
    close(gc["s"], 3.0)


def test_has_aux_returns_aux_untouched():
    x = np.array([1.0, 2.0, 3.0])
    aux_in = {"a": None, "b": [7, 2.5], "c": (np.arange(3), np.float32(1.5))}

    def f(x):
        return np.sum(x ** 2), {"a": None, "b": [7, 2.5], "c": (np.arange(3), np.float32(1.5)),
                                "d": x * 2}

    g, aux = grad(f, has_aux=True)(x)
    close(g, 2 * x)
    expected = dict(aux_in, d=x * 2)
    la, lb = _assert_same_structure(aux, expected)
    for a, b in zip(la, lb):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)
    (v, aux2), g2 = value_and_grad(f, has_aux=True)(x)
    close(v, 14.0)
    close(g2, 2 * x)
    _assert_same_structure(aux2, expected)
    # vjp with has_aux
    out, fn, aux3 = vjp(f, x, has_aux=True)
    close(out, 14.0)
    close(fn(1.0)[0], 2 * x)
    _assert_same_structure(aux3, expected)


def test_jvp_and_vjp_pytree_outputs():
    x = np.array([1.0, 2.0, 3.0])
    f = lambda d: {"s": np.sin(d["a"]), "t": (d["a"] * d["b"], [d["b"] ** 2])}   # noqa: E731
    prim = {"a": x, "b": 2.0}
    out, tan = jvp(f, (prim,), ({"a": np.ones(3), "b": 1.0},))
    _assert_same_structure(out, f(prim))
    _assert_same_structure(tan, f(prim))
    close(tan["s"], np.cos(x))
    close(tan["t"][0], x + 2.0)
    close(tan["t"][1][0], 4.0)
    out, fn = vjp(f, prim)
    (ct,) = fn({"s": np.ones(3), "t": (np.ones(3), [1.0])})
    _assert_same_structure(ct, prim)
    close(ct["a"], np.cos(x) + 2.0)
    close(ct["b"], np.sum(x) + 4.0)


class Params:
    """A user container: two arrays and a static name."""

    def __init__(self, w, b, name="p"):
        self.w, self.b, self.name = w, b, name


jitgrad.tree.register(Params, lambda p: ([p.w, p.b], p.name), lambda name, c: Params(c[0], c[1], name))


def test_registered_container_as_grad_argument():
    p = Params(np.array([1.0, -2.0, 0.5]), 0.3, name="layer")
    x = np.array([2.0, 1.0, -1.0])

    def loss(p, x):
        return np.sum(np.tanh(p.w * x + p.b) ** 2)

    g = grad(loss)(p, x)
    assert isinstance(g, Params) and g.name == "layer"
    y = np.tanh(p.w * x + p.b)
    dy = 2 * y * (1 - y ** 2)
    close(g.w, dy * x)
    close(g.b, np.sum(dy))
    # and as a Jacobian argument / jvp output
    j = jacrev(lambda p: p.w * p.b)(p)
    assert isinstance(j, Params)
    close(j.w, np.diag(np.full(3, 0.3)))
    close(j.b, p.w)
    out, t = jvp(lambda p: Params(p.w * 2, p.b, "out"), (p,), (Params(np.ones(3), 1.0, "layer"),))
    assert isinstance(out, Params) and isinstance(t, Params) and t.name == "out"
    close(t.w, 2 * np.ones(3))


def test_list_of_scalars_argument():
    g = grad(lambda l: l[0] * l[1] + l[2][0] ** 2)([2.0, 3.0, (1.5,)])
    assert isinstance(g, list) and isinstance(g[2], tuple)
    close(g[0], 3.0)
    close(g[1], 2.0)
    close(g[2][0], 3.0)


# ---------------------------------------------------------------------------
# 4. custom_jvp, custom_vjp, stop_gradient


@custom_jvp
def fake_sin(x):
    return np.sin(x)


@fake_sin.defjvp
def _fake_sin_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return np.sin(x), 3.0 * x * t          # deliberately wrong: d/dx "=" 3x, d2/dx2 "=" 3


@custom_jvp
def scaled_mul(x, y):
    return x * y


@scaled_mul.defjvp
def _scaled_mul_jvp(primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    return x * y, 10.0 * tx + 100.0 * ty   # deliberately wrong


def test_custom_jvp_rule_used_in_grad_jvp_and_higher_orders():
    x = np.array([0.5, -1.0, 2.0])
    close(fake_sin(0.5), np.sin(0.5))                     # outside a transform: the function
    close(jitgrad.jit(fake_sin)(x), np.sin(x))            # traced value: the function
    close(grad(fake_sin)(0.5), 1.5)
    close(grad(lambda x: np.sum(fake_sin(x)))(x), 3 * x)
    out, t = jvp(fake_sin, (x,), (V3,))
    close(out, np.sin(x))
    close(t, 3 * x * V3)
    close(grad(grad(fake_sin))(0.5), 3.0)
    close(jvp(grad(fake_sin), (0.5,), (1.0,))[1], 3.0)
    close(hessian(lambda x: np.sum(fake_sin(x)))(x), 3 * np.eye(3))
    close(jacfwd(fake_sin)(x), np.diag(3 * x))
    close(jacrev(fake_sin)(x), np.diag(3 * x))
    close(vjp(fake_sin, x)[1](np.ones(3))[0], 3 * x)
    # chain rule around the custom function still applies
    close(grad(lambda x: fake_sin(x ** 2))(1.5), 3 * 1.5 ** 2 * 2 * 1.5)


def test_custom_jvp_two_arguments_and_constant():
    x = np.array([0.5, -1.0, 2.0])
    ga, gb = grad(lambda a, b: np.sum(scaled_mul(a, b)), argnums=(0, 1))(x, x)
    close(ga, 10 * np.ones(3))
    close(gb, 100 * np.ones(3))
    close(grad(lambda a: np.sum(scaled_mul(a, 2.0)))(x), 10 * np.ones(3))


def test_custom_jvp_compiled():
    x = np.array([0.5, -1.0, 2.0])
    with jitgrad.config(compile="always"):
        g = grad(lambda x: np.sum(fake_sin(x) * 2))(x)
    close(g, 6 * x)


@custom_vjp
def fake_exp(x):
    return np.exp(x)


def _fake_exp_fwd(x):
    return np.exp(x), (x,)


def _fake_exp_bwd(res, ct):
    (x,) = res
    return (ct * 7.0 * x,)                 # deliberately wrong


fake_exp.defvjp(_fake_exp_fwd, _fake_exp_bwd)


def test_custom_vjp_rule_used_in_reverse_mode():
    x = np.array([0.5, -1.0, 2.0])
    close(fake_exp(0.5), np.exp(0.5))
    close(grad(fake_exp)(0.5), 3.5)
    close(grad(lambda x: np.sum(fake_exp(x)))(x), 7 * x)
    out, fn = vjp(fake_exp, x)
    close(out, np.exp(x))
    close(fn(V3)[0], 7 * x * V3)
    close(jacrev(fake_exp)(x), np.diag(7 * x))
    close(grad(lambda x: np.sum(fake_exp(np.sin(x))))(x), 7 * np.sin(x) * np.cos(x))
    # higher order: the bwd rule is itself differentiated
    close(grad(grad(fake_exp))(0.5), 7.0)


def test_custom_vjp_under_jvp_raises_clear_error():
    with pytest.raises(NotImplementedError, match="custom_vjp"):
        jvp(fake_exp, (np.ones(3),), (np.ones(3),))


def test_custom_vjp_under_jacfwd_raises_clear_error():
    with pytest.raises(NotImplementedError, match="custom_vjp"):
        jacfwd(fake_exp)(np.ones(3))


def test_custom_vjp_hessian_differentiates_bwd():
    # forward over reverse differentiates the (traced) bwd rule, as in JAX: d/dx (7 x ct) = 7
    close(hessian(lambda x: np.sum(fake_exp(x)))(np.array([0.5, -1.0, 2.0])), 7 * np.eye(3))


def test_stop_gradient():
    x = np.array([1.0, 2.0, 3.0])
    assert stop_gradient(x) is x                        # outside a trace: identity
    v, g = value_and_grad(lambda x: np.sum(stop_gradient(x ** 2)))(x)
    close(v, 14.0)
    close(g, np.zeros(3))
    close(grad(lambda x: np.sum(stop_gradient(x) * x))(x), x)
    out, t = jvp(lambda x: stop_gradient(np.sin(x)), (x,), (np.ones(3),))
    close(out, np.sin(x))
    close(t, np.zeros(3))
    close(jacfwd(lambda x: stop_gradient(x) * x)(x), np.diag(x))
    close(jacrev(lambda x: stop_gradient(x) * x)(x), np.diag(x))
    # second order: d/dx [stop(x) * 2x] = 2 stop(x)
    close(grad(grad(lambda x: stop_gradient(x) * x ** 2))(2.0), 4.0)
    close(hessian(lambda x: np.sum(stop_gradient(x) ** 2 + x ** 2))(x), 2 * np.eye(3))


# ---------------------------------------------------------------------------
# 5. NaN-safe where


XZ = np.array([0.0, 1.0, 4.0, -1.0])


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            return fn(*args)


# name: (f, x, expected gradient)
NAN_SAFE = {
    "sqrt": (lambda x: np.sum(np.where(x > 0, np.sqrt(x), 0.0)), XZ, [0, 0.5, 0.25, 0]),
    "log": (lambda x: np.sum(np.where(x > 0, np.log(x), 0.0)), XZ, [0, 1, 0.25, 0]),
    "reciprocal": (lambda x: np.sum(np.where(x != 0, 1 / x, 0.0)), XZ, [0, -1, -1 / 16, -1]),
    "x-sqrt": (lambda x: np.sum(np.where(x > 0, x - np.sqrt(x), 0.0)), XZ, [0, 0.5, 0.75, 0]),
    "reciprocal-false-branch": (lambda x: np.sum(np.where(x == 0, 0.0, 1.0 / x)), XZ,
                                [0, -1, -1 / 16, -1]),
    "arcsin": (lambda x: np.sum(np.where(np.abs(x) < 1, np.arcsin(x), 0.0)),
               np.array([0.5, 1.0, 2.0, -0.3]), [1 / np.sqrt(0.75), 0, 0, 1 / np.sqrt(0.91)]),
    "arcsin-else-x": (lambda x: np.sum(np.where(np.abs(x) < 1, np.arcsin(x), x)),
                      np.array([0.5, 1.0, 2.0, -0.3]), [1 / np.sqrt(0.75), 1, 1, 1 / np.sqrt(0.91)]),
    "sqrt*3+1": (lambda x: np.sum(np.where(x > 0, np.sqrt(x) * 3 + 1, 0.0)), XZ, [0, 1.5, 0.75, 0]),
    "3*sqrt": (lambda x: np.sum(np.where(x > 0, 3 * np.sqrt(x), 0.0)), XZ, [0, 1.5, 0.75, 0]),
    "-sqrt/2": (lambda x: np.sum(np.where(x > 0, -np.sqrt(x) / 2, 0.0)), XZ, [0, -0.25, -0.125, 0]),
    "sqrt-x": (lambda x: np.sum(np.where(x > 0, np.sqrt(x) - x, 0.0)), XZ, [0, -0.5, -0.75, 0]),
    "sin(sqrt)": (lambda x: np.sum(np.where(x > 0, np.sin(np.sqrt(x)), 0.0)), XZ,
                  [0, np.cos(1) / 2, np.cos(2) / 4, 0]),
    "x*log(x)": (lambda x: np.sum(np.where(x > 0, x * np.log(x), 0.0)), XZ,
                 [0, 1, np.log(4) + 1, 0]),
    "log(x-1)": (lambda x: np.sum(np.where(x > 1, np.log(x - 1), 0.0)), XZ, [0, 0, 1 / 3, 0]),
    "sqrt(2x)": (lambda x: np.sum(np.where(x > 0, np.sqrt(2 * x), 0.0)), XZ,
                 [0, 1 / np.sqrt(2), 1 / np.sqrt(8), 0]),
    "exp(-1/x)": (lambda x: np.sum(np.where(x > 0, np.exp(-1 / x), 0.0)), XZ,
                  [0, np.exp(-1), np.exp(-0.25) / 16, 0]),
    "nested": (lambda x: np.sum(np.where(x > 0, np.where(x > 1, np.sqrt(x - 1), 0.0), 0.0)), XZ,
               [0, 0, 0.5 / np.sqrt(3), 0]),
    "weighted": (lambda x: np.sum(np.where(x > 0, np.sqrt(x), 0.0) * np.arange(4.0)), XZ,
                 [0, 0.5, 0.5, 0]),
    "mean": (lambda x: np.mean(np.where(x > 0, np.sqrt(x), 0.0)), XZ, [0, 0.125, 0.0625, 0]),
    "x**0.5": (lambda x: np.sum(np.where(x > 0, x ** 0.5, 0.0)), XZ, [0, 0.5, 0.25, 0]),
    "scalar": (lambda x: np.where(x > 0, np.sqrt(x), 0.0), 0.0, 0.0),
    # the mask moves with the cotangent through reshapes, broadcasts, sums, slices
    "reshape": (lambda x: np.sum(np.where(x > 0, np.sqrt(x.reshape(2, 2)).ravel(), 0.0)), XZ,
                [0, 0.5, 0.25, 0]),
    "broadcast": (lambda x: np.sum(np.where((x > 0) & np.array([[True], [True]]), np.sqrt(x), 0.0)),
                  XZ, [0, 1.0, 0.5, 0]),
    "transpose": (lambda x: np.sum(np.where(x.reshape(2, 2) > 0, np.sqrt(x.reshape(2, 2)).T.T, 0.0)),
                  XZ, [0, 0.5, 0.25, 0]),
    "slice": (lambda x: np.sum(np.where(x[1:] > 0, np.sqrt(x)[1:], 0.0)), np.array([0.0, 0.0, 4.0, -1.0]),
              [0, 0, 0.25, 0]),
    "scalar-pred-sum": (lambda x: np.where(np.sum(x) > 0, np.sum(np.sqrt(x)), 0.0), np.array([0.0, -1.0]),
                        [0, 0]),
    "concatenate": (lambda x: np.sum(np.where(np.concatenate([x, x]) > 0,
                                              np.concatenate([np.sqrt(x), np.log(x)]), 0.0)), XZ,
                    [0, 1.5, 0.5, 0]),
}

@pytest.mark.parametrize("name", sorted(NAN_SAFE))
def test_where_untaken_branch_is_nan_safe(name):
    f, x, expected = NAN_SAFE[name]
    g = _quiet(grad(f), x)
    assert not np.any(np.isnan(g)), g
    close(g, expected, rtol=1e-12, atol=0)
    # and through vjp
    close(_quiet(lambda x: vjp(f, x)[1](1.0)[0], x), expected, rtol=1e-12, atol=0)


def test_where_forward_mode_untaken_branch():
    f = lambda x: np.where(x > 0, np.sqrt(x), 0.0)     # noqa: E731
    _, t = _quiet(jvp, f, (XZ,), (np.ones(4),))
    close(t, [0, 0.5, 0.25, 0], rtol=1e-12, atol=0)
    close(_quiet(jacfwd(f), XZ), np.diag([0, 0.5, 0.25, 0]), rtol=1e-12, atol=0)


def test_where_taken_branch_keeps_infinite_derivative():
    f = lambda x: np.sum(np.where(x >= 0, np.sqrt(x), 0.0))   # noqa: E731
    g = _quiet(grad(f), XZ)
    assert g[0] == np.inf
    close(g[1:], [0.5, 0.25, 0.0], rtol=1e-12, atol=0)
    assert _quiet(grad(lambda x: np.where(x >= 0, np.log(x), 0.0)), 0.0) == np.inf


def test_where_second_order_nan_safe():
    f = lambda x: np.sum(np.where(x > 0, np.log(x), 0.0))          # noqa: E731
    h = _quiet(hessian(f), XZ)
    close(h, np.diag([0, -1, -1 / 16, 0]), rtol=1e-12, atol=0)
    gg = _quiet(grad(lambda x: np.sum(grad(f)(x))), XZ)
    close(gg, [0, -1, -1 / 16, 0], rtol=1e-12, atol=0)
    close(_quiet(grad(grad(lambda s: np.where(s > 0, np.sqrt(s), 0.0))), 0.0), 0.0)


def test_where_third_and_fourth_order_nan_safe():
    # the backward pass sums masked cotangents: the sum stays masked
    for n in (3, 4):
        assert _quiet(_nth(lambda s: np.where(s > 0, np.sqrt(s), 0.0), n), 0.0) == 0.0
        assert _quiet(_nth(lambda s: np.where(s > 0, np.log(s), 0.0), n), 0.0) == 0.0
    g3 = _quiet(_nth(lambda s: np.where(s > 0, np.sqrt(s), 0.0), 3), 4.0)
    close(g3, 3 / 8 * 4.0 ** -2.5, rtol=1e-12, atol=0)


def test_where_nan_safe_compiled_matches_interpreter():
    def f(x):
        return (np.sum(np.where(x > 0, np.sqrt(x), 0.0)) + np.sum(np.where(x > 0, np.log(x), 0.0))
                + np.sum(np.where(x != 0, 1 / x, 0.0)) + np.sum(np.where(x >= 0, np.sqrt(x) * 2, 0.0)))

    ref = _quiet(grad(f), XZ)
    with jitgrad.config(compile="always"):
        got = _quiet(grad(f), XZ)
    np.testing.assert_array_equal(got, ref)
    assert got[0] == np.inf and not np.any(np.isnan(got))
    close(got[1:], [0.5 + 1 - 1 + 1, 0.25 + 0.25 - 1 / 16 + 0.5, -1], rtol=1e-12, atol=0)


def test_jacobians_of_cumsum_batch_it():
    # jacfwd/jacrev/hessian batch cumsum (its batching rule shifts the axis)
    f = lambda x: np.cumsum(np.sin(x), axis=1)
    x = np.random.default_rng(3).standard_normal((2, 3))
    J = np.zeros((2, 3, 2, 3))
    for i in range(2):
        for j in range(3):
            for k in range(j + 1):
                J[i, j, i, k] = np.cos(x[i, k])
    for jac in (jitgrad.jacfwd, jitgrad.jacrev):
        np.testing.assert_allclose(jac(f)(x), J, rtol=1e-14, atol=1e-15)
    H = jitgrad.hessian(lambda x: np.sum(np.cumsum(x ** 3)))(np.array([1.0, 2.0, 3.0]))
    # sum of running totals weights x_k by (n - k): d2/dx_k2 = 6 x_k (n - k)
    np.testing.assert_allclose(H, np.diag([18.0, 24.0, 18.0]), rtol=1e-14)


def test_jacobians_and_vmap_of_linear_algebra():
    rng = np.random.default_rng(5)
    A = rng.uniform(-0.5, 0.5, (3, 3)) + 2 * np.eye(3)
    b = rng.standard_normal((4, 3))
    f = lambda a: np.linalg.inv(a) @ np.ones(3) + np.linalg.det(a)
    h = 1e-6
    fd = np.stack([(f(A + h * E) - f(A - h * E)) / (2 * h)
                   for E in np.eye(9).reshape(9, 3, 3)], axis=-1).reshape(3, 3, 3)
    for jac in (jitgrad.jacfwd, jitgrad.jacrev):
        np.testing.assert_allclose(jac(f)(A), fd, rtol=1e-6, atol=1e-8)
    # solve batched over right-hand sides only, and over both operands
    np.testing.assert_allclose(jitgrad.vmap(np.linalg.solve, in_axes=(None, 0))(A, b),
                               np.linalg.solve(A, b.T).T, rtol=1e-13)
    As = np.stack([A, A.T, A + np.eye(3), 2 * A])
    np.testing.assert_allclose(jitgrad.vmap(np.linalg.solve)(As, b),
                               np.stack([np.linalg.solve(a, v) for a, v in zip(As, b)]), rtol=1e-13)
    H = jitgrad.hessian(lambda a: np.linalg.det(a))(A)
    gd = jitgrad.grad(lambda a: np.linalg.det(a))
    fdH = np.stack([(gd(A + h * E) - gd(A - h * E)) / (2 * h)
                    for E in np.eye(9).reshape(9, 3, 3)], axis=-1).reshape(3, 3, 3, 3)
    np.testing.assert_allclose(H, fdH, rtol=1e-6, atol=1e-7)
