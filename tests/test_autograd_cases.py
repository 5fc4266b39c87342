"""NumPy code of the kind autograd's tests run (perf/autograd_shim.py), with
our own cases: derivatives at ties and at degenerate sizes, the less common
call forms (einsum's operand lists, dtype arguments, lists of traced values)."""
import numpy as np
import pytest

import jitgrad
from jitgrad.testing import check_grads


# -- derivatives at special points


@pytest.mark.parametrize("f", [np.logaddexp, np.logaddexp2])
def test_logaddexp_second_derivatives_at_ties(f):
    # equal arguments: the Hessian of log(e^x + e^y) is p(1-p) [[1, -1], [-1, 1]] with p = 1/2
    scale = 1.0 if f is np.logaddexp else np.log(2.0)
    h = jitgrad.hessian(f, (0, 1))(0.7, 0.7)
    np.testing.assert_allclose(np.array(h, float), 0.25 * scale * np.array([[1, -1], [-1, 1]]))
    x = np.array([0.3, -1.0, 2.0])
    check_grads(f, (x, x.copy()), order=2)
    check_grads(lambda a: f(a, a), (x,), order=2)


@pytest.mark.parametrize("x, kw", [(3.5, {}), (np.ones((1, 3)), {"axis": 0}),
                                   (np.ones((2, 1)), {"axis": -1, "keepdims": True})])
def test_std_of_one_value_has_zero_derivatives(x, kw):
    # std over one value is 0 for every input (sqrt's derivative at 0 would give NaN)
    f = lambda a: np.std(a, **kw)  # noqa: E731
    assert np.array_equal(f(x), np.std(x, **kw))
    check_grads(f, (x,), order=2)
    assert np.all(np.asarray(jitgrad.grad(lambda a: np.sum(f(a)))(x)) == 0)
    assert np.isnan(jitgrad.jit(lambda a: np.std(a, ddof=1))(np.ones(1)))   # 0/0, as NumPy


# -- call forms


R = np.random.default_rng(0).standard_normal


@pytest.mark.parametrize("args", [
    lambda x, y: (x, [0, 1], y, [1, 2], [0, 2]),
    lambda x, y: (x, [0, 1], y, [1, 2]),                     # implicit output: sorted labels
    lambda x, y: (x, [30, 1], y, [1, 2]),                    # labels above 25 come after
    lambda x, y: (x, [Ellipsis, 1], y, [1, 2], [Ellipsis, 2]),
    lambda x, y: (x, [0, 0], [0]),                           # diagonal
    lambda x, y: (x, [0, 1], [1, 0]),
])
def test_einsum_sublist_form(args):
    x, y = R((3, 3)), R((3, 2))
    f = lambda a, b: np.einsum(*args(a, b))  # noqa: E731
    np.testing.assert_allclose(jitgrad.jit(f)(x, y), f(x, y))
    check_grads(f, (x, y), order=1)


def test_einsum_sublist_bad_label():
    with pytest.raises(ValueError, match="integers in"):
        jitgrad.jit(lambda a: np.einsum(a, [0, 60]))(np.ones((2, 2)))


@pytest.mark.parametrize("join", [
    lambda a, **kw: np.concatenate([a, a], **kw), lambda a, **kw: np.stack([a, a], **kw),
    lambda a, **kw: np.hstack([a, a], **kw), lambda a, **kw: np.vstack([a, a], **kw)])
def test_joins_take_dtype_and_casting(join):
    a = np.arange(3.0)
    for kw in ({"dtype": None}, {"dtype": np.float32}, {"dtype": np.float64, "casting": "no"}):
        got = jitgrad.jit(lambda x: join(x, **kw))(a)
        want = join(a, **kw)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    with pytest.raises(TypeError, match="Cannot cast"):
        jitgrad.jit(lambda x: join(x, dtype=np.int64))(a)
    check_grads(lambda x: join(x, dtype=None), (a,), order=1)


# -- traced values inside lists, np.r_ and np.c_


