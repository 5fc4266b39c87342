"""Semantics of grad / value_and_grad / jvp / vjp / jit, following JAX's conventions."""
import functools
import math

import numpy as np
import pytest

import jitgrad
from jitgrad.api import functions as api
from helpers import assert_close, fd_jvp

F32, F64 = np.float32, np.float64


def f2(x, y):
    return np.sum(np.sin(x) * y ** 2)


def df2(x, y):
    return np.cos(x) * y ** 2, 2 * np.sin(x) * y


X = np.array([0.1, 0.7, -1.3])
Y = np.array([1.5, -0.4, 2.0])


# ---------------------------------------------------------------------------
# grad: argnums, has_aux


def test_grad_default_argnum_0():
    g = jitgrad.grad(f2)(X, Y)
    assert isinstance(g, np.ndarray)
    assert_close(g, df2(X, Y)[0], 1e-14, 0)


def test_grad_argnums_int():
    g = jitgrad.grad(f2, argnums=1)(X, Y)
    assert_close(g, df2(X, Y)[1], 1e-14, 0)


def test_grad_argnums_negative():
    g = jitgrad.grad(f2, argnums=-1)(X, Y)
    assert_close(g, df2(X, Y)[1], 1e-14, 0)


def test_grad_argnums_tuple():
    g = jitgrad.grad(f2, argnums=(0, 1))(X, Y)
    assert isinstance(g, tuple) and len(g) == 2
    for a, b in zip(g, df2(X, Y)):
        assert_close(a, b, 1e-14, 0)


def test_grad_argnums_tuple_reordered():
    gy, gx = jitgrad.grad(f2, argnums=(1, 0))(X, Y)
    assert_close(gx, df2(X, Y)[0], 1e-14, 0)
    assert_close(gy, df2(X, Y)[1], 1e-14, 0)


def test_grad_argnums_single_tuple_gives_tuple():
    g = jitgrad.grad(f2, argnums=(1,))(X, Y)
    assert isinstance(g, tuple) and len(g) == 1
    assert_close(g[0], df2(X, Y)[1], 1e-14, 0)


def test_grad_non_differentiated_int_argument_ok():
    def f(x, n):
        return np.sum(x ** 2) * n
    g = jitgrad.grad(f)(X, 3)
    assert_close(g, 6 * X, 1e-14, 0)


def test_grad_has_aux():
    def f(x):
        y = np.sin(x)
        return np.sum(y), {"y": y, "n": np.max(x)}
    g, aux = jitgrad.grad(f, has_aux=True)(X)
    assert_close(g, np.cos(X), 1e-14, 0)
    assert set(aux) == {"y", "n"}
    assert_close(aux["y"], np.sin(X), 1e-14, 0)
    assert aux["n"] == np.max(X)


def test_value_and_grad():
    v, g = jitgrad.value_and_grad(f2)(X, Y)
    assert v == pytest.approx(f2(X, Y), rel=1e-14)
    assert isinstance(v, np.float64)
    assert_close(g, df2(X, Y)[0], 1e-14, 0)


def test_value_and_grad_argnums_has_aux():
    def f(x, y):
        return f2(x, y), x * 2
    (v, aux), (gx, gy) = jitgrad.value_and_grad(f, argnums=(0, 1), has_aux=True)(X, Y)
    assert v == pytest.approx(f2(X, Y), rel=1e-14)
    assert_close(aux, X * 2, 1e-14, 0)
    assert_close(gx, df2(X, Y)[0], 1e-14, 0)
    assert_close(gy, df2(X, Y)[1], 1e-14, 0)


def test_grad_constant_function_gives_zeros():
    g = jitgrad.grad(lambda x, y: np.sum(y))(X, Y)
    assert g.shape == X.shape and g.dtype == X.dtype and np.all(g == 0)


def test_grad_stop_gradient_like_closure_constant():
    c = np.array([1.0, 2.0, 3.0])
    g = jitgrad.grad(lambda x: np.sum(x * c))(X)
    assert_close(g, c, 0, 0)


# ---------------------------------------------------------------------------
# pytrees


def test_grad_pytree_dict_argument():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5])}
    x = np.array([1.0, -1.0])

    def loss(p, x):
        return np.sum((p["w"] @ x + p["b"]) ** 2)

    g = jitgrad.grad(loss)(params, x)
    assert isinstance(g, dict) and set(g) == {"w", "b"}
    r = params["w"] @ x + params["b"]
    assert_close(g["b"], 2 * r, 1e-14, 0)
    assert_close(g["w"], 2 * np.outer(r, x), 1e-14, 0)


