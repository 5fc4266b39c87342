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
    # custom rules whose results do not fit the function: a clear error naming the rule
    ("custom_jvp_tangent_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cj_bad_shape(x)))(np.ones(3)),
     TypeError, r"jvp rule .* of custom_jvp function _cj_bad_shape: its tangent output has shape \(5,\)"),
    ("custom_jvp_tangent_wrong_dtype", lambda: jitgrad.jvp(_cj_bad_dtype, (np.ones(3),), (np.ones(3),)),
     TypeError, r"tangent output .* dtype float32; expected .* float64"),
    ("custom_jvp_rule_not_a_pair", lambda: jitgrad.grad(_cj_single)(1.0),
     TypeError, r"must return a pair \(primal_out, tangent_out\)"),
    ("custom_jvp_primal_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cj_bad_primal(x)))(np.ones(3)),
     TypeError, r"its primal output has shape \(4,\)"),
    ("custom_jvp_tangent_wrong_structure", lambda: jitgrad.grad(lambda x: _cj_two_list(x)[0])(1.0),
     TypeError, r"tangent output must have the structure tuple\(\*, \*\), got list"),
    ("custom_vjp_cotangent_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cv_bad_shape(x)))(np.ones(3)),
     TypeError, r"bwd rule .* of custom_vjp function _cv_bad_shape: its cotangent 0 has shape \(5,\)"),
    ("custom_vjp_fwd_output_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cv_bad_fwd(x)))(np.ones(3)),
     TypeError, r"fwd rule .* its output has shape \(4,\)"),
    ("custom_vjp_fwd_not_a_pair", lambda: jitgrad.grad(_cv_fwd_single)(1.0),
     TypeError, r"must return a pair \(output, residuals\)"),
    ("custom_vjp_bwd_not_a_tuple", lambda: jitgrad.grad(_cv_bwd_bare)(1.0),
     TypeError, r"one cotangent per argument \(1\)"),
    ("custom_vjp_under_jvp", lambda: jitgrad.jvp(_cv_exp, (1.0,), (1.0,)),
     NotImplementedError, "forward-mode .* custom_vjp"),
    ("custom_jvp_wrt_closed_over_value", lambda: jitgrad.grad(_closes_over_its_input)(3.0),
     jitgrad.core.errors.JitgradError, "differentiated with respect to a traced value it closes over"),
    ("custom_vjp_traced_nondiff_argument", lambda: jitgrad.grad(lambda x: _cv_pow(x, x))(2.0),
     TypeError, "argument 1 is in nondiff_argnums but holds a traced array"),
    ("custom_jvp_unknown_keyword", lambda: jitgrad.grad(lambda x: _cj_sin(y=x))(1.0),
     TypeError, "custom_jvp function _cj_sin: .*argument"),
    ("custom_jvp_rule_error_kept", lambda: jitgrad.grad(_cj_raises)(1.0), ValueError, "rule failed"),
    ("jacrev_integer_output", lambda: jitgrad.jacrev(lambda x: (x > 0).astype(int))(np.ones(2)),
     TypeError, "jacrev requires floating-point outputs"),
    # pytree registration misuse
    ("tree_flatten_returns_list", lambda: tree_util.flatten(_BadFlatten(1.0)),
     TypeError, r"flatten function registered for _BadFlatten must return a pair"),
    ("tree_register_not_a_class", lambda: tree_util.register("point", lambda p: ([], None), None),
     TypeError, "must be a class"),

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
    # custom rules: pytrees, several outputs, keywords, nondiff_argnums, vmap keeps the rule
    ("custom_jvp_rule_used_under_vmap", lambda: jitgrad.grad(lambda x: np.sum(jitgrad.vmap(_cj_twice_cos)(x)))(
        np.zeros(3)), 2 * np.ones(3)),
    ("custom_vjp_rule_used_under_vmap", lambda: jitgrad.grad(lambda x: np.sum(jitgrad.vmap(_cv_exp)(x)))(
        np.zeros(2)), 7 * np.ones(2)),
    ("custom_vjp_vmap_unbatched_argument", lambda: jitgrad.grad(
        lambda x, y: np.sum(jitgrad.vmap(_cv_two, in_axes=(0, None))(x, y)[1]), argnums=(0, 1))(
        np.ones(3), 2.0), (np.ones(3), 30.0)),
    ("custom_jvp_dict_in_out", lambda: jitgrad.jacfwd(_cj_dict)({"a": 1.0, "b": 2.0}),
     {"p": {"a": 2.0, "b": 1.0}, "s": {"a": 1.0, "b": 1.0}}),
    ("custom_jvp_dict_in_out_jacrev", lambda: jitgrad.jacrev(_cj_dict)({"a": 1.0, "b": 2.0}),
     {"p": {"a": 2.0, "b": 1.0}, "s": {"a": 1.0, "b": 1.0}}),
    ("custom_vjp_tuple_out", lambda: jitgrad.jacrev(_cv_two, argnums=(0, 1))(1.0, 2.0),
     ((2.0, 1.0), (1.0, 10.0))),
    ("custom_vjp_none_cotangent", lambda: jitgrad.grad(_cv_none, argnums=(0, 1))(3.0, 2.0), (0.0, 3.0)),
    ("custom_jvp_keyword_argument", lambda: jitgrad.grad(lambda x: _cj_sin(x=x))(0.0), 3.0),
    ("custom_jvp_keyword_outside", lambda: _cj_sin(x=0.5), np.sin(0.5)),
    ("custom_jvp_nondiff_argnums", lambda: jitgrad.grad(lambda x: _cj_apply(np.sin, x))(1.0), 3.0),
    ("custom_vjp_nondiff_argnums", lambda: jitgrad.grad(lambda x: _cv_pow(x, 3))(2.0), 30.0),
    ("custom_jvp_closes_over_constant", lambda: jitgrad.grad(_closes_over_constant, argnums=0)(
        np.ones(2), 2.0), np.array([20.0, 20.0])),
    ("custom_jvp_rule_calls_itself", lambda: jitgrad.grad(jitgrad.grad(_cj_recursive))(2.0), 2.0),
    ("custom_jvp_recursive_under_vmap", lambda: jitgrad.grad(
        lambda x: np.sum(jitgrad.vmap(_cj_recursive)(x)))(np.ones(2)), np.array([2.0, 2.0])),
    # forward over reverse differentiates bwd, 7 ct: a zero Hessian
    ("custom_vjp_hessian", lambda: jitgrad.hessian(lambda x: np.sum(_cv_exp(x)))(np.ones(2)),
     np.zeros((2, 2))),
    # pytrees
    ("namedtuple_grad", lambda: jitgrad.grad(lambda p: np.sum(p.x * p.y))(_NT(np.ones(2), np.full(2, 3.0))),
     (np.full(2, 3.0), np.ones(2))),
    ("namedtuple_output_type", lambda: type(jitgrad.jit(lambda x: _NT(x, x * 2))(np.ones(2))).__name__ == "_NT",
     True),
    ("dict_keys_sorted", lambda: list(jitgrad.jit(lambda d: d)({"b": np.ones(1), "a": np.zeros(1)})) == ["a", "b"],
     True),
    ("none_leaf_keeps_none", lambda: jitgrad.grad(lambda d: np.sum(d["a"]))({"a": np.ones(2), "b": None}),
     {"a": np.ones(2), "b": None}),
    ("empty_tuple_argument", lambda: jitgrad.grad(lambda e, x: np.sum(x), argnums=(0, 1))((), np.ones(2)),
     ((), np.ones(2))),
    ("jacrev_of_tuple_output", lambda: jitgrad.jacrev(lambda x: {"a": x * 2, "b": (np.sum(x), x[0])})(np.ones(2)),
     {"a": 2 * np.eye(2), "b": (np.ones(2), np.array([1.0, 0.0]))}),
    ("vmap_size_zero", lambda: jitgrad.vmap(jitgrad.grad(lambda x: np.sum(x * x)))(np.ones((0, 2))).shape == (0, 2),
     True),
    ("vmap_constant_output", lambda: jitgrad.vmap(lambda x: np.ones(2))(np.ones((3, 2))), np.ones((3, 2))),
    # special points.  abs'(0): JAX gives 1 (select(x >= 0, t, -t)), TensorFlow and PyTorch
    # sign(0) = 0; jitgrad keeps 0.
    ("abs_at_zero", lambda: jitgrad.grad(np.abs)(0.0), 0.0),
    ("where_nan_untaken_through_reshape", lambda: jitgrad.grad(
        lambda x: np.sum(np.where(x > 0, np.sqrt(x.reshape(2, 2)).T.ravel(), 0.0)))(np.array([0.0, 1.0, 4.0, -1.0])),
     np.array([0.0, 0.5, 0.25, 0.0])),
    ("max_ties_split", lambda: jitgrad.grad(np.max)(np.array([1.0, 3.0, 3.0])), np.array([0.0, 0.5, 0.5])),
    ("maximum_tie_split", lambda: jitgrad.grad(lambda x: np.maximum(x, 0.0))(0.0), 0.5),
    ("pow_float_exponent_at_zero", lambda: jitgrad.grad(lambda x: x ** 2.0)(0.0), 0.0),
    ("sqrt_at_zero", lambda: jitgrad.grad(np.sqrt)(0.0), np.inf),
    ("norm_at_zero_is_nan_as_jax", lambda: jitgrad.grad(np.linalg.norm)(np.zeros(2)), np.array([np.nan, np.nan])),

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


