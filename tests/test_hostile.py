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
