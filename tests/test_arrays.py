"""np.array / np.asarray of traced values, the shape constructors inside traces,
and writes into traced arrays (functional updates, NumPy's views)."""
import threading

import numpy as np
import pytest

import jitgrad
from jitgrad.numpy import intercept
from jitgrad.testing import check_grads

TIERS = ["never", "always"]


def both_tiers(f, *args):
    """f's results under jit in both tiers, checked equal to plain NumPy's."""
    want = f(*args)
    for tier in TIERS:
        with jitgrad.config(compile=tier):
            got = jitgrad.jit(f)(*args)
        for g, w in zip(*(o if isinstance(o, tuple) else (o,) for o in (got, want))):
            assert np.asarray(g).dtype == np.asarray(w).dtype, tier
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=tier)
    return want


X = np.array([0.7, -1.3, 2.1])


# ---------------------------------------------------------------------------
# np.array and friends


def residuals(x):
    return np.array([x[0], x[1] * 1.0, x[2] + 2.5, 3.0])


def nested(x):
    return np.array([[x[0], 1.0], [np.float32(2.0), x[1] * x[2]]])


def mixed_arrays(x):
    return np.array([x, np.ones(3), [1.0, 2.0, x[0]]])


@pytest.mark.parametrize("f", [residuals, nested, mixed_arrays])
def test_array_of_traced_values(f):
    both_tiers(f, X)
    check_grads(lambda x: np.sum(np.sin(f(x))), (X,), order=2)


def test_array_dtype_and_ndmin():
    both_tiers(lambda x: np.array([x[0], x[1]], dtype=np.float32), X)
    both_tiers(lambda x: np.array(x, ndmin=3), X)
    both_tiers(lambda x: np.asarray([x[0], 2], dtype=float) * 2, X)
    both_tiers(lambda x: np.array([x[0] > 0, True]), X)


def test_asarray_is_the_value_array_copies():
    seen = {}

    def f(x):
        seen["asarray"] = np.asarray(x) is x
        seen["asanyarray"] = np.asanyarray(x) is x
        seen["contiguous"] = np.ascontiguousarray(x) is x
        seen["array"] = np.array(x) is x
        y = np.array(x)
        y[0] = 5.0                 # a copy: x is unchanged
        return x + y
    both_tiers(f, X)
    assert seen == {"asarray": True, "asanyarray": True, "contiguous": True, "array": False}


def test_library_code_starting_with_asarray():
    def library(a, axis=None):
        a = np.asarray(a, dtype=float)
        return np.sqrt(np.mean(a ** 2, axis=axis))
    both_tiers(library, X)
    check_grads(library, (X,), order=2)
    assert jitgrad.grad(library)(X) == pytest.approx(X / library(X) / 3)


def test_numpy_untouched_outside_traces():
    jitgrad.jit(residuals)(X)
    for name, orig in intercept.ORIGINALS.items():
        assert getattr(np, name) is orig, name
    inside = {}

    def f(x):
        inside["wrapped"] = np.array is not intercept.ORIGINALS["array"]
        inside["zeros"] = type(np.zeros(2)).__name__
        return x
    jitgrad.jit(f)(X)
    assert inside == {"wrapped": True, "zeros": "Tracer"}
    assert np.array is intercept.ORIGINALS["array"]
    assert isinstance(np.zeros(2), np.ndarray)


def test_other_threads_keep_numpys_functions():
    started, release, out = threading.Event(), threading.Event(), {}

    def traced(x):
        started.set()
        release.wait(10)
        return np.array([x[0], 1.0])

    def other():
        started.wait(10)
        out["obj"] = np.array([1, "a"], dtype=object)
        out["zeros"] = np.zeros(2)
        out["asarray"] = np.asarray([1, 2])
        release.set()

    t = threading.Thread(target=other)
    t.start()
    np.testing.assert_array_equal(jitgrad.jit(traced)(X), [X[0], 1.0])
    t.join()
    assert out["obj"].dtype == object and isinstance(out["zeros"], np.ndarray)
    np.testing.assert_array_equal(out["asarray"], [1, 2])


def test_constructors_make_traced_arrays():
    def f(x):
        return (np.zeros(3) + np.ones((3,)) * 2 + np.full(3, 0.5)
                + np.eye(3)[0] + np.zeros_like(X) + np.full(3, x[0]), np.zeros((), int))
    both_tiers(f, X)
    # (np.empty is zero-filled inside a trace)
    np.testing.assert_array_equal(jitgrad.jit(lambda x: np.empty((2, 2)) + x[0])(X),
                                  np.full((2, 2), X[0]))