# === transforms ===
# The custom functions and containers the core rows above use.

import collections
import functools

_NT = collections.namedtuple("_NT", "x y")


class _BadFlatten:
    def __init__(self, v):
        self.v = v


tree_util.register(_BadFlatten, lambda b: [b.v], lambda aux, c: _BadFlatten(*c))


def _custom_jvp(rule):
    """``custom_jvp(np.sin)`` with ``rule`` as its rule (a fresh function per use)."""
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)
    f.defjvp(rule)
    return f


def _named(f, name):
    f.__name__ = name
    return f


_cj_bad_shape = _named(_custom_jvp(lambda p, t: (np.sin(p[0]), np.ones(5))), "_cj_bad_shape")
_cj_bad_dtype = _custom_jvp(lambda p, t: (np.sin(p[0]), (np.cos(p[0]) * t[0]).astype(np.float32)))
_cj_single = _custom_jvp(lambda p, t: np.cos(p[0]) * t[0])
_cj_bad_primal = _custom_jvp(lambda p, t: (np.ones(4), np.cos(p[0]) * t[0]))
_cj_twice_cos = _custom_jvp(lambda p, t: (np.sin(p[0]), 2 * np.cos(p[0]) * t[0]))


def _cj_raising_rule(p, t):
    raise ValueError("rule failed")


