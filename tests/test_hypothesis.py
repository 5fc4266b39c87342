"""Property tests: random shapes and random compositions of primitives.

A program is a short list of steps applied to a running array; each step is a
smooth elementwise function (guarded to its domain by construction), a binary
op with the program's second input (broadcast), or a reduction.  We check the
gradient against finite differences, and jvp against vjp with the dot-product
test.  Everything runs on the interpreter (no compiles).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitgrad
from helpers import assert_close, dot_product_check, fd_jvp, vdot

# Smooth on all of R (inputs are kept bounded by the guards below).
UNARY = {
    "sin": np.sin,
    "tanh": np.tanh,
    "exp_bounded": lambda a: np.exp(np.tanh(a)),
    "log_pos": lambda a: np.log(a * a + 1.0),
    "sqrt_pos": lambda a: np.sqrt(a * a + 0.5),
    "square": np.square,
    "cube_scaled": lambda a: (a * 0.5) ** 3,
    "arctan": np.arctan,
    "sinh_bounded": lambda a: np.sinh(np.tanh(a)),
    "logaddexp0": lambda a: np.logaddexp(a, 0.0),
    "recip": lambda a: 1.0 / (a * a + 1.0),
    "neg_T": lambda a: -a.T,
    "flip": lambda a: a[::-1],
    "scale": lambda a: 2.5 * a - 1.0,
    "hypot1": lambda a: np.hypot(a, 1.0),
    "arcsin_squash": lambda a: np.arcsin(np.tanh(a) * 0.9),
}
BINARY = {
    "add": np.add,
    "mul": np.multiply,
    "sub": np.subtract,
    "div_safe": lambda a, b: a / (b * b + 1.0),
    "atan2_safe": lambda a, b: np.arctan2(a, b * b + 1.0),
    "pow_pos": lambda a, b: (a * a + 1.0) ** np.tanh(b),
}
REDUCE = {
    "sum": np.sum,
    "mean": np.mean,
    "var": np.var,
    "logsumexp_like": lambda a, axis, keepdims: np.log(np.sum(np.exp(np.tanh(a)), axis=axis,
                                                              keepdims=keepdims)),
}

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def programs(draw):
    shape = draw(shapes)
    n = draw(st.integers(1, 4))
    steps = []
    for _ in range(n):
        kind = draw(st.sampled_from(["unary", "unary", "binary", "reduce"]))
        if kind == "unary":
            steps.append(("unary", draw(st.sampled_from(sorted(UNARY)))))
        elif kind == "binary":
            # operand b of the program, broadcast from a suffix of the shape
            steps.append(("binary", draw(st.sampled_from(sorted(BINARY)))))
        else:
            steps.append(("reduce", draw(st.sampled_from(sorted(REDUCE))),
                          draw(st.booleans()), draw(st.integers(0, 10))))
    b_ndim = draw(st.integers(0, len(shape)))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, steps, b_ndim, seed


def build(steps):
    def f(a, b):
        for step in steps:
            if step[0] == "unary":
                if step[1] in ("neg_T", "flip") and np.ndim(a) == 0:
                    a = -a
                else:
                    a = UNARY[step[1]](a)
            elif step[0] == "binary":
                bb = b
                # b was made for the original shape; make it broadcastable to a
                while np.ndim(bb) > np.ndim(a):
                    bb = np.sum(bb, axis=0)
                bshape = np.shape(bb)
                ashape = np.shape(a)
                if ashape[len(ashape) - len(bshape):] != bshape:
                    bb = np.sum(bb)
                a = BINARY[step[1]](a, bb)
            else:
                _, name, keepdims, k = step
                nd = np.ndim(a)
                if nd == 0:
                    continue
                axis = None if k % 3 == 0 else (k % nd) - (nd if k % 2 else 0)
                a = REDUCE[name](a, axis=axis, keepdims=keepdims)
        return a
    return f


def make_args(shape, b_ndim, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1.5, 1.5, shape)
    b = rng.uniform(-1.5, 1.5, shape[len(shape) - b_ndim:])
    return a, b, rng


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(programs())
def test_value_matches_numpy(prog):
    shape, steps, b_ndim, seed = prog
    f = build(steps)
    a, b, _ = make_args(shape, b_ndim, seed)
    ref = f(a, b)
    got = jitgrad.jit(f)(a, b)
    assert np.shape(got) == np.shape(ref)
    assert_close(got, ref, rtol=1e-12, atol=1e-13)


@SETTINGS
@given(programs())
def test_grad_vs_finite_differences(prog):
    shape, steps, b_ndim, seed = prog
    f = build(steps)
    a, b, rng = make_args(shape, b_ndim, seed)
    w = rng.standard_normal(np.shape(f(a, b)))
    g = lambda a, b: np.sum(f(a, b) * w)  # noqa: E731
    ga, gb = jitgrad.grad(g, argnums=(0, 1))(a, b)
    assert ga.shape == a.shape and gb.shape == b.shape
    va, vb = rng.standard_normal(a.shape), rng.standard_normal(b.shape)
    (fd,) = fd_jvp(g, [a, b], [va, vb])
    assert_close(vdot(ga, va) + vdot(gb, vb), fd, rtol=1e-6, atol=1e-7)


@SETTINGS
@given(programs())
def test_jvp_vjp_dot_product(prog):
    shape, steps, b_ndim, seed = prog
    f = build(steps)
    a, b, rng = make_args(shape, b_ndim, seed)
    dot_product_check(f, [a, b], rng)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(programs())
def test_forward_over_reverse_hvp_vs_finite_differences(prog):
    shape, steps, b_ndim, seed = prog
    f = build(steps)
    a, b, rng = make_args(shape, b_ndim, seed)
    w = rng.standard_normal(np.shape(f(a, b)))
    grad_g = jitgrad.grad(lambda a, b: np.sum(f(a, b) * w), argnums=(0, 1))
    va, vb = rng.standard_normal(a.shape), rng.standard_normal(b.shape)
    _, (ha, hb) = jitgrad.jvp(grad_g, (a, b), (va, vb))
    fa, fb = fd_jvp(grad_g, [a, b], [va, vb])
    assert_close(ha, fa, rtol=1e-5, atol=1e-6)
    assert_close(hb, fb, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shapes, st.sampled_from(sorted(UNARY)), st.integers(0, 2**31 - 1))
def test_float32_follows_numpy(shape, name, seed):
    f = UNARY[name]
    a = np.random.default_rng(seed).uniform(-1.5, 1.5, shape).astype(np.float32)
    ref = f(a)
    got = jitgrad.jit(f)(a)
    assert got.dtype == ref.dtype == np.float32
    assert_close(got, ref, rtol=3e-6, atol=1e-6)
    g = jitgrad.grad(lambda a: np.sum(f(a)))(a)
    assert g.dtype == np.float32
