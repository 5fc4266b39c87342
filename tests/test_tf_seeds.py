"""Every code example of the seed documents, run with ``import jitgrad.tf as tf``.

Each row holds an example's code as the seed prints it (``import tensorflow
as tf`` where it has an import line; a continuation of a page whose import
came earlier gets the import prepended), the corrections its typos need
(the seeds' README names them: ``tf.one``, ``t.gredient``, ``persistent =
true``; two pages also lost their indentation), the numbers it must print
(TensorFlow 2.21's, from ``shared/reference/seeds_reference.md``) and the
values it must leave in its namespace.  The code then runs with only the
import line changed, as a notebook or a REPL would show it: a bare
expression statement at the top level prints its value's repr.
"""
import ast
import contextlib
import io
import math
import pathlib
import re

import numpy as np
import pytest

import jitgrad

SEEDS = pathlib.Path("/work/shared/seeds")

# an indented block whose indentation the page lost
_BODY = "\n    "

EXAMPLES = [
    # (id, seed file, code as printed, [(typo, correction)], printed numbers, {name: value})
    ("000_watch_intermediate", "000_f56adea3b8ebb35a.txt",
     "from __future__ import absolute_import, division, print_function, unicode_literals\n"
     "import tensorflow as tf\n"
     "x = tf.one((2,2))\n"
     "with tf.GradientTape() as t:\n"
     "t.watch(x)\n"
     "y = tf.reduce_sum(x)\n"
     "z = tf.mutiply(y,y)\n"
     "# use the tap to compute the derivative of z with respect to the\n"
     "# intermediate value y.\n"
     "dz_dy = t.gredient(z,y)\n"
     "# note that the resulting derivative, 2*y, = sum(x) *2 = 8\n"
     "assert bz_dy.numpy() == 8.0\n",
     [("tf.one(", "tf.ones("), ("tf.mutiply", "tf.multiply"), ("t.gredient", "t.gradient"),
      ("bz_dy", "dz_dy"),
      ("as t:\nt.watch(x)\ny = tf.reduce_sum(x)\nz =",
       "as t:" + _BODY + "t.watch(x)" + _BODY + "y = tf.reduce_sum(x)" + _BODY + "z =")],
     [], {"dz_dy": 8.0}),
    ("000_persistent", "000_f56adea3b8ebb35a.txt",
     "x = tf.constant(3.0)\n"
     "with tf.GradientTape(persistent = true) as t:\n"
     "t.watch(x)\n"
     "y = x * x\n"
     "z = y * y\n"
     "dz_dx = t.gradient(z, x) # 108.0 (4*x ^3 at x =3)\n"
     "dy_dx = t.gradient(y, x) # 6.0\n",
     [("persistent = true", "persistent = True"),
      ("as t:\nt.watch(x)\ny = x * x\nz = y * y",
       "as t:" + _BODY + "t.watch(x)" + _BODY + "y = x * x" + _BODY + "z = y * y")],
     [], {"dz_dx": 108.0, "dy_dx": 6.0}),
    ("001_finite_differences", "001_315dd0a8c87fc540.txt",
     "def f(w1, w2):\n"
     "return 3 * w1 ** 2 + 2 * w1 * w2\n"
     "w1, w2 = 5, 3\n"
     "eps = 1e-6\n"
     "(f(w1 + eps, w2) - f(w1, w2)) / eps\n"
     "(f(w1, w2 + eps) - f(w1, w2)) / eps\n",
     [("w2):\nreturn", "w2):" + _BODY + "return")],
     [36.000003007075065, 10.000000003174137], {}),
    ("001_two_variables", "001_315dd0a8c87fc540.txt",
     "def f(w1, w2):\n"
     "return 3 * w1 ** 2 + 2 * w1 * w2\n"
     "w1, w2 = tf.Variable(5.), tf.Variable(3.)\n"
     "with tf.GradientTape() as tape:\n"
     "z = f(w1, w2)\n"
     "gradients = tape.gradient(z, [w1, w2])\n"
     "gradients\n",
     [("w2):\nreturn", "w2):" + _BODY + "return"),
      ("as tape:\nz =", "as tape:" + _BODY + "z =")],
     [36.0, 10.0], {"gradients": [36.0, 10.0]}),
    ("003_forward_only", "003_67db23d54712e39d.txt",
     "import tensorflow as tf\n"
     "\n"
     "input = tf.constant([[1.0,2.0]])\n"
     "weights = tf.Variable([[0.25],[0.15]])\n"
     "\n"
     "output = tf.linalg.matmul(input, weights)\n"
     "\n"
     "# Loss - MSE\n"
     "y_true = tf.constant(0.75)\n"
     "loss = tf.math.sqrt(tf.math.subtract(tf.math.square(y_true), tf.math.square(output)))\n",
     [], [], {"output": [[0.55]], "loss": [[math.sqrt(0.75 ** 2 - 0.55 ** 2)]]}),
    ("003_gradient", "003_67db23d54712e39d.txt",
     "input = tf.constant([[1.0,2.0]])\n"
     "weights = tf.Variable([[0.25],[0.15]])\n"
     "y_true = tf.constant(0.75)\n"
     "\n"
     "with tf.GradientTape() as tape:  #1\n"
     "    output = tf.linalg.matmul(input, weights) \n"
     "    # Loss - Squared Diff\n"
     "    loss = tf.math.squared_difference(y_true, output)\n"
     "\n"
     "gradients = tape.gradient(loss, weights)  #2\n"
     "gradients\n",
     [], [-0.39999998, -0.79999995], {"gradients": [[-0.39999998], [-0.79999995]]}),
    ("003_watch_constant", "003_67db23d54712e39d.txt",
     "input = tf.constant([[1.0,2.0]])\n"
     "# Will not work if \"tape.watch\" is not added\n"
     "weights = tf.constant([[0.25],[0.15]]) #1\n"
     "y_true = tf.constant(0.75)\n"
     "\n"
     "with tf.GradientTape(persistent=True) as tape:  #2\n"
     "    tape.watch(weights) #3\n"
     "    output = tf.linalg.matmul(input, weights) \n"
     "    # Loss - Squared Diff\n"
     "    loss = tf.math.squared_difference(y_true, output)\n"
     "\n"
     "gradients = tape.gradient(loss, weights)\n"
     "gradients_copy = tape.gradient(loss, weights) #4\n"
     "gradients_copy\n",
     [], [-0.39999998, -0.79999995],
     {"gradients": [[-0.39999998], [-0.79999995]], "gradients_copy": [[-0.39999998], [-0.79999995]]}),
    # the page's suggestion: comment out #3, and the constant gets no gradient
    ("003_watch_constant_commented_out", "003_67db23d54712e39d.txt",
     "input = tf.constant([[1.0,2.0]])\n"
     "# Will not work if \"tape.watch\" is not added\n"
     "weights = tf.constant([[0.25],[0.15]]) #1\n"
     "y_true = tf.constant(0.75)\n"
     "\n"
     "with tf.GradientTape(persistent=True) as tape:  #2\n"
     "    tape.watch(weights) #3\n"
     "    output = tf.linalg.matmul(input, weights) \n"
     "    # Loss - Squared Diff\n"
     "    loss = tf.math.squared_difference(y_true, output)\n"
     "\n"
     "gradients = tape.gradient(loss, weights)\n"
     "gradients_copy = tape.gradient(loss, weights) #4\n"
     "gradients_copy\n",
     [("    tape.watch(weights) #3", "    # tape.watch(weights) #3")],
     [], {"gradients": None, "gradients_copy": None}),
    ("003_training_loop", "003_67db23d54712e39d.txt",
     "data = tf.data.Dataset.from_tensor_slices([[5.0,2.0], [3.0,3.0], [4.0,1.5]])\n"
     "weights = tf.Variable([[0.55],[0.75]],shape=[2,1])\n"
     "y_true = tf.data.Dataset.from_tensor_slices([0.75,0.5,0.4])\n"
     "lr = 0.01 # Learning rate\n"
     "dataset = tf.data.Dataset.zip((data,y_true)) # Zipped the two tensor to loop\n"
     "\n"
     "for  data, y_true in dataset:\n"
     "    with tf.GradientTape() as tape:  \n"
     "        output = tf.linalg.matmul(tf.reshape(data,[1,2]), weights) \n"
     "        loss = tf.math.squared_difference(y_true, output)\n"
     "    gradients = tape.gradient(loss, weights)\n"
     "    weights.assign_sub(tf.multiply(lr,gradients)) # Applied the Gradient Descent\n"
     "\n"
     "weights # Final trained weights\n",
     [], [0.02995201, 0.47385702], {"weights": [[0.02995201], [0.47385702]]}),
    ("004_one_variable", "004_34f859bed0605bae.txt",
     "import tensorflow as tf\n"
     "\n"
     "# Define a simple function\n"
     "x = tf.Variable(3.0)\n"
     "with tf.GradientTape() as tape:\n"
     "    y = x ** 2\n"
     "\n"
     "# Compute the gradient of y with respect to x\n"
     "grad = tape.gradient(y, x)\n"
     "\n"
     "print('The gradient of y with respect to x is:', grad.numpy())\n",
     [], [6.0], {"grad": 6.0}),
    ("004_two_variables", "004_34f859bed0605bae.txt",
     "x1 = tf.Variable(5.0)\n"
     "x2 = tf.Variable(3.0)\n"
     "with tf.GradientTape() as tape:\n"
     "    y1 = x1 ** 2\n"
     "    y2 = x2 ** 3\n"
     "    y = y1 + y2\n"
     "\n"
     "# Compute the gradients\n"
     "grads = tape.gradient(y, [x1, x2])\n"
     "\n"
     "print(f\"Gradient of y with respect to x1: {grads[0].numpy()}\")\n"
     "print(f\"Gradient of y with respect to x2: {grads[1].numpy()}\")\n",
     [], [1, 10.0, 2, 27.0], {"grads": [10.0, 27.0]}),
    ("004_second_order", "004_34f859bed0605bae.txt",
     "x = tf.Variable(1.0)\n"
     "with tf.GradientTape() as t2:\n"
     "    with tf.GradientTape() as t1:\n"
     "        y = x * x\n"
     "    dy_dx = t1.gradient(y, x)\n"
     "\n"
     "d2y_dx2 = t2.gradient(dy_dx, x)\n"
     "print(f\"First derivative: {dy_dx.numpy()}, Second derivative: {d2y_dx2.numpy()}\")\n",
     [], [2.0, 2.0], {"dy_dx": 2.0, "d2y_dx2": 2.0}),
    ("004_sgd", "004_34f859bed0605bae.txt",
     "# Simple network with one variable\n"
     "x = tf.Variable(-1.0)\n"
     "optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)\n"
     "\n"
     "for i in range(100):\n"
     "    with tf.GradientTape() as tape:\n"
     "        # Define the model (y = x^2)\n"
     "        loss = x ** 2\n"
     "    # Compute the gradients\n"
     "    grads = tape.gradient(loss, [x])\n"
     "    # Update the variables\n"
     "    optimizer.apply_gradients(zip(grads, [x]))\n"
     "\n"
     "print('Optimized value of x:', x.numpy())\n",
     [], [-2.0370368e-10], {"x": -2.0370368e-10}),
]