def test_grad_pytree_nested_tuple_list():
    args = ([np.array(1.0), np.array([2.0, 3.0])], (np.array(4.0),))

    def f(a):
        (u, v), (w,) = a
        return u * np.sum(v) * w

    g = jitgrad.grad(f)(args)
    assert isinstance(g, tuple) and isinstance(g[0], list) and isinstance(g[1], tuple)
    assert g[0][0] == pytest.approx(20.0)
    assert_close(g[0][1], [4.0, 4.0], 1e-14, 0)
    assert g[1][0] == pytest.approx(5.0)


def test_jit_pytree_outputs():
    @jitgrad.jit
    def f(d):
        return {"s": d["a"] + d["b"], "p": [d["a"] * d["b"], (d["a"],)]}
    a, b = np.arange(3.0), np.ones(3)
    out = f({"a": a, "b": b})
    assert set(out) == {"s", "p"}
    assert isinstance(out["p"], list) and isinstance(out["p"][1], tuple)
    np.testing.assert_array_equal(out["s"], a + b)
    np.testing.assert_array_equal(out["p"][0], a * b)
    np.testing.assert_array_equal(out["p"][1][0], a)


def test_jvp_pytree():
    def f(p):
        return {"y": np.sin(p["x"]) * p["s"]}
    p = {"x": X, "s": np.array(2.0)}
    t = {"x": np.ones(3), "s": np.array(0.5)}
    out, tout = jitgrad.jvp(f, (p,), (t,))
    assert set(out) == {"y"} and set(tout) == {"y"}
    assert_close(tout["y"], np.cos(X) * 2.0 + np.sin(X) * 0.5, 1e-14, 0)


def test_vjp_pytree_and_tuple_output():
    def f(x, y):
        return x * y, np.sum(x)
    out, vjp_fn = jitgrad.vjp(f, X, Y)
    assert isinstance(out, tuple) and len(out) == 2
    u = (np.array([1.0, 2.0, 3.0]), np.float64(10.0))
    cx, cy = vjp_fn(u)
    assert_close(cx, u[0] * Y + 10.0, 1e-14, 0)
    assert_close(cy, u[0] * X, 1e-14, 0)


def test_vjp_has_aux():
    out, vjp_fn, aux = jitgrad.vjp(lambda x: (x ** 2, np.sum(x)), X, has_aux=True)
    assert_close(out, X ** 2, 1e-14, 0)
    assert aux == pytest.approx(np.sum(X))
    (c,) = vjp_fn(np.ones(3))
    assert_close(c, 2 * X, 1e-14, 0)


def test_vjp_int_primal_gets_zero_cotangent():
    out, vjp_fn = jitgrad.vjp(lambda x, n: x * n, X, 2)
    cx, cn = vjp_fn(np.ones(3))
    assert_close(cx, [2.0, 2.0, 2.0], 0, 0)
    assert np.all(np.asarray(cn) == 0)


def test_jvp_returns_pair_and_matches_fd():
    out, t = jitgrad.jvp(f2, (X, Y), (Y, X))
    assert out == pytest.approx(f2(X, Y), rel=1e-14)
    (fd,) = fd_jvp(f2, [X, Y], [Y, X])
    assert t == pytest.approx(float(fd), rel=1e-8)


def test_jvp_accepts_lists():
    out, t = jitgrad.jvp(np.sin, [X], [np.ones(3)])
    assert_close(t, np.cos(X), 1e-14, 0)


# ---------------------------------------------------------------------------
# wraps, decorators


def test_wraps_keeps_name_and_doc():
    def my_loss(x):
        """Docstring of my_loss."""
        return np.sum(x)
    for t in (jitgrad.grad(my_loss), jitgrad.value_and_grad(my_loss), jitgrad.jit(my_loss)):
        assert t.__name__ == "my_loss"
        assert t.__doc__ == "Docstring of my_loss."
        assert t.__wrapped__ is my_loss


def test_decorator_forms():
    @jitgrad.jit
    def a(x):
        return x * 2

    @jitgrad.jit(static_argnums=1)
    def b(x, n):
        return x * n

    @jitgrad.grad
    def c(x):
        return np.sum(x ** 3)

    @functools.partial(jitgrad.grad, argnums=1)
    def d(x, y):
        return np.sum(x * y)

    np.testing.assert_array_equal(a(X), X * 2)
    np.testing.assert_array_equal(b(X, 3), X * 3)
    assert_close(c(X), 3 * X ** 2, 1e-14, 0)
    assert_close(d(X, Y), X, 0, 0)


