"""The TensorFlow-style tape API: GradientTape, Variable, ForwardAccumulator, optimizers.

Reference numbers are TensorFlow 2.21's (shared/reference/seeds_reference.md).
"""
import numpy as np
import pytest

import jitgrad
from jitgrad import ForwardAccumulator, GradientTape, Variable, constant
from jitgrad.tape import derivatives as tape_mod
from jitgrad.optimizers import SGD, Adam

f32 = np.float32


@pytest.fixture(autouse=True)
def _interpret():
    with jitgrad.config(compile="never"):
        yield


def close(a, b, rtol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=0)


# ---------------------------------------------------------------------------
# The seeds' examples


def test_seed001_two_variables():
    w1, w2 = Variable(5.), Variable(3.)
    with GradientTape() as tape:
        z = 3 * w1 ** 2 + 2 * w1 * w2
    g = tape.gradient(z, [w1, w2])
    assert isinstance(g, list) and len(g) == 2
    close(g, [36.0, 10.0])
    assert all(np.asarray(x).dtype == f32 for x in g)


def test_seed000_intermediate_value():
    x = constant(np.ones((2, 2), f32))
    with GradientTape() as t:
        t.watch(x)
        y = np.sum(x)
        z = y * y
    dz_dy = t.gradient(z, y)
    assert dz_dy == 8.0 and np.asarray(dz_dy).dtype == f32


def test_seed000_persistent():
    x = constant(3.0)
    with GradientTape(persistent=True) as t:
        t.watch(x)
        y = x * x
        z = y * y
    assert t.gradient(z, x) == 108.0
    assert t.gradient(y, x) == 6.0


def _linear_loss(inputs, weights, y_true):
    output = inputs @ weights
    return (y_true - output) ** 2          # squared_difference


def test_seed003_variable_weights():
    inputs, y_true = constant([[1.0, 2.0]]), constant(0.75)
    weights = Variable([[0.25], [0.15]])
    with GradientTape() as tape:
        loss = _linear_loss(inputs, weights, y_true)
    g = tape.gradient(loss, weights)
    assert g.dtype == f32 and g.shape == (2, 1)
    close(g, [[-0.39999998], [-0.79999995]])


def test_seed003_constant_weights():
    inputs, y_true = constant([[1.0, 2.0]]), constant(0.75)
    weights = constant([[0.25], [0.15]])
    with GradientTape() as tape:
        loss = _linear_loss(inputs, weights, y_true)
    assert tape.gradient(loss, weights) is None          # constants are not watched
    with GradientTape(persistent=True) as tape:
        tape.watch(weights)
        loss = _linear_loss(inputs, weights, y_true)
    g1 = tape.gradient(loss, weights)
    g2 = tape.gradient(loss, weights)
    close(g1, [[-0.39999998], [-0.79999995]])
    close(g2, g1)


def test_seed003_training_loop():
    data = constant([[5.0, 2.0], [3.0, 3.0], [4.0, 1.5]])
    targets = constant([0.75, 0.5, 0.4])
    weights = Variable([[0.55], [0.75]])
    lr = 0.01
    for point, y_true in zip(data, targets):
        with GradientTape() as tape:
            output = np.reshape(point, (1, 2)) @ weights
            loss = (y_true - output) ** 2
        g = tape.gradient(loss, weights)
        weights.assign_sub(lr * g)
    assert weights.dtype == f32
    close(weights.numpy(), [[0.02995201], [0.47385702]])


def test_seed004_examples():
    x = Variable(3.0)
    with GradientTape() as tape:
        y = x ** 2
    assert tape.gradient(y, x) == 6.0

    x1, x2 = Variable(5.0), Variable(3.0)
    with GradientTape() as tape:
        y = x1 ** 2 + x2 ** 3
    close(tape.gradient(y, [x1, x2]), [10.0, 27.0])


def test_seed004_second_derivative():
    x = Variable(1.0)
    with GradientTape() as t2:
        with GradientTape() as t1:
            y = x * x
        dy_dx = t1.gradient(y, x)
    d2y_dx2 = t2.gradient(dy_dx, x)
    assert dy_dx.numpy() == 2.0 and d2y_dx2 == 2.0


def test_seed004_sgd():
    x = Variable(-1.0)
    opt = SGD(learning_rate=0.1)
    for _ in range(100):
        with GradientTape() as tape:
            loss = x ** 2
        grads = tape.gradient(loss, [x])
        opt.apply_gradients(zip(grads, [x]))
    assert x.numpy().dtype == f32
    close(x.numpy(), -2.0370368e-10)