IMPORT = "import tensorflow as tf"


def _as_jitgrad(code, fixes):
    """The example with its typos corrected and only its import line changed
    (a continuation example gets the import its page made earlier)."""
    for old, new in fixes:
        assert old in code, old
        code = code.replace(old, new)
    if IMPORT in code:
        return code.replace(IMPORT, "import jitgrad.tf as tf")
    return "import jitgrad.tf as tf\n" + code


def _run(code):
    """Run ``code`` as a REPL would: every top-level expression's value (not None)
    is printed.  Returns (what it printed, its namespace)."""
    ns = {"__name__": "__seed__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for node in ast.parse(code).body:
            if isinstance(node, ast.Expr):
                value = eval(compile(ast.Expression(node.value), "<seed>", "eval"), ns)
                if value is not None:
                    print(repr(value))
            else:
                exec(compile(ast.Module([node], []), "<seed>", "exec"), ns)
    return out.getvalue(), ns


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _numbers(text):
    """The numbers a user reads in printed output: not the shapes, dtypes and
    names of the Tensors' reprs."""
    text = re.sub(r"shape=\([^)]*\)|dtype=\w+|'[^']*:0'", " ", text)
    return [float(x) for x in _NUMBER.findall(text)]


def _strip_tags(text):
    return re.sub(r"</?b>", "", text)


@pytest.mark.parametrize("row", EXAMPLES, ids=[r[0] for r in EXAMPLES])
def test_example_is_the_seeds_code(row):
    """The code in the table is the page's, line for line (the corrections aside)."""
    name, seed, code = row[:3]
    if not SEEDS.exists():
        pytest.skip("the seed documents are not on this machine")
    text = _strip_tags((SEEDS / seed).read_text())
    for line in code.splitlines():
        if line.strip():
            assert line.strip() in text, (name, line)


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("row", EXAMPLES, ids=[r[0] for r in EXAMPLES])
def test_seed_example_prints_tensorflows_numbers(row, mode):
    name, seed, code, fixes, printed, values = row
    with jitgrad.config(compile=mode):
        out, ns = _run(_as_jitgrad(code, fixes))
    got = _numbers(out)
    assert len(got) == len(printed), (out, printed)
    np.testing.assert_allclose(got, printed, rtol=1e-6, atol=0, err_msg=out)
    for var, want in values.items():
        value = ns[var]
        if want is None:
            assert value is None, (var, value)
            continue
        leaves = value if isinstance(value, list) else [value]
        wants = want if isinstance(value, list) else [want]
        for v, w in zip(leaves, wants):
            if isinstance(v, (jitgrad.Tensor, jitgrad.Variable)):
                # float32 where the example uses Python floats, as TensorFlow
                assert v.dtype == np.float32, (var, v.dtype)
                v = v.numpy()
            np.testing.assert_allclose(np.asarray(v, np.float64), w, rtol=1e-6, atol=1e-12)


def test_every_seed_with_code_has_examples():
    """Each seed page with code has its examples in the table (002 has none)."""
    assert {r[1] for r in EXAMPLES} == {"000_f56adea3b8ebb35a.txt", "001_315dd0a8c87fc540.txt",
                                        "003_67db23d54712e39d.txt", "004_34f859bed0605bae.txt"}
