"""The shape of generated loops: outer products fused into the loops that
read them (backend.smalldot), loops over pads and concatenations cut into one
loop per index range instead of a branch per element, short loops written so
that LLVM vectorises them (backend.tripcount), and loop bodies kept whole, or,
when cut into pieces, passing their values through preallocated arrays.
Values equal the interpreter's in both tiers; results stay fresh."""
import re
import threading

import numpy as np
import pytest

import jitgrad
from jitgrad.backend import emit, kernel_limits, split, tripcount
from helpers import both_tiers, leaves


def assert_same(got, ref, rtol=0.0, atol=0.0):
    for a, b in zip(leaves(got), leaves(ref)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def functions(src):
    """The generated functions of a module: name -> body text."""
    parts = re.split(r"^def (jg_\w+)\(", src, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


# -- outer products (smalldot)

def test_an_outer_product_is_a_multiply_in_its_loop_not_a_blas_call(rng):
    a, b = rng.standard_normal(5), rng.standard_normal(7)
    f = jitgrad.jit(lambda a, b: a[:, None] @ b[None, :] + 1.0)
    src = jitgrad.source(f)(a, b)
    assert "dot_into" not in src, src
    got, ref = both_tiers(f, a, b)
    assert_same(got, ref)                      # one rounded product: bit for bit
    np.testing.assert_array_equal(got, np.outer(a, b) + 1.0)


def test_the_gradient_of_a_matrix_vector_product_fuses_its_outer_product(rng):
    # d/dW sum(tanh(W x)): the weight's gradient is outer(g, x), added in one loop
    W, x = rng.standard_normal((6, 4)), rng.standard_normal(4)
    g = jitgrad.grad(lambda W, x: np.sum(np.tanh(W @ x)))
    src = jitgrad.source(g)(W, x)
    assert src.count("lc.dot_into") == 1, src  # the forward product only
    got, ref = both_tiers(g, W, x)
    # (tanh's last bits differ between the tiers: 1 - tanh^2 scales them up)
    assert_same(got, ref, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_and_transposed_outer_products_keep_their_axes(rng, dtype):
    x = rng.standard_normal((3, 4, 1)).astype(dtype)
    y = rng.standard_normal((3, 1, 5)).astype(dtype)
    f = jitgrad.jit(lambda x, y: np.matmul(x, y))
    got, ref = both_tiers(f, x, y)
    assert_same(got, ref)
    np.testing.assert_array_equal(got, np.matmul(x, y))
    # non-contiguous operands (a transposed view), and a product with the
    # contracted axis first
    xt = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
    got, ref = both_tiers(f, xt, y)
    assert_same(got, ref)
    h = jitgrad.jit(lambda u, v: u.T @ v)
    u, v = rng.standard_normal((1, 4)).astype(dtype), rng.standard_normal((1, 3)).astype(dtype)
    got, ref = both_tiers(h, u, v)
    assert_same(got, ref)
    assert got.dtype == dtype and got.shape == (4, 3)


def test_outer_products_of_special_values_and_empty_or_integer_operands():
    a = np.array([np.inf, 0.0, np.nan, -0.0, 1e308])
    b = np.array([0.0, -np.inf, 2.0])
    f = jitgrad.jit(lambda a, b: a[:, None] @ b[None, :])
    got, ref = both_tiers(f, a, b)
    np.testing.assert_array_equal(got, ref)            # nan where NumPy has nan, signed zeros
    assert np.array_equal(np.signbit(got), np.signbit(ref))
    got, ref = both_tiers(f, np.zeros(0), b)
    assert got.shape == ref.shape == (0, 3)
    ints = jitgrad.jit(lambda a, b: a[:, None] @ b[None, :])      # not rewritten: BLAS has no ints
    got, ref = both_tiers(ints, np.arange(3), np.arange(4))
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == ref.dtype


# -- pads and concatenations: one loop per index range

def test_the_gradient_of_slices_has_no_branch_per_element(rng):
    # reverse mode of x[a:b] is a pad; the gradient of disjoint slices (an
    # LSTM's gates) is a sum of pads, written as one loop per range, each
    # with its own terms
    x = rng.standard_normal(12)
    loss = lambda x: np.sum(np.sin(x[:4]) * np.cos(x[4:8]) + np.exp(x[8:]) * x[:4])
    g = jitgrad.grad(loss)
    src = jitgrad.source(g)(x)
    assert not re.search(r" if \d+ <= [\w +-]*i0[\w +-]* < \d+ else", src), src
    assert re.search(r"for i0 in range\(4, _trip\(8\)\)", src), src
    got, ref = both_tiers(g, x)
    assert_same(got, ref, rtol=1e-13, atol=1e-15)


def test_a_slice_of_a_pad_is_decided_at_generation(rng):
    # the slice maps the loop's index to "k + i0": conditions on it are decided too
    x = rng.standard_normal(12)
    f = jitgrad.jit(lambda x: np.pad(x, (4, 4))[2:14] * 3.0)
    got, ref = both_tiers(f, x)
    assert_same(got, ref)
    np.testing.assert_array_equal(got, np.pad(x, (4, 4))[2:14] * 3.0)


def test_a_concatenation_of_many_parts_falls_back_to_its_interior(rng):
    # more bounds than MAX_PIECES: conditions stay in the body; still right
    parts = [rng.standard_normal(3) for _ in range(emit.MAX_PIECES + 3)]
    w = rng.standard_normal(3 * len(parts))
    g = jitgrad.grad(lambda *p: np.sum(np.concatenate([np.tanh(q) for q in p]) * w),
                     argnums=tuple(range(len(parts))))
    got, ref = both_tiers(g, *parts)
    assert_same(got, ref, rtol=1e-13, atol=1e-15)


def test_pad_cuts_in_two_dimensional_and_float32_loops(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    g = jitgrad.grad(lambda x: np.sum(np.concatenate([x, x * x, np.exp(x)]) ** 2))
    got, ref = both_tiers(g, x)
    assert_same(got, ref, rtol=1e-6)


# -- short loops (tripcount)

@pytest.mark.parametrize("n, hidden", [(3, False), (4, True), (14, True), (15, True), (16, False), (40, False)])
def test_a_short_loop_hides_its_trip_count(rng, n, hidden):
    x = rng.standard_normal(n)
    f = jitgrad.jit(lambda x: np.tanh(x) * np.exp(-x))
    src = jitgrad.source(f)(x)
    assert (f"range(_trip({n}))" in src) == hidden, src
    got, ref = both_tiers(f, x)
    assert_same(got, ref, rtol=4e-16)


def test_a_short_inner_loop_and_a_cut_outer_range_hide_theirs(rng):
    x = rng.standard_normal((20, 6))
    f = jitgrad.jit(lambda x: np.exp(np.pad(x, ((1, 1), (0, 0)))))
    src = jitgrad.source(f)(x)
    assert "range(_trip(6))" in src, src
    got, ref = both_tiers(f, x)
    assert_same(got, ref, rtol=4e-16)


def test_the_hidden_count_is_the_count():
    from numba import njit

    @njit
    def count(k):
        s = 0
        for i in range(tripcount.n(k)):
            s += i
        return s

    assert count(9) == 36 and count(0) == 0 and kernel_limits.TINY_TRIP == 16


# -- loop bodies: kept whole, or cut with their values in parameters

def _rnn_like(T):
    def loss(W, b, xs):
        def step(h, x):
            z = np.tanh(W * h + x) * np.sin(b + h) - np.exp(-h * h) + np.cos(x * b)
            return z / (1.0 + z * z), np.sum(z)
        h, ys = jitgrad.scan(step, np.zeros_like(b), xs)
        return np.sum(h ** 2) + np.sum(ys)
    return loss


def test_a_loop_body_is_not_cut_at_the_programs_limit(monkeypatch, rng):
    W, b, xs = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((4, 5))
    g = jitgrad.grad(_rnn_like(4), argnums=(0, 1))
    monkeypatch.setattr(split, "MAX_EQNS", 8)
    whole = functions(jitgrad.source(g)(W, b, xs))
    monkeypatch.setattr(split, "BODY_MAX_EQNS", 8)
    cut = functions(jitgrad.source(g)(W, b, xs))
    assert len(cut) > len(whole), (list(whole), list(cut))


def test_values_passed_between_pieces_of_a_body_are_not_allocated_per_step(monkeypatch, rng):
    W, b, xs = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((6, 5))
    monkeypatch.setattr(split, "BODY_MAX_EQNS", 8)
    monkeypatch.setattr(split, "MAX_EQNS", 8)
    g = jitgrad.grad(_rnn_like(6), argnums=(0, 1, 2))
    src = jitgrad.source(g)(W, b, xs)
    fns = functions(src)
    # a body cut into pieces: a function calling others in turn
    callers = [n for n, body in fns.items() if n != min(fns, key=len) and
               sum(f"{m}(" in body for m in fns if m != n) > 1]
    assert callers, src
    pieces = [m for n in callers for m in fns if m != n and f"{m}(" in fns[n]]
    # a piece allocates only what its caller lets escape (a carry, a y)
    allocated = sum(len(re.findall(r"= lc\.empty\(", fns[m])) for m in pieces)
    escaping = sum(len(re.findall(r"^\s+return \((.*)\)", fns[n], re.M)[0].split(",")) for n in callers)
    assert allocated <= escaping, src
    got, ref = both_tiers(g, W, b, xs)
    assert_same(got, ref, rtol=1e-13, atol=1e-15)
    with jitgrad.config(compile="always"):
        one, two = g(W, b, xs), g(W, b, xs)
    for a, c in zip(leaves(one), leaves(two)):
        assert a is not c and not np.shares_memory(a, c)
    assert_same(one, two)


def test_threads_calling_a_cut_body_do_not_share_its_buffers(monkeypatch, rng):
    monkeypatch.setattr(split, "BODY_MAX_EQNS", 8)
    monkeypatch.setattr(split, "MAX_EQNS", 8)
    g = jitgrad.grad(_rnn_like(5), argnums=(0, 1))
    inputs = [(rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((5, 5))) for _ in range(4)]
    with jitgrad.config(compile="never"):
        refs = [g(*a) for a in inputs]
    out = [None] * len(inputs)
    with jitgrad.config(compile="always"):
        g(*inputs[0])

        def run(k):
            for _ in range(30):
                out[k] = g(*inputs[k])
        threads = [threading.Thread(target=run, args=(k,)) for k in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for got, ref in zip(out, refs):
        assert_same(got, ref, rtol=1e-13, atol=1e-15)


def test_a_top_level_program_cut_into_pieces_keeps_its_workspace_live(monkeypatch, rng):
    # a piece's value written into a parameter that lives in the caller's
    # workspace must stay live until the last piece that reads it
    from jitgrad.backend import workspace
    monkeypatch.setattr(workspace, "MIN_BYTES", 0)
    monkeypatch.setattr(split, "MAX_EQNS", 3)
    x = rng.standard_normal(9)

    def f(x):
        a = np.sin(x)
        b = np.cos(x) * 2.0
        c = np.exp(-x)
        d = a * b + c
        e = np.tanh(d) - a
        return np.sum(e * b) + np.sum(c * d), e
    got, ref = both_tiers(jitgrad.jit(f), x)
    assert_same(got, ref, rtol=1e-14, atol=1e-15)
    got, ref = both_tiers(jitgrad.grad(lambda x: f(x)[0]), x)
    assert_same(got, ref, rtol=1e-13, atol=1e-15)


# -- slices read by loops and library calls are views, not copies

def test_a_loops_xs_sliced_from_one_array_are_views_not_copies(rng):
    # seq[:-1] and seq[1:] as a scan's xs (GradBench's LSTM): no copy of
    # either (the copies were most of the reverse pass's memory beyond the
    # stored carries)
    seq = rng.standard_normal((7, 3))

    def loss(w, seq):
        def step(h, xy):
            x, y = xy
            return np.tanh(w * h + x), np.sum((h - y) ** 2)
        h, ys = jitgrad.scan(step, np.zeros(3), (seq[:-1], seq[1:]))
        return np.sum(ys) + np.sum(h)
    g = jitgrad.grad(loss)
    src = jitgrad.source(g)(rng.standard_normal(3), seq)
    top = functions(src)[min(functions(src), key=len)]
    assert re.search(r"= x1\[0:6, 0:3\]", top) and re.search(r"= x1\[1:7, 0:3\]", top), top
    assert not re.search(r"slice\d+_ = x1\[.*# materialise view", top), top
    w = rng.standard_normal(3)
    got, ref = both_tiers(g, w, seq)
    assert_same(got, ref, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("f", [lambda x: x[1:3], lambda x: x[:, 1:3], lambda x: (x * 2.0)[1:, ::2],
                               lambda x: (x[1:], x[:2] + 1.0, x[0:3:2, 1:])])
def test_a_returned_slice_is_a_fresh_array(f):
    x = np.arange(12.0).reshape(3, 4)
    got, ref = both_tiers(jitgrad.jit(f), x)
    with jitgrad.config(compile="always"):
        again = jitgrad.jit(f)(x)
    for a, b, c in zip(leaves(got), leaves(ref), leaves(again)):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, x) and not np.shares_memory(a, c)