def test_grad_of_array_of_tracers():
    g = jitgrad.grad(lambda x: np.sum(residuals(x) ** 2))(X)
    np.testing.assert_allclose(g, 2 * np.array([X[0], X[1], X[2] + 2.5]))
    with jitgrad.config(compile="always"):
        g2 = jitgrad.grad(lambda x: np.sum(residuals(x) ** 2))(X)
    np.testing.assert_allclose(g2, g)


def test_vmap_of_array_of_tracers():
    xs = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(jitgrad.vmap(residuals)(xs), np.stack([residuals(x) for x in xs]))


# ---------------------------------------------------------------------------
# Writes into arrays made inside the function


def build(x):
    out = np.zeros((4, 3))
    out[0] = x
    out[1, 2] = x[0] * x[1]
    out[:, 0] += x[2]
    out[2:, 1:] = np.sin(x[:2])
    out[out.shape[0] - 1] *= 2.0
    return out


def masked(x):
    out = x * 3.0
    out[x > 0] = 0.0                     # (x's value is not known: a traced mask)
    y = x.copy()
    y[np.array([True, False, True])] = -1.0
    return out, y


def fancy(x):
    out = np.ones(5)
    out[[4, 0]] = x[:2]
    out[np.array([1, 3])] -= x[2]
    out[-1] += 1.0
    out[1:4:2] = 7.0
    return out


def rebinding(x):
    y = x.copy()
    y[0] = 1.0
    y += 2.0
    y *= x
    z = np.zeros(3)
    z[1:] = y[:2]
    return y, z


@pytest.mark.parametrize("f", [build, fancy, rebinding])
def test_writes_agree_with_numpy(f):
    both_tiers(f, X)
    check_grads(lambda x: np.sum(np.cos(np.stack(f(x)) if isinstance(f(X), tuple) else f(x))),
                (X,), order=2)


def test_traced_mask_write():
    # x > 0 inside the function is a traced mask
    for x in (X, -X):
        out = jitgrad.jit(masked)(x)
        ref = masked(x)
        for o, r in zip(out, ref):
            np.testing.assert_allclose(o, r)


def test_repeated_indices_follow_numpy():
    def f(x):
        out = np.zeros(3)
        out[[0, 0, 2]] = x              # the last write wins
        acc = np.zeros(3)
        acc[[1, 1, 1]] += x             # buffered: added once, not three times
        return out, acc
    out, acc = both_tiers(f, X)
    np.testing.assert_allclose(out, [X[1], 0, X[2]])
    np.testing.assert_allclose(acc, [0, X[2], 0])
    check_grads(lambda x: np.sum(np.stack(f(x)) ** 2), (X,), order=2)


def test_traced_indices():
    def f(x, idx):
        out = np.zeros(4)
        out[idx] = x                # idx repeats: the last write wins
        acc = np.ones(4)
        acc[idx] += x ** 2
        out[idx[0]] = 9.0           # a traced scalar index
        return out, acc
    idx = np.array([3, 1, 3])
    both_tiers(f, X, idx)
    check_grads(lambda x: np.sum(np.stack(f(x, idx)) ** 3), (X,), order=2)
    with jitgrad.config(compile="always"):
        check_grads(lambda x: np.sum(np.stack(f(x, idx)) ** 3), (X,), order=1)
    with pytest.raises(IndexError):
        jitgrad.jit(f)(X, np.array([0, 9, 1]))


def test_old_values_stay_what_they_were():
    def f(x):
        out = x * 1.0
        before = out + 0.0
        alias = out
        out[0] = 10.0
        return before, alias, out
    before, alias, out = both_tiers(f, X)
    np.testing.assert_allclose(before, X)
    np.testing.assert_allclose(alias, out)


def test_loop_of_writes():
    def sim(x):
        out = np.zeros(6)
        out[0] = x[0]
        for i in range(1, 6):
            out[i] = out[i - 1] * x[1] + x[2]
        return out
    both_tiers(sim, X)
    check_grads(lambda x: np.sum(sim(x)), (X,), order=2)


def test_writes_under_vmap_and_grad_of_grad():
    xs = np.arange(6.0).reshape(2, 3) / 3
    np.testing.assert_allclose(jitgrad.vmap(build)(xs), np.stack([build(x) for x in xs]))
    idx = np.array([2, 0])

    def g(x, i):
        out = np.zeros(3)
        out[i] = x[:2]
        return out
    np.testing.assert_allclose(jitgrad.vmap(g, in_axes=(0, None))(xs, idx),
                               np.stack([g(x, idx) for x in xs]))
    h = jitgrad.hessian(lambda x: np.sum(build(x) ** 3))(X)
    assert h.shape == (3, 3) and np.allclose(h, h.T)


