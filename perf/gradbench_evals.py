"""GradBench's evals, written from GradBench's public specifications, for
jitgrad, JAX and PyTorch (``perf/gradbench.py`` runs them).

Each eval's function is written once against a small array namespace
(``ops``): NumPy for jitgrad (which traces plain NumPy code), ``jax.numpy``
for JAX, ``torch`` for PyTorch.  The namespaces differ only in spelling
(``axis`` / ``dim``, ``max`` returning indices in torch) and in how a loop
is written: ``ops.scan`` is ``jitgrad.scan``, ``jax.lax.scan``, or a Python
loop for PyTorch's eager tape.

Evals (``n``, ``m``, ... as in GradBench):

* ``lse``: ``a + log(sum(exp(x - a)))`` with ``a = max(x)``; gradient w.r.t. ``x``.
* ``llsq``: ``1/2 sum_i (s_i - sum_j x_j t_i^j)^2``, ``t_i = -1 + 2i/(n-1)``,
  ``s_i = sign(t_i)``; gradient w.r.t. ``x`` (``m`` entries).
* ``ode``: ``s`` classical Runge-Kutta steps from ``y(0) = 0`` to ``t = 2`` of
  ``y_0' = x_0``, ``y_i' = x_i y_{i-1}``; gradient of ``y_{n-1}(2)`` w.r.t. ``x``.
* ``kmeans``: ``f(C) = sum_i min_j |P_i - C_j|^2``; the output is
  ``J / H`` with ``J`` the gradient w.r.t. the centroids and ``H`` the
  Hessian's diagonal (the Hessian is diagonal, so ``H = Hessian @ 1``: a
  forward-over-reverse product with a vector of ones).
* ``gmm``: the log posterior of a Gaussian mixture with a Wishart prior on the
  precision matrices ``Q_k Q_k^T``; ``Q_k`` is lower triangular with diagonal
  ``exp(q_k)`` and the strict lower triangle ``l_k`` (row by row); gradient
  w.r.t. ``alpha``, ``means`` and ``icf = [q | l]``.
* ``lstm``: ADBench's LSTM (diagonal weights, ``l`` layers, ``b`` = 14 wide,
  a sequence of ``c`` characters): the mean log-likelihood of each next
  character, gradient w.r.t. the main and extra parameters.
* ``det``: the determinant by expansion by minors, written non-recursively as
  the sum over all ``ell!`` permutations of signed products (GradBench's
  commentary names this form); gradient w.r.t. ``A``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


# ---------------------------------------------------------------------------
# Array namespaces


class NumpyOps:
    """Plain NumPy (traced by jitgrad); loops are ``jitgrad.scan``."""
    name = "jitgrad"

    def __init__(self):
        import jitgrad
        self.jg = jitgrad

    def asarray(self, a):
        return a

    def __getattr__(self, name):                    # sum, max, exp, log, take, stack, ...
        return getattr(np, name)

    def concat(self, xs):
        return np.concatenate(xs)

    def swap_last(self, x):
        return np.swapaxes(x, -1, -2)

    def sigmoid(self, x):
        return 1.0 / (1.0 + np.exp(-x))

    def scan(self, f, init, xs=None, length=None):
        return self.jg.scan(f, init, xs, length=length)


class JaxOps:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp
        self.jnp, self.lax, self.jax = jnp, jax.lax, jax

    def asarray(self, a):
        return self.jnp.asarray(a)

    def sum(self, x, axis=None):
        return self.jnp.sum(x, axis=axis)

    def max(self, x, axis=None):
        return self.jnp.max(x, axis=axis)

    def min(self, x, axis=None):
        return self.jnp.min(x, axis=axis)

    def __getattr__(self, name):                    # exp, log, tanh, take, stack, ...
        return getattr(self.jnp, name)

    def concat(self, xs):
        return self.jnp.concatenate(xs)

    def swap_last(self, x):
        return self.jnp.swapaxes(x, -1, -2)

    def sigmoid(self, x):
        return 1.0 / (1.0 + self.jnp.exp(-x))

    def scan(self, f, init, xs=None, length=None):
        return self.lax.scan(f, init, xs, length=length)


class TorchOps:
    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch

    def asarray(self, a):
        return self.torch.as_tensor(a)

    def sum(self, x, axis=None):
        return self.torch.sum(x) if axis is None else self.torch.sum(x, dim=axis)

    def max(self, x, axis=None):
        return self.torch.max(x) if axis is None else self.torch.max(x, dim=axis).values

    def min(self, x, axis=None):
        return self.torch.min(x) if axis is None else self.torch.min(x, dim=axis).values

    def __getattr__(self, name):
        return getattr(self.torch, name)

    def concat(self, xs):
        return self.torch.cat(xs)

    def swap_last(self, x):
        return self.torch.transpose(x, -1, -2)

    def sigmoid(self, x):
        return 1.0 / (1.0 + self.torch.exp(-x))

    def scan(self, f, init, xs=None, length=None):
        """A Python loop (PyTorch's tape records every step); ``ys`` are not stacked."""
        n = length if xs is None else len(_first_leaf(xs))
        carry = init
        for t in range(n):
            x = None if xs is None else _index(xs, t)
            carry, _ = f(carry, x)
        return carry, None


def _first_leaf(xs):
    return _first_leaf(xs[0]) if isinstance(xs, tuple) else xs


def _index(xs, t):
    return tuple(_index(x, t) for x in xs) if isinstance(xs, tuple) else xs[t]


OPS = {"jitgrad": NumpyOps, "jax": JaxOps, "torch": TorchOps}


# ---------------------------------------------------------------------------
# The evals


def lse(ops):
    def f(x):
        a = ops.max(x)
        return a + ops.log(ops.sum(ops.exp(x - a)))
    return f


def llsq(ops, n, m):
    t = -1.0 + 2.0 * np.arange(n) / (n - 1)
    s = ops.asarray(np.sign(t))
    # the powers t_i^j as an (n, m) matrix: a constant, computed once for every tool
    T = ops.asarray(t[:, None] ** np.arange(m)[None, :])

    def f(x):
        r = s - T @ x
        return 0.5 * ops.sum(r * r)
    return f


def ode(ops, s):
    h = 2.0 / s

    def rhs(x, y):
        return ops.concat([x[:1], x[1:] * y[:-1]])

    def f(x):
        def step(y, _):
            k1 = rhs(x, y)
            k2 = rhs(x, y + 0.5 * h * k1)
            k3 = rhs(x, y + 0.5 * h * k2)
            k4 = rhs(x, y + h * k3)
            return y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), None
        y, _ = ops.scan(step, 0.0 * x, None, length=s)
        return y[-1]
    return f


