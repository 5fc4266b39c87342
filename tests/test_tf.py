"""TensorFlow users' habits: the tape API's results, ``jitgrad.tf`` and ``jitgrad.function``."""
import numpy as np
import pytest

import jitgrad
import jitgrad.tf as tf
from jitgrad.tape import function as function_mod

f32, f64 = np.float32, np.float64


def close(a, b, rtol=1e-6):
    np.testing.assert_allclose(np.asarray(a, f64), np.asarray(b, f64), rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------------------
# Results of the tape API are Tensors, inside and outside an enclosing tape


def test_gradient_is_a_tensor_as_tensorflow():
    x = jitgrad.Variable(3.0)
    with jitgrad.GradientTape() as tape:
        y = x * x
    g = tape.gradient(y, x)
    assert isinstance(g, jitgrad.Tensor)
    assert g.numpy() == 6.0 and isinstance(g.numpy(), np.float32)
    assert g.shape == () and g.dtype == np.float32 and g.ndim == 0
    assert float(g) == 6.0 and int(g) == 6 and g.item() == 6.0
    assert f"{g:.2f}" == "6.00" and round(g, 1) == 6.0
    assert str(g) == "jitgrad.Tensor(6.0, shape=(), dtype=float32)"
    assert repr(g) == "<jitgrad.Tensor: shape=(), dtype=float32, numpy=6.0>"


def test_gradient_type_is_the_same_inside_an_outer_tape():
    x = jitgrad.Variable([1.0, 2.0])
    with jitgrad.GradientTape() as inner:
        y = np.sum(x ** 3)
    plain = inner.gradient(y, x)
    with jitgrad.GradientTape() as outer:
        with jitgrad.GradientTape() as inner:
            y = np.sum(x ** 3)
        nested = inner.gradient(y, x)
    assert type(plain) is type(nested) is jitgrad.Tensor
    close(plain.numpy(), nested.numpy())
    close(outer.gradient(nested, x), [6.0, 12.0])


def test_tensor_results_work_with_numpy():
    w = jitgrad.Variable(np.array([[1.0, -2.0], [3.0, 0.5]]))
    with jitgrad.GradientTape() as tape:
        loss = np.sum(w ** 2)
    g = tape.gradient(loss, w)
    assert g.dtype == f64                       # float64 stays float64
    a = np.asarray(g)
    assert type(a) is np.ndarray and a.dtype == f64
    close(a, 2 * w.numpy())
    assert np.allclose(g, 2 * w.numpy())
    assert isinstance(g + np.ones((2, 2)), jitgrad.Tensor)
    close(g @ np.eye(2), a)
    close(g[0], a[0])
    assert (g > 0).numpy().tolist() == [[True, False], [True, True]]
    assert g.tolist() == a.tolist()
    assert len(g) == 2 and [r.shape for r in g] == [(2,), (2,)]
    close(np.linalg.norm(np.asarray(g)), np.sqrt(np.sum(a * a)))
    # scipy-style use: a float64 array of the gradient
    assert np.array(g, dtype=f64).flags.writeable


def test_jacobians_and_jvps_are_tensors():
    x = jitgrad.Variable([1.0, 2.0])
    with jitgrad.GradientTape(persistent=True) as tape:
        y = x * x
        y2 = tf.reshape(y, [2, 1])
    j = tape.jacobian(y, x)
    assert isinstance(j, jitgrad.Tensor) and j.shape == (2, 2)
    close(j, np.diag([2.0, 4.0]))
    bj = tape.batch_jacobian(y2, x)
    assert isinstance(bj, jitgrad.Tensor) and bj.shape == (2, 1)
    close(bj, [[2.0], [4.0]])
    with jitgrad.ForwardAccumulator(x, np.array([1.0, 0.0], f32)) as acc:
        z = np.sum(x ** 3)
    d = acc.jvp(z)
    assert isinstance(d, jitgrad.Tensor) and d.numpy() == 3.0


def test_unconnected_zero_is_a_tensor():
    x, u = jitgrad.Variable(1.0), jitgrad.Variable([1.0, 2.0])
    with jitgrad.GradientTape() as tape:
        y = x * 2
    gx, gu = tape.gradient(y, [x, u], unconnected_gradients="zero")
    assert isinstance(gu, jitgrad.Tensor) and gu.shape == (2,) and gu.dtype == f32
    assert gx.numpy() == 2.0


def test_variable_api():
    v = jitgrad.Variable([1.0, 2.0], name="w")
    assert v.name == "w:0" and v.trainable
    assert jitgrad.Variable(1.0).name == "Variable:0"
    assert not jitgrad.Variable(1.0, trainable=False).trainable
    assert v.assign([3.0, 4.0]) is v                 # as TensorFlow: the variable
    assert v.assign_add([1.0, 1.0], read_value=False) is None
    assert v.assign_sub(np.array([0.5, 0.5])) is v
    assert v.numpy().tolist() == [3.5, 4.5] and v.dtype == f32
    n = v.numpy()
    n[0] = 100.0                                      # a copy
    assert v.numpy()[0] == 3.5
    with pytest.raises(ValueError, match="shape"):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="shape"):
        jitgrad.Variable([1.0, 2.0], shape=(3,))
    assert jitgrad.Variable([[1.0], [2.0]], shape=[2, 1]).shape == (2, 1)