_cj_raises = _custom_jvp(_cj_raising_rule)


@jitgrad.custom_jvp
def _cj_two_list(x):
    return x, x


@_cj_two_list.defjvp
def _cj_two_list_jvp(p, t):
    return (p[0], p[0]), [t[0], t[0]]


@jitgrad.custom_jvp
def _cj_sin(x):
    return np.sin(x)


@_cj_sin.defjvp
def _cj_sin_jvp(p, t):
    return np.sin(p[0]), 3.0 * t[0]


@jitgrad.custom_jvp
def _cj_dict(d):
    return {"s": d["a"] + d["b"], "p": d["a"] * d["b"]}


@_cj_dict.defjvp
def _cj_dict_jvp(p, t):
    (d,), (td,) = p, t
    return _cj_dict(d), {"s": td["a"] + td["b"], "p": td["a"] * d["b"] + d["a"] * td["b"]}


@jitgrad.custom_jvp
def _cj_recursive(x):
    return x * x


@_cj_recursive.defjvp
def _cj_recursive_jvp(p, t):
    return _cj_recursive(p[0]), 2 * p[0] * t[0]       # the rule calls its own function


@functools.partial(jitgrad.custom_jvp, nondiff_argnums=(0,))
def _cj_apply(fn, x):
    return fn(x)