def test_dtype_of_writes_and_augmented_casting():
    def f(x):
        ints = np.zeros(3, dtype=np.int64)
        ints[0] = x[0] * 10          # cast on assignment, as NumPy does (truncates)
        y = np.zeros(3, np.float32)
        y += x                       # same-kind cast back into float32
        return ints, y
    both_tiers(f, X)

    def bad(x):
        ints = np.zeros(3, dtype=np.int64)
        ints += x
        return ints
    with pytest.raises(TypeError, match="same_kind"):
        jitgrad.jit(bad)(X)


# ---------------------------------------------------------------------------
# Views


def row_view(x):
    a = np.zeros((3, 3))
    r = a[0]
    r[1] = x[0]               # writes a[0, 1]
    a[0, 2] = x[1]            # r sees it
    col = a[:, 1]
    col += 1.0                # writes the column of a
    flat = a.reshape(-1)
    flat[-1] = x[2]
    t = a.T
    t[0, 2] = 4.0             # a[2, 0]
    return a, r, col, flat, t


def copies_not_views(x):
    a = np.ones((2, 3)) * x
    c = a.T.reshape(-1)       # a copy in NumPy (a.T is not contiguous)
    c[0] = 0.0
    d = a[[0, 1]]             # advanced indexing copies
    d[0, 0] = 5.0
    return a, c, d


@pytest.mark.parametrize("f", [row_view, copies_not_views])
def test_views_follow_numpy(f):
    both_tiers(f, X)
    check_grads(lambda x: sum(np.sum(np.sin(o)) for o in f(x)), (X,), order=2)


def test_view_of_view_and_base_write_after():
    def f(x):
        a = np.zeros((2, 2, 3))
        b = a[1]
        c = b[:, ::2]
        c[0, 1] = x[0]
        a[1, 1] = x
        return a, b, c
    both_tiers(f, X)


def test_read_only_views_raise_like_numpy():
    def f(x):
        b = np.broadcast_to(x, (2, 3))
        b[0, 0] = 1.0
        return b
    with pytest.raises(ValueError, match="read-only"):
        f(X.copy())
    with pytest.raises(ValueError, match="read-only"):
        jitgrad.jit(f)(X)

    def g(x):
        a = x * 1.0
        b = np.broadcast_to(a, (2, 3))
        a[0] = 7.0                  # b sees the write
        return b
    both_tiers(g, X)


# ---------------------------------------------------------------------------
# Arguments and captured arrays are never written


@pytest.mark.parametrize("write", [
    lambda x: x.__setitem__(0, 1.0),
    lambda x: x[0:2].__setitem__(0, 1.0),
    lambda x: np.asarray(x).__setitem__(slice(None), 0.0),
    lambda x: x.reshape(3, 1).__setitem__((0, 0), 1.0),
])
def test_write_into_argument_raises(write):
    def f(x):
        write(x)
        return x
    for tier in TIERS:
        with jitgrad.config(compile=tier), pytest.raises(TypeError, match=r"argument.*x\.copy\(\)"):
            jitgrad.jit(f)(X)
    with pytest.raises(TypeError, match=r"x\.copy\(\)"):
        jitgrad.grad(lambda x: np.sum(f(x)))(X)


def test_write_into_captured_traced_array_raises():
    def outer(x):
        out = x * 2.0

        def inner(y):
            out[0] = y
            return y * out[1]
        return jitgrad.grad(inner)(x[0])
    with pytest.raises(TypeError, match="captured"):
        jitgrad.jit(outer)(X)


def test_augmented_assignment_on_argument_rebinds():
    def f(x):
        x += 1.0                # rebinds x; the caller's array is not changed
        x *= 2.0
        return x
    x = X.copy()
    np.testing.assert_allclose(jitgrad.jit(f)(x), (X + 1) * 2)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_allclose(jitgrad.grad(lambda x: np.sum(f(x)))(X), [2.0] * 3)


def test_augmented_assignment_in_place_reaches_aliases():
    def f(x):
        a = np.zeros((2, 3))
        r = a[0]
        r += x                  # in place: a changes too, as in NumPy
        b = a
        b *= 3.0
        return a, r
    both_tiers(f, X)


