"""Control flow (scan, fori_loop, while_loop, cond, switch, checkpoint) under
every transform, against the same functions written as unrolled Python.

Each row of ``ROWS`` is one function written once against a namespace of
control-flow operations: ``JG`` (jitgrad's primitives) gives the function
under test, ``PY`` (plain Python loops, ``np.where`` for branches) gives the
reference.  ``PY`` runs on NumPy arrays as it is (the NumPy reference value)
and on jitgrad's tracers as straight-line code (the unrolled reference whose
derivatives jitgrad computes without any control-flow primitive).  Every row
is checked for value and dtype, ``jvp``, ``grad`` (against the unrolled
reference to 1e-12 and against finite differences), second order, ``vmap``
of the function and of its gradient, and, grouped in a few tests, the
compiled tier.

Rows marked ``run_time_trips`` hold a loop whose trip count is known only at
run time (``while_loop``, ``fori_loop`` with traced bounds); reverse over
reverse through them is checked against the unrolled reference too.
"""
from __future__ import annotations

import inspect
import re
import types
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import jitgrad
from jitgrad import tree as tree_util
from jitgrad.testing import check_grads

from helpers import fd_jvp


@pytest.fixture(autouse=True)
def _interpreter():
    with jitgrad.config(compile="never"):
        yield


# ---------------------------------------------------------------------------
# The two namespaces.  PY is the reference: loops unrolled in Python, both
# branches computed and one picked with np.where (so it traces to straight-
# line code), a while loop unrolled to a fixed number of masked steps.

PY_MAX_STEPS = 24     # every while loop in the table stops before this


def _py_scan(f, init, xs=None, length=None, reverse=False, checkpoint=None):
    xs_leaves, xs_tree = tree_util.flatten(xs)
    n = length if length is not None else np.shape(xs_leaves[0])[0]
    carry, ys = init, [None] * n
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        carry, ys[t] = f(carry, tree_util.unflatten(xs_tree, [x[t] for x in xs_leaves]))
    if n == 0:      # the structure and shapes of y: one step on the initial carry, thrown away
        x0 = tree_util.unflatten(xs_tree, [np.zeros(np.shape(x)[1:], x.dtype) for x in xs_leaves])
        y_leaves, y_tree = tree_util.flatten(f(init, x0)[1])
        return carry, tree_util.unflatten(y_tree, [np.zeros((0,) + np.shape(y), y.dtype)
                                                   for y in y_leaves])
    y_tree = tree_util.flatten(ys[0])[1]
    cols = zip(*[tree_util.flatten(y)[0] for y in ys])
    return carry, tree_util.unflatten(y_tree, [np.stack(c) for c in cols])


def _select(pred, a, b):
    la, ta = tree_util.flatten(a)
    lb, _ = tree_util.flatten(b)
    return tree_util.unflatten(ta, [np.where(pred, x, y) for x, y in zip(la, lb)])


def _py_while(cond, body, init):
    if not isinstance(cond(init), jitgrad.core.trace.Tracer):
        val = init
        while cond(val):
            val = body(val)
        return val
    val = init
    for _ in range(PY_MAX_STEPS):
        val = _select(cond(val), body(val), val)
    return val


def _py_fori(lo, hi, body, init):
    if isinstance(lo, int) and isinstance(hi, int):
        val = init
        for i in range(lo, hi):
            val = body(np.int64(i), val)
        return val
    return _py_while(lambda c: c[0] < c[1], lambda c: (c[0] + 1, c[1], body(c[0], c[2])),
                     (np.int64(lo) if isinstance(lo, int) else lo.astype(np.int64),
                      np.int64(hi) if isinstance(hi, int) else hi.astype(np.int64), init))[2]


def _py_switch(index, branches, *ops):
    outs = [b(*ops) for b in branches]
    k = np.clip(index, 0, len(branches) - 1)
    res = outs[0]
    for j in range(1, len(outs)):
        res = _select(k == j, outs[j], res)
    return res


def _py_cond(pred, t, f, *ops):
    return _select(pred, t(*ops), f(*ops))


JG = types.SimpleNamespace(scan=jitgrad.scan, fori_loop=jitgrad.fori_loop, while_loop=jitgrad.while_loop,
                           cond=jitgrad.cond, switch=jitgrad.switch, checkpoint=jitgrad.checkpoint,
                           binomial=jitgrad.binomial)
PY = types.SimpleNamespace(scan=_py_scan, fori_loop=_py_fori, while_loop=_py_while, cond=_py_cond,
                           switch=_py_switch, checkpoint=lambda f: f, binomial=lambda s: None)


# ---------------------------------------------------------------------------
# The functions.  Each takes the namespace first, then float arguments.

C3 = np.array([0.7, -0.4, 1.1])                 # a captured NumPy constant
M3 = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [-0.2, 0.3, 0.1]])


def scan_scalar(L, x, w):
    def step(c, xt):
        c = np.tanh(w * c + xt)
        return c, c * c
    return L.scan(step, 0.1 * x.sum(), x)


def scan_rnn(L, h0, W, xs):
    def step(h, x):
        h = np.tanh(W @ h + x)
        return h, h.sum()
    return L.scan(step, h0, xs)


def scan_reverse(L, x, a):
    def step(c, xt):
        c = c * np.cos(xt) + a * xt
        return c, c * xt
    return L.scan(step, a * 0.5, x, reverse=True)


def scan_length_ys_none(L, q, p):
    # symplectic Euler of a pendulum: no xs, no ys
    def step(c, _):
        q, p = c
        p = p - 0.1 * np.sin(q)
        return (q + 0.1 * p, p), None
    (q, p), ys = L.scan(step, (q, p), None, length=8)
    assert ys is None
    return q, p


def scan_pytrees(L, a, b, u):
    def step(c, x):
        a2 = c["a"] * np.cos(x["u"]) + c["bc"][1]
        b2 = c["bc"][0] * 0.9 + x["v"].sum()
        return {"a": a2, "bc": (b2, b2 * a2[0])}, (a2.sum(), {"p": b2 * x["u"]})
    return L.scan(step, {"a": a, "bc": (b, b * 2.0)}, {"u": u, "v": u[:, :2] ** 2})


def scan_int_carry(L, x):
    def step(c, xt):
        i, s, k = c
        s = s * 0.9 + xt * i
        return (i + 1, s, k * 2), (i, s * s)
    return L.scan(step, (np.int64(1), x[0] * 0.0 + 0.5, np.int32(3)), x)


def scan_closures(L, x, w):
    v = np.sin(w) * C3             # a traced value of the enclosing function

    def step(c, xt):
        c = c * v + M3 @ c * xt + C3     # and captured NumPy arrays
        return c, c[1]
    return L.scan(step, w * 0.1, x)


