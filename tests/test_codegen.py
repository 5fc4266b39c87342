"""Golden-style tests on the generated Numba source: fusion into loop nests."""
import re

import numpy as np
import pytest

import jitgrad

X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def body(src):
    """The generated function (without the header helpers)."""
    return src.split("def jg_", 2)[-1] if src.count("def jg_") else src.split("@njit(cache")[-1]


def n_loop_nests(src):
    return len(re.findall(r"^\s*for i0 in range", body(src), flags=re.M))


def empties(src):
    return re.findall(r"(\w+) = lc\.empty\(", body(src))


def check_compiled(f, *args, rtol=1e-12):
    with jitgrad.config(compile="never"):
        ref = f(*args)
    with jitgrad.config(compile="always"):
        got = f(*args)
    for a, b in zip(jitgrad.tree.flatten(got)[0], jitgrad.tree.flatten(ref)[0]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-14)
    return got


def chain(x):
    return np.sum(np.tanh(np.sin(x) * 2.0 + 1.0) ** 2 - np.exp(-x) / 3.0)


def test_elementwise_chain_and_sum_is_one_loop_nest():
    src = jitgrad.source(jitgrad.jit(chain))(X)
    assert n_loop_nests(src) == 1, src
    assert len(re.findall(r"^\s*for i1 in range", body(src), flags=re.M)) == 1
    assert empties(src) == [], "no array for intermediates of a fused chain"
    assert "np.full" not in body(src)
    got = check_compiled(jitgrad.jit(chain), X)
    assert got == pytest.approx(chain(X), rel=1e-13)


def test_gradient_of_sin_times_gaussian_is_one_loop():
    g = jitgrad.grad(lambda w: np.sum(np.sin(w) * np.exp(-w ** 2)))
    src = jitgrad.source(g)(X)
    assert n_loop_nests(src) == 1, src
    assert empties(src) == [re.search(r"return \((\w+),", src).group(1)], \
        "only the output gradient is an array"
    got = check_compiled(g, X)
    np.testing.assert_allclose(got, np.exp(-X ** 2) * (np.cos(X) - 2 * X * np.sin(X)), rtol=1e-13)


def test_value_and_grad_shares_one_loop():
    vg = jitgrad.value_and_grad(lambda w: np.sum(np.sin(w) * np.exp(-w ** 2)))
    src = jitgrad.source(vg)(X)
    assert n_loop_nests(src) == 1, src


def softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=-1, keepdims=True)


def test_softmax_loops():
    src = jitgrad.source(jitgrad.jit(softmax))(X)
    # max; exp and its sum (one nest); divide
    assert n_loop_nests(src) == 3, src
    assert "vexp(" in src
    got = check_compiled(jitgrad.jit(softmax), X)
    np.testing.assert_allclose(got, softmax(X), rtol=1e-14)


def test_softmax_gradient_is_correct_when_compiled():
    w = np.arange(12.0).reshape(3, 4)
    g = jitgrad.grad(lambda x: np.sum(softmax(x) * w))
    got = check_compiled(g, X)
    s = softmax(X)
    np.testing.assert_allclose(got, s * (w - np.sum(s * w, axis=-1, keepdims=True)), rtol=1e-12,
                               atol=1e-14)


def test_softmax_gradient_small_number_of_loops():
    # max | exp, sum, tie count | backward reductions | combine (+ one for the max's cotangent)
    w = np.arange(12.0).reshape(3, 4)
    g = jitgrad.grad(lambda x: np.sum(softmax(x) * w))
    src = jitgrad.source(g)(X)
    assert n_loop_nests(src) <= 5, src


def test_matmul_uses_blas_dot():
    f = jitgrad.jit(lambda a, b: np.tanh(a @ b))
    src = jitgrad.source(f)(X, X.T)
    assert "lc.dot_into(" in body(src)
    assert n_loop_nests(src) == 1          # only the tanh loop; no hand-written triple loop
    got = check_compiled(f, X, X.T)
    np.testing.assert_allclose(got, np.tanh(X @ X.T), rtol=1e-14)