# ---------------------------------------------------------------------------
# Variables and constants


def test_dtypes_follow_tensorflow():
    assert Variable(5.).dtype == f32 and constant(5.).dtype == f32
    assert Variable([[1., 2.]]).dtype == f32 and Variable(5).dtype == np.int32
    assert Variable(np.ones(3)).dtype == np.float64
    assert constant([1, 2], dtype=np.float64).dtype == np.float64


def test_variable_operations():
    v = Variable([[1., 2.], [3., 4.]], name="v")
    w = Variable(np.eye(2, dtype=f32))
    # NumPy's functions of values no tape records give NumPy values (as for
    # TensorFlow's eager tensors); methods and operators give Tensors
    assert np.sum(v) == 10.0 and type(np.sum(v)) is np.float32
    assert v.sum().numpy() == 10.0
    close(v @ w, v.numpy())
    close(v ** 2, [[1, 4], [9, 16]])
    close(np.exp(v), np.exp(v.numpy()))
    close(-v + 1, 1 - v.numpy())
    close(v[1, :], [3, 4])
    assert v.shape == (2, 2) and v.T.shape == (2, 2) and v.sum(axis=0).shape == (2,)
    v.assign(np.zeros((2, 2)))
    v.assign_add([[1., 1.], [1., 1.]])
    v.assign_sub(0.5)
    close(v.numpy(), 0.5 * np.ones((2, 2)))
    assert v.dtype == f32
    with pytest.raises(ValueError):
        v.assign(np.zeros(3))
    assert "jitgrad.Variable 'v:0'" in repr(v)


# ---------------------------------------------------------------------------
# TensorFlow's rules


def test_unconnected_none_and_zero():
    x, y = Variable(2.0), Variable([1.0, 2.0])
    with GradientTape(persistent=True) as tape:
        z = x * 3
    assert tape.gradient(z, y) is None
    g = tape.gradient(z, [x, y], unconnected_gradients="zero")
    close(g[0], 3.0)
    assert np.asarray(g[1]).dtype == f32 and np.all(np.asarray(g[1]) == 0)
    # a value computed outside the tape is not connected either
    c = constant(2.0)
    assert tape.gradient(z, c) is None


def test_non_persistent_second_call_raises():
    x = Variable(2.0)
    with GradientTape() as tape:
        y = x * x
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(y, x)


def test_watch_accessed_variables_false():
    a, b = Variable(2.0), Variable(3.0)
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(a)
        y = a * b
    assert tape.watched_variables() == (a,)
    ga, gb = tape.gradient(y, [a, b])
    assert ga == 3.0 and gb is None


def test_non_trainable_variable_not_watched():
    a, b = Variable(2.0), Variable(3.0, trainable=False)
    with GradientTape() as tape:
        y = a * b
    ga, gb = tape.gradient(y, [a, b])
    assert ga == 3.0 and gb is None


def test_stop_recording_and_reset():
    x = Variable(2.0)
    with GradientTape(persistent=True) as tape:
        y = x * x
        with tape.stop_recording():
            z = x * x * x             # not recorded
        w = y + z
    assert tape.gradient(w, x) == 4.0       # only through y
    assert tape.gradient(z, x) is None
    with GradientTape() as tape:
        y = x * x
        tape.reset()
        y = x * x * x
    assert tape.gradient(y, x) == 12.0


def test_watch_rejects_plain_arrays():
    with GradientTape() as tape:
        with pytest.raises(TypeError, match="constant"):
            tape.watch(np.ones(3))


def test_non_scalar_target_and_output_gradients():
    x = Variable([1.0, 2.0, 3.0])
    with GradientTape(persistent=True) as tape:
        y = x * x
        s = np.sum(y)
    close(tape.gradient(y, x), [2.0, 4.0, 6.0])               # sum of the elements
    close(tape.gradient(y, x, output_gradients=np.array([1., 0., 2.], f32)), [2.0, 0.0, 12.0])
    close(tape.gradient([y, s], x), [4.0, 8.0, 12.0])  # targets add up


def test_nested_sources():
    w, b = Variable([[1.0], [2.0]]), Variable(0.5)
    with GradientTape() as tape:
        loss = np.sum(np.tanh(constant([[1.0, -1.0]]) @ w + b))
    g = tape.gradient(loss, {"w": w, "b": b})
    assert set(g) == {"w", "b"} and g["w"].shape == (2, 1)
    ref_b = 1 - np.tanh(f32(-0.5)) ** 2
    close(g["b"], ref_b, rtol=1e-6)
    close(g["w"], [[ref_b], [-ref_b]], rtol=1e-6)