def scan_empty_xs(L, x, c):
    def step(c, xt):
        return c * xt, np.sin(c) * xt
    return L.scan(step, c, x[:0])


def scan_length_zero(L, c):
    def step(c, _):
        return np.sin(c), c * 2.0
    return L.scan(step, c, None, length=0)


def scan_2d_xs(L, h0, xs):
    def step(h, x):            # x is one (2, 3) slice
        h = np.tanh(x @ h[:3] + h[2:] * 0.5)
        return np.concatenate([h, h * 0.5]) * 0.9, x * h[0]
    return L.scan(step, h0, xs)


def scan_float32(L, x, w):
    def step(c, xt):
        c = np.tanh(c * w + xt)
        return c, c * np.float32(2)
    return L.scan(step, w * np.float32(0.5), x)


def fori_static(L, x, a):
    return L.fori_loop(0, 6, lambda i, v: v - 0.1 * (v ** 3 - a) + 0.01 * i * v, x)


def fori_empty_range(L, x):
    return L.fori_loop(5, 2, lambda i, v: v * 3.0, x)


def fori_tuple_carry(L, x, y):
    def body(i, c):
        u, v, n = c
        return u * np.cos(v) + 0.1, v + u.sum() * 0.1, n + i
    return L.fori_loop(1, 5, body, (x, y, np.int64(0)))


def fori_traced_bounds(L, x):
    n = (x > 0).sum()              # a trip count known only at run time
    return L.fori_loop(0, n, lambda i, v: np.sin(v) * (1.0 + 0.1 * i) + 0.3, x)


def while_counter(L, x):
    def body(c):
        i, v = c
        return i + 1, v * np.cos(v) + x
    return L.while_loop(lambda c: c[0] < 6, body, (0, x))


def while_value(L, x):
    # the trip count depends on the value (batched under vmap: masked steps)
    return L.while_loop(lambda v: np.sum(v * v) < 10.0, lambda v: v * 1.3 + 0.1 * np.sin(v), x)


def cond_pred(L, x, y):
    return L.cond(x.sum() > 0, lambda a, b: (np.sin(a) * b, a.sum()),
                  lambda a, b: (a * a - b, b.sum() * 2.0), x, y)


def cond_int_pred(L, x):
    n = (x > 0).sum()          # an integer predicate: nonzero is true
    return L.cond(n, lambda v: v * 2.0, lambda v: np.exp(v), x)


def switch_three(L, x):
    k = (x[0] > 0).astype(np.int64) + (x[1] > 0) * 2     # 0..3, 3 clipped to 2
    return L.switch(k, [lambda v: np.sin(v), lambda v: v ** 3, lambda v: np.exp(v) * v[0]], x)


def checkpointed(L, x, y):
    @L.checkpoint
    def g(a, b):
        return np.sin(a) * np.exp(b) + a * b
    return g(x, y) * g(y, x)


def nest_scan_grad_scan(L, x, w):
    def inner(c, xt):
        return L.scan(lambda d, _: (np.sin(d * w + xt), None), c, None, length=3)[0]

    def step(c, xt):
        g = jitgrad.grad(inner)(c, xt)
        return c - 0.2 * g * c, g
    return L.scan(step, w, x)


def nest_cond_in_scan(L, x):
    def step(c, xt):
        c = L.cond(c > 0.5, lambda a, b: a * 0.5 + b, lambda a, b: np.sin(a) + b * b, c, xt)
        return c, c
    return L.scan(step, x[0], x)


def nest_scan_in_cond(L, x, w):
    def loop(a):
        return L.scan(lambda c, xt: (c * np.cos(xt) + w, c * xt), w * 0.1, a)[1]
    return L.cond(w > 0, loop, lambda a: a * w, x)


def nest_fori_in_vmap(L, xs, a):
    return jitgrad.vmap(lambda r: L.fori_loop(0, 4, lambda i, v: np.tanh(v * a + i * 0.1), r))(xs)


def nest_checkpoint_in_scan(L, x, w):
    f = L.checkpoint(lambda c, xt: np.tanh(c * w + xt) * np.cos(c))

    def step(c, xt):
        c = f(c, xt)
        return c, c
    return L.scan(step, w, x)


def nest_scan_in_scan(L, xs, c0):
    def outer(c, row):
        c, ys = L.scan(lambda d, x: (d * 0.8 + np.sin(x * d), d * x), c, row)
        return c, ys.sum()
    return L.scan(outer, c0, xs)


def scan_binomial(L, x, w):
    # binomial checkpointing (3 snapshots for 9 steps, run backwards): a
    # pytree carry with an integer leaf, xs and ys, a captured constant; and
    # (2 snapshots for 3 steps) under vmap
    def step(c, xt):
        h, n = c
        h = np.tanh(w * h + xt * C3[:2]) * np.cos(h) + 0.01 * n
        return (h, n + 1), h.sum() * xt
    (h, n), ys = L.scan(step, (x[:2] * 0.5, np.int64(0)), x, reverse=True, checkpoint=L.binomial(3))

    def row(r):
        return L.scan(lambda c, xt: (c * np.sin(xt + w) + 0.3 * xt, c * xt), w, r, checkpoint=L.binomial(2))[1]
    return h, n, ys, jitgrad.vmap(row)(x.reshape(3, 3))


def nest_switch_in_fori(L, x):
    def body(i, v):
        return L.switch(i % 3, [lambda u: u * 1.1, lambda u: np.sin(u), lambda u: u + 0.2 * u * u], v)
    return L.fori_loop(0, 7, body, x)


def nest_while_in_scan(L, x):
    def step(c, xt):
        c = L.while_loop(lambda v: v < 3.0, lambda v: v * 1.5 + 0.05, c + xt)
        return c * 0.3, c
    return L.scan(step, x[0] * 0.1 + 1.0, x)


# ---------------------------------------------------------------------------
# The table


@dataclass
class Row:
    name: str
    template: Callable
    args: Callable                  # rng -> tuple of float arrays
    run_time_trips: bool = False    # a trip count known only at run time (a while loop)
    rtol: float = 1e-12             # against the unrolled reference

    def f(self, *a):
        return self.template(JG, *a)

    def ref(self, *a):
        return self.template(PY, *a)


def _u(rng, *shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape)


def _away(rng, n, gap=0.3):
    """n values of random sign, at least gap away from zero."""
    return rng.choice([-1.0, 1.0], n) * rng.uniform(gap, 1.0, n)