# ---------------------------------------------------------------------------
# The jitgrad.tf namespace: TensorFlow's dtype rules


def test_conversion_dtypes():
    assert tf.constant(3.0).dtype == tf.float32
    assert tf.constant(3).dtype == tf.int32
    assert tf.constant([1.0, 2]).dtype == tf.float32
    assert tf.constant(np.float64(3.0)).dtype == tf.float64      # NumPy keeps its dtype
    assert tf.constant(3.0, dtype=tf.float64).dtype == tf.float64
    assert tf.constant(0.5, shape=(2, 3)).numpy().tolist() == [[0.5] * 3] * 2
    assert tf.convert_to_tensor([1, 2]).dtype == tf.int32
    assert tf.convert_to_tensor(1, dtype_hint=tf.float32).dtype == tf.float32
    with pytest.raises(ValueError, match="dtype"):
        tf.convert_to_tensor(tf.constant(1.0), dtype=tf.float64)
    assert tf.ones((2, 2)).dtype == tf.float32 and tf.zeros(3, tf.int32).dtype == tf.int32
    assert tf.range(5).dtype == tf.int32 and tf.range(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert tf.range(0.0, 1.0, 0.25).dtype == tf.float32
    assert tf.linspace(0.0, 1.0, 5).dtype == tf.float32
    close(tf.linspace(0.0, 1.0, 5), [0, 0.25, 0.5, 0.75, 1])
    assert tf.zeros_like(tf.constant([1, 2])).dtype == tf.int32
    assert tf.ones_like(tf.constant([1.0])).numpy().tolist() == [1.0]
    assert tf.cast(tf.constant([1.7, -1.7]), tf.int32).numpy().tolist() == [1, -1]


def test_python_numbers_take_the_tensors_dtype():
    g = tf.constant([1.0, 2.0])
    assert tf.multiply(0.01, g).dtype == tf.float32
    assert tf.add(g, 1).dtype == tf.float32
    d = tf.constant(np.array([1.0, 2.0]))
    assert tf.multiply(0.1, d).dtype == tf.float64
    i = tf.constant([1, 2])
    assert tf.multiply(i, 2).dtype == tf.int32


def test_mixed_dtypes_raise_as_tensorflow():
    with pytest.raises(TypeError, match="float32 and float64"):
        tf.add(tf.constant(1.0), tf.constant(np.float64(1.0)))
    with pytest.raises(TypeError, match="int32"):
        tf.multiply(tf.constant([1, 2]), 2.5)
    with pytest.raises(TypeError, match="cast"):
        tf.stack([tf.constant(1.0), tf.constant(1)])


def test_reductions():
    x = np.arange(24, dtype=f32).reshape(2, 3, 4)
    t = tf.constant(x)
    for name, ref in (("reduce_sum", np.sum), ("reduce_mean", np.mean), ("reduce_max", np.max),
                      ("reduce_min", np.min), ("reduce_prod", np.prod),
                      ("reduce_std", np.std), ("reduce_variance", np.var)):
        fn = getattr(tf, name, None) or getattr(tf.math, name)
        assert getattr(tf.math, name) is fn
        for axis in (None, 1, [0, 2], -1):
            for keepdims in (False, True):
                ax = tuple(axis) if isinstance(axis, list) else axis
                got = fn(t, axis=axis, keepdims=keepdims)
                want = ref(x, axis=ax, keepdims=keepdims)
                assert got.shape == want.shape and got.dtype == f32, (name, axis)
                close(got, want, rtol=1e-5)
    assert tf.reduce_mean(tf.constant([1, 2])).numpy() == 1          # integer mean, as TF
    assert tf.reduce_mean(tf.constant([1, 2])).dtype == tf.int32
    close(tf.math.reduce_logsumexp(t, axis=1), np.log(np.sum(np.exp(x), axis=1)), rtol=1e-5)
    assert tf.math.reduce_logsumexp(tf.constant([1000.0, 1000.0])).numpy() == np.float32(1000 + np.log(2))
    assert bool(tf.reduce_any(tf.constant([False, True]))) and not bool(tf.reduce_all(tf.constant([False, True])))
    assert tf.argmax(tf.constant([[1, 5], [7, 2]])).numpy().tolist() == [1, 0]


def test_elementwise_against_numpy():
    x = np.array([0.3, 1.2, 2.5], f32)
    y = np.array([1.5, 0.5, 2.0], f32)
    for name, ref in (("square", np.square), ("sqrt", np.sqrt), ("exp", np.exp), ("log", np.log),
                      ("abs", np.abs), ("tanh", np.tanh), ("sin", np.sin), ("cos", np.cos),
                      ("negative", np.negative), ("rsqrt", lambda a: 1 / np.sqrt(a)),
                      ("sigmoid", lambda a: 1 / (1 + np.exp(-a))),
                      ("log1p", np.log1p), ("expm1", np.expm1), ("reciprocal", np.reciprocal),
                      ("softplus", lambda a: np.log1p(np.exp(a)))):
        got = getattr(tf.math, name)(x)
        assert got.dtype == f32, name
        close(got, ref(x), rtol=1e-5)
    for name, ref in (("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
                      ("divide", np.divide), ("pow", np.power), ("maximum", np.maximum),
                      ("minimum", np.minimum),
                      ("squared_difference", lambda a, b: (a - b) ** 2)):
        fn = getattr(tf.math, name)
        close(fn(x, y), ref(x, y), rtol=1e-6)
        if hasattr(tf, name):
            close(getattr(tf, name)(x, y), ref(x, y), rtol=1e-6)
    assert tf.equal(x, x).numpy().all() and tf.less(x, y).numpy().tolist() == [True, False, False]
    # no overflow in the stable forms
    assert tf.math.sigmoid(tf.constant([-100.0, 100.0])).numpy().tolist() == [0.0, 1.0]
    assert np.isfinite(tf.math.softplus(tf.constant(100.0)).numpy())


def test_shapes_and_structure():
    x = tf.constant(np.arange(6.0, dtype=f32))
    assert tf.reshape(x, [2, -1]).shape == (2, 3)
    assert tf.transpose(tf.reshape(x, (2, 3))).shape == (3, 2)
    assert tf.transpose(tf.zeros((2, 3, 4)), perm=[2, 0, 1]).shape == (4, 2, 3)
    assert tf.expand_dims(x, 0).shape == (1, 6) and tf.squeeze(tf.zeros((1, 3, 1))).shape == (3,)
    assert tf.stack([x, x], axis=1).shape == (6, 2) and tf.concat([x, x], 0).shape == (12,)
    assert tf.stack([1.0, tf.constant(2.0)]).dtype == tf.float32
    assert tf.shape(tf.zeros((2, 3))).numpy().tolist() == [2, 3]
    assert tf.size(tf.zeros((2, 3))).numpy() == 6 and tf.rank(tf.zeros((2, 3))).numpy() == 2
    close(tf.where(x > 2, x, tf.zeros_like(x)), [0, 0, 0, 3, 4, 5])
    close(tf.gather(x, [5, 0]), [5, 0])
    close(tf.clip_by_value(x, 1.0, 4.0), [1, 1, 2, 3, 4, 4])
    assert tf.is_tensor(x) and not tf.is_tensor(np.ones(1))


def test_linalg_and_nn():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], f32)
    b = np.array([[0.5, -1.0], [2.0, 1.0]], f32)
    close(tf.linalg.matmul(a, b), a @ b)
    close(tf.matmul(a, b, transpose_b=True), a @ b.T)
    close(tf.linalg.matmul(a, b, transpose_a=True), a.T @ b)
    with pytest.raises(ValueError, match="2 dimensions"):
        tf.linalg.matmul(a[0], b)
    close(tf.linalg.matvec(a, b[0]), a @ b[0])
    close(tf.linalg.trace(a), 5.0)
    close(tf.linalg.det(a), -2.0, rtol=1e-5)
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]], f32)
    sm = tf.nn.softmax(logits)
    e = np.exp(logits - logits.max(1, keepdims=True))
    close(sm, e / e.sum(1, keepdims=True))
    shifted = logits - logits.max(1, keepdims=True)
    close(tf.nn.log_softmax(logits), shifted - np.log(np.exp(shifted).sum(1, keepdims=True)), rtol=1e-5)
    assert np.isfinite(tf.nn.log_softmax(logits).numpy()[1, :2]).all()
    close(tf.nn.softmax(logits, axis=0).numpy().sum(0), [1, 1, 1])
    close(tf.nn.relu([-1.0, 0.0, 2.0]), [0, 0, 2])
    close(tf.nn.sigmoid(0.0), 0.5)