def test_batched_matmul_loops_over_batch_with_np_dot():
    a, b = np.ones((2, 3, 4)), np.ones((2, 4, 5))
    f = jitgrad.jit(lambda a, b: a @ b)
    src = jitgrad.source(f)(a, b)
    assert "lc.dot_into(" in body(src) and "for b in range(2)" in body(src)
    np.testing.assert_allclose(check_compiled(f, a, b), a @ b)


def test_matmul_gradient_uses_np_dot():
    g = jitgrad.grad(lambda a, b: np.sum(np.tanh(a @ b)), argnums=(0, 1))
    src = jitgrad.source(g)(X, X.T)
    assert body(src).count("lc.dot_into(") >= 2


def test_comments_name_equation_and_user_line():
    src = jitgrad.source(jitgrad.jit(chain))(X)
    assert re.search(r"# sin\d+ = sin x0\s+\(test_codegen\.py:\d+\)", src), src


def test_float32_literals_are_typed():
    src = jitgrad.source(jitgrad.jit(lambda x: x * 2.5 + 1.0))(X.astype(np.float32))
    assert "np.float32(2.5)" in src and "np.float32(1.0)" in src
    assert "np.float64" not in body(src)


def test_views_are_index_expressions_not_copies():
    f = jitgrad.jit(lambda x, y: np.sum(x[::-1].T * y))
    x, y = np.ones((3, 4)), np.arange(3.0)
    src = jitgrad.source(f)(x, y)
    assert n_loop_nests(src) == 1 and empties(src) == [], src
    assert "transpose" not in re.sub(r"#.*", "", body(src))
    assert check_compiled(f, x, y) == pytest.approx(np.sum(x[::-1].T * y))


def test_new_axis_is_an_index_expression():
    f = jitgrad.jit(lambda x, y: np.sum(x.T * y[::-1, None]))
    x, y = np.ones((4, 3)), np.arange(3.0)
    src = jitgrad.source(f)(x, y)
    assert n_loop_nests(src) == 1 and empties(src) == [], src
    assert "transpose" not in re.sub(r"#.*", "", body(src))
    assert check_compiled(f, x, y) == pytest.approx(np.sum(x.T * y[::-1, None]))


def test_source_is_stable_across_calls():
    a = jitgrad.source(jitgrad.jit(chain))(X)
    b = jitgrad.source(jitgrad.jit(chain))(X + 1.0)
    assert a == b


# -- vectorised transcendental kernels and their range check


def test_transcendentals_use_the_vectorisable_kernels():
    src = jitgrad.source(jitgrad.jit(chain))(X)
    for fn in ("vsin(", "vtanh(", "vexp("):
        assert fn in body(src)
    assert "math." not in re.sub(r"#.*", "", body(src))


def test_float_sums_may_be_reassociated_and_elementwise_code_may_not():
    assert 'fastmath={"reassoc"}' in jitgrad.source(jitgrad.jit(chain))(X)
    assert "fastmath" not in jitgrad.source(jitgrad.jit(lambda x: np.sin(x) * 2.0))(X)


@pytest.mark.parametrize("big", [2.0e6, -3.0e9, 1e300, np.inf])
def test_sin_cos_beyond_the_kernels_range_answer_as_numpy(big):
    # vecmath's sin/cos reduce exactly only up to TRIG_LIMIT; the compiled code
    # counts larger arguments and the call is answered by NumPy instead.
    x = np.array([0.5, big, -1.0])
    with np.errstate(invalid="ignore"):
        want_f, want_g = np.sum(np.sin(x) * np.cos(x)), np.cos(2 * x)
    f = jitgrad.jit(lambda x: np.sum(np.sin(x) * np.cos(x)))
    g = jitgrad.grad(lambda x: np.sum(np.sin(x) * np.cos(x)))
    with jitgrad.config(compile="always"):
        got_f, got_g = f(x), g(x)
        inside = g(np.array([0.5, 1.5e6]))
    np.testing.assert_allclose(got_f, want_f, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inside, np.cos(2 * np.array([0.5, 1.5e6])), rtol=1e-9, atol=1e-9)