ROWS = [
    Row("scan_scalar", scan_scalar, lambda r: (_u(r, 6), np.float64(r.uniform(0.3, 1.2)))),
    Row("scan_rnn", scan_rnn, lambda r: (_u(r, 3), _u(r, 3, 3) * 0.6, _u(r, 5, 3))),
    Row("scan_reverse", scan_reverse, lambda r: (_u(r, 5), np.float64(r.uniform(0.2, 1.0)))),
    Row("scan_length_ys_none", scan_length_ys_none, lambda r: (_u(r, 3), _u(r, 3))),
    Row("scan_pytrees", scan_pytrees, lambda r: (_u(r, 3), np.float64(r.uniform(-1, 1)), _u(r, 4, 3))),
    Row("scan_int_carry", scan_int_carry, lambda r: (_u(r, 5),)),
    Row("scan_closures", scan_closures, lambda r: (_u(r, 4), _u(r, 3))),
    Row("scan_empty_xs", scan_empty_xs, lambda r: (_u(r, 4), _u(r, 2))),
    Row("scan_length_zero", scan_length_zero, lambda r: (_u(r, 3),)),
    Row("scan_2d_xs", scan_2d_xs, lambda r: (_u(r, 4), _u(r, 4, 2, 3))),
    Row("scan_float32", scan_float32, lambda r: (_u(r, 5).astype(np.float32),
                                                 np.float32(r.uniform(0.3, 1.0))), rtol=1e-5),
    Row("scan_binomial", scan_binomial, lambda r: (_u(r, 9), np.float64(r.uniform(0.3, 1.2)))),
    Row("fori_static", fori_static, lambda r: (_u(r, 3, lo=0.2), np.float64(r.uniform(0.5, 1.5)))),
    Row("fori_empty_range", fori_empty_range, lambda r: (_u(r, 3),)),
    Row("fori_tuple_carry", fori_tuple_carry, lambda r: (_u(r, 3), np.float64(r.uniform(-1, 1)))),
    Row("fori_traced_bounds", fori_traced_bounds, lambda r: (_away(r, 5),), run_time_trips=True),
    Row("while_counter", while_counter, lambda r: (_u(r, 3),), run_time_trips=True),
    Row("while_value", while_value, lambda r: (_away(r, 3, 0.5),), run_time_trips=True),
    Row("cond_pred", cond_pred, lambda r: (_away(r, 3), _u(r, 3))),
    Row("cond_int_pred", cond_int_pred, lambda r: (_away(r, 3),)),
    Row("switch_three", switch_three, lambda r: (_away(r, 3),)),
    Row("checkpoint", checkpointed, lambda r: (_u(r, 3), _u(r, 3))),
    Row("nest_scan_grad_scan", nest_scan_grad_scan, lambda r: (_u(r, 4), np.float64(r.uniform(0.3, 1.0)))),
    Row("nest_cond_in_scan", nest_cond_in_scan, lambda r: (_u(r, 6),)),
    Row("nest_scan_in_cond", nest_scan_in_cond, lambda r: (_u(r, 4), np.float64(r.choice([-1, 1]) *
                                                                               r.uniform(0.3, 1.0)))),
    Row("nest_fori_in_vmap", nest_fori_in_vmap, lambda r: (_u(r, 2, 3), np.float64(r.uniform(0.5, 1.5)))),
    Row("nest_checkpoint_in_scan", nest_checkpoint_in_scan, lambda r: (_u(r, 5), np.float64(r.uniform(0.3, 1)))),
    Row("nest_scan_in_scan", nest_scan_in_scan, lambda r: (_u(r, 3, 4), np.float64(r.uniform(-1, 1)))),
    Row("nest_switch_in_fori", nest_switch_in_fori, lambda r: (_u(r, 3, lo=0.1, hi=0.6),)),
    Row("nest_while_in_scan", nest_while_in_scan, lambda r: (_u(r, 4, lo=0.0, hi=0.5),), run_time_trips=True),
]
REV = ROWS
RUN_TIME_TRIPS = [r for r in ROWS if r.run_time_trips]


def rows(table):
    return pytest.mark.parametrize("row", table, ids=[r.name for r in table])


# ---------------------------------------------------------------------------
# Helpers


def _args(row, seed=0):
    return tuple(row.args(np.random.default_rng([seed, len(row.name)])))


def _leaves(x):
    return [np.asarray(a) for a in tree_util.flatten(x)[0]]


def _is_float(a):
    return np.issubdtype(np.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype, np.floating)


def _scalar(fn):
    """A scalar of every floating output of ``fn`` (weights so that no output is
    left out or cancels): what grad and hessian differentiate."""
    def s(*a):
        total = 0.0
        for k, leaf in enumerate(tree_util.flatten(fn(*a))[0]):
            if _is_float(leaf):
                total = total + np.sum(np.sin(leaf * (1.0 + 0.25 * k)))
        return total
    return s


def _tol(row):
    return row.rtol if row.rtol > 1e-12 else 1e-12


def assert_tree_close(got, want, rtol, what, dtype=True):
    g, w = _leaves(got), _leaves(want)
    assert len(g) == len(w), f"{what}: {len(g)} results, want {len(w)}"
    for i, (a, b) in enumerate(zip(g, w)):
        assert a.shape == b.shape, f"{what}: result {i} has shape {a.shape}, want {b.shape}"
        if dtype:
            assert a.dtype == b.dtype, f"{what}: result {i} has dtype {a.dtype}, want {b.dtype}"
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol,
                                   atol=rtol * max(scale, 1.0), err_msg=f"{what}: result {i}")


def _float_leaves(x):
    """The floating leaves of ``x`` (NumPy arrays or traced values)."""
    return [a for a in tree_util.flatten(x)[0] if _is_float(a)]


def _tangents(args, rng):
    return tuple(rng.standard_normal(np.shape(a)).astype(np.asarray(a).dtype) for a in args)


def _argnums(args):
    return tuple(range(len(args)))


# ---------------------------------------------------------------------------
# Values


def test_table_covers_each_primitive():
    src = "".join(inspect.getsource(r.template) for r in ROWS)
    for op in ("L.scan", "L.fori_loop", "L.while_loop", "L.cond", "L.switch", "L.checkpoint", "L.binomial",
               "reverse=True", "length=0", "jitgrad.vmap", "jitgrad.grad"):
        assert op in src, op


@rows(ROWS)
def test_value_matches_numpy(row):
    args = _args(row)
    want = row.ref(*args)                           # plain NumPy, Python loops
    assert_tree_close(jitgrad.jit(row.f)(*args), want, _tol(row), "jit")
    assert_tree_close(row.f(*args), want, _tol(row), "outside any transform")


@rows(ROWS)
def test_value_matches_unrolled_trace(row):
    args = _args(row)
    assert_tree_close(jitgrad.jit(row.f)(*args), jitgrad.jit(row.ref)(*args), _tol(row), "jit of unrolled")


# ---------------------------------------------------------------------------
# First order


