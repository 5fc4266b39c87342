"""Generated code's memory: temporaries in a reused workspace, row reductions
in scalar accumulators, BLAS products written into their output.  Values equal
the interpreter's, results are fresh arrays, concurrent calls do not share a
workspace."""
import threading

import numpy as np
import pytest

import jitgrad
from jitgrad.backend import workspace
from helpers import both_tiers, leaves


def assert_close(got, ref, rtol=1e-12):
    for a, b in zip(leaves(got), leaves(ref)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-13)


def lse(x):
    a = np.max(x)
    return a + np.log(np.sum(np.exp(x - a)))


@pytest.fixture
def small_workspace(monkeypatch):
    """Every temporary in the workspace, however small (tests keep arrays small)."""
    monkeypatch.setattr(workspace, "MIN_BYTES", 0)


def test_temporaries_are_in_the_workspace_and_results_fresh(rng):
    g = jitgrad.grad(lse)
    x1, x2 = rng.random(20000), rng.random(20000)   # three 160 KB temporaries
    src = jitgrad.source(g)(x1)
    assert "_ws)" in src and "# workspace" in src
    r1, ref = both_tiers(g, x1)
    assert_close(r1, ref)
    keep = r1.copy()
    with jitgrad.config(compile="always"):
        r2 = g(x2)
        r3 = g(x2)
    np.testing.assert_array_equal(r1, keep)          # a later call did not write into it
    assert not np.shares_memory(r1, r2) and not np.shares_memory(r2, r3)
    r2[:] = 0.0                                       # users may write into results
    with jitgrad.config(compile="always"):
        np.testing.assert_array_equal(g(x2), r3)


def test_an_output_that_views_a_temporary_is_not_in_the_workspace(small_workspace, rng):
    def f(x):
        t = np.exp(x) * 2.0                      # materialised, then only reshaped
        return t.reshape(4, 6), np.sum(t * x)
    x = rng.random(24)
    (a, s), ref = both_tiers(jitgrad.jit(f), x)
    assert_close((a, s), ref)
    with jitgrad.config(compile="always"):
        b, _ = jitgrad.jit(f)(x + 1.0)
    assert not np.shares_memory(a, b)
    assert_close(a, ref[0])


def test_pullback_keeps_its_residuals(small_workspace, rng):
    def f(x):
        return np.sin(np.exp(x) * x) * np.cos(x)
    x1, x2, ct = rng.random(50), rng.random(50), rng.random(50)
    with jitgrad.config(compile="never"):
        want = jitgrad.vjp(f, x1)[1](ct)
    with jitgrad.config(compile="always"):
        _, pb1 = jitgrad.vjp(f, x1)
        _, pb2 = jitgrad.vjp(f, x2)          # the same executables, other values
        pb2(ct)
        got = pb1(ct)
    assert_close(got, want)


