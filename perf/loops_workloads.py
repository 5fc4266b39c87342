"""The loop workloads of ``perf/loops.py``, written once per peer and variant.

Each workload is a scalar loss of a ``T``-step recurrence and its inputs:

* ``loop``: jitgrad's loops (``fori_loop`` / ``scan``): the body is traced once;
* ``unrolled``: the same recurrence as a plain Python ``for`` loop, which the
  tracer unrolls into ``T`` copies of the step;
* ``jax_scan`` / ``jax_unrolled``: the same in ``jax.numpy`` with ``lax.scan``
  and with a Python loop under ``jax.jit``;
* ``torch``: PyTorch eager, a Python loop;
* ``hand``: the hand-written Numba gradient of ``handwritten_loops.py``.

The NumPy step functions are shared by the jitgrad variants (jitgrad traces
plain NumPy code); JAX and PyTorch get their own spelling of the same formulas.
This module imports neither JAX nor PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class LoopWorkload:
    key: str
    title: str
    argnums: tuple              # differentiated arguments
    inputs: Callable            # (T, rng) -> tuple of NumPy arguments
    loop: Callable              # T -> NumPy loss using jitgrad's loops
    unrolled: Callable          # T -> NumPy loss with a Python loop
    jax: Callable               # (jnp, lax, T, scan: bool) -> loss
    torch: Callable             # (torch, T) -> loss
    hand: Callable              # (args, T) -> zero-argument call returning the gradient
    state: str                  # for tables: what is carried


def _roll(x, s):
    """``np.roll(x, s)`` for a 1-d ``x`` (written with a concatenation, which
    every peer has)."""
    return np.concatenate([x[-s:], x[:-s]])


# ---------------------------------------------------------------------------
# RK4 on Lorenz-96 (N = 100).  F = 0.6 is below the onset of chaos (about
# 0.9), so the state settles and gradients stay comparable to 1e-10 over
# 10,000 steps (a chaotic regime would amplify rounding differences).

RK4_N, RK4_H, RK4_F = 100, 0.01, 0.6


def _l96(x, F):
    return (_roll(x, -1) - _roll(x, 2)) * _roll(x, 1) - x + F


def _rk4_step(x, F):
    h = RK4_H
    k1 = _l96(x, F)
    k2 = _l96(x + 0.5 * h * k1, F)
    k3 = _l96(x + 0.5 * h * k2, F)
    k4 = _l96(x + h * k3, F)
    return x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _rk4_inputs(T, rng):
    return (RK4_F + 0.5 * rng.standard_normal(RK4_N), np.float64(RK4_F))


def _rk4_loop(T):
    import jitgrad

    def loss(x0, F):
        x = jitgrad.fori_loop(0, T, lambda i, x: _rk4_step(x, F), x0)
        return np.sum(x ** 2)
    return loss


def _rk4_unrolled(T):
    def loss(x0, F):
        x = x0
        for _ in range(T):
            x = _rk4_step(x, F)
        return np.sum(x ** 2)
    return loss


def _rk4_jax(jnp, lax, T, scan):
    h = RK4_H

    def f(x, F):
        return (jnp.roll(x, -1) - jnp.roll(x, 2)) * jnp.roll(x, 1) - x + F

    def step(x, F):
        k1 = f(x, F)
        k2 = f(x + 0.5 * h * k1, F)
        k3 = f(x + 0.5 * h * k2, F)
        k4 = f(x + h * k3, F)
        return x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def loss(x0, F):
        if scan:
            x, _ = lax.scan(lambda x, _: (step(x, F), None), x0, None, length=T)
        else:
            x = x0
            for _ in range(T):
                x = step(x, F)
        return jnp.sum(x ** 2)
    return loss


def _rk4_torch(torch, T):
    h = RK4_H

    def f(x, F):
        return (torch.roll(x, -1) - torch.roll(x, 2)) * torch.roll(x, 1) - x + F

    def loss(x0, F):
        x = x0
        for _ in range(T):
            k1 = f(x, F)
            k2 = f(x + 0.5 * h * k1, F)
            k3 = f(x + 0.5 * h * k2, F)
            k4 = f(x + h * k3, F)
            x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return torch.sum(x ** 2)
    return loss


def _rk4_hand(args, T):
    import handwritten_loops as H
    x0, F = args
    F = float(F)
    return lambda: H.rk4_l96_grad(x0, F, RK4_H, T)


# ---------------------------------------------------------------------------
# tanh RNN: hidden 32, inputs 8, h_0 = 0, loss = sum(h_T ** 2), gradient
# w.r.t. (Wx, Wh, b).  Small weights keep the recurrence contracting.

RNN_H, RNN_I = 32, 8


def _rnn_inputs(T, rng):
    Wx = rng.standard_normal((RNN_H, RNN_I)) * 0.3
    Wh = rng.standard_normal((RNN_H, RNN_H)) * (0.5 / np.sqrt(RNN_H))
    b = rng.standard_normal(RNN_H) * 0.1
    xs = rng.standard_normal((T, RNN_I))
    return Wx, Wh, b, xs


def _rnn_loop(T):
    import jitgrad

    def loss(Wx, Wh, b, xs):
        h, _ = jitgrad.scan(lambda h, x: (np.tanh(Wx @ x + Wh @ h + b), None), np.zeros(RNN_H), xs)
        return np.sum(h ** 2)
    return loss


def _rnn_unrolled(T):
    def loss(Wx, Wh, b, xs):
        h = np.zeros(RNN_H)
        for t in range(T):
            h = np.tanh(Wx @ xs[t] + Wh @ h + b)
        return np.sum(h ** 2)
    return loss


def _rnn_jax(jnp, lax, T, scan):
    def loss(Wx, Wh, b, xs):
        h = jnp.zeros(RNN_H)
        if scan:
            h, _ = lax.scan(lambda h, x: (jnp.tanh(Wx @ x + Wh @ h + b), None), h, xs)
        else:
            for t in range(T):
                h = jnp.tanh(Wx @ xs[t] + Wh @ h + b)
        return jnp.sum(h ** 2)
    return loss


def _rnn_torch(torch, T):
    def loss(Wx, Wh, b, xs):
        h = torch.zeros(RNN_H, dtype=torch.float64)
        for t in range(T):
            h = torch.tanh(Wx @ xs[t] + Wh @ h + b)
        return torch.sum(h ** 2)
    return loss


def _rnn_hand(args, T):
    import handwritten_loops as H
    Wx, Wh, b, xs = args
    return lambda: H.rnn_grad(Wx, Wh, b, xs)


# ---------------------------------------------------------------------------
# 1-d heat equation on 1,000 cells, explicit Euler (r = dt/dx^2 = 0.25, stable
# below 0.5), fixed end temperatures; loss = sum(u_T ** 2), gradient w.r.t. u_0.

HEAT_N, HEAT_R = 1000, 0.25


def _heat_step(u):
    interior = u[1:-1] + HEAT_R * (u[:-2] - 2.0 * u[1:-1] + u[2:])
    return np.concatenate([u[:1], interior, u[-1:]])


def _heat_inputs(T, rng):
    return (rng.random(HEAT_N),)


def _heat_loop(T):
    import jitgrad

    def loss(u0):
        u = jitgrad.fori_loop(0, T, lambda i, u: _heat_step(u), u0)
        return np.sum(u ** 2)
    return loss


def heat_scan(T, checkpoint, reaction=0.0):
    """The heat loss written with ``jitgrad.scan`` and the given ``checkpoint``
    policy (for ``perf/loops_checkpoints.py``).  With a ``reaction`` rate
    each step adds ``reaction * u * (1 - u)`` (logistic growth): a step that
    is not linear, so that reverse mode needs the carries."""
    import jitgrad

    def step(u, _):
        u = _heat_step(u)
        return (u + reaction * u * (1.0 - u) if reaction else u), None

    def loss(u0):
        u, _ = jitgrad.scan(step, u0, None, length=T, checkpoint=checkpoint)
        return np.sum(u ** 2)
    return loss


def _heat_unrolled(T):
    def loss(u0):
        u = u0
        for _ in range(T):
            u = _heat_step(u)
        return np.sum(u ** 2)
    return loss


def _heat_jax(jnp, lax, T, scan):
    def step(u):
        interior = u[1:-1] + HEAT_R * (u[:-2] - 2.0 * u[1:-1] + u[2:])
        return jnp.concatenate([u[:1], interior, u[-1:]])

    def loss(u0):
        if scan:
            u, _ = lax.scan(lambda u, _: (step(u), None), u0, None, length=T)
        else:
            u = u0
            for _ in range(T):
                u = step(u)
        return jnp.sum(u ** 2)
    return loss


def _heat_torch(torch, T):
    def loss(u0):
        u = u0
        for _ in range(T):
            interior = u[1:-1] + HEAT_R * (u[:-2] - 2.0 * u[1:-1] + u[2:])
            u = torch.cat([u[:1], interior, u[-1:]])
        return torch.sum(u ** 2)
    return loss


def _heat_hand(args, T):
    import handwritten_loops as H
    (u0,) = args
    return lambda: H.heat_grad(u0, HEAT_R, T)


# ---------------------------------------------------------------------------
# GradBench's LSTM eval (2 layers, width b = 14, as GradBench's spec runs it),
# the function of perf/gradbench_evals.py: T steps read T + 1 characters;
# gradient w.r.t. the main and extra parameters.  jitgrad and JAX loop with
# their scans, the unrolled variants and PyTorch with a Python loop.

LSTM_L, LSTM_B = 2, 14


def _gradbench():
    import gradbench_evals as G
    return G


def _unrolled_ops(base):
    """``base`` ops whose scan is a Python loop (unrolled when traced)."""
    G = _gradbench()
    return type(f"Unrolled{base.__name__}", (base,), {"scan": G.TorchOps.scan})()


def _lstm_inputs(T, rng):
    G = _gradbench()
    return G._lstm_inputs({"l": LSTM_L, "c": T + 1, "b": LSTM_B}, rng)


def _lstm_loop(T):
    return _gradbench().lstm(_gradbench().NumpyOps(), LSTM_L, LSTM_B)


def _lstm_unrolled(T):
    return _gradbench().lstm(_unrolled_ops(_gradbench().NumpyOps), LSTM_L, LSTM_B)


def _lstm_jax(jnp, lax, T, scan):
    G = _gradbench()
    return G.lstm(G.JaxOps() if scan else _unrolled_ops(G.JaxOps), LSTM_L, LSTM_B)


def _lstm_torch(torch, T):
    return _gradbench().lstm(_gradbench().TorchOps(), LSTM_L, LSTM_B)


def _lstm_hand(args, T):
    import handwritten_loops as H
    main, extra, state, seq = args
    return lambda: H.lstm_grad(main, extra, state, seq)


WORKLOADS = [
    LoopWorkload("rk4", "RK4 Lorenz-96, N=100", (0, 1), _rk4_inputs, _rk4_loop, _rk4_unrolled,
                 _rk4_jax, _rk4_torch, _rk4_hand, "f64[100]"),
    LoopWorkload("rnn", "tanh RNN, hidden 32, inputs 8", (0, 1, 2), _rnn_inputs, _rnn_loop,
                 _rnn_unrolled, _rnn_jax, _rnn_torch, _rnn_hand, "f64[32]"),
    LoopWorkload("heat", "heat 1-d, 1,000 cells", (0,), _heat_inputs, _heat_loop, _heat_unrolled,
                 _heat_jax, _heat_torch, _heat_hand, "f64[1000]"),
    LoopWorkload("lstm", "GradBench LSTM, 2 layers, b=14", (0, 1), _lstm_inputs, _lstm_loop, _lstm_unrolled,
                 _lstm_jax, _lstm_torch, _lstm_hand, "f64[4,14]"),
]
BY_KEY = {w.key: w for w in WORKLOADS}


def make_inputs(w: LoopWorkload, T: int):
    return w.inputs(T, np.random.default_rng(0))


def argnums(w: LoopWorkload):
    return w.argnums if len(w.argnums) > 1 else w.argnums[0]
