"""Property-based testing with jitgrad: throwaway functions never compile in
"auto" mode, their caches die with them, jitgrad.testing's strategies, and
check_grads naming the order, mode and entry that failed."""
import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given, settings

import jitgrad
from jitgrad.api import functions as api
from jitgrad.backend import compile as native
from jitgrad.backend import executable as runtime
from jitgrad.testing import array_tuples, arrays, check_grads, float_dtypes, shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def compiles(monkeypatch):
    """The IRs compiled while the test runs."""
    seen = []
    real = runtime.compile_ir
    monkeypatch.setattr(runtime, "compile_ir", lambda ir, *a: seen.append(ir) or real(ir, *a))
    jitgrad.wait_for_compiles()
    return seen


# -- auto mode: functions called a few times never compile


def test_throwaway_functions_of_property_tests_never_compile(compiles):
    rng = np.random.default_rng(0)
    with jitgrad.config(compile="auto"):
        for k in range(15):
            x = rng.uniform(-1, 1, (k % 3) + 2)
            check_grads(lambda x: np.sum(np.tanh(x) * x ** 2 + k), (x,), order=2)
            jitgrad.grad(lambda x: np.sum(np.sin(x) * k))(x)
        jitgrad.wait_for_compiles()
    assert compiles == []


def test_a_hot_signature_still_compiles(compiles):
    g = jitgrad.grad(lambda x: np.sum(np.sin(x) * 1.0625))
    x = np.linspace(0, 1, 5)
    with jitgrad.config(compile="auto", hot_seconds=0.002):
        (entry,) = [None]
        for _ in range(5000):
            g(x)
            entry = next(iter(g._staged.cache.values()))
            if entry.exe.queued:
                break
        jitgrad.wait_for_compiles()
        assert entry.exe.fn is not None and entry.exe.seconds >= 0.002
    np.testing.assert_allclose(g(x), 1.0625 * np.cos(x), rtol=1e-14)
    assert len(compiles) == 1


def test_hot_seconds_setting_is_checked():
    for bad in (-1.0, "0.1", True, float("nan")):
        with pytest.raises(ValueError, match="hot_seconds must be a number of seconds >= 0"):
            jitgrad.config(hot_seconds=bad)
    with jitgrad.config(hot_seconds=1):
        assert jitgrad.config.hot_seconds == 1.0


# -- caches die with their functions


def test_per_function_caches_die_with_their_functions(frozen_heap):
    def executables():
        gc.collect()
        return sum(isinstance(o, runtime.Executable) for o in gc.get_objects())
    before = executables()
    refs = []
    x = np.linspace(-1, 1, 3)
    for k in range(10):
        f = lambda x, k=k: np.sum(np.tanh(x) * x ** 2 * (k + 1))     # noqa: E731
        v = lambda x, k=k: np.sin(x) * (k + 1)                     # noqa: E731
        check_grads(f, (x,), order=2)
        jitgrad.grad(f)(x), jitgrad.jit(f)(x), jitgrad.hessian(f)(x), jitgrad.vmap(v)(x[:, None])
        jitgrad.jvp(v, (x,), (x,)), jitgrad.vjp(v, x)[1](x), jitgrad.hvp(f, (x,), (x,))
        jitgrad.linearize(v, x)[1](x)
        refs += [weakref.ref(f), weakref.ref(v)]
        del f, v
    gc.collect()
    assert all(r() is None for r in refs), "a transform kept its function alive"
    assert executables() <= before


# -- jitgrad.testing strategies


@settings(max_examples=30, deadline=None)
@given(shapes(min_dims=1, max_dims=3, max_side=3), float_dtypes())
def test_shapes_and_dtypes(shape, dtype):
    assert 1 <= len(shape) <= 3 and all(1 <= s <= 3 for s in shape)
    assert dtype in (np.float64, np.float32)


@settings(max_examples=30, deadline=None)
@given(arrays(domain="positive"), arrays(np.float32, (2, 3), domain="nonzero"),
       arrays(np.float64, shapes(max_dims=1), domain="unit"))