@rows(ROWS)
def test_jvp(row):
    args = _args(row)
    t = _tangents(args, np.random.default_rng(1))
    out, tan = jitgrad.jvp(row.f, args, t)
    ref_out, ref_tan = jitgrad.jvp(row.ref, args, t)
    assert_tree_close(out, ref_out, _tol(row), "jvp primal")
    assert_tree_close(_float_leaves(tan), _float_leaves(ref_tan), _tol(row), "jvp tangent vs unrolled")
    if row.rtol <= 1e-12:
        fd = fd_jvp(lambda *a: _float_leaves(row.ref(*a)), args, t)
        assert_tree_close(_float_leaves(tan), fd, 1e-6, "jvp tangent vs finite differences", dtype=False)


@rows(REV)
def test_grad(row):
    args = _args(row)
    g = jitgrad.grad(_scalar(row.f), argnums=_argnums(args))(*args)
    want = jitgrad.grad(_scalar(row.ref), argnums=_argnums(args))(*args)
    assert_tree_close(g, want, _tol(row), "grad vs unrolled")


@rows(REV)
def test_vjp_of_every_output(row):
    args = _args(row)
    out, fn = jitgrad.vjp(row.f, *args)
    rng = np.random.default_rng(2)
    u = tree_util.unflatten(tree_util.flatten(out)[1],
                            [rng.standard_normal(np.shape(o)).astype(np.asarray(o).dtype) if _is_float(o)
                             else np.zeros(np.shape(o), np.asarray(o).dtype) for o in _leaves(out)])
    _, ref_fn = jitgrad.vjp(row.ref, *args)
    assert_tree_close(fn(u), ref_fn(u), _tol(row), "vjp vs unrolled")


@rows([r for r in ROWS if r.rtol <= 1e-12])
def test_check_grads_to_second_order(row):
    args = _args(row)
    f = lambda *a: _float_leaves(row.f(*a))        # noqa: E731
    check_grads(f, args, order=2, modes=("fwd", "rev"))


# ---------------------------------------------------------------------------
# Second order


@rows(REV)
def test_hessian(row):
    args = _args(row)
    for k in range(len(args)):
        h = jitgrad.hessian(_scalar(row.f), argnums=k)(*args)
        want = jitgrad.hessian(_scalar(row.ref), argnums=k)(*args)
        assert_tree_close(h, want, max(_tol(row), 1e-11), f"hessian argnums={k}")
    hh = jitgrad.jacrev(jitgrad.jacfwd(_scalar(row.f)))(*args)
    assert_tree_close(hh, jitgrad.hessian(_scalar(row.ref))(*args), max(_tol(row), 1e-11), "jacrev(jacfwd)")


@rows(ROWS)
def test_jacobians(row):
    args = _args(row)
    first = lambda *a: _float_leaves(row.f(*a))        # noqa: E731
    first_ref = lambda *a: _float_leaves(row.ref(*a))  # noqa: E731
    want = jitgrad.jacfwd(first_ref)(*args)
    assert_tree_close(jitgrad.jacfwd(first)(*args), want, _tol(row), "jacfwd")
    assert_tree_close(jitgrad.jacrev(first)(*args), want, _tol(row), "jacrev")
    ff = jitgrad.jacfwd(jitgrad.jacfwd(_scalar(row.f)))(*args)
    assert_tree_close(ff, jitgrad.jacfwd(jitgrad.jacfwd(_scalar(row.ref)))(*args), max(_tol(row), 1e-11),
                      "jacfwd(jacfwd)")


def _grad_of_grad(f, args):
    argnums = _argnums(args)
    g = jitgrad.grad(_scalar(f), argnums=argnums)
    return jitgrad.grad(lambda *a: sum(np.sum(np.sin(x)) for x in g(*a)), argnums=argnums)(*args)


@rows(RUN_TIME_TRIPS)
def test_reverse_over_reverse_of_a_run_time_trip_count(row):
    # grad of grad through a loop whose trip count is known only at run time
    args = _args(row)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jitgrad.PerformanceWarning)      # the unrolled reference is long
        assert_tree_close(_grad_of_grad(row.f, args), _grad_of_grad(row.ref, args), max(_tol(row), 1e-11),
                          "grad(grad) vs unrolled")


# ---------------------------------------------------------------------------
# vmap


def _batched(row, n=3):
    per = [_args(row, seed) for seed in range(n)]
    return per, tuple(np.stack(col) for col in zip(*per))


def _stack_results(results):
    tree = tree_util.flatten(results[0])[1]
    return tree_util.unflatten(tree, [np.stack(c) for c in zip(*[_leaves(r) for r in results])])


@rows(ROWS)
def test_vmap(row):
    per, batch = _batched(row)
    want = _stack_results([row.ref(*a) for a in per])
    assert_tree_close(jitgrad.vmap(row.f)(*batch), want, _tol(row), "vmap")


@rows(ROWS)
def test_vmap_with_unbatched_arguments(row):
    per, batch = _batched(row)
    if len(per[0]) < 2:
        pytest.skip("one argument")
    in_axes = (0,) + (None,) * (len(per[0]) - 1)
    rest = per[0][1:]
    want = _stack_results([row.ref(a[0], *rest) for a in per])
    assert_tree_close(jitgrad.vmap(row.f, in_axes=in_axes)(batch[0], *rest), want, _tol(row), "vmap in_axes")


@rows(REV)
def test_vmap_of_grad(row):
    per, batch = _batched(row)
    g = jitgrad.vmap(jitgrad.grad(_scalar(row.f), argnums=_argnums(per[0])))(*batch)
    want = _stack_results([jitgrad.grad(_scalar(row.ref), argnums=_argnums(a))(*a) for a in per])
    assert_tree_close(g, want, _tol(row), "vmap(grad)")


@rows(REV)
def test_grad_of_vmap(row):
    per, batch = _batched(row)
    s = lambda f: lambda *a: np.sum(jitgrad.vmap(_scalar(f))(*a))    # noqa: E731
    assert_tree_close(jitgrad.grad(s(row.f), argnums=_argnums(batch))(*batch),
                      jitgrad.grad(s(row.ref), argnums=_argnums(batch))(*batch), _tol(row), "grad(vmap)")


@rows(RUN_TIME_TRIPS)
def test_vmap_of_jvp(row):
    per, batch = _batched(row)
    t = _tangents(batch, np.random.default_rng(3))
    got = jitgrad.vmap(lambda a, ta: jitgrad.jvp(row.f, (a,), (ta,))[1])(batch[0], t[0])
    want = _stack_results([jitgrad.jvp(row.ref, (a[0],), (t[0][i],))[1] for i, a in enumerate(per)])
    assert_tree_close(_float_leaves(got), _float_leaves(want), _tol(row), "vmap(jvp)")