def test_gradients_through_tf_ops_match_jitgrad_grad():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 4))
    w0 = rng.normal(size=(4, 2))

    def loss_np(w):
        z = x0 @ w
        z = np.where(z > 0, z, 0.0)
        e = np.exp(z - np.max(z, axis=1, keepdims=True))
        p = e / np.sum(e, axis=1, keepdims=True)
        return np.mean(np.log(p[:, 0])) + np.sum(np.tanh(w) ** 2)

    w = tf.Variable(w0)
    with tf.GradientTape() as tape:
        z = tf.nn.relu(tf.linalg.matmul(x0, w))
        p = tf.nn.softmax(z)
        loss = tf.reduce_mean(tf.math.log(p[:, 0])) + tf.reduce_sum(tf.square(tf.tanh(w)))
    g = tape.gradient(loss, w)
    close(loss, loss_np(w0), rtol=1e-12)
    close(g, jitgrad.grad(loss_np)(w0), rtol=1e-10)
    # log_softmax and the cross entropies differentiate as their formulas
    with tf.GradientTape() as tape:
        ls = tf.nn.log_softmax(tf.linalg.matmul(x0, w))
        ce = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(np.eye(3, 2), tf.matmul(x0, w)))
    gls, gce = tape.gradient([tf.reduce_sum(ls[:, 1]), ce], [w, w])
    assert gls is not None and gce is not None


