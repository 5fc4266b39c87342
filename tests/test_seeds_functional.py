"""The seed examples with the functional API; reference numbers are TensorFlow's.

Each example runs on the interpreter and on compiled code."""
import numpy as np
import pytest

import jitgrad

f32 = np.float32

pytestmark = pytest.mark.parametrize("mode", ["never", "always"])


@pytest.fixture(autouse=True)
def _mode(mode):
    with jitgrad.config(compile=mode):
        yield


def close(actual, expected, rtol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=0)


def f(w1, w2):
    return 3 * w1 ** 2 + 2 * w1 * w2


def test_two_variables_float64(mode):
    dw1, dw2 = jitgrad.grad(f, argnums=(0, 1))(5.0, 3.0)
    assert isinstance(dw1, np.float64) and isinstance(dw2, np.float64)
    assert (dw1, dw2) == (36.0, 10.0)


def test_two_variables_float32(mode):
    dw1, dw2 = jitgrad.grad(f, argnums=(0, 1))(f32(5.0), f32(3.0))
    assert isinstance(dw1, np.float32) and isinstance(dw2, np.float32)
    assert dw1 == f32(36.0) and dw2 == f32(10.0)


def test_sum_then_square(mode):
    x = np.ones((2, 2), f32)
    y = np.sum(x)
    dz_dy = jitgrad.grad(lambda y: y * y)(y)
    assert dz_dy == 8.0 and dz_dy.dtype == f32
    # the same through x: dz/dx = 2 y everywhere
    g = jitgrad.grad(lambda x: np.sum(x) * np.sum(x))(x)
    assert g.dtype == f32 and np.all(g == 8.0)


def test_chained_squares(mode):
    y_of = lambda x: x * x  # noqa: E731

    def z_of(x):
        y = y_of(x)
        return y * y
    assert jitgrad.grad(z_of)(3.0) == 108.0
    assert jitgrad.grad(y_of)(3.0) == 6.0


def linear_loss(weights, inputs, target):
    output = inputs @ weights
    return np.sum((target - output) ** 2)


def test_linear_model_gradient(mode):
    inputs = np.array([[1.0, 2.0]], f32)
    weights = np.array([[0.25], [0.15]], f32)
    g = jitgrad.grad(linear_loss)(weights, inputs, f32(0.75))
    assert g.dtype == f32 and g.shape == (2, 1)
    close(g, np.array([[-0.39999998], [-0.79999995]], f32))


def test_linear_model_training_loop(mode):
    data = np.array([[5.0, 2.0], [3.0, 3.0], [4.0, 1.5]], f32)
    targets = np.array([0.75, 0.5, 0.4], f32)
    weights = np.array([[0.55], [0.75]], f32)
    lr = f32(0.01)
    step = jitgrad.grad(linear_loss)
    for point, target in zip(data, targets):
        weights = weights - lr * step(weights, point[None, :], target)
        assert weights.dtype == f32
    close(weights, np.array([[0.02995201], [0.47385702]], f32))


def test_linear_model_training_loop_value_and_grad(mode):
    data = np.array([[5.0, 2.0], [3.0, 3.0], [4.0, 1.5]], f32)
    targets = np.array([0.75, 0.5, 0.4], f32)
    weights = np.array([[0.55], [0.75]], f32)
    step = jitgrad.value_and_grad(linear_loss)
    losses = []
    for point, target in zip(data, targets):
        loss, g = step(weights, point[None, :], target)
        losses.append(loss)
        weights = weights - f32(0.01) * g
    assert all(isinstance(l, np.float32) for l in losses)
    close(losses[0], f32((0.75 - (5 * 0.55 + 2 * 0.75)) ** 2), rtol=1e-6)
    close(weights, np.array([[0.02995201], [0.47385702]], f32))


def test_square_at_3(mode):
    assert jitgrad.grad(lambda x: x ** 2)(3.0) == 6.0


def test_two_inputs_powers(mode):
    g1, g2 = jitgrad.grad(lambda x1, x2: x1 ** 2 + x2 ** 3, argnums=(0, 1))(5.0, 3.0)
    assert (g1, g2) == (10.0, 27.0)


def test_second_derivative(mode):
    square = lambda x: x * x  # noqa: E731
    assert jitgrad.grad(square)(1.0) == 2.0
    assert jitgrad.grad(jitgrad.grad(square))(1.0) == 2.0


def test_sgd_on_square_float32(mode):
    x = f32(-1.0)
    dloss = jitgrad.grad(lambda x: x ** 2)
    for _ in range(100):
        x = x - f32(0.1) * dloss(x)
        assert isinstance(x, np.float32)
    close(x, f32(-2.0370368e-10), rtol=1e-6)
