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
    # an output that is an input, a captured constant or a view of one (both tiers)
    ("jit_times_one_is_not_input", lambda: (jitgrad.jit(lambda v: v * 1.0)(Y), [Y])),
    ("jit_identity", lambda: (jitgrad.jit(lambda v: v)(Y), [Y])),
    ("jit_transpose_view", lambda: (jitgrad.jit(lambda x: x.T)(M), [M])),
    ("jit_reshape_view", lambda: (jitgrad.jit(lambda x: x.reshape(6))(M), [M])),
    ("jit_ravel_view", lambda: (jitgrad.jit(lambda x: x.ravel())(M), [M])),
    ("jit_full_slice_view", lambda: (jitgrad.jit(lambda x: x[:, :])(M), [M])),
    ("jit_expand_dims_view", lambda: (jitgrad.jit(lambda x: x[None])(Y), [Y])),
    ("jit_strided_input", lambda: (jitgrad.jit(lambda x: x * 1.0)(M[:, ::2]), [M])),
    ("jit_returns_constant", lambda: (jitgrad.jit(lambda x: W)(Y), [])),
    ("jit_returns_constant_view", lambda: (jitgrad.jit(lambda x: W.reshape(3, 1))(Y), [])),
    ("jit_static_and_dict", lambda: (jitgrad.jit(lambda d, k: d["a"] * k, static_argnums=1)(
        {"a": Y}, 1), [Y])),
    ("grad_of_captured_product_is_not_W", lambda: (jitgrad.grad(lambda x: np.sum(x * W))(Y), [Y])),
    ("grad_argnums_pair", lambda: (jitgrad.grad(lambda a, b: np.sum(a * b), argnums=(0, 1))(Y, Z),
                                   [Y, Z])),
    ("grad_pytree_argument", lambda: (jitgrad.grad(lambda p: np.sum(p["a"] * p["b"]))(
        {"a": Y, "b": Z}), [Y, Z])),
    ("value_and_grad_of_product", lambda: (jitgrad.value_and_grad(lambda a, b: np.sum(a * b))(Y, Z),
                                           [Y, Z])),
    ("grad_aux_is_input", lambda: (jitgrad.grad(lambda x: (np.sum(x * x), x), has_aux=True)(Y), [Y])),
    ("jvp_identity", lambda: (jitgrad.jvp(lambda x: x * 1.0, (Y,), (Z,)), [Y, Z])),
    ("jvp_tangent_of_sum_is_not_tangent", lambda: (jitgrad.jvp(lambda a, b: a + b * 0.0, (Y, Y),
                                                               (Z, Z)), [Y, Z])),
    ("vjp_output_and_cotangent", lambda: _vjp_both(lambda x: x * 1.0, Y, Z)),
    ("vjp_cotangent_is_W", lambda: _vjp_both(lambda x: np.sum(x * W), Y, 1.0)),
    ("linearize_identity", lambda: _linearize_both(lambda x: x * 1.0, Y, Z)),
    ("hvp_of_half_square", lambda: (jitgrad.hvp(lambda x: np.sum(x * x) / 2, (Y,), (Z,)), [Y, Z])),
    ("jacfwd_linear", lambda: (jitgrad.jacfwd(lambda x, w: x * w, argnums=1)(Y, Z), [Y, Z])),
    ("jacrev_of_dot_is_not_W", lambda: (jitgrad.jacrev(lambda x: np.dot(W, x))(Y), [Y])),
    ("hessian_of_dot", lambda: (jitgrad.hessian(lambda x: np.dot(x, Z) * 1.0)(Y), [Y, Z])),
    ("vmap_identity", lambda: (jitgrad.vmap(lambda x: x)(M), [M])),
    ("vmap_unmapped_argument", lambda: (jitgrad.vmap(lambda x, w: w * 1.0, in_axes=(0, None))(M, Z),
                                        [M, Z])),
    # results never alias each other ...
    ("jit_cse_outputs_apart", lambda: _apart(jitgrad.jit(lambda x: (x * 2, x * 2))(Y))),
    ("jit_same_output_twice", lambda: _apart(jitgrad.jit(lambda x: (x, x))(Y))),
    ("jit_output_and_its_view", lambda: _apart(jitgrad.jit(lambda x: (x * 2, (x * 2).reshape(3, 1)))(Y))),
    ("jvp_outputs_apart", lambda: _apart(jitgrad.jvp(lambda x: x, (Y,), (Y,)))),
    # ... nor the results of an earlier call (a constant of the compiled function)
    ("jacfwd_identity_basis", lambda: _twice(lambda: _JACFWD_IDENTITY(Y))),
    ("jacrev_identity_basis", lambda: _twice(lambda: _JACREV_IDENTITY(Y))),
    ("jit_constant_twice", lambda: _twice(lambda: _JIT_CONSTANT(Y))),

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


# === api ===
# The user's arrays for the api rows of the tables above.
Y = np.arange(3.0)
Z = np.array([0.5, -1.0, 2.0])
M = np.arange(6.0).reshape(2, 3)


def _vjp_both(f, x, ct):
    out, fn = jitgrad.vjp(f, x)
    return (out, fn(ct)), [x] + ([ct] if isinstance(ct, np.ndarray) else [])


def _linearize_both(f, x, t):
    out, fn = jitgrad.linearize(f, x)
    return (out, fn(t)), [x, t]


def _apart(results):
    """Results of one call must not share memory with each other."""
    first, *rest = tree_util.flatten(results)[0]
    return rest, [first]


# transformed once, so that the second call of a row is a cached one
_JACFWD_IDENTITY = jitgrad.jacfwd(lambda x: x)
_JACREV_IDENTITY = jitgrad.jacrev(lambda x: x)
_JIT_CONSTANT = jitgrad.jit(lambda x: W)


def _twice(call):
    """A cached call must not hand back the memory of an earlier result."""
    first = call()
    return call(), _leaves(first)
