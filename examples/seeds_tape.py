"""Classic gradient examples, written with jitgrad's TensorFlow-style tape API.

Each example is written as it is with ``tf.GradientTape`` (``tf.Variable`` ->
``jitgrad.Variable``, ``tf.constant`` -> ``jitgrad.constant``, ``tf.*`` math ->
NumPy).  The script prints jitgrad's number beside the number TensorFlow 2.21
prints for the same code, checks dtypes where TensorFlow gives float32, and
exits with status 1 if any result differs by more than a relative 1e-6.

Run it with:  python examples/seeds_tape.py
"""

import numpy as np

import jitgrad
from jitgrad import GradientTape, Variable, constant
from _report import report

f32 = np.float32
results = []   # (example, jitgrad's value, TensorFlow's value, dtype TensorFlow gives or None)


def check(name, ours, reference, dtype=None):
    results.append((name, ours, np.asarray(reference), dtype))


# 1. f(w1, w2) = 3 w1^2 + 2 w1 w2 at Variables (5, 3): [36, 10].
def f(w1, w2):
    return 3 * w1 ** 2 + 2 * w1 * w2


w1, w2 = Variable(5.), Variable(3.)
with GradientTape() as tape:
    z = f(w1, w2)
gradients = tape.gradient(z, [w1, w2])
check("f = 3*w1**2 + 2*w1*w2: gradient [w1, w2]", gradients, [36.0, 10.0], f32)


# 2. Gradient with respect to an intermediate value: x = ones((2, 2)),
#    y = reduce_sum(x), z = y*y; dz/dy = 2 y = 8.
x = constant(np.ones((2, 2), f32))
with GradientTape() as t:
    t.watch(x)
    y = np.sum(x)
    z = y * y
dz_dy = t.gradient(z, y)
check("y = sum(ones((2,2))), z = y*y: dz/dy", dz_dy, 8.0, f32)


# 3. Persistent tape: x = 3, y = x*x, z = y*y; dz/dx = 108, dy/dx = 6.
x = constant(3.0)
with GradientTape(persistent=True) as t:
    t.watch(x)
    y = x * x
    z = y * y
check("persistent: z = (x*x)**2 at 3: dz/dx", t.gradient(z, x), 108.0, f32)
check("persistent: y = x*x at 3: dy/dx", t.gradient(y, x), 6.0, f32)
del t


# 4. A linear model: output = input @ weights, loss = squared_difference(0.75, output).
input_ = constant([[1.0, 2.0]])
weights = Variable([[0.25], [0.15]])
y_true = constant(0.75)
with GradientTape() as tape:
    output = input_ @ weights
    loss = (y_true - output) ** 2
check("loss = (0.75 - input @ weights)**2: d/dweights (Variable)", tape.gradient(loss, weights),
      [[-0.39999998], [-0.79999995]], f32)

# ... with constant weights: no gradient unless watched; a persistent tape twice.
weights = constant([[0.25], [0.15]])
with GradientTape() as tape:
    output = input_ @ weights
    loss = (y_true - output) ** 2
unwatched = tape.gradient(loss, weights)
print(f"constant weights, not watched: gradient is {unwatched} (TensorFlow: None)")
if unwatched is not None:
    results.append(("constant weights not watched -> None", np.asarray(1.0), np.asarray(0.0), None))
with GradientTape(persistent=True) as tape:
    tape.watch(weights)
    output = input_ @ weights
    loss = (y_true - output) ** 2
gradients = tape.gradient(loss, weights)
gradients_copy = tape.gradient(loss, weights)
check("constant weights, watched: d/dweights", gradients, [[-0.39999998], [-0.79999995]], f32)
check("constant weights, watched: second call", gradients_copy, [[-0.39999998], [-0.79999995]], f32)


# 5. The training loop: one pass over three points, weights.assign_sub(lr * gradient).
data = constant([[5.0, 2.0], [3.0, 3.0], [4.0, 1.5]])
targets = constant([0.75, 0.5, 0.4])
weights = Variable([[0.55], [0.75]])
lr = 0.01
for point, y_true in zip(data, targets):
    with GradientTape() as tape:
        output = np.reshape(point, (1, 2)) @ weights
        loss = (y_true - output) ** 2
    gradients = tape.gradient(loss, weights)
    weights.assign_sub(lr * gradients)
check("training loop, 3 points, lr 0.01: weights", weights.numpy(),
      [[0.02995201], [0.47385702]], f32)


# 6. y = x**2 at Variable(3): 6.
x = Variable(3.0)
with GradientTape() as tape:
    y = x ** 2
check("y = x**2 at x=3: dy/dx", tape.gradient(y, x), 6.0, f32)


# 7. y = x1**2 + x2**3 at (5, 3): [10, 27].
x1, x2 = Variable(5.0), Variable(3.0)
with GradientTape() as tape:
    y1 = x1 ** 2
    y2 = x2 ** 3
    y = y1 + y2
grads = tape.gradient(y, [x1, x2])
check("y = x1**2 + x2**3: [dy/dx1, dy/dx2]", grads, [10.0, 27.0], f32)


# 8. Nested tapes: y = x*x at x = 1; first derivative 2, second 2.
x = Variable(1.0)
with GradientTape() as t2:
    with GradientTape() as t1:
        y = x * x
    dy_dx = t1.gradient(y, x)
d2y_dx2 = t2.gradient(dy_dx, x)
check("nested tapes, y = x*x at 1: first derivative", dy_dx.numpy(), 2.0, f32)
check("nested tapes, y = x*x at 1: second derivative", d2y_dx2, 2.0, f32)


# 9. SGD(learning_rate=0.1), 100 steps of loss = x**2 from Variable(-1.0).
x = Variable(-1.0)
optimizer = jitgrad.optimizers.SGD(learning_rate=0.1)
for i in range(100):
    with GradientTape() as tape:
        loss = x ** 2
    grads = tape.gradient(loss, [x])
    optimizer.apply_gradients(zip(grads, [x]))
check("SGD on x**2 from -1, lr 0.1, 100 steps: x", x.numpy(), -2.0370368e-10, f32)


# ---------------------------------------------------------------------------
# The table


def as_array(v):
    if isinstance(v, (list, tuple)):
        parts = [as_array(p) for p in v]
        return np.array(parts, dtype=np.result_type(*parts))
    return np.asarray(v)


def fmt(a):
    return np.array2string(np.ravel(a), precision=8, separator=", ")


rows = []
for name, ours, ref, dtype in results:
    ours = as_array(ours)
    ok = ours.size == ref.size and bool(np.allclose(np.ravel(ours), np.ravel(ref), rtol=1e-6, atol=0.0))
    dtype_ok = dtype is None or ours.dtype == dtype
    ok = ok and dtype_ok
    rows.append((name, fmt(ours), fmt(ref), ours.dtype.name if dtype_ok else f"{ours.dtype.name} (!)",
                 "yes" if ok else "NO"))

report(("example", "jitgrad", "TensorFlow", "dtype", "match"), rows)