@pytest.mark.parametrize("f, want", [
    (lambda x: np.mean([x, x + 2]), 1.0), (lambda x: np.std((x, x + 2)), 0.0),
    (lambda x: np.var([x, 3 * x]), 1.0),        # var = x^2: 2x at 0.5
    (lambda x: np.sum([[x, 1.0], [2.0, x]], axis=0)[1], 1.0),
    (lambda x: np.max([x, 0.25]), 1.0), (lambda x: np.dot([x, 1.0], [2.0, x]), 3.0),
    (lambda x: np.append([[x, 2.0]], [[3.0, x]], axis=0)[1, 1], 1.0),
])
def test_numpy_functions_of_lists_holding_traced_values(f, want):
    assert jitgrad.grad(f)(0.5) == pytest.approx(want)
    with jitgrad.config(compile="never"):
        assert float(jitgrad.jit(f)(0.5)) == pytest.approx(float(f(0.5)))


def test_lists_of_traced_values_leave_numpy_untouched_outside():
    orig = np.mean
    jitgrad.grad(lambda x: np.mean([x, x]))(1.0)
    assert np.mean is orig and np.r_ is np.r_ and np.mean([1.0, 3.0]) == 2.0


@pytest.mark.parametrize("f", [
    lambda x, c: np.r_[x, c, x], lambda x, c: np.c_[x, c, x], lambda x, c: np.r_[x[:, 0], 1:4, 2.5],
    lambda x, c: np.c_[x[:, 0], c], lambda x, c: np.r_[x[0, 0]], lambda x, c: np.r_[c, x[1:]],
    lambda x, c: np.r_[x[:, 0].astype(np.float32), 1.5],   # a Python scalar keeps float32
])
def test_r_and_c_of_traced_values(f):
    x, c = R((3, 2)), R((3, 2))
    got, want = jitgrad.jit(f)(x, c), f(x, c)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6)
    if want.dtype == np.float64:
        check_grads(lambda a: f(a, c), (x,), order=1)


def test_r_with_a_directive_names_the_alternative():
    with pytest.raises(NotImplementedError, match="np.concatenate"):
        jitgrad.jit(lambda x: np.r_["0,2", x, x])(np.ones(2))


@pytest.mark.parametrize("key", [(3, slice(2, None), [1, 3]), ([0, 2], slice(None), [1, 3]),
                                 ([[0], [1]], slice(1, 3), [[1, 2, 3]]), (1, Ellipsis, [0, 0, 2])],
                         ids=["int_slice_list", "lists_around_slice", "broadcast", "ellipsis"])
def test_array_indices_separated_by_slices(key):
    # NumPy puts the broadcast index axes first
    x = R((5, 6, 4))
    got = jitgrad.jit(lambda a: a[key])(x)
    assert got.shape == x[key].shape and np.array_equal(got, x[key])
    check_grads(lambda a: a[key], (x,), order=1)


def test_real_if_close_of_a_real_array_is_the_array():
    x = R(3)
    assert np.array_equal(jitgrad.jit(np.real_if_close)(x), x)
    check_grads(np.real_if_close, (x,), order=2)


# -- the compiled tier: every form above in one program (one compile)


def test_compiled_values_and_grads_of_the_new_forms():
    c = R((3, 2))

    def f(x, y):
        # (the einsum, join and real_if_close forms lower to what the string
        # forms and plain joins do: not compiled again here)
        parts = [np.logaddexp(x[0, 0], x[0, 0]), np.std(x[:1], axis=0), np.mean([x[1, 1], 2 * y[0]]),
                 np.r_[x[:, 0], 1:3, 0.5], np.c_[x[:, 1], c], x.reshape(3, 1, 2)[2, :, [1, 0]]]
        return sum(np.sum(p * (k + 0.5)) for k, p in enumerate(parts)) + np.sin(parts[0])

    x, y = R((3, 2)), R(2)
    want_v, want_g = f(x, y), jitgrad.grad(f, (0, 1))(x, y)
    with jitgrad.config(compile="always"):
        v, grads = jitgrad.value_and_grad(f, (0, 1))(x, y)
    np.testing.assert_allclose(v, want_v, rtol=1e-12)
    for a, b in zip(grads, want_g):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    check_grads(f, (x, y), order=1)
