"""Each bad input gives an error of the right type whose message names the problem."""
import numpy as np
import pytest

import jitgrad

X = np.array([0.5, -1.0, 2.0])


# ---------------------------------------------------------------------------
# grad misuse


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError) as ei:
        jitgrad.grad(lambda x: x * 2)(X)
    msg = str(ei.value)
    assert "scalar" in msg and "(3,)" in msg
    assert "vjp" in msg and "sum" in msg


def test_grad_of_non_scalar_2d_mentions_shape_and_function():
    def my_function(x):
        return x.reshape(3, 1)
    with pytest.raises(TypeError, match=r"\(3, 1\)") as ei:
        jitgrad.grad(my_function)(X)
    assert "my_function" in str(ei.value)


def test_grad_of_tuple_output_without_has_aux():
    with pytest.raises(TypeError, match="scalar"):
        jitgrad.grad(lambda x: (np.sum(x), np.sum(x)))(X)


def test_has_aux_requires_pair():
    with pytest.raises(TypeError, match="pair"):
        jitgrad.grad(lambda x: np.sum(x), has_aux=True)(X)


@pytest.mark.parametrize("arg", [3, np.arange(3), True, np.array([True, False])],
                         ids=["py_int", "int_array", "py_bool", "bool_array"])
def test_grad_of_int_or_bool_argument(arg):
    def my_f(x):
        return np.sum(x * 1.0)
    with pytest.raises(TypeError) as ei:
        jitgrad.grad(my_f)(arg)
    msg = str(ei.value)
    assert "argument 0" in msg and "my_f" in msg and "float" in msg


def test_grad_int_argument_names_the_right_argument():
    with pytest.raises(TypeError, match="argument 1"):
        jitgrad.grad(lambda x, n: np.sum(x) * n, argnums=(0, 1))(X, 3)


def test_grad_int_output():
    with pytest.raises(TypeError, match="floating"):
        jitgrad.grad(lambda x: np.sum(x > 0))(X)


@pytest.mark.parametrize("argnums", [1, -2, (0, 2)])
def test_argnums_out_of_range(argnums):
    with pytest.raises(ValueError) as ei:
        jitgrad.grad(lambda x: np.sum(x), argnums=argnums)(X)
    msg = str(ei.value)
    assert "argnums" in msg and "out of range" in msg and "1 positional argument" in msg


def test_value_and_grad_non_scalar():
    with pytest.raises(TypeError, match="value_and_grad.*scalar"):
        jitgrad.value_and_grad(lambda x: x)(X)


# ---------------------------------------------------------------------------
# jvp / vjp misuse


def test_jvp_tangent_wrong_shape():
    with pytest.raises(ValueError) as ei:
        jitgrad.jvp(np.sin, (X,), (np.ones(4),))
    msg = str(ei.value)
    assert "tangent" in msg and "(4,)" in msg and "(3,)" in msg


def test_jvp_tangent_wrong_dtype():
    with pytest.raises(TypeError) as ei:
        jitgrad.jvp(np.sin, (X,), (np.ones(3, np.float32),))
    msg = str(ei.value)
    assert "tangent" in msg and "float32" in msg and "float64" in msg


def test_jvp_structure_mismatch():
    with pytest.raises(ValueError, match="structure"):
        jitgrad.jvp(lambda x, y: x * y, (X, X), (X,))


def test_jvp_requires_tuples():
    with pytest.raises(TypeError, match="tuples"):
        jitgrad.jvp(np.sin, X, X)


def test_vjp_cotangent_wrong_shape():
    _, vjp_fn = jitgrad.vjp(np.sin, X)
    with pytest.raises(ValueError) as ei:
        vjp_fn(np.ones(5))
    assert "cotangent" in str(ei.value) and "(5,)" in str(ei.value)


def test_vjp_cotangent_wrong_structure():
    _, vjp_fn = jitgrad.vjp(lambda x: (x, x), X)
    with pytest.raises(ValueError, match="structure"):
        vjp_fn(np.ones(3))


# ---------------------------------------------------------------------------
# Python control flow on traced values


def _if_positive(x):
    if x > 0:
        return x
    return -x


def _while(x):
    while x < 10.0:
        x = x * 2
    return x


def _bool(x):
    return x * bool(x)


def _float(x):
    return float(x) * x


def _int(x):
    return x * int(x)


def _and(x):
    return (x > 0) and x


def _item(x):
    return x * x.item()


