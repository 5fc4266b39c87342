"""The shape of the generated code that keeps compiles short: NumPy library
calls go through backend.libcalls (compiled once, kept on disk), and fusion
does not nest recomputations under a pad's condition.  Each structural rule
is checked with the values of both tiers."""
import re

import numpy as np
import pytest

import jitgrad
from jitgrad.backend import libcalls


def both_tiers(f, *args):
    """``f(*args)`` interpreted and compiled, checked equal; the compiled result."""
    with jitgrad.config(compile="never"):
        ref = f(*args)
    with jitgrad.config(compile="always"):
        got = f(*args)
    for a, b in zip(jitgrad.tree.flatten(got)[0], jitgrad.tree.flatten(ref)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    return got


def functions(src):
    """The generated functions' bodies (the header's helpers left out)."""
    return "\n".join(src.split("\ndef jg_")[1:])


# -- library calls through backend.libcalls

def test_matrix_products_and_reshapes_call_libcalls_concatenates_are_loops():
    def f(a, b, c):
        m = np.tanh(a @ b)
        return np.concatenate([m.reshape(-1), c]), np.einsum("bij,bjk->bik", a[None] * c[:3, None, None], b[None] * 2.0)

    a, b, c = np.arange(6.0).reshape(2, 3) / 7, np.arange(12.0).reshape(3, 4) / 5, np.linspace(0, 1, 5)
    src = functions(jitgrad.source(jitgrad.jit(f))(a, b, c))
    assert "lc.dot_into(" in src
    assert "np.dot(" not in src and "np.concatenate(" not in src
    assert not re.search(r"\)\.reshape\(", src), src
    both_tiers(jitgrad.jit(f), a, b, c)
    both_tiers(jitgrad.grad(lambda a, b, c: np.sum(f(a, b, c)[0] ** 2) + np.sum(f(a, b, c)[1]),
                            argnums=(0, 1, 2)), a, b, c)


def test_scan_stores_array_rows_through_libcalls_and_outputs_are_fresh():
    def f(h0, xs):
        def step(h, x):
            h = np.tanh(h * 0.5 + x)
            return h, h * 2.0
        return jitgrad.scan(step, h0, xs)

    h0, xs = np.linspace(-1, 1, 3), np.linspace(0, 1, 12).reshape(4, 3)
    src = functions(jitgrad.source(jitgrad.jit(f))(h0, xs))
    assert "lc.store(" in src
    assert not re.search(r"^\s*\w+\[_t\] = ", src, flags=re.M), src
    h, ys = both_tiers(jitgrad.jit(f), h0, xs)
    assert ys.shape == (4, 3) and not np.shares_memory(ys, xs) and not np.shares_memory(h, h0)
    g = both_tiers(jitgrad.grad(lambda h0, xs: np.sum(f(h0, xs)[1] ** 2), argnums=(0, 1)), h0, xs)
    assert g[1].shape == xs.shape


def test_scan_of_scalar_rows_still_stores_directly():
    def f(xs):
        return jitgrad.scan(lambda c, x: (c + x, c * x), 0.0, xs)

    xs = np.linspace(0, 1, 5)
    src = functions(jitgrad.source(jitgrad.jit(f))(xs))
    assert "lc.store(" not in src
    both_tiers(jitgrad.jit(f), xs)


def test_while_loop_reverse_mode_grows_array_buffers_through_libcalls():
    def f(x):
        # 20 steps: past the buffer's first capacity (16), so it grows once
        _, y = jitgrad.while_loop(lambda c: c[0] < 20, lambda c: (c[0] + 1, np.sin(c[1]) + 0.1), (0, x))
        return np.sum(y ** 2)

    x = np.linspace(0.1, 0.9, 3)
    g = both_tiers(jitgrad.grad(f), x)
    assert g.shape == x.shape


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_libcalls_are_numpys_calls(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    b = np.arange(12).reshape(3, 4).astype(dtype)
    if dtype != np.int64:                 # (BLAS: floats only, as the emitter uses it)
        for bb in (b, np.asfortranarray(b), b.T.copy().T):
            out = np.full((2, 4), np.nan, dtype)
            libcalls.dot_into(a, bb, out)
            np.testing.assert_array_equal(out, a @ b)
    np.testing.assert_array_equal(libcalls.reshape(a.T, (6,)), a.T.reshape(6))
    out = np.zeros((3, 2, 3), dtype)
    libcalls.store(out, 1, a)
    np.testing.assert_array_equal(out[1], a)
    grown = np.zeros((5, 2, 3), dtype)
    libcalls.copy_rows(grown, out, 3)
    np.testing.assert_array_equal(grown[:3], out)
    assert not grown[3:].any()


# -- concatenate: one loop per operand, read through the operand's views

@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.bool_])
def test_concatenate_of_views_is_loops_with_numpys_values(dtype):
    def f(a, b):
        # slices, a transpose, a broadcast, a pad (reversed slice's gradient-like
        # shape), an operand with no columns, along axis 1
        parts = [a[:, 1:], b.T[:2], np.broadcast_to(a[:, :1], (2, 3)), a[:, :0],
                 np.pad(a[:, :1], ((0, 0), (1, 1)))]
        return np.concatenate(parts, axis=1), np.concatenate([a[0], b[:, 0]])

    a = (np.arange(6).reshape(2, 3) % 4).astype(dtype)
    b = (np.arange(8).reshape(4, 2) % 3).astype(dtype)
    src = functions(jitgrad.source(jitgrad.jit(f))(a, b))
    assert "np.concatenate(" not in src and "materialise view" not in src, src
    got = both_tiers(jitgrad.jit(f), a, b)
    want = f(a, b)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_concatenate_output_is_fresh():
    f = jitgrad.jit(lambda x: np.concatenate([x]))
    x = np.arange(4.0)
    with jitgrad.config(compile="always"):
        y = f(x)
    assert not np.shares_memory(x, y)
    y[0] = 7.0
    assert x[0] == 0.0