def test_concurrent_calls_take_their_own_workspace(rng):
    g = jitgrad.grad(lse)
    xs = [rng.random(20000) for _ in range(4)]
    with jitgrad.config(compile="never"):
        ref = [g(x) for x in xs]
    with jitgrad.config(compile="always"):
        want = [g(x) for x in xs]
    # the compiled sums run in another order than NumPy's pairwise ones: at the
    # maximum, the gradient's (1 - sum(p)) / count is a rounding residual
    for w, r in zip(want, ref):
        np.testing.assert_allclose(w, r, rtol=1e-12, atol=1e-14)
    failures = []

    def run(k):
        # the same code on the same values: a call that shared another's
        # workspace would read another call's temporaries (errors far above
        # rounding; the tolerance allows a parallel sum split another way)
        for _ in range(30):
            if not np.allclose(g(xs[k]), want[k], rtol=1e-12, atol=1e-14):
                failures.append(k)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    with jitgrad.config(compile="always"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures


def test_an_error_in_native_code_leaves_the_workspace_usable(small_workspace, rng):
    def f(x, i):
        return np.sum(np.exp(x)[i] * 2.0)
    x = rng.random(6)
    with jitgrad.config(compile="always"):
        fj = jitgrad.jit(f)
        good = fj(x, np.array([0, 5, 2]))
        with pytest.raises(IndexError):
            fj(x, np.array([0, 9, 2]))
        again = fj(x, np.array([0, 5, 2]))
    assert again == good == pytest.approx(2.0 * np.exp(x[[0, 5, 2]]).sum())


def test_pool_gives_one_workspace_per_running_call():
    pool = workspace.Pool(100)
    a = pool.take()
    b = pool.take()                    # a is in use: a new one
    assert a.nbytes == b.nbytes == 100 and not np.shares_memory(a, b)
    assert a.ctypes.data % workspace.ALIGN == 0
    pool.give(a)
    assert pool.take() is a


# -- row reductions: one scalar accumulator per row


@pytest.mark.parametrize("name,fn,dtype", [
    ("min_rows", lambda x: np.min(x * x + 1.0, axis=1), np.float64),
    ("max_last_two", lambda x: np.max(np.sin(x).reshape(3, 2, 4), axis=(1, 2)), np.float64),
    ("sum_last_of_3d", lambda x: np.sum(np.cos(x).reshape(3, 2, 4), axis=2), np.float64),
    ("sum_f32_rows", lambda x: np.sum(x * np.float32(3.0), axis=1), np.float32),
    ("prod_rows", lambda x: np.prod(x + 0.5, axis=-1), np.float64),
    ("int32_sum_wraps", lambda x: np.sum(x * np.int32(1 << 29), axis=1), np.int32),
    ("bool_max_rows", lambda x: np.max(x > 0.5, axis=1), np.float64),
    ("nan_propagates", lambda x: np.max(np.log(x - 0.3), axis=1), np.float64),
])
def test_row_reductions_agree(name, fn, dtype, rng):
    x = (rng.random((3, 8)) * (10 if dtype == np.int32 else 1)).astype(dtype)
    f = jitgrad.jit(fn)
    src = jitgrad.source(f)(x)
    assert "_acc = " in src
    got, ref = both_tiers(f, x)
    assert_close(got, ref, rtol=1e-6 if dtype == np.float32 else 1e-12)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(ref, fn(x), rtol=1e-6)


def test_row_reductions_over_an_empty_axis_and_their_gradients(rng):
    x = np.zeros((3, 0))
    got, ref = both_tiers(jitgrad.jit(lambda x: (np.sum(x, axis=1), np.prod(x, axis=1))), x)
    assert_close(got, ref)
    np.testing.assert_array_equal(got[1], np.ones(3))
    y = rng.random((4, 5))
    h = jitgrad.grad(lambda y: np.sum(np.min(y * y, axis=1) * np.sum(np.exp(y), axis=1)))
    got, ref = both_tiers(h, y)
    assert_close(got, ref)


# -- matrix products into their output


@pytest.mark.parametrize("spec,shapes", [
    ("bki,bkj->bij", [(3, 6, 4), (3, 6, 5)]),      # x's batches passed transposed
    ("bik,bjk->bij", [(2, 4, 3), (2, 5, 3)]),      # y's
    ("ik,kj->ij", [(4, 3), (3, 5)]),
    ("ki,kj->ij", [(0, 3), (0, 2)]),               # contracting an empty axis
])
def test_products_into_their_output_agree(spec, shapes, rng):
    args = [rng.random(s) for s in shapes]

    def f(a, b):
        return np.sum(np.einsum(spec, a, b) ** 2)
    got, ref = both_tiers(jitgrad.jit(jitgrad.value_and_grad(f, argnums=(0, 1))), *args)
    assert_close(got, ref)
    with jitgrad.config(compile="always"):
        p, q = (jitgrad.jit(lambda a, b: np.einsum(spec, a, b))(*args) for _ in range(2))
    assert not np.shares_memory(p, q)


# -- a called function's temporaries: parameters its caller allocates once

IDX = np.array([0, 2, 2, 1])


def scanned(w, xs):
    def step(c, x):
        g = w[IDX] * x                     # its gradient scatters into zeros, every step
        h = np.exp(g) * c[:4]
        c = np.concatenate([np.sin(h), c[4:] * 2.0]) + np.sum(h * g)
        return c, np.cos(c)
    c, ys = jitgrad.scan(step, np.linspace(0.1, 0.6, 6), xs)
    return np.sum(c) + np.sum(ys * ys)


def test_loop_body_temporaries_are_hoisted_and_values_agree(rng):
    w, xs = rng.random(3), rng.random((5, 4)) * 0.3
    g = jitgrad.value_and_grad(scanned)
    src = jitgrad.source(g)(w, xs)
    assert "(see workspace.hoist)" in src and ".fill(0)" in src
    got, ref = both_tiers(g, w, xs)
    assert_close(got, ref)
    with jitgrad.config(compile="always"):
        again = g(w * 0.5, xs)
    assert_close(got, ref)                 # the first results kept their values
    assert not np.shares_memory(got[1], again[1])


def test_while_and_cond_bodies_with_hoisted_temporaries(rng):
    def f(x):
        def cond(s):
            return np.sum(s[0] * s[0]) < 50.0
        def body(s):
            v, k = s
            m = np.exp(v * 0.3)                # read reversed: an array, hoisted
            t = m + m[::-1]
            return jitgrad.cond(k % 2 == 0, lambda t: np.exp(t)[::-1] - t,
                                lambda t: np.sqrt(t) + t, t), k + 1
        v, k = jitgrad.while_loop(cond, body, (x, 0))
        return v, k
    x = rng.random(5)
    src = jitgrad.source(jitgrad.jit(f))(x)
    assert src.count("(see workspace.hoist)") >= 2
    got, ref = both_tiers(jitgrad.jit(f), x)
    assert_close(got, ref)
    with jitgrad.config(compile="always"):
        a = jitgrad.jit(f)(x)[0]
        b = jitgrad.jit(f)(x)[0]
    assert not np.shares_memory(a, b)


# -- a long cheap chain read through a broadcast is stored, not recomputed per copy


def test_chain_read_through_a_broadcast_is_stored_once(rng):
    def f(a, b, m):
        r = (a * 2.0 + 1.0) / (b - 3.0) * a - b           # over (5,): four cheap operations
        return np.sum(m * r[:, None]), np.sum(m / b[:, None])   # the second: one operation, recomputed
    a, b, m = rng.random(5), rng.random(5), rng.random((5, 7))
    src = jitgrad.source(jitgrad.jit(f))(a, b, m)
    loops = src.split("# loop over (5, 7)")[1]
    assert "/ (x1[i0] - 3.0)" not in loops                # r is read from its array
    got, ref = both_tiers(jitgrad.jit(f), a, b, m)
    assert_close(got, ref)


def test_workspace_with_strided_float32_arguments(rng):
    g = jitgrad.grad(lse)
    x = rng.random(80000).astype(np.float32)[::2]       # a strided view: copied for the call
    src = jitgrad.source(g)(np.ascontiguousarray(x))
    assert "_ws)" in src
    got, ref = both_tiers(g, x)
    assert got.dtype == np.float32
    assert_close(got, ref, rtol=1e-5)