@pytest.mark.parametrize("f", [_if_positive, _while, _bool, _float, _int, _and, _item],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("transform", ["jit", "grad"])
def test_control_flow_on_tracer(f, transform):
    t = jitgrad.jit(f) if transform == "jit" else jitgrad.grad(f)
    with pytest.raises(jitgrad.TracerBoolError) as ei:
        t(1.5)
    msg = str(ei.value)
    assert "np.where" in msg and "traced" in msg
    assert "test_errors.py" in msg       # points at the user's line
    assert isinstance(ei.value, TypeError)


# (np.asarray looked up while tracing works: tests/test_arrays.py; these are
# NumPy's own functions, bound before any trace, as `from numpy import asarray` is)
@pytest.mark.parametrize("conv", [np.asarray, np.array], ids=["asarray", "array"])
def test_np_asarray_of_tracer(conv):
    with pytest.raises(jitgrad.TracerBoolError, match="converted to a NumPy array"):
        jitgrad.jit(lambda x: conv(x) * 2)(X)


def test_missing_dunder_is_attribute_error():
    seen = {}

    def f(x):
        seen["has"] = hasattr(x, "no_such_attribute")
        return x
    jitgrad.jit(f)(X)
    assert seen["has"] is False


def test_unsupported_array_method_names_it():
    with pytest.raises(NotImplementedError, match="nonzero"):
        jitgrad.jit(lambda x: x.nonzero())(X)


def test_index_out_of_bounds_in_compiled_gather():
    # a traced index is checked by the generated code (no out-of-bounds read)
    f = jitgrad.jit(lambda x, i: x[i])
    with jitgrad.config(compile="always"):
        assert f(X, 1) == X[1]
        with pytest.raises(IndexError, match="out of bounds"):
            f(X, 7)
    with pytest.raises(IndexError):
        jitgrad.jit(lambda x, i: x[i])(X, np.array([0, 9]))


# ---------------------------------------------------------------------------
# Unsupported NumPy


@pytest.mark.parametrize("fn, name", [
    (lambda x: np.histogram(x), "histogram"), (lambda x: np.unique(x), "unique"),
    (lambda x: np.bincount(x), "bincount"), (lambda x: np.cumulative_sum(x), "cumulative_sum"),
    (lambda x: np.linalg.eig(x.reshape(1, 3) * x.reshape(3, 1) + np.eye(3)), "eig"),
    (lambda x: np.linalg.eigvals(np.outer(x, x) + np.eye(3)), "eigvals"),
    (lambda x: np.add.accumulate(x), "accumulate"), (lambda x: np.exp(x, out=x), "out="),
    (lambda x: np.nonzero(x), "nonzero"),
], ids=["histogram", "unique", "bincount", "cumulative_sum", "eig", "eigvals", "accumulate", "out",
        "nonzero"])
def test_unsupported_numpy_function(fn, name):
    with pytest.raises((NotImplementedError, TypeError)) as ei:
        jitgrad.jit(fn)(X)
    assert name in str(ei.value)
    if name != "out=":
        assert isinstance(ei.value, NotImplementedError)


def test_unsupported_function_message_names_numpy():
    with pytest.raises(NotImplementedError, match=r"numpy\.histogram"):
        jitgrad.grad(lambda x: np.sum(np.histogram(x)[0]))(X)
    with pytest.raises(NotImplementedError, match=r"linalg.*eigvals|eigvals.*linalg"):
        jitgrad.jit(lambda x: np.linalg.eigvals(x))(np.eye(2))


def test_inplace_assignment():
    def f(x):
        x[0] = 1.0
        return x
    with pytest.raises(TypeError) as ei:
        jitgrad.jit(f)(X)
    assert "argument" in str(ei.value) and "x.copy()" in str(ei.value)


def test_inplace_augmented_slice_assignment():
    def f(x):
        x[1:] += 1.0
        return x
    with pytest.raises(TypeError, match="argument"):
        jitgrad.grad(lambda x: np.sum(f(x)))(X)


@pytest.mark.parametrize("key", [(np.array([0, 1]), None)], ids=["array_and_newaxis"])
def test_unsupported_advanced_indexing(key):
    with pytest.raises(NotImplementedError) as ei:
        jitgrad.jit(lambda x: x[key])(np.ones((2, 3, 2)))
    assert "np.moveaxis" in str(ei.value) or "np.expand_dims" in str(ei.value)


def test_index_out_of_bounds_concrete():
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 3"):
        jitgrad.jit(lambda x: x[np.array([0, 5])])(X)


def test_traced_mask_indexing():
    with pytest.raises(NotImplementedError, match="np.where"):
        jitgrad.jit(lambda x: x[x > 0])(X)


def test_index_out_of_bounds():
    with pytest.raises(IndexError, match="out of bounds"):
        jitgrad.jit(lambda x: x[3])(X)
    with pytest.raises(IndexError, match="too many indices"):
        jitgrad.jit(lambda x: x[0, 0])(X)


def test_shape_errors():
    with pytest.raises(ValueError, match="broadcast"):
        jitgrad.jit(lambda x, y: x + y)(X, np.ones(4))
    with pytest.raises(ValueError, match="reshape"):
        jitgrad.jit(lambda x: x.reshape(2, 2))(X)
    with pytest.raises(ValueError, match="matmul|contracted|dot"):
        jitgrad.jit(lambda x, y: x @ y)(X, np.ones((4, 2)))
    with pytest.raises(np.exceptions.AxisError):
        jitgrad.jit(lambda x: np.sum(x, axis=1))(X)


def test_unhashable_static_argument():
    f = jitgrad.jit(lambda x, s: x, static_argnums=1)
    with pytest.raises(TypeError, match="hashable"):
        f(X, [1, 2])


def test_non_array_argument():
    with pytest.raises(TypeError, match="static_argnums"):
        jitgrad.jit(lambda x, s: x)(X, "hello")


def test_non_array_return():
    with pytest.raises(TypeError, match="returned a str"):
        jitgrad.jit(lambda x: "nope")(X)


def test_escaped_tracer():
    store = []

    def f(x):
        store.append(x)
        return x
    jitgrad.jit(f)(X)
    with pytest.raises(jitgrad.JitgradError, match="escaped"):
        jitgrad.jit(lambda y: y + store[0])(X)
