"""The hostile user against four recent changes: the truth reductions
(np.any, np.all, np.count_nonzero), the fusion planner recomputing a cheap
value read from an earlier loop, compiled complex expm1, and one build per
signature shared by threads.  Few compiled programs, each small."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import jitgrad
from helpers import start_behind


def _same(got, want, signs=True):
    """Equal value, dtype and shape (NaN equal to NaN; signed zeros compared)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    np.testing.assert_array_equal(got, want)
    if signs and want.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))


def _both(f, *args):
    """f's results, NumPy's, on the interpreter, and compiled."""
    want = f(*args)
    got = jitgrad.jit(f)(*args)
    with jitgrad.config(compile="always"):
        compiled = jitgrad.jit(f)(*args)
    for tier in (got, compiled):
        for g, w in zip(tier, want):
            _same(g, w)


# -- truth reductions

X = {
    "f64": np.array([[0.0, 1.0, np.nan], [-0.0, 2.0, 0.0]]),
    "f32": np.array([[0.0, 1.0, np.nan], [-0.0, 2.0, 0.0]], np.float32),
    "i8": np.array([[0, 1, -1], [0, 0, 3]], np.int8),
    "u8": np.array([[0, 1, 255], [0, 0, 3]], np.uint8),
    "bool": np.array([[True, False, True], [True, True, True]]),
    "c128": np.array([[0j, 1j, complex(0.0, -0.0)], [complex(np.nan, 0.0), 2, 0]]),
    "empty": np.zeros((0, 3)),
}


@pytest.mark.parametrize("name", sorted(X))
@pytest.mark.parametrize("fn", [np.any, np.all, np.count_nonzero])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1), (-1, 0), ()])
@pytest.mark.parametrize("keepdims", [False, True])
def test_truth_reductions_agree_with_numpy(name, fn, axis, keepdims):
    x = X[name]
    f = lambda v: fn(v, axis=axis, keepdims=keepdims)  # noqa: E731
    _same(jitgrad.jit(f)(x), f(x))


@pytest.mark.parametrize("fn", [np.sum, np.prod, np.max, np.min, np.any, np.all, np.count_nonzero])
@pytest.mark.parametrize("axis", [0, -1])
def test_an_int_axis_of_a_0d_array_reduces_nothing_as_in_numpy(fn, axis):
    # NumPy's reductions take axis 0 or -1 of a 0-d array (not a tuple, not 1)
    for x in (np.array(0.0), np.array(-0.0), np.array(np.nan), np.array(3, np.int8)):
        for keepdims in (False, True):
            f = lambda v: fn(v, axis=axis, keepdims=keepdims)  # noqa: E731
            _same(jitgrad.jit(f)(x), f(x))


@pytest.mark.parametrize("call", [
    lambda v: np.any(v, axis=(0,)), lambda v: np.count_nonzero(v, axis=1),
    lambda v: np.sum(v, axis=(-1,)), lambda v: np.mean(v, axis=0), lambda v: np.std(v, axis=-1)])
def test_other_axes_of_a_0d_array_raise_numpys_axis_error(call):
    x = np.array(2.0)
    with pytest.raises(np.exceptions.AxisError):
        call(x)
    with pytest.raises(np.exceptions.AxisError):
        jitgrad.jit(call)(x)


@pytest.mark.parametrize("fn", [np.any, np.sum, np.count_nonzero, np.max])
def test_a_float_axis_is_a_type_error_as_in_numpy(fn):
    x = np.ones((2, 3))
    with pytest.raises(TypeError):
        fn(x, axis=1.0)
    with pytest.raises(TypeError):
        jitgrad.jit(lambda v: fn(v, axis=1.0))(x)


def test_truth_reductions_compiled_agree_with_numpy():
    # one program: every dtype, NaN and -0.0, an axis tuple, keepdims, a list of traced values
    def f(a, b, c, d, e):
        return (np.any(a, axis=(1, 0)), np.all(a, axis=-1, keepdims=True), np.count_nonzero(a, axis=0),
                np.all(b, axis=0), np.count_nonzero(b, keepdims=True), np.any(c), c.all(axis=1),
                np.count_nonzero(d, axis=(0, 1)), d.any(axis=0, keepdims=True), np.all(e, axis=0),
                np.any(e, axis=1), np.count_nonzero([a[0, 0], a[1, 1], 0.0]))
    _both(f, X["f32"], X["i8"], X["u8"], X["c128"], X["empty"])