def test_dataset():
    ds = tf.data.Dataset.from_tensor_slices(([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [1, 2, 3]))
    els = list(ds)
    assert len(els) == 3 and els[0][0].dtype == tf.float32 and els[0][1].dtype == tf.int32
    b = list(ds.batch(2))
    assert [x.shape for x, _ in b] == [(2, 2), (1, 2)]
    assert len(list(ds.batch(2, drop_remainder=True))) == 1
    assert [int(y) for _, y in ds.map(lambda x, y: (x, y * 10)).take(2)] == [10, 20]
    assert list(ds.as_numpy_iterator())[2][1] == 3
    d = tf.data.Dataset.from_tensor_slices({"a": np.arange(2.0)})
    assert [float(e["a"]) for e in d] == [0.0, 1.0]
    assert [int(i) for i, _ in ds.enumerate()] == [0, 1, 2]
    with pytest.raises(ValueError, match="length"):
        tf.data.Dataset.from_tensor_slices(([1.0, 2.0], [1.0]))


def test_namespace_names():
    for name in ("Variable", "GradientTape", "constant", "function", "stop_gradient",
                 "float32", "float64", "int32", "convert_to_tensor", "Tensor"):
        assert hasattr(tf, name), name
    assert tf.GradientTape is jitgrad.GradientTape and tf.function is jitgrad.function
    assert tf.keras.optimizers.SGD is jitgrad.optimizers.SGD
    assert tf.keras.optimizers.schedules.ExponentialDecay is jitgrad.optimizers.schedules.ExponentialDecay
    assert tf.autodiff.ForwardAccumulator is jitgrad.ForwardAccumulator


# ---------------------------------------------------------------------------
# jitgrad.function: a training step as one compiled function


def _problem():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], f32)
    y = np.array([[1.0], [2.0], [3.0]], f32)
    return x, y


