"""The loop benchmark's workloads (perf/loops_workloads.py) compute what they
claim: jitgrad's loop, the unrolled loop and the hand-written gradient
(perf/handwritten_loops.py, run as plain Python) agree, and the loop's IR does
not grow with the trip count."""
import os
import sys

import numpy as np
import pytest

import jitgrad

PERF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "perf")
sys.path.insert(0, PERF)
import handwritten_loops as H  # noqa: E402
import loops_workloads as L  # noqa: E402

HAND = {"rk4": lambda a, T: H.rk4_l96_grad.py_func(a[0], float(a[1]), L.RK4_H, T),
        "rnn": lambda a, T: H.rnn_grad.py_func(*a),
        "heat": lambda a, T: H.heat_grad.py_func(a[0], L.HEAT_R, T),
        "lstm": lambda a, T: H.lstm_grad.py_func(*a)}


def _leaves(g):
    return [np.asarray(x, np.float64) for x in (g if isinstance(g, tuple) else (g,))]


def _close(a, b, tol):
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        assert x.shape == y.shape
        assert np.max(np.abs(x - y)) <= tol * max(np.max(np.abs(x)), 1e-300)


@pytest.fixture(autouse=True)
def _python_kernels(monkeypatch):
    # the hand-written kernels call each other: run the helpers as Python too
    for name in ("_l96", "_l96_vjp", "_heat_step", "_heat_step_t", "_sigmoid"):
        monkeypatch.setattr(H, name, getattr(H, name).py_func)


@pytest.mark.parametrize("key", ["rk4", "rnn", "heat", "lstm"])
def test_loop_unrolled_and_hand_agree(key):
    w, T = L.BY_KEY[key], 3
    args = L.make_inputs(w, T)
    loop = jitgrad.grad(w.loop(T), argnums=L.argnums(w))(*args)
    unrolled = jitgrad.grad(w.unrolled(T), argnums=L.argnums(w))(*args)
    _close(unrolled, loop, 1e-12)
    _close(HAND[key](args, T), loop, 1e-12)


def test_hand_rk4_matches_finite_differences():
    w, T = L.BY_KEY["rk4"], 2
    x0, F = L.make_inputs(w, T)
    f = w.unrolled(T)
    gx, gF = HAND["rk4"]((x0, F), T)
    eps = 1e-6
    e = np.zeros_like(x0)
    e[7] = eps
    assert abs((f(x0 + e, F) - f(x0 - e, F)) / (2 * eps) - gx[7]) < 1e-6 * max(1.0, abs(gx[7]))
    assert abs((f(x0, F + eps) - f(x0, F - eps)) / (2 * eps) - gF) < 1e-6 * max(1.0, abs(gF))


@pytest.mark.parametrize("key", ["rk4", "rnn", "heat", "lstm"])
def test_loop_ir_does_not_grow_with_T(key):
    w = L.BY_KEY[key]
    sizes = []
    for T in (2, 50):
        ir = jitgrad.make_ir(jitgrad.grad(w.loop(T), argnums=L.argnums(w)))(*L.make_inputs(w, T))
        sizes.append(len(ir.eqns))
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize("reaction", [0.0, 0.01])
def test_checkpoint_policies_of_the_heat_benchmark_agree(reaction):
    # perf/loops_checkpoints.py: every policy's gradient is the default's
    (u0,) = L.make_inputs(L.BY_KEY["heat"], 5)
    want = jitgrad.grad(L.heat_scan(5, "carries", reaction))(u0)
    for policy in ("residuals", 2, jitgrad.binomial(2)):
        _close(want, jitgrad.grad(L.heat_scan(5, policy, reaction))(u0), 1e-12)
