"""Advanced indexing with traced integer indices (gather / scatter_add).

Concrete-index forms are rows of the primitive table (test_primitives.py);
here the indices are arguments of the traced function, as labels are.
"""
import numpy as np
import pytest

import jitgrad
from jitgrad.testing import check_grads

RNG = np.random.default_rng(7)
LOGITS = RNG.standard_normal((5, 4))
LABELS = np.array([3, 0, 0, 2, -1])


def nll(z, y):
    """Mean negative log-likelihood of the labels: picks z[i, y[i]]."""
    m = np.max(z, axis=1, keepdims=True)
    logp = z - m - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(z.shape[0]), y])


def nll_onehot_grad(z, y):
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.zeros_like(z)
    onehot[np.arange(len(y)), y] = 1.0
    return (p - onehot) / len(y)


@pytest.mark.parametrize("mode", ["never", "always"])
def test_cross_entropy_with_label_argument(mode):
    g = jitgrad.grad(nll)
    with jitgrad.config(compile=mode):
        got = g(LOGITS, LABELS)
        again = g(LOGITS, np.array([1, 1, 2, 3, 0]))      # new labels: same compiled code
    np.testing.assert_allclose(got, nll_onehot_grad(LOGITS, LABELS), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(again, nll_onehot_grad(LOGITS, np.array([1, 1, 2, 3, 0])),
                               rtol=1e-12, atol=1e-15)


def test_check_grads_through_traced_gather():
    h = jitgrad.jit(lambda z, y: np.sum(np.sin(z[y]) * z[y[::-1], 1:3].sum()))
    check_grads(lambda z: h(z, np.array([0, 4, 4, -2])), (LOGITS,), order=2)


@pytest.mark.parametrize("mode", ["never", "always"])
def test_repeated_indices_accumulate(mode):
    g = jitgrad.grad(lambda x, i: np.sum(x[i] * np.array([1.0, 2.0, 3.0])))
    with jitgrad.config(compile=mode):
        got = g(np.zeros(4), np.array([1, 1, -1]))
    np.testing.assert_array_equal(got, [0.0, 3.0, 0.0, 3.0])


def test_jacobians_and_hessian_batch_the_gather():
    # jacrev/jacfwd/hessian batch x (the index stays unbatched)
    f = lambda x, i: np.tanh(x[i]) * x[i[::-1]]
    x, i = RNG.standard_normal(6), np.array([5, 0, 2, 2])
    h = 1e-6
    fd = np.stack([(f(x + h * e, i) - f(x - h * e, i)) / (2 * h) for e in np.eye(6)], axis=1)
    for jac in (jitgrad.jacrev, jitgrad.jacfwd):
        np.testing.assert_allclose(jac(f)(x, i), fd, rtol=1e-6, atol=1e-8)
    s = lambda x, i: np.sum(f(x, i) ** 2)
    H = jitgrad.hessian(s)(x, i)
    gs = jitgrad.grad(s)
    fdH = np.stack([(gs(x + h * e, i) - gs(x - h * e, i)) / (2 * h) for e in np.eye(6)], axis=1)
    np.testing.assert_allclose(H, fdH, rtol=1e-6, atol=1e-7)


def test_vmap_over_indices_and_over_both():
    x = RNG.standard_normal((3, 5, 2))
    idx = np.array([[0, 4], [1, 1], [3, 2]])
    take_rows = lambda a, i: a[i] * 2.0
    want = np.stack([take_rows(a, i) for a, i in zip(x, idx)])
    np.testing.assert_allclose(jitgrad.vmap(take_rows)(x, idx), want)
    np.testing.assert_allclose(jitgrad.vmap(take_rows, in_axes=(None, 0))(x[0], idx),
                               np.stack([take_rows(x[0], i) for i in idx]))
    # the transpose (scatter_add) batched: per-example gradients
    g = jitgrad.vmap(jitgrad.grad(lambda a, i: np.sum(a[i] ** 2)))
    want_g = np.stack([jitgrad.grad(lambda a, i: np.sum(a[i] ** 2))(a, i) for a, i in zip(x, idx)])
    np.testing.assert_allclose(g(x, idx), want_g, rtol=1e-14)


def test_traced_index_must_be_integer():
    with pytest.raises(IndexError, match="integer"):
        jitgrad.jit(lambda x, i: x[i])(LOGITS, np.array([0.0, 1.0]))


# -- property test: random advanced-indexing forms against NumPy and finite differences

from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def index_programs(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=2, max_size=3).map(tuple))
    form = draw(st.sampled_from(["rows", "rows_cols", "cols", "rows_slice", "mask"]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    m = draw(st.integers(0, 5))
    pick = lambda n, size: rng.integers(-n, n, size)          # negatives and repeats
    if form == "rows":
        key = (pick(shape[0], (m,)),)
    elif form == "rows_cols":
        key = (pick(shape[0], (m, 1)), pick(shape[1], (1, 2)))
    elif form == "cols":
        key = (slice(None), pick(shape[1], (m,)))
    elif form == "rows_slice":
        key = (pick(shape[0], (m,)), slice(None, None, -1))
    else:
        key = (rng.random(shape[:2]) > 0.5,)
    return shape, key, seed


@settings(max_examples=40, deadline=None, derandomize=True)
@given(index_programs())
def test_random_advanced_indexing(prog):
    shape, key, seed = prog
    x = np.random.default_rng(seed).uniform(-1, 1, shape)
    w = np.random.default_rng(seed + 1).uniform(-1, 1, x[key].shape)
    f = lambda x: np.sum(np.sin(x[key]) * w)
    with jitgrad.config(compile="never"):
        np.testing.assert_allclose(jitgrad.jit(lambda x: x[key])(x), x[key], rtol=0, atol=0)
        got = jitgrad.grad(f)(x)
    want = np.zeros_like(x)
    np.add.at(want, key, np.cos(x[key]) * w)                # d/dx of sum(sin(x[key]) * w)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
