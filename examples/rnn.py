"""Train a small recurrent network with `jitgrad.scan`.

A tanh RNN (hidden 16) reads a noisy sine wave one sample at a time and
predicts the next sample.  The recurrence is a `scan`: one traced step,
one native loop, and reverse mode through time that keeps one hidden state
per step.  Plain gradient descent with momentum, on plain NumPy code.
"""
import time

import numpy as np

import jitgrad

H, T = 16, 200


def init(rng):
    return {"Wx": 0.5 * rng.standard_normal((H, 1)), "Wh": 0.3 * rng.standard_normal((H, H)),
            "b": np.zeros(H), "Wo": 0.3 * rng.standard_normal((1, H)), "bo": np.zeros(1)}


def loss(p, xs, targets):
    def step(h, x):
        h = np.tanh(p["Wx"] @ x + p["Wh"] @ h + p["b"])
        return h, p["Wo"] @ h + p["bo"]
    _, ys = jitgrad.scan(step, np.zeros(H), xs)
    return np.mean((ys - targets) ** 2)


def main():
    rng = np.random.default_rng(0)
    t = np.arange(T + 1) * 0.1
    wave = np.sin(t) + 0.05 * rng.standard_normal(T + 1)
    xs, targets = wave[:-1, None], wave[1:, None]
    p = init(rng)
    velocity = {k: np.zeros_like(v) for k, v in p.items()}
    step = jitgrad.jit(jitgrad.value_and_grad(loss))
    t0 = time.perf_counter()
    with jitgrad.config(compile="always"):
        first, _ = step(p, xs, targets)
        for it in range(300):
            value, g = step(p, xs, targets)
            for k in p:
                velocity[k] = 0.9 * velocity[k] - 0.05 * g[k]
                p[k] = p[k] + velocity[k]
            if it % 60 == 0:
                print(f"step {it:3d}  loss {value:.5f}")
    print(f"loss {first:.4f} -> {value:.5f} in 300 steps, {time.perf_counter() - t0:.2f} s including "
          "the compile")
    assert value < 0.1 * first


if __name__ == "__main__":
    main()
