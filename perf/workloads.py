"""The benchmark workloads, written once per peer.

A workload is a scalar-valued function (or, for ``kind == "jvp"``, an
elementwise map) plus its inputs.  ``np_f`` is plain NumPy code: jitgrad
traces it and NumPy runs it as the forward-pass reference.  ``jax_f`` and
``torch_f`` are the same formulas in ``jax.numpy`` and ``torch``; ``hand`` is
the hand-written Numba gradient from ``handwritten.py``.

This module imports neither JAX nor PyTorch; the peers' functions are built
lazily by ``jax_f(jnp)`` / ``torch_f(torch)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Workload:
    key: str                    # short id: "elem_1e6"
    title: str                  # for tables
    kind: str                   # "grad" or "jvp"
    np_f: Callable              # the NumPy function (what jitgrad differentiates)
    inputs: Callable            # rng -> tuple of NumPy arguments
    jax_f: Callable             # jnp -> function
    torch_f: Callable           # torch -> function
    hand: str                   # name of the function in handwritten.py
    argnums: object = 0         # what is differentiated (grad workloads)
    size: int = 0               # elements of the differentiated input(s)
    dtype: str = "float64"
    tags: tuple = field(default_factory=tuple)   # "memory_only": only for the memory test


# ---------------------------------------------------------------------------
# 1. scalar function of two scalars (per-call overhead)


def scalar_np(w1, w2):
    return 3 * w1 ** 2 + 2 * w1 * w2


def _scalar_inputs(rng):
    return (np.float64(1.5), np.float64(-0.5))


# ---------------------------------------------------------------------------
# 2 / 7. elementwise reduction with transcendentals


def elementwise_np(w):
    return np.sum(np.sin(w) * np.exp(-w ** 2))


def _elementwise_generic(xp):
    def f(w):
        return xp.sum(xp.sin(w) * xp.exp(-w ** 2))
    return f


def _elementwise_inputs(n, dtype):
    return lambda rng: (rng.standard_normal(n).astype(dtype),)


# ---------------------------------------------------------------------------
# 3. n-dimensional Rosenbrock


def rosenbrock_np(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _rosenbrock_generic(xp):
    def f(x):
        return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return f


def _rosenbrock_inputs(n):
    return lambda rng: (rng.uniform(-2.0, 2.0, n),)


# ---------------------------------------------------------------------------
# 4. logistic regression with an L2 penalty (stable: logaddexp(0, m) = log(1 + e^m))

LOGREG_N, LOGREG_D, LOGREG_LAM = 10_000, 100, 1e-3


def logreg_np(w, X, y, lam):
    z = X @ w
    return np.mean(np.logaddexp(0.0, -y * z)) + 0.5 * lam * np.sum(w * w)


def _logreg_jax(jnp):
    def f(w, X, y, lam):
        z = X @ w
        return jnp.mean(jnp.logaddexp(0.0, -y * z)) + 0.5 * lam * jnp.sum(w * w)
    return f


def _logreg_torch(torch):
    import torch.nn.functional as F

    def f(w, X, y, lam):
        z = X @ w
        return torch.mean(F.softplus(-y * z)) + 0.5 * lam * torch.sum(w * w)
    return f


def _logreg_inputs(rng):
    X = rng.standard_normal((LOGREG_N, LOGREG_D))
    w_true = rng.standard_normal(LOGREG_D)
    y = np.where(X @ w_true + 0.5 * rng.standard_normal(LOGREG_N) > 0, 1.0, -1.0)
    w = 0.1 * rng.standard_normal(LOGREG_D)
    return (w, X, y, np.float64(LOGREG_LAM))


# ---------------------------------------------------------------------------
# 5. two-layer tanh MLP, softmax cross-entropy, one-hot labels (batch 256, 784-256-10)

MLP_B, MLP_IN, MLP_H, MLP_OUT = 256, 784, 256, 10


def mlp_np(params, X, Y):
    W1, b1, W2, b2 = params
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return -np.sum(Y * (logits - lse)) / X.shape[0]


def _mlp_jax(jnp):
    def f(params, X, Y):
        W1, b1, W2, b2 = params
        h = jnp.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        # the same formula as mlp_np (no stop_gradient on the max, which jitgrad lacks)
        m = jnp.max(logits, axis=1, keepdims=True)
        lse = jnp.log(jnp.sum(jnp.exp(logits - m), axis=1, keepdims=True)) + m
        return -jnp.sum(Y * (logits - lse)) / X.shape[0]
    return f


def _mlp_torch(torch):
    def f(params, X, Y):
        W1, b1, W2, b2 = params
        h = torch.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        return -torch.sum(Y * torch.log_softmax(logits, dim=1)) / X.shape[0]
    return f


def _mlp_inputs(rng):
    W1 = rng.standard_normal((MLP_IN, MLP_H)) / np.sqrt(MLP_IN)
    b1 = 0.01 * rng.standard_normal(MLP_H)
    W2 = rng.standard_normal((MLP_H, MLP_OUT)) / np.sqrt(MLP_H)
    b2 = 0.01 * rng.standard_normal(MLP_OUT)
    X = rng.standard_normal((MLP_B, MLP_IN))
    Y = np.eye(MLP_OUT)[rng.integers(0, MLP_OUT, MLP_B)]
    return ((W1, b1, W2, b2), X, Y)


# ---------------------------------------------------------------------------
# 6. JVP of an elementwise map


def ewmap_np(x):
    return np.sin(x) * np.exp(-x ** 2)


def _ewmap_generic(xp):
    def f(x):
        return xp.sin(x) * xp.exp(-x ** 2)
    return f


def _jvp_inputs(n):
    def make(rng):
        return (rng.standard_normal(n), rng.standard_normal(n))   # (primal, tangent)
    return make


# ---------------------------------------------------------------------------


def _scalar_generic(xp):
    return scalar_np


WORKLOADS = [
    Workload("scalar", "scalar 3w1^2+2w1w2", "grad", scalar_np, _scalar_inputs,
             _scalar_generic, _scalar_generic, "scalar_grad", argnums=(0, 1), size=2),
    Workload("elem_1e3", "sum(sin*exp) 1e3", "grad", elementwise_np, _elementwise_inputs(1000, np.float64),
             _elementwise_generic, _elementwise_generic, "elementwise_grad", size=1000),
    Workload("elem_1e6", "sum(sin*exp) 1e6", "grad", elementwise_np,
             _elementwise_inputs(1_000_000, np.float64),
             _elementwise_generic, _elementwise_generic, "elementwise_grad", size=1_000_000),
    Workload("rosen_1e3", "rosenbrock 1e3", "grad", rosenbrock_np, _rosenbrock_inputs(1000),
             _rosenbrock_generic, _rosenbrock_generic, "rosenbrock_grad", size=1000),
    Workload("rosen_1e6", "rosenbrock 1e6", "grad", rosenbrock_np, _rosenbrock_inputs(1_000_000),
             _rosenbrock_generic, _rosenbrock_generic, "rosenbrock_grad", size=1_000_000),
    Workload("logreg", "logreg 10000x100", "grad", logreg_np, _logreg_inputs,
             _logreg_jax, _logreg_torch, "logreg_grad", size=LOGREG_D),
    Workload("mlp", "MLP 256x784-256-10", "grad", mlp_np, _mlp_inputs,
             _mlp_jax, _mlp_torch, "mlp_grad",
             size=MLP_IN * MLP_H + MLP_H + MLP_H * MLP_OUT + MLP_OUT),
    Workload("jvp_1e6", "jvp sin*exp 1e6", "jvp", ewmap_np, _jvp_inputs(1_000_000),
             _ewmap_generic, _ewmap_generic, "elementwise_jvp", size=1_000_000),
    Workload("elem32_1e6", "sum(sin*exp) 1e6 f32", "grad", elementwise_np,
             _elementwise_inputs(1_000_000, np.float32),
             _elementwise_generic, _elementwise_generic, "elementwise_grad", size=1_000_000,
             dtype="float32"),
    Workload("elem_1e7", "sum(sin*exp) 1e7", "grad", elementwise_np,
             _elementwise_inputs(10_000_000, np.float64),
             _elementwise_generic, _elementwise_generic, "elementwise_grad", size=10_000_000,
             tags=("memory_only",)),
]

BY_KEY = {w.key: w for w in WORKLOADS}


def make_inputs(w: Workload, seed=0):
    return w.inputs(np.random.default_rng(seed))


# ---------------------------------------------------------------------------
# Callables per peer.  Each ``make_*`` returns ``(call, result_to_numpy)`` where
# ``call()`` runs one gradient (or JVP) on the workload's inputs.


def leaves(x):
    """Flatten nested tuples/lists of arrays into a list of NumPy arrays."""
    if isinstance(x, (tuple, list)):
        out = []
        for y in x:
            out += leaves(y)
        return out
    return [np.asarray(x)]


def make_jitgrad(w: Workload, args, forward=False):
    import jitgrad
    if forward:
        f = jitgrad.jit(w.np_f)
        a = args[:1] if w.kind == "jvp" else args
        return lambda: f(*a)
    if w.kind == "jvp":
        x, t = args
        return lambda: jitgrad.jvp(w.np_f, (x,), (t,))
    g = jitgrad.grad(w.np_f, argnums=w.argnums)
    return lambda: g(*args)


def make_numpy_forward(w: Workload, args):
    f = w.np_f
    a = args[:1] if w.kind == "jvp" else args
    return lambda: f(*a)


def make_hand(w: Workload, args):
    import handwritten
    h = getattr(handwritten, w.hand)
    if w.key == "mlp":
        (W1, b1, W2, b2), X, Y = args
        return lambda: h(W1, b1, W2, b2, X, Y)
    if w.key == "logreg":
        wt, X, y, lam = args
        lam = float(lam)
        return lambda: h(wt, X, y, lam)
    return lambda: h(*args)


def jax_args(w: Workload, args):
    import jax
    import jax.numpy as jnp

    def conv(a):
        if isinstance(a, tuple):
            return tuple(conv(b) for b in a)
        return jax.device_put(jnp.asarray(a))
    out = conv(tuple(args))
    jax.block_until_ready(out)
    return out


def make_jax(w: Workload, args, forward=False):
    """``args`` already converted with ``jax_args``."""
    import jax
    import jax.numpy as jnp
    f = w.jax_f(jnp)
    if forward:
        fj = jax.jit(f)
        a = args[:1] if w.kind == "jvp" else args
        return lambda: jax.block_until_ready(fj(*a))
    if w.kind == "jvp":
        fj = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,)))
        return lambda: jax.block_until_ready(fj(*args))
    gj = jax.jit(jax.grad(f, argnums=w.argnums))
    return lambda: jax.block_until_ready(gj(*args))


def make_torch(w: Workload, args):
    import os
    import torch
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    f = w.torch_f(torch)

    def conv(a, req):
        if isinstance(a, tuple):
            return tuple(conv(b, req) for b in a)
        t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) \
            else torch.tensor(float(a), dtype=torch.float64)
        return t.requires_grad_(req) if req else t

    if w.kind == "jvp":
        x, t = conv(args[0], False), conv(args[1], False)
        return lambda: torch.func.jvp(f, (x,), (t,))
    nums = w.argnums if isinstance(w.argnums, tuple) else (w.argnums,)
    targs = [conv(a, i in nums) for i, a in enumerate(args)]
    wrt = []
    for i in nums:
        wrt += list(targs[i]) if isinstance(targs[i], tuple) else [targs[i]]

    def call():
        return torch.autograd.grad(f(*targs), wrt)
    return call


def to_numpy(x):
    try:
        import torch
        if isinstance(x, torch.Tensor):
            return x.detach().numpy()
    except ImportError:
        pass
    if isinstance(x, (tuple, list)):
        return [to_numpy(y) for y in x]
    return np.asarray(x)
