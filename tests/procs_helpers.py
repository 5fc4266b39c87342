"""Module-level functions for the pickling and process tests: pickle finds
them by qualified name, and worker processes import them from here."""
import numpy as np

import jitgrad
from jitgrad.backend import compile as native


def loss(w, X, y):
    """Logistic regression's negative log-likelihood, summed over the rows."""
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z)


def f(x):
    return np.sum(np.sin(x) * x ** 2)


def vector_f(x):
    return np.sin(x) * x


GRAD = jitgrad.grad(loss)


@jitgrad.grad
def decorated(x):
    return np.sum(np.tanh(x) * x)


@jitgrad.jit
def decorated_jit(x):
    return np.sin(x) * 2.0


def data(n_rows=40, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_features))
    y = (rng.random(n_rows) < 0.5).astype(np.float64)
    return X, y


def call_with_settings(settings, fn, *args):
    """Call ``fn(*args)`` in a worker under ``jitgrad.config(**settings)``;
    return the result and how this process got its native code."""
    before = dict(native.counts)
    with jitgrad.config(**settings):
        out = fn(*args)
    after = dict(native.counts)
    return out, {k: after.get(k, 0) - before.get(k, 0) for k in ("compiled", "loaded", "reused")}


def fresh_grad_per_call(w, X, y):
    """A task that builds its transform on every call."""
    return jitgrad.grad(loss)(w, X, y)


def staged_calls(w, X, y):
    """How many calls the cached executable of GRAD at this signature has seen."""
    return sum(e.exe.calls for e in GRAD._staged.cache.values())


@jitgrad.custom_jvp
def softplus(x):
    return np.logaddexp(0.0, x)


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t / (1.0 + np.exp(-x))