def test_float32_transcendental_loop_matches_numpy():
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    f = jitgrad.jit(lambda x: np.sin(x) * np.exp(-x * x) + np.tanh(x) - np.log1p(x * x))
    with jitgrad.config(compile="always"):
        got = f(x)
    assert got.dtype == np.float32
    want = (np.sin(x) * np.exp(-x * x) + np.tanh(x) - np.log1p(x * x))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_shifted_slices_split_the_loop_into_boundary_and_interior():
    # The gradient reads through pads (conditional reads); the conditions hold
    # on 1 <= i0 < n-1, so that range gets a loop whose body has none.
    x = np.linspace(-1.5, 1.5, 50)
    g = jitgrad.grad(rosenbrock)
    src = body(jitgrad.source(g)(x))
    assert empties(src) == [re.search(r"return \((\w+),", src).group(1)]
    loops = re.split(r"^\s*for i0 in ", src, flags=re.M)[1:]
    heads = [piece.split(":", 1)[0] for piece in loops]
    assert heads == ["range(1)", "range(1, 49)", "range(49, 50)"], src
    interior = re.sub(r"#.*", "", loops[1])
    assert " if " not in interior, src
    grad = check_compiled(g, x)
    h = 1e-6
    fd = [(rosenbrock(x + h * e) - rosenbrock(x - h * e)) / (2 * h) for e in np.eye(50)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-5)


# -- property test: stencils (shifted slices, whose gradients read through pads)

from hypothesis import given, settings, strategies as st  # noqa: E402

STENCILS = {
    "diff0": lambda a: a[1:] - a[:-1] ** 2,
    "wide0": lambda a: a[2:] * a[:-2] + a[1:-1],
    "diff1": lambda a: a[:, 1:] - np.sin(a[:, :-1]) if a.ndim == 2 else a,
    "flip": lambda a: a[::-1] * 0.5 + np.tanh(a),
    "step2": lambda a: a[::2] * a[::2],
}


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(sorted(STENCILS)), min_size=1, max_size=3),
       st.sampled_from([(9,), (12,), (7, 5), (10, 4)]))
def test_stencil_gradients_compiled_match_interpreter(steps, shape):
    def f(x):
        for s in steps:
            if x.shape[0] > 3 and (s != "diff1" or x.shape[-1] > 1):
                x = STENCILS[s](x)
        return np.sum(x * x)
    x = np.random.default_rng(len(steps)).uniform(-1, 1, shape)
    check_compiled(jitgrad.grad(f), x)


def test_every_generated_line_points_at_the_users_source():
    # cotangent sums of reverse mode included: each comment names this file
    f = jitgrad.grad(lambda x: np.sum(np.sin(x) * np.exp(-x * x)))
    src = jitgrad.source(f)(np.linspace(0.0, 1.0, 8))
    line = test_every_generated_line_points_at_the_users_source.__code__.co_firstlineno + 2
    where = re.findall(r"#\s+\w+ = .*\(([\w.]+:\d+)\)", src)
    assert where and set(where) == {f"test_codegen.py:{line}"}, src


def test_a_program_cut_into_pieces_computes_what_it_computes_whole(monkeypatch):
    # backend.split cuts long programs into functions called in turn; with
    # tiny pieces, values cross many cuts (arrays, scalars, views, outputs)
    from jitgrad.backend import split
    monkeypatch.setattr(split, "MAX_EQNS", 3)

    def f(x, w):
        y = np.sin(x) * w[0]
        s = np.sum(y ** 2)
        z = (y[1:] - y[:-1]) * s
        return np.tanh(z).sum() + np.exp(-s), z, x.T if x.ndim > 1 else x

    x, w = np.linspace(0.1, 2.0, 7), np.array([1.5, 0.5])
    g = jitgrad.jit(jitgrad.value_and_grad(lambda x, w: f(x, w)[0], argnums=(0, 1)))
    h = jitgrad.jit(f)
    with jitgrad.config(compile="never"):
        ref_g, ref_h = g(x, w), h(x, w)
    src = jitgrad.source(jitgrad.value_and_grad(lambda x, w: f(x, w)[0], argnums=(0, 1)))(x, w)
    assert src.count("def jg_") > 3, "the program was not cut"
    with jitgrad.config(compile="always"):
        got_g, got_h = g(x, w), h(x, w)
    for a, b in zip(jitgrad.tree.leaves((got_g, got_h)), jitgrad.tree.leaves((ref_g, ref_h))):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert got_h[2] is not x and not np.shares_memory(got_h[2], x)