def test_truth_reductions_under_grad_vmap_and_scan():
    x = np.array([[1.0, -2.0, 3.0], [2.0, 1.0, 0.5]])
    f = lambda v: np.sum(np.where(np.all(v > 0, axis=0), v, 0.0) ** 2)  # noqa: E731
    want = 2 * x * np.all(x > 0, axis=0)
    _same(jitgrad.grad(f)(x), want, signs=False)
    with jitgrad.config(compile="always"):
        _same(jitgrad.grad(f)(x), want, signs=False)
    g = lambda v: np.sum(v * np.count_nonzero(v > 1, axis=1, keepdims=True))  # noqa: E731
    _same(jitgrad.grad(g)(x), np.count_nonzero(x > 1, axis=1, keepdims=True) * np.ones_like(x))
    _same(jitgrad.vmap(lambda r: np.count_nonzero(r > 0.7, keepdims=True))(x), [[2], [2]])
    _same(jitgrad.vmap(lambda r: r.all(axis=-1, keepdims=True), in_axes=1)(x > 0), np.all(x > 0, axis=0)[:, None])

    def body(c, r):
        return c + np.count_nonzero(r > 1), np.all(r > 0)
    carry, ys = jitgrad.jit(lambda v: jitgrad.scan(body, 0, v))(x)
    _same(carry, np.int64(2))
    _same(ys, [False, True])
    with pytest.raises(TypeError, match="floating-point"):
        jitgrad.grad(lambda v: np.any(v))(x)
    with pytest.raises(NotImplementedError, match="where="):
        jitgrad.jit(lambda v: np.all(v, where=v > 0))(x)
    with pytest.raises(TypeError, match="out="):
        jitgrad.jit(lambda v: np.any(v, out=np.zeros(())))(x)


# -- recomputing a value read from an earlier loop

def test_recomputed_values_wrap_and_round_as_stored_ones():
    # int8 wraps, uint8 wraps, float32 rounds: each value read by later loops
    # (after a reduction of it) must be what was stored, bit for bit
    def f(a, u, s):
        y = a * np.int8(3) + np.int8(5)
        m = np.max(y)
        w = u + np.uint8(10)
        k = np.min(w)
        z = s * np.float32(0.1) + np.float32(1e-3)
        t = np.max(z)
        mask = (z == t).astype(np.int8) + np.int8(120)
        return (y * (y == m), (y + np.int8(1)) * m, w - k, (w > k) * w,
                z * t, (z - t) * np.float32(7.1), mask * np.int8(2) + (t > 0), z[::-1] * t + z * t)
    a = np.array([100, 50, -7, 127, -128, 3], np.int8)
    u = np.array([250, 3, 7, 255], np.uint8)
    s = (np.arange(7, dtype=np.float32) * np.float32(0.37) - 1).astype(np.float32)
    _both(f, a, u, s)


def test_recomputation_keeps_the_generated_source_linear():
    def chain(k):
        def f(x):
            y = x * 2.0
            for _ in range(k):
                m = np.max(y)
                y = (y == m) * y + y * m
            return y
        return f
    x = np.arange(5.0)
    n = [len(jitgrad.source(chain(k))(x)) for k in (2, 4, 8)]
    # each step adds about the same source: no copy of the chain per reader
    assert n[2] - n[1] < 2.5 * (n[1] - n[0]), n


# -- compiled complex expm1

def test_compiled_complex_expm1_special_values_and_dtypes():
    parts = [0.0, -0.0, 1e-10, -1e-10, 1.0, 710.0, -750.0, np.inf, -np.inf, np.nan]
    z = np.array([complex(a, b) for a in parts for b in parts])
    with np.errstate(all="ignore"):
        want128 = np.expm1(z)
        want64 = np.expm1(z.astype(np.complex64))
    with jitgrad.config(compile="always"):
        got128, got64 = jitgrad.jit(lambda a, b: (np.expm1(a), np.expm1(b)))(z, z.astype(np.complex64))
    assert got128.dtype == np.complex128 and got64.dtype == np.complex64
    for got, want, eps in ((got128, want128, 4e-16), (got64, want64, 5e-7)):
        for part in (np.real, np.imag):
            g, w = part(got), part(want)
            assert np.array_equal(np.isnan(g), np.isnan(w))
            fin = np.isfinite(w)
            assert np.array_equal(g[~fin & ~np.isnan(w)], w[~fin & ~np.isnan(w)])
            np.testing.assert_allclose(g[fin], w[fin], rtol=eps, atol=0)
            exact = fin & (w == 0)
            assert np.array_equal(np.signbit(g[exact]), np.signbit(w[exact]))