def test_method_style_and_lambda():
    class M:
        def __init__(self, k):
            self.k = k

        def loss(self, x):
            return np.sum(self.k * x ** 2)
    m = M(3.0)
    assert_close(jitgrad.grad(m.loss)(X), 6 * X, 1e-14, 0)


# ---------------------------------------------------------------------------
# dtypes and scalars


def test_float32_in_float32_out():
    x = X.astype(F32)
    g = jitgrad.grad(lambda x: np.sum(np.exp(x) * 2.0 + x / 3))(x)
    assert g.dtype == F32
    v, g2 = jitgrad.value_and_grad(lambda x: np.sum(x * x))(x)
    assert isinstance(v, np.float32) and g2.dtype == F32
    y = jitgrad.jit(lambda x: np.tanh(x) + 1)(x)
    assert y.dtype == F32
    out, t = jitgrad.jvp(lambda x: x * 2.0, (x,), (np.ones(3, F32),))
    assert out.dtype == F32 and t.dtype == F32


def test_float32_scalar_argument():
    g = jitgrad.grad(lambda x: x * x * 3.0)(np.float32(2.0))
    assert isinstance(g, np.float32) and g == np.float32(12.0)


def test_python_floats_give_float64():
    g = jitgrad.grad(lambda x: x * x)(3.0)
    assert isinstance(g, np.float64) and g == 6.0
    v = jitgrad.jit(lambda x: x + 1)(2.0)
    assert isinstance(v, np.float64) and v == 3.0


def test_zero_d_results_are_numpy_scalars():
    v = jitgrad.jit(lambda x: np.sum(x))(X)
    assert isinstance(v, np.float64) and not isinstance(v, np.ndarray)
    g = jitgrad.grad(lambda x: x ** 3)(np.float64(2.0))
    assert isinstance(g, np.float64) and g == 12.0
    g0 = jitgrad.grad(lambda x: np.sum(x ** 3))(np.array(2.0))
    assert np.ndim(g0) == 0 and g0 == 12.0
    v2, g2 = jitgrad.value_and_grad(lambda x: np.sum(x))(X)
    assert isinstance(v2, np.float64)


def test_mixed_precision_promotes_like_numpy():
    f = lambda x, y: x * y
    out = jitgrad.jit(f)(X.astype(F32), Y)
    assert out.dtype == F64
    gx, gy = jitgrad.grad(lambda x, y: np.sum(x * y), argnums=(0, 1))(X.astype(F32), Y)
    assert gx.dtype == F32 and gy.dtype == F64


def test_int_array_in_jit():
    out = jitgrad.jit(lambda a: a * 2 + 1)(np.arange(4))
    assert out.dtype == np.arange(4).dtype
    np.testing.assert_array_equal(out, np.arange(4) * 2 + 1)


# ---------------------------------------------------------------------------
# higher order


def test_third_derivative_of_sin():
    d3 = jitgrad.grad(jitgrad.grad(jitgrad.grad(np.sin)))
    for x in (0.0, 0.5, 2.0, -1.3):
        assert d3(x) == pytest.approx(-math.cos(x), rel=1e-13, abs=1e-15)


def test_fourth_derivative_of_exp_times_x():
    f = lambda x: x * np.exp(x)              # d^n = (x + n) e^x
    d4 = f
    for _ in range(4):
        d4 = jitgrad.grad(d4)
    assert d4(0.7) == pytest.approx((0.7 + 4) * math.exp(0.7), rel=1e-12)


def test_hessian_vector_product_forward_over_reverse():
    A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 4.0]])
    f = lambda x: 0.5 * x @ A @ x + np.sum(x ** 3)
    v = np.array([1.0, -2.0, 0.5])
    _, hv = jitgrad.jvp(jitgrad.grad(f), (X,), (v,))
    assert_close(hv, A @ v + 6 * X * v, 1e-12, 1e-14)


def test_grad_of_jit_and_jit_of_grad():
    f = jitgrad.jit(lambda x: np.sum(np.sin(x) ** 2))
    ref = 2 * np.sin(X) * np.cos(X)
    assert_close(jitgrad.grad(f)(X), ref, 1e-14, 1e-16)
    assert_close(jitgrad.jit(jitgrad.grad(f))(X), ref, 1e-14, 1e-16)


def test_grad_closes_over_outer_tracer():
    # d/dx [ grad_y (x*y^2) at y=3 ] = d/dx (6x) = 6 ... with y depending on x: y = x
    def outer(x):
        inner = jitgrad.grad(lambda y: x * y ** 2)
        return inner(x)                 # 2 x^2
    assert jitgrad.grad(outer)(1.5) == pytest.approx(4 * 1.5)