def test_roll_gradient_through_concatenate_loops():
    def f(x):
        return np.sum(np.sin(_roll(x, 2) * x) + _roll(x, -1) ** 2)

    x = np.linspace(-1, 1, 7)
    both_tiers(jitgrad.grad(f), x)
    both_tiers(jitgrad.vmap(jitgrad.grad(f)), np.stack([x, x[::-1]]))
    with jitgrad.config(compile="never"):
        jitgrad.testing.check_grads(f, (x,), order=2)


def test_concatenate_does_not_cut_the_loop_around_it():
    # sin(x) + 1 and its product with the rolled x are one loop (the
    # concatenate runs before it), not two with an array between them
    def f(x):
        y = np.sin(x) + 1.0
        return np.sum(y * _roll(x, 1))

    x = np.linspace(-1, 1, 7)
    src = functions(jitgrad.source(jitgrad.jit(f))(x))
    assert src.count("range(7)") + src.count("range(_trip(7))") == 1, src
    both_tiers(jitgrad.jit(f), x)
    both_tiers(jitgrad.grad(f), x)


# -- fusion: recomputation is not nested under a pad's condition

def _roll(x, s):
    return np.concatenate([x[-s:], x[:-s]])


def _l96(x, F):
    return (_roll(x, -1) - _roll(x, 2)) * _roll(x, 1) - x + F


def _rk4_loss(x, F):
    k1 = _l96(x, F)
    k2 = _l96(x + 0.005 * k1, F)
    k3 = _l96(x + 0.005 * k2, F)
    k4 = _l96(x + 0.01 * k3, F)
    return np.sum((x + 0.01 / 6 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)) ** 2)


def test_stencil_gradient_has_no_nested_conditional_recomputation():
    # (before: a read through a pad recomputed a value that itself read
    # through pads, up to 7 conditions in one line of the RK4 step's gradient)
    x, F = np.linspace(-1, 1, 8), 0.6
    g = jitgrad.grad(_rk4_loss, argnums=(0, 1))
    src = functions(jitgrad.source(g)(x, F))
    assert max(line.count(" if ") for line in src.splitlines()) <= 2, src
    both_tiers(g, x, F)
    with jitgrad.config(compile="never"):
        jitgrad.testing.check_grads(_rk4_loss, (x, F), order=2)