# ---------------------------------------------------------------------------
# The compiled tier: each row's value and first derivative, a few batched and
# second-order programs.  Compiled transcendental functions agree with NumPy's
# to rounding, so the comparison is with the interpreter to 1e-10.


def _always(call):
    """``call()`` with compiled code asked for; a compile that fails (and
    would leave the call on the interpreter, with a warning) fails the test."""
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return call()


def _compiled_rtol(row):
    return max(row.rtol, 1e-10)


@rows(ROWS)
def test_compiled_value_and_derivative(row):
    # one compiled program per row (the value and the derivative together)
    args = _args(row)
    g = jitgrad.grad(_scalar(row.f), argnums=_argnums(args))
    both = jitgrad.jit(lambda *a: (row.f(*a), g(*a)))
    want = row.ref(*args), jitgrad.grad(_scalar(row.ref), argnums=_argnums(args))(*args)
    value, deriv = _always(lambda: both(*args))
    assert_tree_close(value, want[0], _compiled_rtol(row), "compiled value")
    assert_tree_close(_float_leaves(deriv), _float_leaves(want[1]), _compiled_rtol(row), "compiled derivative")


# batched loop conditions and branch indices (masked steps, select), a
# batched gradient, second order
COMPILED_MORE = ["while_value", "fori_traced_bounds", "switch_three", "cond_pred"]


@rows([r for r in ROWS if r.name in COMPILED_MORE])
def test_compiled_vmap(row):
    per, batch = _batched(row)
    want = _stack_results([row.ref(*a) for a in per])
    assert_tree_close(_always(lambda: jitgrad.vmap(row.f)(*batch)), want, _compiled_rtol(row), "compiled vmap")


def test_compiled_vmap_of_grad_and_hessian():
    row = next(r for r in ROWS if r.name == "nest_cond_in_scan")
    per, batch = _batched(row)
    g = jitgrad.vmap(jitgrad.grad(_scalar(row.f)))
    want = _stack_results([jitgrad.grad(_scalar(row.ref))(*a) for a in per])
    assert_tree_close(_always(lambda: g(*batch)), want, _compiled_rtol(row), "compiled vmap(grad)")
    row = next(r for r in ROWS if r.name == "scan_scalar")
    args = _args(row)
    h = _always(lambda: jitgrad.hessian(_scalar(row.f))(*args))
    assert_tree_close(h, jitgrad.hessian(_scalar(row.ref))(*args), 1e-10, "compiled hessian")
    # grad of grad through a while loop (three steps from 1.0)
    step = lambda v: v * np.sin(v) + v * v + 1.0                # noqa: E731
    gg = jitgrad.grad(jitgrad.grad(lambda x: J.while_loop(lambda v: v < 10.0, step, x)))
    want = jitgrad.grad(jitgrad.grad(lambda x: step(step(step(x)))))(1.0)
    np.testing.assert_allclose(_always(lambda: gg(1.0)), want, rtol=1e-10)


# ---------------------------------------------------------------------------
# The hostile user: misuse raises an error that names the problem and the fix.

J = jitgrad
X = np.arange(3.0)


def _jit(f, *args):
    return J.jit(f)(*(args or (X,)))


