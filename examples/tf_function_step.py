"""A TensorFlow training loop, run by jitgrad with its import line changed.

A small two-layer regression written as TensorFlow code (``tf.Variable``,
``tf.GradientTape``, ``tf.keras.optimizers.Adam``, ``@tf.function``) with
``import jitgrad.tf as tf``.  The step runs eagerly and compiled
(``tf.function`` is ``jitgrad.function``: the forward pass, the gradient and
the Adam update become one native function with the Variables as state);
the script checks that both give the same losses and prints the time per
step of each.

Run it with:  python examples/tf_function_step.py [--steps 200]
"""
import argparse
import sys
import time

import numpy as np

import jitgrad
import jitgrad.tf as tf

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--steps", type=int, default=200)
args = parser.parse_args()

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype(np.float32)
y = np.sin(x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32))


def make_model():
    w1 = tf.Variable(rng.normal(size=(4, 16)).astype(np.float32) * 0.5)
    b1 = tf.Variable(np.zeros(16, np.float32))
    w2 = tf.Variable(rng.normal(size=(16, 1)).astype(np.float32) * 0.5)
    return [w1, b1, w2], tf.keras.optimizers.Adam(learning_rate=0.01)


def make_step(variables, optimizer):
    w1, b1, w2 = variables

    def train_step(x, y):
        with tf.GradientTape() as tape:
            hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
            loss = tf.reduce_mean(tf.square(tf.matmul(hidden, w2) - y))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss
    return train_step


def run(compiled):
    state = rng.bit_generator.state
    variables, optimizer = make_model()
    rng.bit_generator.state = state
    step = make_step(variables, optimizer)
    if compiled:
        step = tf.function(step)
    losses = [float(step(x, y))]          # the first call traces (and compiles)
    start = time.perf_counter()
    for _ in range(args.steps - 1):
        losses.append(float(step(x, y)))
    per_step = (time.perf_counter() - start) / max(args.steps - 1, 1)
    return np.array(losses), per_step


with jitgrad.config(compile="always"):
    eager, t_eager = run(compiled=False)
    compiled, t_compiled = run(compiled=True)

print(f"loss: {eager[0]:.4f} -> {eager[-1]:.4f} after {args.steps} Adam steps")
print(f"eager tape step:     {t_eager * 1e6:8.1f} us")
print(f"tf.function step:    {t_compiled * 1e6:8.1f} us")
same = np.allclose(eager, compiled, rtol=1e-4, atol=1e-6)
print("the compiled step follows the eager trajectory:", "yes" if same else "NO")
sys.exit(0 if same else 1)