def _trajectory(opt_factory, compiled, steps=4):
    w = tf.Variable(np.array([[0.5], [-0.3]], f32))
    b = tf.Variable(0.1)
    opt = opt_factory()
    x, y = _problem()

    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
        grads = tape.gradient(loss, [w, b])
        opt.apply_gradients(zip(grads, [w, b]))
        return loss

    f = jitgrad.function(step) if compiled else step
    losses = [f(x, y).numpy() for _ in range(steps)]
    return losses, w.numpy(), b.numpy(), int(opt.iterations), f


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("opt", [lambda: tf.keras.optimizers.SGD(0.01, momentum=0.9),
                                 lambda: tf.keras.optimizers.Adam(0.1)], ids=["sgd", "adam"])
def test_function_step_follows_the_eager_trajectory(opt, mode):
    with jitgrad.config(compile=mode):
        eager = _trajectory(opt, False)
        before = function_mod.trace_count
        compiled = _trajectory(opt, True)
    assert function_mod.trace_count - before == 1          # one trace for every step
    assert compiled[4].experimental_get_tracing_count() == 1
    for e, c in zip(eager[:3], compiled[:3]):
        # float32: the native code may round a last bit differently
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-7)
    assert compiled[3] == eager[3] == 4
    assert compiled[1].dtype == f32 and np.asarray(compiled[0][0]).dtype == f32


def test_function_retraces_when_a_python_argument_changes():
    v = tf.Variable(1.0)
    traces = []

    @jitgrad.function
    def scaled(x, k):
        traces.append(k)
        v.assign_add(x * k)
        return v.read_value()

    assert scaled(np.float32(1.0), 2.0).numpy() == 3.0
    assert scaled(np.float32(1.0), 2.0).numpy() == 5.0       # cached: no new trace
    assert scaled(np.float32(1.0), 3.0).numpy() == 8.0       # a new Python value traces again
    assert scaled(np.ones((), f64), 3.0).numpy() == 11.0     # a new dtype too
    assert traces == [2.0, 3.0, 3.0]
    assert scaled(x=np.float32(1.0), k=2.0).numpy() == 13.0  # keywords


def test_function_reads_the_variables_current_values():
    w = tf.Variable([1.0, 2.0])

    @jitgrad.function
    def total():
        return tf.reduce_sum(w)

    assert total().numpy() == 3.0
    w.assign([10.0, 20.0])
    assert total().numpy() == 30.0                             # state, not a constant


