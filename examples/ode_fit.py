"""Fit the parameters of an ODE to observations, with the integrator as a loop.

A damped oscillator x'' = -k x - c x' is integrated by RK4 with
`jitgrad.fori_loop` (the loop stays one loop: tracing and compiling do not
grow with the number of steps), and the rate constants (k, c) are fitted to
noisy observations of x by gradient descent on the squared error.  The
gradient goes through the whole integration in reverse mode; it keeps one
state per step.
"""
import time

import numpy as np

import jitgrad

T, DT = 400, 0.025                      # steps and step size: 10 time units
OBSERVE = np.arange(0, T, 20)           # observe x at every 20th step


def rhs(state, k, c):
    x, v = state[0], state[1]
    return np.stack([v, -k * x - c * v])


def trajectory(params, state0):
    """x at every step, by RK4."""
    k, c = params[0], params[1]

    def step(state, _):
        a = rhs(state, k, c)
        b = rhs(state + 0.5 * DT * a, k, c)
        d = rhs(state + 0.5 * DT * b, k, c)
        e = rhs(state + DT * d, k, c)
        state = state + DT / 6 * (a + 2 * b + 2 * d + e)
        return state, state[0]

    _, xs = jitgrad.scan(step, state0, None, length=T)
    return xs


def loss(params, state0, observed):
    return np.mean((trajectory(params, state0)[OBSERVE] - observed) ** 2)


def main():
    rng = np.random.default_rng(0)
    truth = np.array([2.0, 0.3])                     # k, c
    state0 = np.array([1.0, 0.0])
    observed = trajectory(truth, state0)[OBSERVE] + 0.01 * rng.standard_normal(len(OBSERVE))

    value_and_grad = jitgrad.jit(jitgrad.value_and_grad(loss))
    params = np.array([1.0, 1.0])
    t0 = time.perf_counter()
    with jitgrad.config(compile="always"):
        for it in range(150):
            value, g = value_and_grad(params, state0, observed)
            params = params - 0.5 * g
            if it % 30 == 0:
                print(f"step {it:3d}  loss {value:.6f}  k {params[0]:.4f}  c {params[1]:.4f}")
    print(f"fitted k = {params[0]:.3f}, c = {params[1]:.3f} (truth {truth[0]}, {truth[1]}), "
          f"loss {value:.2e}, {time.perf_counter() - t0:.2f} s including the compile")
    ir = jitgrad.make_ir(jitgrad.grad(loss))(params, state0, observed)
    print(f"the gradient's program: {len(ir.eqns)} equations for {T} RK4 steps")
    assert np.allclose(params, truth, atol=0.05), params


if __name__ == "__main__":
    main()