RAISES = [
    # a carry keeps its structure, shapes and dtypes
    ("scan_carry_changes_shape", lambda: _jit(lambda x: J.scan(lambda c, t: (np.concatenate([c, c]), None), x,
                                                               None, length=2)),
     TypeError, r"scan: the body returns carry leaf 0 as f64\[6\], but it enters as f64\[3\].*astype"),
    ("scan_carry_changes_dtype", lambda: _jit(lambda x: J.scan(lambda c, t: (c * x, None), x.astype(np.float32),
                                                               None, length=2)),
     TypeError, r"carry leaf 0 as f64\[3\], but it enters as f32\[3\]"),
    ("scan_int_carry_becomes_float", lambda: _jit(lambda x: J.scan(lambda c, t: (c * 0.5, None), np.int64(1), x)),
     TypeError, r"carry leaf 0 as f64\[\], but it enters as i64\[\]"),
    ("scan_carry_changes_structure", lambda: _jit(lambda x: J.scan(lambda c, t: ((c, c), None), x, None, length=2)),
     TypeError, r"the body's carry has the structure tuple\(\*, \*\), the initial carry \*"),
    ("scan_carry_dict_keys", lambda: _jit(lambda x: J.scan(lambda c, t: ({"b": c["a"]}, None), {"a": x}, None,
                                                           length=2)),
     TypeError, r"structure \{'b': \*\}, the initial carry \{'a': \*\}"),
    ("scan_body_returns_one_value", lambda: _jit(lambda x: J.scan(lambda c, t: c, x, None, length=2)),
     TypeError, r"must return a pair \(new carry, y\), got a single array"),
    ("scan_body_returns_list", lambda: _jit(lambda x: J.scan(lambda c, t: [c, t], x[0], x)),
     TypeError, r"must return a pair \(new carry, y\), got a list"),
    ("while_body_changes_shape", lambda: _jit(lambda x: J.while_loop(lambda v: v.sum() < 3, lambda v: v[:2], x)),
     TypeError, r"while_loop: the body returns carry leaf 0 as f64\[2\], but it enters as f64\[3\]"),
    ("while_body_returns_none", lambda: _jit(lambda x: J.while_loop(lambda v: v.sum() < 3, lambda v: None, x)),
     TypeError, r"while_loop: the body returns the structure NoneType\(\), the initial value has \*"),
    ("fori_body_changes_shape", lambda: _jit(lambda x: J.fori_loop(0, 3, lambda i, v: v[:2], x)),
     TypeError, r"fori_loop: body_fun returns leaf 0 of the carry as f64\[2\], but it enters as f64\[3\]"),
    ("fori_body_changes_dtype", lambda: _jit(lambda x: J.fori_loop(0, 3, lambda i, v: v * 1.5, np.int64(2))),
     TypeError, r"fori_loop: body_fun returns leaf 0 of the carry as f64\[\], but it enters as i64\[\]"),
    ("fori_traced_bounds_body_changes_structure", lambda: _jit(
        lambda x, n: J.fori_loop(0, n, lambda i, v: (v, v), x), X, np.int64(2)),
     TypeError, r"fori_loop: body_fun returns the structure tuple\(\*, \*\), the initial value has \*"),
    # branches agree on what they return
    ("cond_branches_shapes", lambda: _jit(lambda x: J.cond(x[0] > 0, lambda a: a, lambda a: a[:2], x)),
     TypeError, r"cond: true_fun returns \* of \(f64\[3\]\), cond: false_fun returns \* of \(f64\[2\]\)"),
    ("cond_branches_dtypes", lambda: _jit(lambda x: J.cond(x[0] > 0, lambda a: a, lambda a: a.astype(np.float32),
                                                           x)),
     TypeError, r"true_fun returns \* of \(f64\[3\]\), cond: false_fun returns \* of \(f32\[3\]\)"),
    ("cond_branches_structures", lambda: _jit(lambda x: J.cond(x[0] > 0, lambda a: (a, a), lambda a: a, x)),
     TypeError, r"true_fun returns tuple\(\*, \*\) of .* every branch must return the same structure"),
    ("switch_branches_shapes", lambda: _jit(lambda x: J.switch(1, [lambda a: a, lambda a: a, lambda a: a.sum()],
                                                               x)),
     TypeError, r"switch: branch 2 returns \* of \(f64\[\]\), switch: branch 0 returns \* of \(f64\[3\]\)"),
    # predicates and indices
    ("while_cond_returns_array", lambda: _jit(lambda x: J.while_loop(lambda v: v < 3, lambda v: v + 1, x)),
     TypeError, r"cond_fun must return a boolean scalar, got bool\[3\]"),
    ("while_cond_returns_float", lambda: _jit(lambda x: J.while_loop(lambda v: v.sum(), lambda v: v + 1, x)),
     TypeError, r"cond_fun must return a boolean scalar, got f64\[\]"),
    ("while_cond_returns_int", lambda: _jit(lambda x: J.while_loop(lambda v: (v > 0).sum(), lambda v: v - 1, x)),
     TypeError, r"cond_fun must return a boolean scalar, got i64\[\]"),
    ("cond_vector_predicate", lambda: _jit(lambda x: J.cond(x > 0, lambda a: a, lambda a: -a, x)),
     TypeError, r"cond: the predicate must be a scalar, got bool\[3\]; use np.where"),
    ("switch_float_index", lambda: _jit(lambda x: J.switch(x[0], [lambda a: a, lambda a: -a], x)),
     TypeError, r"switch: the index must be an integer scalar, got f64\[\]"),
    # xs and length
    ("scan_xs_lengths_differ", lambda: _jit(lambda x: J.scan(lambda c, t: (c, None), 0.0, (x, x[:2]))),
     ValueError, r"leading axes of xs \(and length\) disagree: \[2, 3\]"),
    ("scan_xs_and_length_differ", lambda: _jit(lambda x: J.scan(lambda c, t: (c, None), 0.0, x, length=5)),
     ValueError, r"disagree: \[3, 5\]"),
    ("scan_neither_xs_nor_length", lambda: _jit(lambda x: J.scan(lambda c, t: (c, None), x)),
     ValueError, r"give xs or length"),
    ("scan_0d_xs", lambda: _jit(lambda x: J.scan(lambda c, t: (c, None), x, x[0])),
     ValueError, r"every leaf of xs must have a leading axis"),
    ("scan_negative_length", lambda: _jit(lambda x: J.scan(lambda c, t: (c, None), x, None, length=-1)),
     ValueError, r"length must be >= 0, got -1"),
    ("scan_float_length", lambda: _jit(lambda x: J.scan(lambda c, t: (c, None), x, None, length=2.5)),
     TypeError, r"length must be an integer \(the number of steps\), got 2.5"),
    ("scan_traced_length", lambda: _jit(lambda x, n: J.scan(lambda c, t: (c, None), x, None, length=n),
                                        X, np.int64(3)),
     TypeError, r"length must be known when the function is traced.*fori_loop with traced bounds"),
    ("fori_float_bound", lambda: _jit(lambda x: J.fori_loop(0, 2.5, lambda i, v: v + 1, x)),
     TypeError, r"fori_loop: the upper bound must be an integer scalar, got f64\[\]"),
    ("fori_traced_float_bound", lambda: _jit(lambda x: J.fori_loop(x[0], 3, lambda i, v: v + 1, x)),
     TypeError, r"fori_loop: the lower bound must be an integer scalar, got f64\[\]"),
    ("fori_array_bound", lambda: _jit(lambda x: J.fori_loop(0, np.array([2, 3]), lambda i, v: v + 1, x)),
     TypeError, r"the upper bound must be an integer scalar, got i64\[2\]"),
    # functions that are not functions
    ("scan_not_callable", lambda: _jit(lambda x: J.scan(3, x, None, length=2)),
     TypeError, r"scan expects a function as its first argument, got a int"),
    ("cond_branch_not_callable", lambda: _jit(lambda x: J.cond(x[0] > 0, lambda a: a, 3.0, x)),
     TypeError, r"cond: false_fun must be a function, got a float"),
    ("cond_true_branch_not_callable", lambda: _jit(lambda x: J.cond(x[0] > 0, None, lambda a: a, x)),
     TypeError, r"cond: true_fun must be a function, got a NoneType"),
    ("switch_branch_not_callable", lambda: _jit(lambda x: J.switch(1, [lambda a: a, None], x)),
     TypeError, r"switch: branch 1 must be a function, got a NoneType"),
    ("switch_branches_one_function", lambda: _jit(lambda x: J.switch(1, lambda a: a, x)),
     TypeError, r"switch: branches must be a list or tuple of functions, got a function"),
    ("switch_no_branches", lambda: _jit(lambda x: J.switch(1, [], x)),
     ValueError, r"switch: give at least one branch"),
    ("fori_body_not_callable", lambda: _jit(lambda x: J.fori_loop(0, 3, None, x)),
     TypeError, r"fori_loop: body_fun must be a function, got a NoneType"),
    ("while_cond_not_callable", lambda: _jit(lambda x: J.while_loop(None, lambda v: v, x)),
     TypeError, r"while_loop: cond_fun must be a function, got a NoneType"),
    ("while_body_not_callable", lambda: _jit(lambda x: J.while_loop(lambda v: v.sum() > 0, "step", x)),
     TypeError, r"while_loop: body_fun must be a function, got a str"),
    ("checkpoint_not_callable", lambda: J.checkpoint(3), TypeError, r"checkpoint expects a function"),
    # Python control flow on a traced value inside a body: the tracer's error
    ("python_if_in_body", lambda: _jit(lambda x: J.scan(lambda c, t: ((c if c > 0 else -c), None), x[0], x)),
     jitgrad.TracerBoolError, r"bool\(\) on a traced array .* np.where"),
]


@pytest.mark.parametrize("call, exc, pattern", [r[1:] for r in RAISES], ids=[r[0] for r in RAISES])
def test_raises_clearly(call, exc, pattern):
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)


# ---------------------------------------------------------------------------
# The hostile user: odd but valid uses give the right answer in both tiers.

_BR3 = [lambda a: a * 0.0, lambda a: a * 1.0, lambda a: a * 2.0]
_LIVE = np.array([1.0, 2.0, 3.0])     # a captured array that a test changes in place