# -- one build per signature

class _Stop(BaseException):
    """Stands for KeyboardInterrupt or SystemExit raised inside a build."""


def _held(staged, entered, release, first_raises=None):
    build = staged.build

    def held(*args):
        entered.append(threading.get_ident())
        if len(entered) == 1:
            release.wait(20)
            if first_raises is not None:
                raise first_raises
        return build(*args)
    staged.build = held


def test_a_base_exception_in_a_build_frees_the_threads_waiting_for_it():
    g = jitgrad.jit(lambda v: np.sum(v * 2.0))
    entered, release, results, errors = [], threading.Event(), [], []
    _held(g._staged, entered, release, first_raises=_Stop())

    def call():
        try:
            results.append(g(np.ones(3)))
        except BaseException as exc:     # noqa: B036 (the test's own stand-in)
            errors.append(type(exc))
    threads = [threading.Thread(target=call) for _ in range(3)]
    start_behind(threads, entered)
    time.sleep(0.05)
    release.set()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert errors == [_Stop] and results == [6.0, 6.0] and len(entered) == 2
    assert not g._staged.building and len(g._staged.cache) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_during_a_build_builds_for_itself():
    g = jitgrad.jit(lambda v: np.sum(v * 3.0))
    entered, release = [], threading.Event()
    _held(g._staged, entered, release)
    t = threading.Thread(target=lambda: g(np.ones(2)))
    t.start()
    try:
        while not entered:
            time.sleep(0.001)
        pid = os.fork()
        if pid == 0:                              # the child: no builder thread here
            code = 1
            try:
                code = 0 if g(np.ones(2)) == 6.0 else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child waited for its parent's build")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        t.join(20)
    assert g(np.ones(2)) == 6.0 and len(g._staged.cache) == 1


def test_threads_missing_one_signature_of_vmap_of_grad_at_once_compiled():
    fn = jitgrad.vmap(jitgrad.grad(lambda v: np.sin(v) * np.any(v > 0.5)))
    x = np.linspace(-1.0, 1.0, 5)
    results, errors, barrier = [], [], threading.Barrier(3)

    def call():
        try:
            with jitgrad.config(compile="always"):
                barrier.wait(20)
                results.append(fn(x))
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    for r in results:
        _same(r, np.cos(x) * (x > 0.5))
    assert len(results) == 3 and len(fn._staged.cache) == 1


def test_a_transformed_function_recursing_on_smaller_shapes_during_its_trace():
    @jitgrad.jit
    def f(v):
        if v.shape[0] <= 1:
            return np.sum(v)
        h = v.shape[0] // 2
        return f(v[:h]) * 2.0 + f(v[h:])
    x = np.arange(7.0)
    assert f(x) == 44.0 and f(x[:3]) == 4.0
    _same(jitgrad.grad(f)(x), [4.0, 4.0, 2.0, 4.0, 2.0, 2.0, 1.0])


# -- signed zeros found on the way

@pytest.mark.parametrize("f", [
    lambda v: v + 0.0, lambda v: 0.0 + v, lambda v: v - 0.0, lambda v: v + (-0.0),
    lambda v: v - (-0.0), lambda v: np.sum(v, axis=()), lambda v: np.sum(v[0]), lambda v: np.prod(v, axis=()),
    lambda v: np.sum(v.astype(np.float32), axis=()), lambda v: np.sum(v + 0j, axis=())])
def test_adding_zero_keeps_numpys_signed_zeros(f):
    # IEEE: -0.0 + 0.0 is 0.0, and so is -0.0 - (-0.0) (so is a sum over no axes,
    # which adds to 0.0); x - 0.0 and x + (-0.0) are x
    x = np.array([-0.0, 1.0])
    want = f(x)
    got = jitgrad.jit(f)(x)
    np.testing.assert_array_equal(np.signbit(np.real(got)), np.signbit(np.real(want)))
    np.testing.assert_array_equal(np.signbit(np.imag(got)), np.signbit(np.imag(want)))
    assert np.asarray(got).dtype == np.asarray(want).dtype


def test_adding_zero_keeps_signed_zeros_compiled():
    f = lambda v: (v + 0.0, 0.0 + v, v - 0.0, v - (-0.0), np.sum(v, axis=()))  # noqa: E731
    _both(f, np.array([-0.0, 1.0, -2.0]))