def test_gradient_matches_functional_grad():
    def f(w, x):
        return np.sum(np.sin(x @ w) ** 2) / 3.0
    rng = np.random.default_rng(0)
    w0, x0 = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
    w = Variable(w0)
    with GradientTape() as tape:
        y = f(w, constant(x0))
    close(tape.gradient(y, w), jitgrad.grad(f)(w0, x0), rtol=1e-12)


def test_third_order_nested():
    x = Variable(2.0)
    with GradientTape() as t3:
        with GradientTape() as t2:
            with GradientTape() as t1:
                y = x ** 3
            g1 = t1.gradient(y, x)
        g2 = t2.gradient(g1, x)
    g3 = t3.gradient(g2, x)
    assert (g1.numpy(), g2.numpy(), g3) == (12.0, 12.0, 6.0)


# ---------------------------------------------------------------------------
# Jacobians and forward mode


def _fd_jacobian(f, x, eps=1e-6):
    x = np.asarray(x, np.float64)
    y0 = np.asarray(f(x))
    jac = np.zeros(y0.shape + x.shape)
    for i in np.ndindex(x.shape):
        dx = np.zeros_like(x)
        dx[i] = eps
        jac[(...,) + i] = (np.asarray(f(x + dx)) - np.asarray(f(x - dx))) / (2 * eps)
    return jac


def test_jacobian_against_finite_differences():
    a = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])

    def f(x):
        return np.tanh(a @ x) * 2.0

    x0 = np.array([0.1, -0.2, 0.3])
    x = Variable(x0)
    with GradientTape() as tape:
        y = f(x)
    jac = tape.jacobian(y, x)
    assert jac.shape == (2, 3)
    np.testing.assert_allclose(jac, _fd_jacobian(f, x0), rtol=1e-6, atol=1e-9)


def test_batch_jacobian():
    w = np.array([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]])

    def f(x):
        return np.sin(x @ w.T)          # (B, 3) from (B, 2), examples independent

    x0 = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 0.5], [-0.7, 0.0]])
    x = constant(x0)
    with GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    bj = tape.batch_jacobian(y, x)
    assert bj.shape == (4, 3, 2)
    for b in range(4):
        np.testing.assert_allclose(bj[b], _fd_jacobian(lambda v: f(v[None])[0], x0[b]),
                                   rtol=1e-6, atol=1e-9)


def test_forward_accumulator_matches_jvp():
    def f(x):
        return np.exp(x) * np.sum(x ** 2)

    x0, t0 = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.5, -2.0])
    x = constant(x0)
    with ForwardAccumulator(x, t0) as acc:
        y = f(x)
    _, ref = jitgrad.jvp(f, (x0,), (t0,))
    close(acc.jvp(y), ref, rtol=1e-12)
    assert acc.jvp(constant(1.0)) is None


def test_hessian_vector_product_forward_over_reverse():
    def f(x):
        return np.sum(x ** 3)

    x0, v0 = np.array([1.0, 2.0]), np.array([1.0, -1.0])
    x = Variable(x0)
    with ForwardAccumulator(x, v0) as acc:
        with GradientTape() as tape:
            y = f(x)
        g = tape.gradient(y, x)
    close(acc.jvp(g), 6 * x0 * v0)          # H = diag(6x)


# ---------------------------------------------------------------------------
# Optimizers


def test_sgd_momentum_and_nesterov_closed_form():
    for nesterov in (False, True):
        p = Variable([1.0, -2.0])
        opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
        ref, vel = np.array([1.0, -2.0], f32), np.zeros(2, f32)
        for _ in range(3):
            with GradientTape() as tape:
                loss = np.sum(p ** 2)
            opt.apply_gradients(zip([tape.gradient(loss, p)], [p]))
            g = 2 * ref
            vel = f32(0.9) * vel - f32(0.1) * g
            ref = ref + (f32(0.9) * vel - f32(0.1) * g if nesterov else vel)
        close(p.numpy(), ref, rtol=1e-6)
    assert opt.iterations == 3