def _scan_live(x):
    return J.scan(lambda c, t: (c + t * _LIVE, None), np.zeros(3), x)[0]


def _while_counting_below(x):
    # the condition runs a scan whose integer carry depends on the (batched) value
    def cond(v):
        n = J.scan(lambda c, t: (c + (t < v).astype(np.int64), None), np.int64(0), np.array([1.0, 2.0, 4.0, 8.0]))[0]
        return n < 3
    return J.while_loop(cond, lambda v: v * 1.5, x)


def _switch_on_count(x):
    n = J.scan(lambda c, t: (c + (t < x).astype(np.int64), None), np.int64(0), np.array([1.0, 2.0, 4.0]))[0]
    return J.switch(n, [lambda a: a, lambda a: a * 2, lambda a: a * 3, lambda a: a * 4], x)


EQUALS = [
    # switch clips its index in the index's own dtype (a large index does not wrap)
    ("switch_index_2_to_the_32", lambda x, k: J.switch(k, _BR3, x), (1.0, np.int64(2 ** 32)), 2.0),
    ("switch_index_2_to_the_31", lambda x, k: J.switch(k, _BR3, x), (1.0, np.int64(2 ** 31)), 2.0),
    ("switch_index_uint64_top", lambda x, k: J.switch(k, _BR3, x), (1.0, np.uint64(2 ** 63)), 2.0),
    ("switch_index_minus_2_to_the_32", lambda x, k: J.switch(k, _BR3, x), (1.0, np.int64(1 - 2 ** 32)), 0.0),
    ("switch_index_int8_min", lambda x, k: J.switch(k, _BR3, x), (1.0, np.int8(-128)), 0.0),
    ("switch_index_bool", lambda x, k: J.switch(k, _BR3, x), (1.0, np.True_), 1.0),
    ("switch_python_index_out_of_range", lambda x: (J.switch(7, _BR3, x), J.switch(-3, _BR3, x)), (1.0,), (2.0, 0.0)),
    ("cond_float_predicate_nonzero", lambda x: J.cond(x[1], lambda a: a, lambda a: -a, x), (X,), X),
    ("cond_nan_predicate_is_true", lambda x: J.cond(x[0] * np.nan, lambda a: a, lambda a: -a, x), (X,), X),
    ("cond_no_operands", lambda x: J.cond(x[0] > 0, lambda: 1.0, lambda: 2.0), (X,), 2.0),
    ("cond_python_bool", lambda x: J.cond(True, lambda a: a * 2, lambda a: a, x), (X,), 2 * X),
    # carries of every kind
    ("scan_python_int_init_float_body", lambda x: J.scan(lambda c, t: (c + t, None), 0, x)[0], (X,), 3.0),
    ("scan_python_int_init_int_body", lambda x: J.scan(lambda c, t: (c + 1, None), 0, x)[0], (X,), 3),
    ("scan_bool_carry", lambda x: J.scan(lambda c, t: (c | (t > 1), None), False, x)[0], (X,), True),
    ("scan_nan_carry", lambda x: J.scan(lambda c, t: (c + t, c), np.nan, x), (X,), (np.nan, np.full(3, np.nan))),
    ("scan_inf_carry_times_zero", lambda x: J.scan(lambda c, t: (c * t, c), np.inf, x),
     (X,), (np.nan, np.array([np.inf, np.nan, np.nan]))),
    ("scan_uint8_carry_wraps", lambda x: J.fori_loop(0, 3, lambda i, v: v * np.uint8(16), np.uint8(3)), (X,),
     np.uint8(0)),
    ("scan_int8_xs_wrap", lambda x: J.scan(lambda c, t: (c + t, t * t), np.int8(100), np.array([100, 27, -5], np.int8)),
     (X,), (np.int8(-34), np.array([16, -39, 25], np.int8))),
    ("scan_empty_array_carry", lambda x: J.scan(lambda c, t: (c * t, c), np.zeros(0), x)[1], (X,), np.zeros((3, 0))),
    ("scan_none_carry", lambda x: J.scan(lambda c, t: (c, t * 2), None, x), (X,), (None, 2 * X)),
    ("scan_ys_python_constants", lambda x: J.scan(lambda c, t: (c + t, (1.0, 2)), 0.0, x)[1], (X,),
     (np.ones(3), np.full(3, 2))),
    ("scan_swapped_carries", lambda x: J.scan(lambda c, t: ((c[1], c[0]), c[0]), (x, x * 2), None, length=3)[0],
     (X,), (2 * X, X)),
    ("scan_ys_of_bool_xs", lambda x: J.scan(lambda c, t: (np.where(t, c + 1, c), t), 0.0, x > 1), (X,),
     (1.0, np.array([False, False, True]))),
    ("scan_int_xs_gradient", lambda w: J.grad(lambda w: J.scan(lambda c, t: (c * w + t, None), 1.0,
                                                                np.arange(4))[0])(w), (0.5,), 3.5),
    # (traced arrays only: see test_numpy_array_indexed_by_the_loop_index)
    ("fori_loop_index_reads_array", lambda x: J.fori_loop(0, 3, lambda i, v: v + x[i] * x[2 - i], 0.0), (X,), 1.0,
     "traced"),
    ("fori_loop_traced_bounds_index", lambda x: J.fori_loop(0, (x > 0).sum(), lambda i, v: v + x[i], 0.0),
     (X,), 1.0, "traced"),
    ("fori_loop_bound_beyond_int32", lambda x: J.fori_loop(2 ** 40, 2 ** 40 + 3, lambda i, v: v + (i - 2 ** 40), x),
     (X,), X + 3),
    ("while_no_trips", lambda x: J.while_loop(lambda v: v.sum() > 100, lambda v: v * 2, x), (X,), X),
    ("long_loop", lambda x: J.fori_loop(0, 10000, lambda i, v: v + 1.0, x), (X,), X + 10000),
    # batched loop conditions, bounds and indices, and the data flow through nested loops
    ("vmap_while_batched_cond_constant", lambda lim: J.vmap(lambda m: J.while_loop(lambda v: v < m, lambda v: v * 2.0,
                                                                                  1.0))(lim),
     (np.array([3.0, 10.0, 0.5]),), np.array([4.0, 16.0, 1.0])),
    ("vmap_fori_batched_bounds", lambda n, x: J.vmap(lambda n, x: J.fori_loop(0, n, lambda i, v: v + x, 0.0))(n, x),
     (np.array([1, 3, 0]), np.array([1.0, 2.0, 3.0])), np.array([1.0, 6.0, 0.0])),
    ("vmap_while_cond_holds_an_int_scan", lambda x: J.vmap(_while_counting_below)(x), (np.array([1.5, 5.0, 10.0]),),
     np.array([1.5 * 1.5 ** 3, 5.0, 10.0])),
    ("grad_vmap_switch_index_from_a_scan", lambda x: J.grad(lambda x: J.vmap(_switch_on_count)(x).sum())(x),
     (np.array([0.5, 1.5, 3.0, 5.0]),), np.array([1.0, 2.0, 3.0, 4.0])),
    ("vmap_switch_batched_index_clipped", lambda x, k: J.vmap(J.grad(lambda x, k: J.switch(k, [np.sin, np.cos,
                                                                                                 np.exp], x)))(x, k),
     (np.zeros(3), np.array([-4, 1, 5])), np.array([1.0, 0.0, 1.0])),
    ("checkpoint_keyword_argument", lambda x: J.grad(lambda x: J.checkpoint(lambda a, b=1.0, how="m": a * b)(
        x, b=x * 3.0, how="n"))(x), (2.0,), 12.0),
    # reverse mode of loops whose trip count is known only at run time
    ("grad_of_while", lambda x: J.grad(lambda x: J.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x))(x),
     (1.0,), 16.0),
    ("grad_of_fori_traced_bounds", lambda x, n: J.grad(lambda x, n: J.fori_loop(0, n, lambda i, v: v * x, 1.0))(
        x, n), (2.0, np.int64(3)), 12.0),
    ("hessian_of_fori_traced_bounds", lambda x, n: J.hessian(lambda x, n: J.fori_loop(0, n, lambda i, v: v * x,
                                                                                       1.0))(x, n),
     (2.0, np.int64(3)), 12.0),
    ("checkpoint_static_argnums", lambda x: J.grad(lambda x: J.checkpoint(lambda a, n: a ** n, static_argnums=1)(
        x, 3))(x), (2.0,), 12.0),
]


