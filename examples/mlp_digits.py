"""A small MLP on scikit-learn's bundled 8x8 digits (1,797 images, no download),
trained with jitgrad's tape API and Adam.

Two ways to run the same training step:

- eager (default): a ``jitgrad.GradientTape`` records each step as it runs and
  ``optimizer.apply_gradients`` updates the Variables; the gradient is compiled
  once and reused for every mini-batch;
- ``--jit``: the whole step (forward pass, tape, gradient, Adam update) is one
  ``jitgrad.jit`` function on arrays, using the optimizer's functional
  ``init`` / ``update``.

Prints the test accuracy and the time per epoch.

Run it with:  python examples/mlp_digits.py [--epochs 15] [--jit]
"""
import argparse
import sys
import time

import numpy as np

import jitgrad
from jitgrad import GradientTape, Variable, constant

try:
    from sklearn.datasets import load_digits
except ImportError:
    print("This example needs scikit-learn for its bundled digits data set.\n"
          "Install it with:  pip install scikit-learn   (or: pip install '.[examples]')",
          file=sys.stderr)
    sys.exit(1)

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--hidden", type=int, default=64)
parser.add_argument("--lr", type=float, default=0.003)
parser.add_argument("--jit", action="store_true", help="compile the whole training step")
args = parser.parse_args()

# Data: pixels 0..16 scaled to 0..1, labels one-hot; 80% train, 20% test.
digits = load_digits()
x = (digits.data / 16.0).astype(np.float32)
labels = digits.target
rng = np.random.default_rng(0)
perm = rng.permutation(len(x))
n_train = int(0.8 * len(x))
train, test = perm[:n_train], perm[n_train:]
onehot = np.eye(10, dtype=np.float32)[labels]


def init_params(rng, sizes):
    """Glorot-uniform weights, zero biases."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (n_in + n_out))
        params.append(rng.uniform(-lim, lim, size=(n_in, n_out)).astype(np.float32))
        params.append(np.zeros(n_out, np.float32))
    return params


def forward(params, x):
    w1, b1, w2, b2 = params
    h = np.maximum(x @ w1 + b1, 0.0)          # ReLU
    return h @ w2 + b2                         # logits


def loss_fn(params, x, y):
    """Softmax cross-entropy: mean over the batch of logsumexp(logits) - logits[label]."""
    logits = forward(params, x)
    m = np.max(logits, axis=1, keepdims=True)  # shift for a stable exp
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return np.mean(np.sum(y * (lse - logits), axis=1))


def accuracy(params, idx):
    logits = forward([np.asarray(p) for p in params], x[idx])
    return float(np.mean(np.argmax(logits, axis=1) == labels[idx]))


p0 = init_params(rng, [64, args.hidden, 10])
optimizer = jitgrad.optimizers.Adam(learning_rate=args.lr)
n_batches = n_train // args.batch          # drop the last partial batch: one shape, one compile

if args.jit:
    @jitgrad.jit
    def train_step(params, state, xb, yb):
        ps = [constant(p) for p in params]
        with GradientTape() as tape:
            tape.watch(ps)
            loss = loss_fn(ps, constant(xb), constant(yb))
        grads = tape.gradient(loss, ps)
        params, state = optimizer.update(grads, state, params)
        return params, state, loss.numpy()

    params, state = p0, optimizer.init(p0)
else:
    variables = [Variable(p) for p in p0]

    def train_step_eager(xb, yb):
        with GradientTape() as tape:
            loss = loss_fn(variables, constant(xb), constant(yb))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

mode = "jit (whole step compiled)" if args.jit else "eager tape"
print(f"digits: {n_train} train / {len(test)} test images, MLP 64-{args.hidden}-10, Adam, {mode}")
times = []
for epoch in range(args.epochs):
    order = rng.permutation(train)
    t0 = time.perf_counter()
    total = 0.0
    for i in range(n_batches):
        idx = order[i * args.batch:(i + 1) * args.batch]
        if args.jit:
            params, state, loss = train_step(params, state, x[idx], onehot[idx])
        else:
            loss = train_step_eager(x[idx], onehot[idx])
        total += float(loss)
    times.append(time.perf_counter() - t0)
    current = params if args.jit else [v.numpy() for v in variables]
    print(f"epoch {epoch + 1:2d}  loss {total / n_batches:.4f}  test accuracy "
          f"{accuracy(current, test):.3f}  {times[-1] * 1e3:7.1f} ms")

final = params if args.jit else [v.numpy() for v in variables]
steady = times[1:] or times
print(f"\ntest accuracy {accuracy(final, test):.3f}; time per epoch {np.median(steady) * 1e3:.1f} ms "
      f"(median after the first epoch, which includes compiling; {n_batches} steps per epoch, "
      f"{np.median(steady) / n_batches * 1e6:.0f} us per step)")