@_cj_apply.defjvp
def _cj_apply_jvp(fn, p, t):
    return fn(p[0]), 3.0 * t[0]


def _custom_vjp(fwd, bwd, name="f"):
    @jitgrad.custom_vjp
    def f(x):
        return np.exp(x)
    f.defvjp(fwd, bwd)
    return _named(f, name)


_cv_bad_shape = _custom_vjp(lambda x: (np.exp(x), x), lambda r, ct: (np.ones(5),), "_cv_bad_shape")
_cv_bad_fwd = _custom_vjp(lambda x: (np.ones(4), x), lambda r, ct: (ct,))
_cv_fwd_single = _custom_vjp(lambda x: np.exp(x), lambda r, ct: (ct,))
_cv_bwd_bare = _custom_vjp(lambda x: (np.exp(x), x), lambda r, ct: ct)
_cv_exp = _custom_vjp(lambda x: (np.exp(x), x), lambda r, ct: (7.0 * ct,))


@jitgrad.custom_vjp
def _cv_two(x, y):
    return x * y, x + y


_cv_two.defvjp(lambda x, y: ((x * y, x + y), (x, y)),
               lambda r, ct: (ct[0] * r[1] + ct[1], ct[0] * r[0] + 10 * ct[1]))


@jitgrad.custom_vjp
def _cv_none(x, y):
    return x * y


_cv_none.defvjp(lambda x, y: (x * y, (x, y)), lambda r, ct: (None, ct * r[0]))


@functools.partial(jitgrad.custom_vjp, nondiff_argnums=(1,))
def _cv_pow(x, n):
    return x ** n


_cv_pow.defvjp(lambda x, n: (x ** n, x), lambda n, r, ct: (10.0 * n * ct,))


def _closes_over_its_input(y):
    @jitgrad.custom_jvp
    def c(x):
        return x * y

    @c.defjvp
    def c_jvp(p, t):
        return p[0] * y, t[0] * y
    return c(y)


def _closes_over_constant(x, y):
    # y is traced (an argument) but not differentiated: the rule may read it
    @jitgrad.custom_jvp
    def c(v):
        return v * y

    @c.defjvp
    def c_jvp(p, t):
        return p[0] * y, t[0] * y * 10
    return np.sum(c(x))


# Derivatives agree across transforms.  Each row is a composite function of a
# 3-vector through the public NumPy surface; the tests below check, at fixed
# random points, jacfwd == jacrev, the Hessian (symmetric, equal to
# jacrev(jacrev) and to central differences of the gradient), vmap(grad)
# against a loop of grads, jvp against vjp by the dot-product test, and the
# compiled tier against the interpreter (one compile for all rows).

_A = np.array([[3.0, 0.5, -0.2], [0.1, 2.5, 0.3], [-0.4, 0.2, 2.0]])
_B = np.array([1.0, -2.0, 0.5])

COMPOSITES = [
    ("sin_times_square", lambda x: np.sin(x) * x ** 2),
    ("prod_and_sum", lambda x: np.prod(x) * np.sum(x) + x),
    ("where_branches", lambda x: np.where(x > 0, x ** 2, -np.sin(x))),
    ("max_and_min", lambda x: np.max(x * np.cos(x)) * x + np.min(x) * x ** 2),
    ("fancy_indexing", lambda x: x[np.array([2, 0, 1])] * x[1] + x[::-1] * x),
    ("reshape_transpose", lambda x: (np.concatenate([x, x ** 2]).reshape(2, 3).T @ np.array([1.0, -1.0]))),
    ("matmul_quadratic", lambda x: (_A @ x) * (x @ _A @ x)),
    ("cumsum_exp", lambda x: np.exp(np.cumsum(x) / 3)),
    ("sort_weighted", lambda x: np.sort(x ** 3) * np.arange(1.0, 4.0)),
    ("solve", lambda x: np.linalg.solve(_A + np.diag(x ** 2), _B * x)),
    ("det_inv", lambda x: np.linalg.det(_A + np.outer(x, x)) * (np.linalg.inv(_A + np.diag(x)) @ x)),
    ("broadcast_outer", lambda x: np.sum(np.tanh(x[:, None] * x[None, :] + x), axis=0)),
]