def test_jvp_of_vjp():
    f = lambda x: np.sin(x) * x
    def g(x):
        _, vjp_fn = jitgrad.vjp(f, x)
        return vjp_fn(np.ones(3))[0]   # f'(x) elementwise
    _, t = jitgrad.jvp(g, (X,), (np.ones(3),))
    assert_close(t, 2 * np.cos(X) - X * np.sin(X), 1e-13, 1e-15)


# ---------------------------------------------------------------------------
# jit: static args, caching


def test_static_argnums():
    calls = []

    @functools.partial(jitgrad.jit, static_argnums=(1,))
    def f(x, n):
        calls.append(n)
        return x ** n if n > 1 else x     # Python branch on a static value
    np.testing.assert_allclose(f(X, 3), X ** 3)
    np.testing.assert_allclose(f(X, 1), X)
    np.testing.assert_allclose(f(X, 3), X ** 3)
    assert calls == [3, 1]


def test_static_argnums_negative_and_string():
    @functools.partial(jitgrad.jit, static_argnums=-1)
    def f(x, op):
        return np.sin(x) if op == "sin" else np.cos(x)
    np.testing.assert_allclose(f(X, "sin"), np.sin(X))
    np.testing.assert_allclose(f(X, "cos"), np.cos(X))


def test_jit_cache_no_retrace_same_signature():
    count = [0]

    @jitgrad.jit
    def f(x):
        count[0] += 1
        return x * 2

    before = api.trace_count
    f(np.ones(3))
    f(np.zeros(3))
    f(np.arange(3.0))
    assert count[0] == 1 and api.trace_count == before + 1
    f(np.ones(4))                       # new shape
    assert count[0] == 2
    f(np.ones(4, F32))                  # new dtype
    assert count[0] == 3
    f(np.ones(3))
    assert count[0] == 3


def test_jit_cache_pytree_structure_is_part_of_signature():
    count = [0]

    @jitgrad.jit
    def f(t):
        count[0] += 1
        return sum(t)
    f((np.ones(2), np.ones(2)))
    f((np.ones(2), np.ones(2)))
    assert count[0] == 1
    f([np.ones(2), np.ones(2)])
    f((np.ones(2), np.ones(2), np.ones(2)))
    assert count[0] == 3


def test_grad_cache_no_retrace():
    count = [0]

    def f(x):
        count[0] += 1
        return np.sum(x ** 2)
    g = jitgrad.grad(f)
    g(X)
    g(Y)
    assert count[0] == 1
    g(np.ones(5))
    assert count[0] == 2


def test_jvp_vjp_cache_no_retrace():
    count = [0]

    def f(x):
        count[0] += 1
        return np.sin(x)
    jitgrad.jvp(f, (X,), (Y,))
    n = count[0]
    jitgrad.jvp(f, (Y,), (X,))
    assert count[0] == n
    _, vf = jitgrad.vjp(f, X)
    vf(Y)
    m = count[0]
    _, vf = jitgrad.vjp(f, Y)
    vf(X)
    assert count[0] == m


def test_python_scalar_args_are_traced_not_static():
    count = [0]

    @jitgrad.jit
    def f(x, s):
        count[0] += 1
        return x * s
    np.testing.assert_allclose(f(X, 2.0), 2 * X)
    np.testing.assert_allclose(f(X, 3.0), 3 * X)     # same signature: a value, not a constant
    assert count[0] == 1


def test_closure_over_numpy_array_is_constant():
    c = np.array([1.0, 2.0, 3.0])

    @jitgrad.jit
    def f(x):
        return x * c
    np.testing.assert_allclose(f(X), X * c)


def test_compiled_cache_reuses_and_auto_mode():
    @jitgrad.jit
    def f(x):
        return np.sum(np.exp(x) * x)
    with jitgrad.config(compile="auto", hot_seconds=0):
        a = f(X)            # interpreted
        b = f(X)            # hot: compiles in the background
        jitgrad.wait_for_compiles()
        c = f(X)            # native
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None
    assert a == pytest.approx(np.sum(np.exp(X) * X), rel=1e-14)
    assert b == pytest.approx(a, rel=1e-14) and c == pytest.approx(a, rel=1e-13)
    assert type(a) is type(c) is np.float64


# ---------------------------------------------------------------------------
# Array surface on tracers


