"""GradBench's evals (perf/gradbench_evals.py) compute what they claim:
jitgrad's gradient of each eval, at a tiny size on the interpreter, agrees
with central finite differences; kmeans' output is the gradient divided by
the Hessian's diagonal; ode and lstm stay loops in the traced program."""
import os
import sys

import numpy as np
import pytest

import jitgrad
from jitgrad.testing import numerical_grad

PERF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "perf")
sys.path.insert(0, PERF)
import gradbench_evals as G  # noqa: E402

PLAIN = [e.key for e in G.EVALS if not e.hessian_dir]


def _close(got, want, rtol):
    for x, y in zip(got, want, strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        assert x.shape == y.shape
        assert np.max(np.abs(x - y)) <= rtol * max(np.max(np.abs(y)), 1e-12)


@pytest.mark.parametrize("key", PLAIN)
def test_gradient_matches_finite_differences(key):
    ev = G.BY_KEY[key]
    args = G.make_inputs(ev, ev.tiny, seed=3)
    got = G.to_numpy(G.jitgrad_call(ev, ev.tiny, args)())
    f = ev.build(G.OPS["jitgrad"](), ev.tiny)
    num = numerical_grad(lambda *w: f(*[w[ev.argnums.index(i)] if i in ev.argnums else a
                                        for i, a in enumerate(args)]),
                         *[args[i] for i in ev.argnums])
    num = num if len(ev.argnums) > 1 else (num,)
    _close(got, num, 1e-6)


def test_kmeans_direction_is_gradient_over_hessian_diagonal():
    ev = G.BY_KEY["kmeans"]
    P, C = G.make_inputs(ev, ev.tiny, seed=3)
    f = ev.build(G.OPS["jitgrad"](), ev.tiny)
    (got,) = G.to_numpy(G.jitgrad_call(ev, ev.tiny, (P, C))())
    J = numerical_grad(lambda C: f(P, C), C)
    # the Hessian is diagonal: its diagonal is the derivative of J along ones
    eps = 1e-5
    g = jitgrad.grad(f, argnums=1)
    H = (np.asarray(g(P, C + eps)) - np.asarray(g(P, C - eps))) / (2 * eps)
    # and, the cost being piecewise quadratic, 2 x (points nearest each centroid)
    d = ((P[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    counts = np.bincount(d.argmin(axis=1), minlength=len(C))
    np.testing.assert_allclose(H, 2.0 * counts[:, None] * np.ones_like(C), rtol=1e-6)
    _close([got], [J / H], 1e-6)


@pytest.mark.parametrize("key", ["ode", "lstm"])
def test_recurrences_stay_loops(key):
    ev = G.BY_KEY[key]
    args = G.make_inputs(ev, ev.tiny)
    f = ev.build(G.OPS["jitgrad"](), ev.tiny)
    ir = jitgrad.make_ir(jitgrad.grad(f, argnums=ev.argnums))(*args)
    names = {str(getattr(e, "prim", getattr(e, "primitive", ""))) for e in ir.eqns}
    assert any("scan" in n for n in names), names