def kmeans(ops):
    """The cost as a function of (points, centroids); tools differentiate w.r.t. the centroids."""
    def f(P, C):
        # |P_i - C_j|^2 = |P_i|^2 - 2 P_i . C_j + |C_j|^2
        d = (ops.sum(P * P, axis=1)[:, None] - 2.0 * (P @ C.T)
             + ops.sum(C * C, axis=1)[None, :])
        return ops.sum(ops.min(d, axis=1))
    return f


def _gmm_tril_basis(d):
    """(d(d-1)/2, d*d) 0/1 matrix placing ``l`` row by row into the strict lower triangle."""
    E = np.zeros((d * (d - 1) // 2, d * d))
    p = 0
    for i in range(d):
        for j in range(i):
            E[p, i * d + j] = 1.0
            p += 1
    return E


def gmm(ops, d, k, n, gamma=1.0, m=0):
    """Log posterior; m is the Wishart's extra degrees of freedom (wishart_m)."""
    E = _gmm_tril_basis(d)
    D = np.eye(d * d)[:: d + 1]                     # (d, d*d): places exp(q) on the diagonal

    def logsumexp0(x):                              # over axis 0 (the components)
        a = ops.max(x, axis=0)
        return a + ops.log(ops.sum(ops.exp(x - a), axis=0))

    def f(alpha, means, icf, X):
        q, l = icf[:, :d], icf[:, d:]
        # Q_k = diag(exp(q_k)) + L_k, as (k, d, d)
        Q = (ops.exp(q) @ ops.asarray(D) + l @ ops.asarray(E)).reshape(k, d, d)
        diff = X[None, :, :] - means[:, None, :]                        # (k, n, d)
        Qd = diff @ ops.swap_last(Q)                                   # (k, n, d): Q_k (x_i - mu_k)
        inner = (alpha + ops.sum(q, axis=1))[:, None] - 0.5 * ops.sum(Qd * Qd, axis=2)   # (k, n)
        loglik = (ops.sum(logsumexp0(inner)) - n * logsumexp0(alpha)
                  - 0.5 * n * d * math.log(2 * math.pi))
        logprior = ops.sum(-0.5 * gamma ** 2 * (ops.sum(ops.exp(q) ** 2, axis=1) + ops.sum(l * l, axis=1))
                           + (d + m + 1) * ops.sum(q, axis=1))
        return loglik + logprior
    return f


def lstm(ops, layers, b):
    def cell(w, bias, hidden, c, x):
        gates = ops.concat([x, hidden, x, hidden]) * w + bias
        forget = ops.sigmoid(gates[:b])
        ingate = ops.sigmoid(gates[b:2 * b])
        outgate = ops.sigmoid(gates[2 * b:3 * b])
        change = ops.tanh(gates[3 * b:])
        c = c * forget + ingate * change
        return outgate * ops.tanh(c), c

    def f(main, extra, state, seq):
        def step(carry, xy):
            st, total = carry
            x, gold = xy
            h = x * extra[0]
            new = []
            for i in range(layers):
                hid, c = cell(main[2 * i], main[2 * i + 1], st[2 * i], st[2 * i + 1], h)
                new += [hid, c]
                h = hid
            pred = h * extra[1] + extra[2]
            norm = pred - ops.log(ops.sum(ops.exp(pred)) + 2.0)
            return (ops.stack(new), total + ops.sum(gold * norm)), None
        (_, total), _ = ops.scan(step, (state, 0.0 * seq[0, 0]), (seq[:-1], seq[1:]))
        return -total / ((seq.shape[0] - 1) * b)
    return f


def det_tables(ell):
    """(flat indices (ell!, ell) into A's row-major entries, signs (ell!,))."""
    perms = np.array(list(itertools.permutations(range(ell))), dtype=np.int64)
    # sign of a permutation: (-1)^(number of inversions)
    inv = sum((perms[:, i, None] > perms[:, i + 1:]).sum(axis=1) for i in range(ell))
    signs = np.where(inv % 2 == 0, 1.0, -1.0)
    return np.arange(ell) * ell + perms, signs


def det(ops, ell):
    idx, signs = det_tables(ell)

    def f(A):
        G = ops.take(A, ops.asarray(idx))       # (ell!, ell): A[i, p_i]
        prod = G[:, 0]
        for i in range(1, ell):
            prod = prod * G[:, i]
        return ops.sum(ops.asarray(signs) * prod)
    return f


# ---------------------------------------------------------------------------
# Inputs and the table of evals


@dataclass
class Eval:
    key: str
    build: Callable          # (ops, size) -> f
    inputs: Callable         # (size, rng) -> tuple of NumPy arrays
    argnums: tuple           # differentiated arguments
    sizes: list              # sizes the benchmark runs
    tiny: dict               # size for the finite-difference test
    hessian_dir: bool = False   # kmeans: J / diag(H) instead of the gradient


def _label(size):
    return ", ".join(f"{k}={v}" for k, v in size.items())


def _lstm_inputs(size, rng):
    l, c, b = size["l"], size["c"], size["b"]
    return (rng.uniform(-1, 1, (2 * l, 4 * b)), rng.uniform(-1, 1, (3, b)),
            rng.uniform(-1, 1, (2 * l, b)), rng.uniform(-1, 1, (c, b)))


def _gmm_inputs(size, rng):
    d, k, n = size["d"], size["k"], size["n"]
    return (rng.standard_normal(k), rng.standard_normal((k, d)),
            0.5 * rng.standard_normal((k, d + d * (d - 1) // 2)), rng.standard_normal((n, d)))


def _kmeans_inputs(size, rng):
    P = rng.random((size["n"], size["d"]))
    return P, P[-size["k"]:].copy()          # every centroid owns at least its own point


EVALS = [
    Eval("lse", lambda o, s: lse(o), lambda s, r: (r.random(s["n"]),), (0,),
         [{"n": 10000}, {"n": 1280000}], {"n": 7}),
    Eval("llsq", lambda o, s: llsq(o, s["n"], s["m"]), lambda s, r: (r.random(s["m"]),), (0,),
         [{"n": 16, "m": 128}, {"n": 1024, "m": 128}], {"n": 9, "m": 4}),
    Eval("ode", lambda o, s: ode(o, s["s"]), lambda s, r: (r.random(s["n"]),), (0,),
         [{"n": 1000, "s": 10}, {"n": 10000, "s": 100}], {"n": 5, "s": 3}),
    Eval("kmeans", lambda o, s: kmeans(o), _kmeans_inputs, (1,),
         [{"k": 10, "n": 1000, "d": 8}, {"k": 100, "n": 10000, "d": 16}], {"k": 3, "n": 12, "d": 2},
         hessian_dir=True),
    Eval("gmm", lambda o, s: gmm(o, s["d"], s["k"], s["n"]), _gmm_inputs, (0, 1, 2),
         [{"d": 2, "k": 5, "n": 1000}, {"d": 10, "k": 25, "n": 1000}], {"d": 3, "k": 2, "n": 4}),
    Eval("lstm", lambda o, s: lstm(o, s["l"], s["b"]), _lstm_inputs, (0, 1),
         [{"l": 2, "c": 1024, "b": 14}, {"l": 4, "c": 1024, "b": 14}], {"l": 2, "c": 4, "b": 3}),
    Eval("det", lambda o, s: det(o, s["ell"]), lambda s, r: (r.random(s["ell"] ** 2),), (0,),
         [{"ell": 8}, {"ell": 9}], {"ell": 4}),
]
BY_KEY = {e.key: e for e in EVALS}


def make_inputs(ev, size, seed=31337):
    return ev.inputs(size, np.random.default_rng(seed))


# ---------------------------------------------------------------------------
# Each tool's gradient (kmeans: its J / diag(H)) as a zero-argument call


def jitgrad_call(ev, size, args):
    """``call()`` returning jitgrad's gradient (a tuple over ``ev.argnums``)."""
    import jitgrad
    f = ev.build(OPS["jitgrad"](), size)
    if ev.hessian_dir:
        P, C = args
        g = jitgrad.grad(f, argnums=1)

        def direction(P, C):
            J, H = jitgrad.jvp(lambda C: g(P, C), (C,), (np.ones_like(C),))
            return (J / H,)
        d = jitgrad.jit(direction)
        return lambda: d(P, C)
    g = jitgrad.grad(f, argnums=ev.argnums)
    return lambda: g(*args)


def jax_call(ev, size, args):
    import jax
    f = ev.build(OPS["jax"](), size)
    jargs = [jax.device_put(jax.numpy.asarray(a)) for a in args]
    if ev.hessian_dir:
        g = jax.grad(f, argnums=1)

        def direction(P, C):
            J, H = jax.jvp(lambda C: g(P, C), (C,), (jax.numpy.ones_like(C),))
            return (J / H,)
        d = jax.jit(direction)
        return lambda: jax.block_until_ready(d(*jargs))
    g = jax.jit(jax.grad(f, argnums=ev.argnums))
    return lambda: jax.block_until_ready(g(*jargs))


def torch_call(ev, size, args):
    import torch
    f = ev.build(OPS["torch"](), size)
    targs = [torch.from_numpy(np.array(a, np.float64)) for a in args]
    wrt = [targs[i].requires_grad_(True) for i in ev.argnums]
    if ev.hessian_dir:
        (C,) = wrt

        def direction():
            (J,) = torch.autograd.grad(f(*targs), (C,), create_graph=True)
            (H,) = torch.autograd.grad(J, (C,), grad_outputs=torch.ones_like(C))
            return (J.detach() / H,)
        return direction
    return lambda: torch.autograd.grad(f(*targs), wrt)


CALLS = {"jitgrad": jitgrad_call, "jax": jax_call, "torch": torch_call}


def to_numpy(out):
    """A tool's output as a list of float64 NumPy arrays."""
    res = []
    for x in out:
        if hasattr(x, "detach"):
            x = x.detach().numpy()
        res.append(np.asarray(x, np.float64))
    return res