def test_writing_a_captured_numpy_array_names_the_fix():
    W = np.zeros(3)

    def f(x):
        w = W.copy()            # an ndarray method: a NumPy array, which cannot hold x
        w[0] = x[0]
        return w
    # (NumPy turns the tracer's error into "setting an array element with a
    # sequence"; the tracer's, with the fix, is its cause)
    with pytest.raises((TypeError, ValueError)) as ei:
        jitgrad.jit(f)(X)
    assert "np.zeros" in str(ei.value) + str(ei.value.__cause__) + str(ei.value.__context__)


def test_empty_and_zero_d_writes():
    def f(x):
        out = np.zeros(3)
        out[[]] = 5.0
        out[1:1] = 2.0
        s = np.zeros(())
        s[()] = x[0]
        return out, s
    both_tiers(f, X)


# ---------------------------------------------------------------------------
# Python values that steer the computation, outside argnums, are static


def sim(k, n):
    x = 1.0
    for _ in range(n):
        x = x - k * x * 0.01
    return x


def test_grad_with_int_for_range():
    want = -0.01 * 200 * (1 - 0.005) ** 199
    assert jitgrad.grad(sim)(0.5, 200) == pytest.approx(want, rel=1e-12)
    v, g = jitgrad.value_and_grad(sim)(0.5, 200)
    assert v == pytest.approx(0.995 ** 200) and g == pytest.approx(want, rel=1e-12)
    assert jitgrad.grad(jitgrad.jit(sim, static_argnums=1))(0.5, 200) == pytest.approx(want, rel=1e-12)
    assert jitgrad.grad(sim)(0.5, 3) == pytest.approx(-0.03 * 0.995 ** 2, rel=1e-12)
    with jitgrad.config(compile="always"):
        assert jitgrad.grad(sim)(0.5, 20) == pytest.approx(-0.2 * 0.995 ** 19, rel=1e-12)


def test_control_values_of_every_kind():
    def f(x, n, mode="sum", act=np.tanh, opts=(2, None)):
        y = act(x) ** n * opts[0]
        return np.sum(y) if mode == "sum" else np.max(y)
    x = np.array([0.3, 0.8])
    np.testing.assert_allclose(jitgrad.grad(f)(x, 3), 6 * np.tanh(x) ** 2 / np.cosh(x) ** 2)
    np.testing.assert_allclose(jitgrad.grad(f)(x, 1, mode="max", act=np.sin),
                               [0.0, 2 * np.cos(0.8)])
    np.testing.assert_allclose(jitgrad.jacfwd(lambda x, n: x ** n)(x, 3), np.diag(3 * x ** 2))
    np.testing.assert_allclose(jitgrad.jacrev(lambda x, n: x ** n)(x, 3), np.diag(3 * x ** 2))
    np.testing.assert_allclose(jitgrad.hessian(lambda x, n: np.sum(x ** n))(x, 3), np.diag(6 * x))


def test_float_outside_argnums_is_traced_and_the_error_says_what_to_do():
    def g(x, t):
        return x * t if t > 0.5 else x
    assert jitgrad.grad(lambda x, t: x * t)(1.0, 0.7) == pytest.approx(0.7)
    with pytest.raises(jitgrad.TracerBoolError, match="outside argnums static"):
        jitgrad.grad(g)(1.0, 0.7)
    # an int named by argnums is still an error that says to pass floats
    with pytest.raises(TypeError, match="floating-point"):
        jitgrad.grad(lambda a, n: a * n, argnums=1)(2.0, 3)


def test_write_into_escaped_tracer_raises():
    kept = []

    def f(x):
        y = x * 2.0
        kept.append(y)
        return y
    jitgrad.jit(f)(X)
    with pytest.raises(jitgrad.JitgradError, match="escaped"):
        kept[0][0] = 1.0


def test_jvp_and_vjp_hold_control_values_static():
    want = -0.01 * 200 * (1 - 0.005) ** 199
    out, t = jitgrad.jvp(sim, (0.5, 200), (1.0, 0))
    assert out == pytest.approx(0.995 ** 200) and t == pytest.approx(want, rel=1e-12)
    out, vjp_fn = jitgrad.vjp(sim, 0.5, 200)
    ct = vjp_fn(1.0)
    assert ct[1] == 0 and ct[1].dtype == np.int64 and ct[0] == pytest.approx(want, rel=1e-12)
    out, vjp_fn, aux = jitgrad.vjp(lambda k, n, s: (sim(k, n), n * 2), 0.5, 20, "s", has_aux=True)
    assert aux == 40 and vjp_fn(1.0)[2] is None