def test_function_state_includes_the_learning_rate_and_slots():
    w = tf.Variable([1.0, -1.0])
    opt = tf.keras.optimizers.SGD(0.1)

    @jitgrad.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * w)
        opt.apply_gradients(zip([tape.gradient(loss, w)], [w]))

    assert step() is None
    close(w, [0.8, -0.8])
    opt.learning_rate = 0.5                  # changed between calls: the compiled step sees it
    step()
    close(w, [0.0, 0.0])
    assert int(opt.iterations) == 2


def test_function_creates_variables_on_its_first_trace_only():
    @jitgrad.function
    def counter(x):
        c = tf.Variable(0.0)          # made once, as in TensorFlow
        c.assign_add(x)
        return c.read_value()

    assert counter(np.float32(1.0)).numpy() == 1.0
    assert counter(np.float32(1.0)).numpy() == 2.0
    with pytest.raises(ValueError, match="first trace"):
        counter(np.ones(2, f32))

    @jitgrad.function
    def bad(x):
        return tf.Variable(x * 2)

    with pytest.raises(ValueError, match="depend on the function's arguments"):
        bad(np.float32(1.0))


def test_function_errors_are_clear():
    with pytest.raises(NotImplementedError, match="input_signature"):
        jitgrad.function(lambda x: x, input_signature=[None])
    with pytest.raises(TypeError, match="callable"):
        jitgrad.function(3)

    @jitgrad.function
    def branch(x):
        return x if x > 0 else -x

    with pytest.raises(jitgrad.TracerBoolError, match="np.where"):
        branch(np.float32(1.0))

    @jitgrad.function
    def returns_object(x):
        return object()

    with pytest.raises(TypeError, match="returned a object"):
        returns_object(np.float32(1.0))
    v = tf.Variable(1.0)
    with pytest.raises(TypeError, match="jitgrad.function"):
        jitgrad.jit(lambda x: v.assign(x).numpy())(np.float32(2.0))
    assert v.numpy() == 1.0


def test_function_as_a_method_and_nested():
    class Model:
        def __init__(self):
            self.w = tf.Variable(2.0)

        @jitgrad.function
        def double(self):
            self.w.assign(self.w * 2.0)
            return self.w.read_value()

    m = Model()
    assert m.double().numpy() == 4.0 and m.double().numpy() == 8.0 and m.w.numpy() == 8.0

    @jitgrad.function
    def outer():
        return m.double() + 1.0

    assert outer().numpy() == 17.0 and m.w.numpy() == 16.0


def test_function_inside_a_tape_runs_eagerly_so_gradients_flow():
    w = tf.Variable(3.0)

    @jitgrad.function
    def square():
        return w * w

    square()                                   # compiled once outside any tape
    with tf.GradientTape() as tape:
        y = square()
    assert tape.gradient(y, w).numpy() == 6.0


def test_function_inside_jit_inlines():
    @jitgrad.function
    def f(x):
        return tf.reduce_sum(tf.square(x))

    g = jitgrad.jit(lambda x: f(x).numpy() * 2)
    close(g(np.array([1.0, 2.0])), 10.0)
    close(jitgrad.grad(lambda x: f(x).numpy())(np.array([1.0, 2.0])), [2.0, 4.0])


# ---------------------------------------------------------------------------
# NumPy and SciPy take the tape's results as they are


def test_numpy_functions_of_unrecorded_tensors_give_numpy_values():
    t = jitgrad.constant([1.0, 2.0])
    assert type(np.sum(t)) is np.float32 and type(np.sin(t)) is np.ndarray
    assert type(np.atleast_1d(t)) is np.ndarray
    assert isinstance(t + 1, jitgrad.Tensor) and isinstance(t.sum(), jitgrad.Tensor)
    assert isinstance(tf.reduce_sum(t), jitgrad.Tensor)       # TensorFlow's functions: Tensors
    w = jitgrad.Variable([1.0, 2.0])
    with jitgrad.GradientTape() as tape:
        y = np.sum(np.sin(w))          # recorded: a Tensor, so the tape can differentiate it
        c = np.sum(np.sin(t))          # recorded by no tape: a NumPy value
    assert isinstance(y, jitgrad.Tensor) and type(c) is np.float32
    close(tape.gradient(y, w), np.cos([1.0, 2.0]))


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "CG", "SLSQP", "Newton-CG"])
def test_scipy_minimize_takes_tape_gradients(method):
    from scipy import optimize

    def value_and_gradient(x):
        v = jitgrad.Variable(x)
        with jitgrad.GradientTape() as tape:
            y = np.sum((v - np.arange(3.0)) ** 2) + np.sum(v ** 4)
        return y, tape.gradient(y, v)

    r = optimize.minimize(lambda x: float(value_and_gradient(x)[0]), np.zeros(3),
                          jac=lambda x: value_and_gradient(x)[1], method=method)
    assert r.success
    g = 2 * (r.x - np.arange(3.0)) + 4 * r.x ** 3
    assert np.max(np.abs(g)) < 1e-3          # SLSQP stops at its own tolerance