_POINTS = np.random.default_rng(42).uniform(-1.5, 1.5, (3, 3)) + np.array([0.05, 0.1, 0.2])


def _scalar(f):
    return lambda x: np.sum(f(x) * np.array([1.0, -0.5, 2.0]))


@pytest.mark.parametrize("f", [r[1] for r in COMPOSITES], ids=[r[0] for r in COMPOSITES])
def test_derivatives_agree_across_transforms(f):
    g = _scalar(f)
    rng = np.random.default_rng(7)
    for x in _POINTS:
        jf, jr = jitgrad.jacfwd(f)(x), jitgrad.jacrev(f)(x)
        np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-12)
        # the dot-product test: <u, J v> == <J^T u, v>
        u, v = rng.standard_normal(3), rng.standard_normal(3)
        jv = jitgrad.jvp(f, (x,), (v,))[1]
        vju = jitgrad.vjp(f, x)[1](u)[0]
        np.testing.assert_allclose(u @ jv, vju @ v, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(jv, jf @ v, rtol=1e-12, atol=1e-12)
        H = jitgrad.hessian(g)(x)
        np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(H, jitgrad.jacrev(jitgrad.jacrev(g))(x), rtol=1e-10, atol=1e-12)
        gr = jitgrad.grad(g)
        h = 1e-5
        fd = np.stack([(gr(x + h * e) - gr(x - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
        np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.grad(g))(_POINTS),
                               np.stack([jitgrad.grad(g)(x) for x in _POINTS]), rtol=1e-12, atol=1e-12)
    # in_axes other than 0: the points as columns
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.grad(g), in_axes=1)(_POINTS.T),
                               np.stack([jitgrad.grad(g)(x) for x in _POINTS]), rtol=1e-12, atol=1e-12)


def test_derivatives_compiled_match_interpreted():
    # One compiled function computes every row's gradient, and one Hessian
    # (compile time grows faster than the program).
    def all_derivatives(x):
        return (tuple(jitgrad.grad(_scalar(f))(x) for _, f in COMPOSITES)
                + (jitgrad.hessian(_scalar(COMPOSITES[2][1]))(x),))
    x = _POINTS[0]
    ref = jitgrad.jit(all_derivatives)(x)
    with jitgrad.config(compile="always"):
        got = jitgrad.jit(all_derivatives)(x)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-13)


def test_vmap_batch_sizes_and_nesting():
    g = jitgrad.grad(lambda x, w: np.sum(np.sin(x) * w))
    w = np.array([1.0, 2.0])
    for n in (0, 1, 3):
        X = np.arange(2.0 * n).reshape(n, 2)
        got = jitgrad.vmap(g, in_axes=(0, None))(X, w)
        assert got.shape == (n, 2)
        np.testing.assert_allclose(got, np.cos(X) * w, rtol=1e-14)
    X = np.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.vmap(g, in_axes=(0, None)), in_axes=(0, None))(X, w),
                               np.cos(X) * w, rtol=1e-14)
    # mapped over axis 1 of the weights, axis 0 of x
    W = np.arange(6.0).reshape(2, 3)
    got = jitgrad.vmap(g, in_axes=(0, 1))(np.ones((3, 2)), W)
    np.testing.assert_allclose(got, np.cos(1.0) * W.T, rtol=1e-14)
