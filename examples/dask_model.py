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


def make_data(n_rows, n_features, seed=0):
    """A synthetic classification problem: rows X, labels y in {0, 1}."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_features))
    w_true = rng.standard_normal(n_features)
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y


def chunk_gradient_sum(w, chunks):
    """The gradient over ``chunks`` ((X, y) pairs), one chunk at a time."""
    return sum(GRAD(w, X, y) for X, y in chunks)