def test_arrays_lie_in_their_domains(pos, nonzero, unit):
    assert np.all(pos >= 0.25) and np.all(pos <= 2.0) and pos.dtype.kind == "f"
    assert nonzero.dtype == np.float32 and nonzero.shape == (2, 3) and np.all(np.abs(nonzero) >= 0.25)
    assert np.all(np.abs(unit) <= 0.9)


@settings(max_examples=20, deadline=None)
@given(array_tuples(2, domain="positive"))
def test_property_check_grads_on_random_shapes_and_dtypes(xy):
    x, y = xy
    assert x.shape == y.shape and x.dtype == y.dtype
    check_grads(lambda a, b: np.log(a) * b + np.sqrt(a * b), (x, y), order=2)


def test_strategies_reject_an_unknown_domain():
    with pytest.raises(ValueError, match="domain must be one of 'any', 'positive'"):
        arrays(np.float64, (2,), domain="negative")


def test_jitgrad_testing_imports_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import numpy as np, jitgrad, jitgrad.testing as t\n"
            "t.check_grads(np.sin, (np.ones(2),))\n"
            "try:\n    t.arrays\nexcept ImportError as e:\n    print('ImportError:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT, "JITGRAD_COMPILE": "never"})
    assert proc.returncode == 0, proc.stderr
    assert "ImportError: jitgrad.testing.arrays needs Hypothesis" in proc.stdout
    assert "pip install hypothesis" in proc.stdout


# -- check_grads says what failed


def _wrong_at(index, factor, second_order=False):
    """exp with its derivative scaled by ``factor`` at ``index``, or (with
    ``second_order``) a right first derivative whose own derivative is zero."""
    @jitgrad.custom_jvp
    def f(x):
        return np.exp(x)

    @f.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        if second_order:
            return np.exp(x), jitgrad.stop_gradient(np.exp(x)) * t
        return np.exp(x), np.exp(x) * t * np.where(np.arange(x.size) == index, factor, 1.0)
    return f


def test_check_grads_names_the_forward_entry():
    with pytest.raises(AssertionError, match=r"forward mode \(JVP\) failed at derivative order 1, "
                                             r"output entry \(2,\):\n  analytic"):
        check_grads(_wrong_at(2, 1.1), (np.linspace(0, 1, 4),), order=1, modes=("fwd",))


def test_check_grads_names_the_reverse_entry():
    with pytest.raises(AssertionError, match=r"reverse mode \(VJP\) failed at derivative order 1, "
                                             r"argument entry \(1,\) of the cotangent"):
        check_grads(_wrong_at(1, 0.8), (np.linspace(0, 1, 4),), order=1, modes=("rev",))


def test_check_grads_names_the_order_and_the_output_leaf():
    f = _wrong_at(0, 1.0, second_order=True)
    check_grads(f, (np.linspace(0, 1, 3),), order=1)
    with pytest.raises(AssertionError, match="failed at derivative order 2"):
        check_grads(f, (np.linspace(0, 1, 3),), order=2)
    g = _wrong_at(1, 1.5)
    with pytest.raises(AssertionError, match=r"output 1 entry \(1,\)"):
        check_grads(lambda x: (np.sin(x), g(x)), (np.linspace(0, 1, 3),), order=1, modes=("fwd",))
    with pytest.raises(AssertionError, match=r"argument 1 entry \(1,\)"):
        check_grads(lambda x, y: np.sin(x) + g(y), (np.ones(3), np.linspace(0, 1, 3)), order=1,
                    modes=("rev",))


def test_readme_property_example_runs_with_the_default_deadline():
    # the README's example, on the interpreter tier (what property tests run in auto mode)
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays as np_arrays

    @settings(max_examples=20)
    @given(np_arrays(np.float64, (3,), elements=st.floats(-2, 2)))
    def test_tanh_model(x):
        check_grads(lambda x: np.sum(np.tanh(x) * x ** 2), (x,), order=2)
    before = api.trace_count
    test_tanh_model()
    assert api.trace_count > before
    assert not native._queue.jobs