@pytest.mark.parametrize("f, args, expected, only", [(r[1], r[2], r[3], r[4] if len(r) > 4 else None)
                                                    for r in EQUALS], ids=[r[0] for r in EQUALS])
@pytest.mark.parametrize("mode", ["never", "always", "eager"])
def test_equals(f, args, expected, only, mode):
    if mode == "eager":
        if only == "traced":
            pytest.skip("reads a NumPy array at a traced index")
        with np.errstate(invalid="ignore"):       # (NumPy warns of inf * 0, as plain NumPy code would)
            got = f(*args)
    else:
        with jitgrad.config(compile=mode):
            got = J.jit(f)(*args)
    g_leaves, w_leaves = tree_util.flatten(got)[0], tree_util.flatten(expected)[0]
    assert tree_util.flatten(got)[1] == tree_util.flatten(expected)[1]
    for g, w in zip(g_leaves, w_leaves):
        w = np.asarray(w)
        assert np.asarray(g).dtype == w.dtype or w.dtype == np.float64 and np.asarray(g).dtype.kind == "f", \
            (np.asarray(g).dtype, w.dtype)
        np.testing.assert_array_equal(np.asarray(g), w)


@pytest.mark.xfail(strict=True, raises=jitgrad.TracerBoolError,
                   reason="NumPy cannot index a NumPy array with a traced index (the loop index of fori_loop "
                          "is traced, even outside jit): C[i] raises; a traced array indexes fine")
@pytest.mark.parametrize("how", ["eager", "captured"])
def test_numpy_array_indexed_by_the_loop_index(how):
    C = np.array([1.0, 2.0, 3.0])
    loop = lambda x: J.fori_loop(0, 3, lambda i, v: v + C[i] * x, 0.0)    # noqa: E731
    got = loop(2.0) if how == "eager" else J.jit(loop)(2.0)
    assert got == 12.0


@pytest.mark.xfail(strict=True, reason="a Python-number initial carry is traced as float64/int64, so c + t with "
                                       "float32 xs gives a float64 carry; the unrolled NumPy loop (0.0 + float32) "
                                       "gives float32")
@pytest.mark.parametrize("init", [0.0, 0])
def test_python_number_carry_takes_the_dtype_numpy_gives(init):
    x32 = np.arange(3, dtype=np.float32)
    got = J.jit(lambda x: J.scan(lambda c, t: (c + t, None), init, x)[0])(x32)
    want = _py_scan(lambda c, t: (c + t, None), init, x32)[0]
    assert np.asarray(got).dtype == np.asarray(want).dtype == np.float32


def test_captured_array_changed_in_place_is_read_at_each_call():
    f = J.jit(_scan_live)
    for mode in ("never", "always"):
        with jitgrad.config(compile=mode):
            _LIVE[:] = [1.0, 2.0, 3.0]
            np.testing.assert_array_equal(f(X), 3.0 * np.array([1.0, 2.0, 3.0]))
            _LIVE[:] = [0.0, 1.0, -1.0]
            np.testing.assert_array_equal(f(X), 3.0 * np.array([0.0, 1.0, -1.0]))


FRESH_CALLS = [
    ("scan_no_steps", lambda x: J.scan(lambda c, t: (c * 2, c), x, None, length=0)[0]),
    ("scan_identity_carry", lambda x: J.scan(lambda c, t: (c, c), x, None, length=3)),
    ("fori_empty_range", lambda x: J.fori_loop(3, 3, lambda i, v: v * 2, x)),
    ("while_no_trips", lambda x: J.while_loop(lambda v: v.sum() > 100, lambda v: v * 2, x)),
    ("cond_identity", lambda x: J.cond(x[0] > 0, lambda a: a, lambda a: a, x)),
    ("cond_same_output_twice", lambda x: J.cond(x[0] > 0, lambda a: (a, a), lambda a: (a, a), x)),
    ("switch_identity", lambda x: J.switch(5, [lambda a: a, lambda a: a], x)),
    ("checkpoint_identity", lambda x: J.checkpoint(lambda a: a)(x)),
]


@pytest.mark.parametrize("f", [r[1] for r in FRESH_CALLS], ids=[r[0] for r in FRESH_CALLS])
@pytest.mark.parametrize("mode", ["never", "always", "eager"])
def test_results_are_fresh(f, mode):
    x = np.arange(3.0)
    if mode == "eager":
        got = f(x)
    else:
        with jitgrad.config(compile=mode):
            got = J.jit(f)(x)
    held = [x]
    for r in tree_util.flatten(got)[0]:
        assert not any(np.shares_memory(r, h) for h in held), "a result shares memory with an input or result"
        held.append(r)
    np.testing.assert_array_equal(x, np.arange(3.0))


def test_eager_loops_do_not_mutate_inputs():
    x = np.arange(3.0)
    J.scan(lambda c, t: (c * 2.0, c), x, x)
    J.fori_loop(0, 3, lambda i, v: v + 1.0, x)
    J.while_loop(lambda v: v.sum() < 30, lambda v: v + 1.0, x)
    np.testing.assert_array_equal(x, np.arange(3.0))
