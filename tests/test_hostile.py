"""The hostile user: bad inputs, odd dtypes and layouts, threads, processes,
cache faults, resource growth and tape misuse.

Each family is a table; a new case is one line in it.  The generic tests
below the tables run every row:

- ``AGREE``: ``f(*args)`` must give NumPy's answer (value and dtype, or the
  same exception type) on the interpreter and on the compiled tier;
- ``FRESH``: a call whose results must not share memory with any array the
  user still holds (inputs, captured constants);
- ``RAISES``: a call that must raise the given exception, whose message must
  match the given pattern (names the problem, suggests the fix);
- ``EQUALS``: a call whose result must equal an expected value (NaN where
  NaN is right), compared with ``assert_allclose`` (``equal_nan``).

Families that need more than one call (threads, processes, caches, growth)
are tests of their own further down, each built on a small table too.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import jitgrad
from jitgrad import tree as tree_util

rs = np.random.default_rng(0)
W = rs.standard_normal(3)          # a captured constant


# ---------------------------------------------------------------------------
# AGREE: (id, f, args).  f is called through jitgrad.jit in both tiers and
# compared with plain NumPy.

AGREE = [
    ("sum_float", lambda x: np.sum(x * 2.0), (np.arange(4.0),)),
    # -- core

    # -- numerics

    # -- api

    # -- runtime

    # -- tape
]


# ---------------------------------------------------------------------------
# FRESH: (id, call) where call() -> (results, [arrays the user still holds]).

def _grad_mul(y):
    g = jitgrad.grad(lambda a, b: np.sum(a * b))(np.ones(3), y)
    return g, [y]


FRESH = [
    ("grad_of_product_is_not_other_input", lambda: _grad_mul(np.arange(3.0))),
    # -- core

    # -- numerics

    # -- api

    # -- runtime

    # -- tape
]


# ---------------------------------------------------------------------------
# RAISES: (id, call, exception type, message pattern).

RAISES = [
    ("argnums_out_of_range", lambda: jitgrad.grad(lambda x: x * 2.0, argnums=3)(1.0),
     ValueError, "out of range"),
    # -- core

    # -- numerics

    # -- api

    # -- runtime

    # -- tape
]


# ---------------------------------------------------------------------------
# EQUALS: (id, call, expected).

EQUALS = [
    ("grad_square", lambda: jitgrad.grad(lambda x: x * x)(3.0), 6.0),
    # -- core

    # -- numerics

    # -- api

    # -- runtime

    # -- tape
]


# ---------------------------------------------------------------------------
# The generic tests.


def _numpy_outcome(f, args):
    try:
        with np.errstate(all="ignore"):
            return f(*args), None
    except Exception as exc:     # noqa: BLE001 - the exception type is the outcome
        return None, type(exc)


def _check_outcome(got_fn, want, want_exc, tier):
    if want_exc is not None:
        with pytest.raises(want_exc):
            got_fn()
        return
    got = got_fn()
    for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(want)[0]):
        assert np.asarray(g).dtype == np.asarray(w).dtype, f"{tier}: dtype"
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=tier)


@pytest.mark.parametrize("f, args", [r[1:] for r in AGREE], ids=[r[0] for r in AGREE])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_agrees_with_numpy(f, args, mode):
    want, want_exc = _numpy_outcome(f, args)
    with jitgrad.config(compile=mode):
        _check_outcome(lambda: jitgrad.jit(f)(*args), want, want_exc, mode)


def _leaves(x):
    return [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in tree_util.flatten(x)[0]]


@pytest.mark.parametrize("call", [r[1] for r in FRESH], ids=[r[0] for r in FRESH])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_results_are_fresh(call, mode):
    with jitgrad.config(compile=mode):
        for _ in range(2):              # the first call and a cached one
            results, held = call()
            held = held + [W]
            for r in _leaves(results):
                for h in held:
                    assert not np.shares_memory(r, h), "a result shares memory with an array the user holds"


@pytest.mark.parametrize("call, exc, pattern", [r[1:] for r in RAISES], ids=[r[0] for r in RAISES])
def test_raises_clearly(call, exc, pattern):
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("call, expected", [r[1:] for r in EQUALS], ids=[r[0] for r in EQUALS])
def test_equals(call, expected):
    got = call()
    for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(expected)[0]):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), rtol=1e-12, equal_nan=True)


# === core ===
# Tracing state is per thread.  The races are made likely, not left to luck:
# the interpreter switches threads every 10 µs, and every thread starts at a
# barrier.  Each case is (id, make(k) -> (function of thread k, its argument,
# its exact answer)); every thread checks its own answer, on a cold and a warm
# cache.

import sys
import threading

from jitgrad.core.errors import JitgradError


def _run_threads(n, work):
    """Run ``work(k)`` on ``n`` threads at once; re-raise the first failure."""
    errors, barrier = [], threading.Barrier(n)

    def body(k):
        try:
            barrier.wait()
            work(k)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]


_shared_grad = jitgrad.grad(lambda x: np.sum(np.sin(x) * x))


def _own_grad(k):
    c = float(k + 1)
    return jitgrad.grad(lambda x: np.sum(c * x * x)), np.arange(3.0) + k, 2 * c * (np.arange(3.0) + k)


def _shared_cold(k):
    x = np.linspace(0, 1, 2 + k)      # a new shape per thread: each traces
    return _shared_grad, x, np.cos(x) * x + np.sin(x)


def _nested(k):
    c = float(k + 1)
    f = jitgrad.grad(jitgrad.grad(lambda x: c * x ** 3))
    return f, 2.0, 6 * c * 2.0


def _jvp_thread(k):
    c = float(k + 1)
    f = lambda x: jitgrad.jvp(lambda y: c * np.sum(y * y), (x,), (np.ones_like(x),))[1]
    x = np.arange(4.0)
    return f, x, c * 2 * np.sum(x)


def _vmap_thread(k):
    c = float(k + 1)
    f = jitgrad.vmap(jitgrad.grad(lambda x: c * np.sum(x * x)))
    x = np.arange(6.0).reshape(2, 3) + k
    return f, x, 2 * c * x


def _custom(k):
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(x), np.cos(x) * t

    c = float(k + 1)
    return jitgrad.grad(lambda x: c * np.sum(f(x))), np.arange(3.0), c * np.cos(np.arange(3.0))


THREADS = [
    ("own_function_each", _own_grad),
    ("one_function_new_shapes", _shared_cold),
    ("grad_of_grad", _nested),
    ("jvp", _jvp_thread),
    ("vmap_of_grad", _vmap_thread),
    ("custom_jvp", _custom),
]


@pytest.mark.parametrize("make", [r[1] for r in THREADS], ids=[r[0] for r in THREADS])
def test_threads_trace_independently(make):
    def work(k):
        f, x, want = make(k)
        for _ in range(3):            # cold, then cached
            got = f(x)
            assert type(got) in (np.ndarray, np.float64), f"thread {k} got {type(got).__name__}"
            np.testing.assert_allclose(got, want, rtol=1e-13)
    _run_threads(6, work)


def test_warm_calls_while_another_thread_traces():
    warm = jitgrad.grad(lambda x: np.sum(x * x))
    x = np.arange(3.0)
    warm(x)
    stop = threading.Event()

    def work(k):
        if k == 0:                    # keeps tracing new functions
            for i in range(30):
                c = float(i)
                assert jitgrad.grad(lambda y: c * y * y)(1.0) == 2 * c
            stop.set()
        else:                         # calls the warm one meanwhile
            while not stop.is_set():
                np.testing.assert_array_equal(warm(x), 2 * x)
    _run_threads(3, work)


def test_background_compile_never_traces(monkeypatch):
    # In "auto" mode the compile runs on a thread of its own; a function with a
    # custom rule used to be inlined there, opening a trace the calling thread saw.
    opened_on = set()
    init = jitgrad.core.trace.Trace.__init__

    def recording_init(self):
        opened_on.add(threading.current_thread().name)
        init(self)
    monkeypatch.setattr(jitgrad.core.trace.Trace, "__init__", recording_init)

    @jitgrad.custom_jvp
    def g(x):
        return np.exp(x)

    @g.defjvp
    def g_jvp(primals, tangents):
        return np.exp(primals[0]), np.exp(primals[0]) * tangents[0]

    f = jitgrad.grad(lambda x: np.sum(g(x) * x))
    x = np.linspace(0, 1, 5)
    want = np.exp(x) * x + np.exp(x)
    with jitgrad.config(compile="auto"):
        for _ in range(20):
            others = jitgrad.grad(lambda y: np.sum(y ** 3))(x)   # traces while the compile runs
            np.testing.assert_allclose(others, 3 * x ** 2, rtol=1e-13)
            np.testing.assert_allclose(f(x), want, rtol=1e-13)
        jitgrad.wait_for_compiles()
        np.testing.assert_allclose(f(x), want, rtol=1e-13)
    assert opened_on == {threading.current_thread().name}


def test_traced_value_from_another_thread_is_refused():
    box, ready, done = [], threading.Event(), threading.Event()

    def other(x):
        box.append(x)
        ready.set()
        done.wait(5)
        return x * 2.0

    t = threading.Thread(target=lambda: jitgrad.jit(other)(np.ones(2)))
    t.start()
    try:
        ready.wait(5)
        with pytest.raises(JitgradError, match="another thread"):
            jitgrad.jit(lambda y: y + box[0])(np.ones(2))
    finally:
        done.set()
        t.join()
