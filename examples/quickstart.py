"""A tour of jitgrad in one page.  Run it with `make demo`.

The functions below are plain NumPy (`import numpy as np`); jitgrad traces
them, differentiates the trace, and compiles the result into native loops.
"""
import time

import numpy as np

import jitgrad

np.set_printoptions(precision=6, threshold=8, edgeitems=3)
t_start = time.perf_counter()


def section(title):
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


# ---------------------------------------------------------------------------
section("grad of a scalar loss over a million points")


def loss(w):
    return np.sum(np.sin(w) * np.exp(-w**2))


w = np.linspace(-1, 1, 1_000_000)

# Compile now (and wait for it) rather than starting on the interpreter.
with jitgrad.config(compile="always"):
    g = jitgrad.grad(loss)(w)

# d/dw [sin(w) exp(-w^2)] = (cos(w) - 2 w sin(w)) exp(-w^2)
exact = (np.cos(w) - 2 * w * np.sin(w)) * np.exp(-w**2)
print("grad(loss)(w)            =", g)
print("closed form              =", exact)
print("max |difference|         =", np.max(np.abs(g - exact)))
assert np.allclose(g, exact, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
section("several arguments: argnums=(0, 1)")


def mse(W, b, x, y):
    pred = np.tanh(x @ W + b)
    return np.mean((pred - y) ** 2)


rng = np.random.default_rng(0)
x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))
W, b = rng.normal(size=(3, 2)), np.zeros(2)
dW, db = jitgrad.grad(mse, argnums=(0, 1))(W, b, x, y)
print("dW.shape, db.shape       =", dW.shape, db.shape)
print("db                       =", db)


# ---------------------------------------------------------------------------
section("value_and_grad: the loss and its gradient in one pass")

value, (dW, db) = jitgrad.value_and_grad(mse, argnums=(0, 1))(W, b, x, y)
print("loss                     =", value)
W2 = W - 0.1 * dW
print("loss after one step      =", mse(W2, b - 0.1 * db, x, y))


# ---------------------------------------------------------------------------
section("jvp: forward mode, a directional derivative")

v = np.ones_like(w) / np.sqrt(w.size)          # a unit direction
out, tangent = jitgrad.jvp(loss, (w,), (v,))
print("loss(w)                  =", out, " (0: the integrand is odd, w symmetric)")
print("d/dt loss(w + t v)       =", tangent)
print("grad(loss)(w) . v        =", g @ v)


# ---------------------------------------------------------------------------
section("higher order: grad(grad(np.sin))")

d2sin = jitgrad.grad(jitgrad.grad(np.sin))
print("grad(grad(np.sin))(1.0)  =", d2sin(1.0))
print("-sin(1.0)                =", -np.sin(1.0))


# ---------------------------------------------------------------------------
section("looking inside: the IR of loss and of grad(loss)")

small = np.linspace(-1, 1, 8)
print(jitgrad.make_ir(loss)(small))
print()
print(jitgrad.make_ir(jitgrad.grad(loss))(small))


# ---------------------------------------------------------------------------
section("looking inside: the loop Numba compiles for grad(loss)")

print(jitgrad.source(jitgrad.grad(loss))(small))

print(f"(quickstart ran in {time.perf_counter() - t_start:.1f} s)")