def test_adam_closed_form_and_functional():
    p = Variable([1.0, -2.0, 0.5])
    opt = Adam(learning_rate=0.01)
    ref, m, v = np.array([1.0, -2.0, 0.5], np.float64), 0.0, 0.0
    fopt = Adam(learning_rate=0.01)
    params = {"p": np.array([1.0, -2.0, 0.5], f32)}
    state = fopt.init(params)
    for t in range(1, 6):
        with GradientTape() as tape:
            loss = np.sum(np.sin(p))
        g = tape.gradient(loss, p)
        opt.apply_gradients([(g, p)])
        params, state = fopt.update({"p": np.cos(params["p"])}, state, params)
        gr = np.cos(ref)
        m = m + (gr - m) * 0.1
        v = v + (gr * gr - v) * 0.001
        alpha = 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        ref = ref - alpha * m / (np.sqrt(v) + 1e-7)
    close(p.numpy(), ref, rtol=1e-5)
    close(params["p"], p.numpy(), rtol=1e-6)
    assert params["p"].dtype == f32 and int(state["step"]) == 5


def test_whole_training_step_in_jit():
    opt = SGD(0.05, momentum=0.5)

    def step(w, x, y, state):
        w_t, x, y = constant(w), constant(x), constant(y)
        with GradientTape() as tape:
            tape.watch(w_t)
            loss = np.mean((x @ w_t - y) ** 2)
        g = tape.gradient(loss, w_t)
        w, state = opt.update(g, state, w)
        return w, state, loss.numpy()

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)).astype(f32), rng.normal(size=(8, 1)).astype(f32)
    w0 = np.zeros((3, 1), f32)
    jstep = jitgrad.jit(step)
    we, se = w0, opt.init(w0)
    wj, sj = w0, opt.init(w0)
    for _ in range(3):
        we, se, le = step(we, x, y, se)
        wj, sj, lj = jstep(wj, x, y, sj)
    close(wj, we, rtol=1e-5)
    close(lj, le, rtol=1e-5)
    ir = jitgrad.make_ir(jstep)(w0, x, y, opt.init(w0))
    assert "dot_general" in str(ir)          # one IR: forward, gradient and update


# ---------------------------------------------------------------------------
# The cache


def test_identical_steps_build_once():
    x = Variable(-1.0)
    opt = SGD(0.1)
    before = tape_mod.build_count
    for i in range(100):
        with GradientTape() as tape:
            loss = x ** 2 + 3 * x
        g = tape.gradient(loss, [x])
        opt.apply_gradients(zip(g, [x]))
        if i == 0:
            n_cached = len(tape_mod._CACHE)
    assert tape_mod.build_count - before == 1
    assert len(tape_mod._CACHE) == n_cached
    close(x.numpy(), -1.5, rtol=1e-5)        # the minimum of x**2 + 3x


def test_changing_data_reuses_executable():
    w = Variable([[0.5], [0.5]])
    rng = np.random.default_rng(0)
    before = tape_mod.build_count
    for _ in range(20):
        xb, yb = constant(rng.normal(size=(1, 2))), constant(rng.normal())
        with GradientTape() as tape:
            loss = (yb - xb @ w) ** 2
        g = tape.gradient(loss, w)
        ref = -2 * (yb.numpy() - xb.numpy() @ w.numpy()) * xb.numpy().T
        close(g, ref, rtol=1e-5)
    assert tape_mod.build_count - before == 1


def test_reverse_over_forward():
    x = Variable([1.0, 2.0])
    with GradientTape() as tape:
        with ForwardAccumulator(x, np.array([1.0, 0.0], f32)) as acc:
            y = np.sum(x ** 3)
        d = acc.jvp(y)                      # 3 x0^2, recorded on the tape
    close(d.numpy(), 3.0)
    close(tape.gradient(d, x), [6.0, 0.0])  # d/dx (3 x0^2)


def test_assigning_a_tracer_to_an_outside_variable_raises():
    v = Variable(1.0)

    @jitgrad.jit
    def bad(a):
        v.assign(a)
        return a

    with pytest.raises(TypeError, match="escape"):
        bad(np.float32(2.0))


def test_tape_advanced_indexing():
    x = jitgrad.Variable(np.arange(5.0))
    for idx, want in ((np.array([0, 0, 3]), [0.0, 0.0, 0.0, 6.0, 0.0]),
                      (np.array([4, 1, 1]), [0.0, 4.0, 0.0, 0.0, 8.0])):   # new indices, same recording
        with jitgrad.GradientTape() as tape:
            y = np.sum(x[idx] ** 2)
        np.testing.assert_array_equal(tape.gradient(y, x), want)
    with jitgrad.GradientTape() as tape:
        y = np.sum(x[x > 2] ** 2)          # a mask from a recorded comparison
    np.testing.assert_array_equal(tape.gradient(y, x), [0.0, 0.0, 0.0, 6.0, 8.0])
