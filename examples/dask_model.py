"""The model of examples/dask_gradient.py: a logistic-regression loss and its gradient.

They live in a module of their own so that Dask's workers import them by
name: a task then carries only a reference to ``GRAD`` (a hundred bytes), and
each worker keeps one ``GRAD`` with its compiled code for all the rounds.
Functions defined in the script that is run (``__main__``) would travel by
value instead, and a worker would trace them anew for every task.
"""
import numpy as np

import jitgrad


def loss(w, X, y):
    """Negative log-likelihood of logistic regression, summed over the rows
    (a sum, so that the gradients of the chunks add up to the whole one)."""
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z)


GRAD = jitgrad.grad(loss)


def compile_at_once():
    """Make this process compile (or load from the disk cache) each signature
    on its first call (``client.run(compile_at_once)`` on every worker): a
    worker runs the same gradient for every task, so it should not start on
    the NumPy interpreter.  Setting JITGRAD_COMPILE=always where the workers
    start does the same."""
    jitgrad.config.compile = "always"


def make_chunk(n_rows, n_features, k):
    """Chunk ``k`` of a synthetic classification problem: rows X and labels y
    in {0, 1}, drawn from one true weight vector (the same for every chunk)."""
    w_true = np.random.default_rng(0).standard_normal(n_features)
    rng = np.random.default_rng(1 + k)
    X = rng.standard_normal((n_rows, n_features))
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y


def chunk_gradient(w, chunk):
    """The gradient of the loss over one chunk ``(X, y)``."""
    X, y = chunk
    return GRAD(w, X, y)
