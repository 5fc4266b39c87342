"""Classic gradient examples, written with jitgrad's functional API.

Each example is a small computation that is usually shown with a gradient
tape (``tf.GradientTape``).  Here the same computation is a plain NumPy
function, and ``jitgrad.grad`` / ``jitgrad.value_and_grad`` turn it into its
gradient.  The script prints jitgrad's number beside the number TensorFlow
prints for the same example, and exits with status 1 if any of them differ by
more than a relative 1e-6.

Run it with:  python examples/seeds_functional.py
"""

import numpy as np

import jitgrad
from _report import report

f32 = np.float32
results = []   # (example, jitgrad's value, TensorFlow's value)


def check(name, ours, reference):
    results.append((name, np.asarray(ours), np.asarray(reference)))


# 1. Two variables: f(w1, w2) = 3 w1^2 + 2 w1 w2 at (5, 3).
#    df/dw1 = 6 w1 + 2 w2 = 36,  df/dw2 = 2 w1 = 10.
def f(w1, w2):
    return 3 * w1**2 + 2 * w1 * w2


dw1, dw2 = jitgrad.grad(f, argnums=(0, 1))(f32(5.0), f32(3.0))
check("f = 3*w1**2 + 2*w1*w2: [df/dw1, df/dw2]", [dw1, dw2], np.array([36.0, 10.0], f32))


# 2. x = ones((2, 2)), y = sum(x), z = y*y: dz/dy = 2 y = 8.
x = np.ones((2, 2), f32)
y = np.sum(x)
dz_dy = jitgrad.grad(lambda y: y * y)(y)
check("y = sum(ones((2,2))), z = y*y: dz/dy", dz_dy, 8.0)


# 3. x = 3, y = x*x, z = y*y: dz/dx = 4 x^3 = 108, dy/dx = 2 x = 6.
def y_of(x):
    return x * x


def z_of(x):
    y = y_of(x)
    return y * y


check("y = x*x, z = y*y at x=3: dz/dx", jitgrad.grad(z_of)(3.0), 108.0)
check("y = x*x, z = y*y at x=3: dy/dx", jitgrad.grad(y_of)(3.0), 6.0)


# 4. A one-layer linear model: output = input @ weights, loss = (0.75 - output)^2.
inputs = np.array([[1.0, 2.0]], f32)
weights = np.array([[0.25], [0.15]], f32)


def linear_loss(weights, inputs, target):
    output = inputs @ weights                  # shape (1, 1)
    return np.sum((target - output) ** 2)      # a scalar


g = jitgrad.grad(linear_loss)(weights, inputs, f32(0.75))
check("loss = (0.75 - input @ weights)**2: d/dweights", g,
      np.array([[-0.39999998], [-0.79999995]], f32))


# 5. Training that model with SGD: one pass over three points, in order,
#    weights -= lr * gradient of the per-point loss.
data = np.array([[5.0, 2.0], [3.0, 3.0], [4.0, 1.5]], f32)
targets = np.array([0.75, 0.5, 0.4], f32)
weights = np.array([[0.55], [0.75]], f32)
lr = f32(0.01)
step = jitgrad.value_and_grad(linear_loss)
for point, target in zip(data, targets):
    loss, g = step(weights, point[None, :], target)
    weights = weights - lr * g
check("SGD on (target - x @ w)**2, one pass: weights", weights,
      np.array([[0.02995201], [0.47385702]], f32))


# 6. y = x**2 at x = 3: dy/dx = 6.
check("y = x**2 at x=3: dy/dx", jitgrad.grad(lambda x: x**2)(3.0), 6.0)


# 7. y = x1^2 + x2^3 at (5, 3): [2 x1, 3 x2^2] = [10, 27].
g1, g2 = jitgrad.grad(lambda x1, x2: x1**2 + x2**3, argnums=(0, 1))(5.0, 3.0)
check("y = x1**2 + x2**3 at (5, 3): [dy/dx1, dy/dx2]", [g1, g2], [10.0, 27.0])


# 8. y = x*x at x = 1: first derivative 2, second derivative 2.
square = lambda x: x * x   # noqa: E731
check("y = x*x at x=1: dy/dx", jitgrad.grad(square)(1.0), 2.0)
check("y = x*x at x=1: d2y/dx2", jitgrad.grad(jitgrad.grad(square))(1.0), 2.0)


# 9. Gradient descent on loss = x^2 from x = -1 (float32), lr 0.1, 100 steps.
#    Each step multiplies x by 0.8; in float32 the result is -2.0370368e-10.
x = f32(-1.0)
dloss = jitgrad.grad(lambda x: x**2)
for _ in range(100):
    x = x - f32(0.1) * dloss(x)
check("SGD on x**2 from x=-1, lr 0.1, 100 steps: x", x, f32(-2.0370368e-10))


# ---------------------------------------------------------------------------
# The table


def fmt(a):
    return np.array2string(np.ravel(a), precision=8, separator=", ")


rows = []
for name, ours, ref in results:
    ok = ours.size == ref.size and bool(np.allclose(np.ravel(ours), np.ravel(ref), rtol=1e-6, atol=0.0))
    rows.append((name, fmt(ours), fmt(ref), "yes" if ok else "NO"))

report(("example", "jitgrad", "TensorFlow", "match"), rows)
