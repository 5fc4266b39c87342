"""Black-box variational inference: fit a Gaussian to a target density by
stochastic gradient descent on a reparameterised ELBO.

The target is an unnormalised 2-D density, ``log p(x) = -(x - m)' A (x - m) / 2``.
The variational family is a diagonal Gaussian ``q(x) = N(mu, diag(sigma**2))``;
with ``x = mu + sigma * eps``, ``eps ~ N(0, I)``,

    ELBO(mu, log_sigma) = E_eps[log p(mu + sigma * eps)] + sum(log_sigma) + const,

and its gradient is estimated from a few samples of ``eps`` per step.  The
exact optimum is known (the reverse-KL mean-field fit of a Gaussian): ``mu = m``
and ``sigma_i = 1 / sqrt(A_ii)``, which the run checks.

The objective is plain NumPy code that takes an ``rng`` argument and draws
with ``rng.standard_normal`` (it also runs with ``np.random.default_rng()``).
``jitgrad.random.with_rng`` gives the compiled gradient a fresh
``jitgrad.random.Generator`` on every call, so every step sees new noise,
drawn inside the compiled code.

Run it with:  python examples/bbvi.py [--steps 2000]
"""
import argparse
import time

import numpy as np

import jitgrad
import jitgrad.random as jr

TARGET_MEAN = np.array([1.0, -2.0])
TARGET_PRECISION = np.array([[2.0, 0.6], [0.6, 1.0]])
SAMPLES = 16        # draws of eps per gradient estimate


def log_target(x):
    """Unnormalised log density of the target at each row of ``x``."""
    d = x - TARGET_MEAN
    return -0.5 * np.sum((d @ TARGET_PRECISION) * d, axis=1)


def negative_elbo(params, rng):
    """A one-batch estimate of -ELBO at ``params = [mu (2), log_sigma (2)]``."""
    mu, log_sigma = params[:2], params[2:]
    eps = rng.standard_normal((SAMPLES, 2))
    x = mu + np.exp(log_sigma) * eps
    return -(np.mean(log_target(x)) + np.sum(log_sigma))


def fit(steps=2000, lr=0.05, seed=0):
    """Adam on the stochastic objective; returns (mu, sigma, final -ELBO estimate)."""
    # value_and_grad differentiates params; with_rng, outermost, passes the rng
    step = jr.with_rng(jitgrad.jit(jitgrad.value_and_grad(negative_elbo)), seed=seed)
    params = np.zeros(4)
    m, v = np.zeros(4), np.zeros(4)
    b1, b2 = 0.9, 0.999
    losses = []
    for t in range(1, steps + 1):
        loss, g = step(params)
        losses.append(loss)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        rate = lr * min(1.0, 4.0 * (steps - t + 1) / steps)      # decay over the last quarter
        params = params - rate * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    return params[:2], np.exp(params[2:]), float(np.mean(losses[-100:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()

    t0 = time.perf_counter()
    mu, sigma, loss = fit(args.steps)
    elapsed = time.perf_counter() - t0
    exact_sigma = 1 / np.sqrt(np.diag(TARGET_PRECISION))
    print(f"fitted mean   {np.round(mu, 3)}   (exact {TARGET_MEAN})")
    print(f"fitted sigma  {np.round(sigma, 3)}   (exact {np.round(exact_sigma, 3)})")
    print(f"-ELBO (last 100 steps) {loss:.4f};  {args.steps} steps in {elapsed:.2f} s")
    ok = np.allclose(mu, TARGET_MEAN, atol=0.1) and np.allclose(sigma, exact_sigma, rtol=0.1)
    print("converged" if ok else "NOT converged")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
