"""Minimal reproductions of bugs found while writing the test suite."""
import re

import numpy as np
import pytest

import jitgrad


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Bug 1 (fixed).  Reverse over reverse through np.where gave wrong second derivatives.
# transforms._transpose_masked records masked cotangents in a dict keyed by
# id(tracer) without keeping the tracer alive; once such a tracer is freed, a
# new, unrelated cotangent can get the same id and is then "re-masked" with the
# stale (pred, raw) entry.  Forward-over-reverse is right; grad(grad) is not.

def test_grad_grad_through_where_log1p():
    f = lambda x: np.where(x > 10.0, x, np.log1p(x * x))
    x = 0.3
    exact = (2 - 2 * x * x) / (1 + x * x) ** 2        # 1.5318...
    assert jitgrad.jvp(jitgrad.grad(f), (x,), (1.0,))[1] == pytest.approx(exact, rel=1e-12)
    assert jitgrad.grad(jitgrad.grad(f))(x) == pytest.approx(exact, rel=1e-12)


def test_grad_grad_logaddexp():
    f = lambda x: np.logaddexp(x, 0.5)
    s = _sigmoid(0.3 - 0.5)
    assert jitgrad.grad(jitgrad.grad(f))(0.3) == pytest.approx(s * (1 - s), rel=1e-12)


# Bug 2.  Generated code reads a view's materialised array inside the loop
# before the loop writes it.  A broadcast that is both an output and an operand
# of the same loop nest is read from np.empty memory (garbage).

def _view_output(x, y):
    z = np.broadcast_to(y, x.shape)
    return x * z, z


def test_codegen_view_output_written_before_read():
    x, y = np.ones((300, 4)), np.arange(4.0)
    src = jitgrad.source(jitgrad.jit(_view_output))(x, y)
    body = src.split("def jg_")[-1].splitlines()
    # the name of the materialised view, and the first line reading and writing it
    name = re.search(r"(\w+) = (?:np|lc)\.empty\(\(300, 4\)", "\n".join(l for l in body if "broadcast" in l)).group(1)
    first_write = next(i for i, l in enumerate(body) if re.search(rf"\b{name}_ = ", l))
    reads = [i for i, l in enumerate(body) if re.search(rf"\b{name}\[i0, i1\]", l) and "= " + name not in l
             and not l.strip().startswith(f"{name}[")]
    assert all(i > first_write for i in reads), "\n".join(body)


def test_compiled_view_output_value():
    x, y = np.ones((300, 4)), np.arange(4.0)
    with jitgrad.config(compile="always"):
        a, b = jitgrad.jit(_view_output)(x, y)
    np.testing.assert_array_equal(b, np.broadcast_to(y, x.shape))
    np.testing.assert_array_equal(a, x * y)


# Bug 6.  Integer floor division and remainder return float64; NumPy keeps the
# integer dtype (and float division loses exactness for large int64 values).

@pytest.mark.parametrize("op", [lambda a: a // 2, lambda a: a % 3, lambda a: np.floor_divide(a, 2),
                                lambda a: np.remainder(a, 3)], ids=["//", "%", "floor_divide", "remainder"])
def test_integer_floor_divide_keeps_int_dtype(op):
    a = np.arange(-3, 4)
    got = jitgrad.jit(op)(a)
    assert got.dtype == op(a).dtype
    np.testing.assert_array_equal(got, op(a))


def test_integer_floor_divide_values():
    a = np.arange(-3, 4)
    np.testing.assert_array_equal(jitgrad.jit(lambda a: a // 2)(a), a // 2)
    np.testing.assert_array_equal(jitgrad.jit(lambda a: a % 3)(a), a % 3)


# Bug 7.  Keyword arguments are rejected by jit and grad (JAX passes them
# through; they are not differentiated).

def test_keyword_arguments():
    x = np.array([0.5, 1.5])
    np.testing.assert_allclose(jitgrad.jit(lambda x, s=1.0: x * s)(x, s=2.0), 2 * x)
    np.testing.assert_allclose(jitgrad.grad(lambda x, s=1.0: np.sum(x * s))(x, s=2.0), [2.0, 2.0])


# Bug 8.  vjp_fn checks the cotangent's shape but not its dtype: a float64
# cotangent for a float32 output returns float64 cotangents for float32 primals.

def test_vjp_cotangent_dtype():
    x = np.array([0.5, 1.5], np.float32)
    _, vjp_fn = jitgrad.vjp(lambda x: x * 2, x)
    try:
        (c,) = vjp_fn(np.ones(2))              # float64 cotangent for a float32 output
    except TypeError as e:
        assert "dtype" in str(e)
        return
    assert c.dtype == np.float32


def test_interpreter_keeps_values_that_are_outputs_or_reused():
    # The interpreter frees intermediates after their last use; an output that
    # is also read later, and an input returned as is, must survive.
    def f(x):
        y = np.sin(x)
        z = y * 2.0
        return x, y, z + y
    x = np.linspace(0.0, 1.0, 5)
    with jitgrad.config(compile="never"):
        a, b, c = jitgrad.jit(f)(x)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_allclose(b, np.sin(x), rtol=1e-15)
    np.testing.assert_allclose(c, 3 * np.sin(x), rtol=1e-15)


def test_jvp_fast_path_still_checks_new_tangents():
    f = lambda x: np.sin(x) * 2.0
    x = np.linspace(0.0, 1.0, 4)
    for _ in range(2):       # the second call takes the cached path
        out, t = jitgrad.jvp(f, (x,), (np.ones(4),))
        np.testing.assert_allclose(t, 2 * np.cos(x), rtol=1e-14)
    with pytest.raises(TypeError, match="dtype"):
        jitgrad.jvp(f, (x,), (np.ones(4, np.float32),))
    with pytest.raises(ValueError, match="shape"):
        jitgrad.jvp(f, (x,), (np.ones(3),))


@pytest.mark.parametrize("mode", ["never", "always"])
def test_argmax_argmin_sort_with_nan_follow_numpy(mode):
    # NumPy: argmax/argmin return the first nan; sort puts nans last
    a = np.array([[1.0, np.nan, 3.0, np.nan], [5.0, 2.0, -1.0, 0.0]])
    fns = [lambda x: np.argmax(x, axis=1), lambda x: np.argmin(x, axis=1),
           lambda x: np.argmax(x), lambda x: np.sort(x, axis=1), lambda x: np.argsort(x, axis=1)]
    with jitgrad.config(compile=mode):
        for f in fns:
            np.testing.assert_array_equal(jitgrad.jit(f)(a), f(a))