def test_tracer_attributes_and_methods():
    seen = {}

    def f(x):
        seen["shape"] = x.shape
        seen["ndim"] = x.ndim
        seen["size"] = x.size
        seen["len"] = len(x)
        seen["dtype"] = x.dtype
        return (x.T.sum(axis=0) + x.mean() + x.reshape(6, 2).sum()
                + x.astype(F32).astype(F64).max() + x.reshape((12,))[3])
    x = np.arange(12.0).reshape(3, 4) / 7
    out = jitgrad.jit(f)(x)
    assert seen == {"shape": (3, 4), "ndim": 2, "size": 12, "len": 3, "dtype": np.dtype(F64)}
    np.testing.assert_allclose(out, f(x), rtol=1e-7)
    g = jitgrad.grad(lambda x: np.sum(f(x)))(x)
    assert g.shape == x.shape


def test_np_shape_ndim_size_on_tracers():
    def f(x):
        assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6
        return x
    jitgrad.jit(f)(np.ones((2, 3)))


def test_build_array_from_traced_scalars():
    import jitgrad.numpy as jnp

    def f(x):
        return jnp.array([x[0] * x[1], x[2]])
    np.testing.assert_allclose(jitgrad.jit(f)(X), [X[0] * X[1], X[2]])
    g = jitgrad.grad(lambda x: np.sum(f(x) ** 2))(X)
    assert_close(g, [2 * X[0] * X[1] ** 2, 2 * X[0] ** 2 * X[1], 2 * X[2]], 1e-14, 0)


def test_comparison_and_logic_operators():
    f = jitgrad.jit(lambda x, y: ((x < y) | (x > 1.0)) & ~(y == 2.0))
    np.testing.assert_array_equal(f(X, Y), ((X < Y) | (X > 1.0)) & ~(Y == 2.0))


def test_nan_propagation_max_compiled_and_interpreted():
    x = np.array([1.0, np.nan, 3.0])
    f = jitgrad.jit(lambda x: (np.max(x), np.maximum(x, 2.0)))
    for mode in ("never", "always"):
        with jitgrad.config(compile=mode):
            m, mx = f(x)
        assert np.isnan(m), mode
        np.testing.assert_array_equal(np.isnan(mx), [False, True, False])


def test_relu_gradient_at_zero_is_finite():
    # np.where masking: the untaken sqrt branch at 0 must not give NaN
    g = jitgrad.grad(lambda x: np.sum(np.where(x > 0, np.sqrt(np.abs(x)), 0.0)))(np.array([0.0, 4.0]))
    assert np.all(np.isfinite(g))
    assert_close(g, [0.0, 0.25], 1e-14, 0)


def test_max_tie_splits_gradient():
    g = jitgrad.grad(lambda x: np.max(x))(np.array([1.0, 3.0, 3.0]))
    assert_close(g, [0.0, 0.5, 0.5], 0, 0)
    g2 = jitgrad.grad(lambda x: np.maximum(x, x))(2.0)
    assert g2 == 1.0


def test_prod_gradient_with_zeros():
    g = jitgrad.grad(lambda x: np.prod(x))(np.array([2.0, 0.0, 3.0]))
    assert_close(g, [0.0, 6.0, 0.0], 0, 0)
    g = jitgrad.grad(lambda x: np.prod(x))(np.array([0.0, 0.0, 3.0]))
    assert_close(g, [0.0, 0.0, 0.0], 0, 0)


def test_abs_gradient_at_zero_is_zero_like_numpy_sign():
    assert jitgrad.grad(lambda x: np.abs(x))(0.0) == 0.0


def test_pow_zero_base_gradient_wrt_exponent_is_finite():
    gx, gy = jitgrad.grad(lambda x, y: x ** y, argnums=(0, 1))(0.0, 2.5)
    assert gx == 0.0 and gy == 0.0


def test_make_ir_prints_and_typechecks():
    ir = jitgrad.make_ir(lambda x: np.sum(np.sin(x) * 2.0))(X)
    text = str(ir)
    assert "sin" in text and "reduce_sum" in text and "f64[3]" in text
    assert jitgrad.core.ir.typecheck(ir)
    gir = jitgrad.make_ir(jitgrad.grad(lambda x: np.sum(np.sin(x) * 2.0)))(X)
    assert "cos" in str(gir) and jitgrad.core.ir.typecheck(gir)


def test_eval_ir_reference_interpreter():
    ir = jitgrad.make_ir(lambda x, y: x * y + 1.0)(X, Y)
    (out,) = jitgrad.core.trace.eval_ir(ir, [X, Y])
    np.testing.assert_allclose(out, X * Y + 1.0, rtol=1e-15)