def test_function_with_jacobians_higher_order_and_forward_mode():
    x = tf.Variable([1.0, 2.0])

    @jitgrad.function
    def derivatives():
        with tf.GradientTape(persistent=True) as t2:
            with tf.GradientTape() as t1:
                y = tf.reduce_sum(x ** 3)
            g = t1.gradient(y, x)
            z = x * x
            zb = tf.reshape(z, [2, 1])
        with tf.autodiff.ForwardAccumulator(x, np.ones(2, f32)) as acc:
            w = tf.reduce_sum(x ** 2)
        return g, t2.gradient(g, x), t2.jacobian(z, x), t2.batch_jacobian(zb, x), acc.jvp(w)

    g, h, j, bj, d = derivatives()
    close(g, [3.0, 12.0])
    close(h, [6.0, 12.0])
    close(j, np.diag([2.0, 4.0]))
    close(bj, [[2.0], [4.0]])
    close(d, 6.0)


def test_nan_and_unsupported_values():
    r = tf.nn.relu(tf.constant([np.nan, -1.0, 0.0, 2.0])).numpy()
    assert np.isnan(r[0]) and r[1:].tolist() == [0.0, 0.0, 2.0]
    assert np.isnan(tf.nn.relu6(np.float32(np.nan)).numpy())
    assert tf.nn.relu6([7.0, 3.0]).numpy().tolist() == [6.0, 3.0]
    close(tf.nn.softmax(tf.constant([-np.inf, 1.0])), [0.0, 1.0])
    x = tf.Variable([-1.0, 0.0, 3.0])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.nn.relu(x))
    assert tape.gradient(y, x).numpy().tolist() == [0.0, 0.0, 1.0]   # 0 at 0, as TensorFlow
    with pytest.raises(TypeError, match="not on"):
        tf.constant("abc")


def test_jit_returns_the_tapes_tensors_as_arrays():
    def step(w, x):
        w_t = jitgrad.constant(w)
        with jitgrad.GradientTape() as tape:
            tape.watch(w_t)
            loss = tf.reduce_sum(tf.square(tf.matmul(x, w_t)))
        return loss, tape.gradient(loss, w_t)

    w, x = np.ones((2, 1)), np.array([[1.0, 2.0]])
    loss, g = jitgrad.jit(step)(w, x)
    assert type(g) is np.ndarray and type(loss) is np.float64    # jit returns NumPy values
    close(loss, 9.0)
    close(g, [[6.0], [12.0]])
    ev_loss, ev_g = step(w, x)
    assert isinstance(ev_g, jitgrad.Tensor)
    close(ev_g, g)


def test_function_first_calls_from_threads_trace_once():
    import threading
    v = tf.Variable(0.0)
    opt = tf.keras.optimizers.Adam(0.1)        # creates its slots on the first trace

    @jitgrad.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(v - x))
        opt.apply_gradients(zip([tape.gradient(loss, v)], [v]))

    barrier, errors = threading.Barrier(4), []

    def work():
        barrier.wait()
        try:
            step(np.float32(1.0))
        except Exception as exc:                # noqa: BLE001 (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and step.experimental_get_tracing_count() == 1
