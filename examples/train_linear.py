"""Linear regression with a gradient tape: the training loop of the "Gradient Tape
with TensorFlow" example, grown from three points to a small data set.

The model is ``output = x @ weights + bias`` with the loss
``mean((y - output)**2)``.  Each step records the loss on a
``jitgrad.GradientTape``, asks it for the gradient with respect to the two
Variables, and updates them with ``jitgrad.optimizers.SGD``.  Every step has the
same structure, so the gradient is traced and compiled once and reused, with
each mini-batch passed in as data.

The loss curve is saved as a PNG when matplotlib is installed.

Run it with:  python examples/train_linear.py [--out loss.png] [--epochs 30]
"""
import argparse
import time

import numpy as np

import jitgrad
from jitgrad import GradientTape, Variable, constant

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--out", default="train_linear_loss.png", help="where to save the loss curve")
args = parser.parse_args()

# Data: y = x @ w_true + b_true + noise, 3 features, 256 points (float32, as TensorFlow).
rng = np.random.default_rng(0)
w_true = np.array([[2.0], [-3.0], [0.5]], np.float32)
b_true = np.float32(0.7)
x_all = rng.normal(size=(256, 3)).astype(np.float32)
y_all = (x_all @ w_true + b_true + 0.1 * rng.normal(size=(256, 1))).astype(np.float32)

weights = Variable(np.zeros((3, 1), np.float32), name="weights")
bias = Variable(0.0, name="bias")
optimizer = jitgrad.optimizers.SGD(learning_rate=args.lr, momentum=0.9)

losses = []
t0 = time.perf_counter()
epoch_times = []
for epoch in range(args.epochs):
    te = time.perf_counter()
    order = rng.permutation(len(x_all))
    epoch_loss = 0.0
    n_batches = len(x_all) // args.batch
    for i in range(n_batches):
        idx = order[i * args.batch:(i + 1) * args.batch]
        x, y = constant(x_all[idx]), constant(y_all[idx])
        with GradientTape() as tape:
            output = x @ weights + bias
            loss = np.mean((y - output) ** 2)
        grads = tape.gradient(loss, [weights, bias])
        optimizer.apply_gradients(zip(grads, [weights, bias]))
        epoch_loss += float(loss)
        losses.append(float(loss))
    epoch_times.append(time.perf_counter() - te)
    if epoch % 5 == 0 or epoch == args.epochs - 1:
        print(f"epoch {epoch:3d}  mean loss {epoch_loss / n_batches:.6f}")
elapsed = time.perf_counter() - t0
steps = args.epochs * (len(x_all) // args.batch)

n_batches = len(x_all) // args.batch
late = epoch_times[len(epoch_times) // 2:]
print(f"\n{steps} steps in {elapsed:.2f} s, including the first steps while the gradient compiles; "
      f"{np.mean(late) / n_batches * 1e6:.0f} us per step over the last {len(late)} epochs")
print("learned weights:", np.round(weights.numpy().ravel(), 3), " true:", w_true.ravel())
print(f"learned bias:    {bias.numpy():.3f}   true: {b_true:.3f}")
print("dtypes:", weights.dtype, bias.dtype)

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no loss curve (pip install matplotlib to get one)")
else:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(losses, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared error")
    # two short lines: one line this long ran past the figure's edges
    ax.set_title("Linear regression\njitgrad.GradientTape + SGD(momentum=0.9)", fontsize=11)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"loss curve saved to {args.out}")
