"""The autograd shim's check (perf/agshim/autograd/test_util.py) can fail:
it flags wrong first-order rules in each mode, rules wrong only at second
order (forward over forward, reverse over reverse), complex functions are
checked as real maps, and integer arguments are refused rather than checked
with zero directions.  No download: the module is loaded from its file."""
import importlib.util
import os

import numpy as np
import pytest

import jitgrad

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "perf", "agshim", "autograd", "test_util.py")
_spec = importlib.util.spec_from_file_location("agshim_test_util", _PATH)
U = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(U)


@pytest.fixture(autouse=True)
def _raise_mode(monkeypatch):
    monkeypatch.delenv("AGSHIM_RECORD", raising=False)


def _jvp_rule(first_ok=True, second_ok=True):
    """sin with a custom JVP rule, wrong at first or at second order only."""
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def rule(primals, tangents):
        (x,), (t,) = primals, tangents
        slope = np.cos(x) if second_ok else np.cos(jitgrad.stop_gradient(x))
        return np.sin(x), (slope if first_ok else 1.1 * slope) * t
    return f


def _vjp_rule(first_ok=True, second_ok=True):
    @jitgrad.custom_vjp
    def f(x):
        return np.sin(x)

    def fwd(x):
        return np.sin(x), x

    def bwd(x, g):
        slope = np.cos(x) if second_ok else np.cos(jitgrad.stop_gradient(x))
        return ((slope if first_ok else 1.1 * slope) * g,)
    f.defvjp(fwd, bwd)
    return f


X = np.array([0.3, -1.2, 0.7])


def test_right_rules_pass_to_third_order():
    U.check_grads(lambda x: np.sum(_jvp_rule()(x) * x), order=3)(X)
    U.check_grads(lambda x, y: _vjp_rule()(x) * y, (0, 1), modes=["rev"])(X, 2.0)
    U.combo_check(np.sum, (0,))([X, X[:2]], axis=[None, 0])


@pytest.mark.parametrize("modes", [["fwd"], ["rev"]])
def test_wrong_first_order_jvp_rule_fails_in_each_mode(modes):
    with pytest.raises(AssertionError, match="order 1"):
        U.check_grads(_jvp_rule(first_ok=False), modes=modes, order=1)(X)


def test_wrong_vjp_rule_fails():
    with pytest.raises(AssertionError, match="reverse mode"):
        U.check_grads(_vjp_rule(first_ok=False), modes=["rev"], order=1)(X)


def test_rules_wrong_only_at_second_order_fail_at_order_two():
    U.check_grads(_jvp_rule(second_ok=False), order=1)(X)
    with pytest.raises(AssertionError, match=r"checking jvp\(f\)"):
        U.check_grads(_jvp_rule(second_ok=False), modes=["fwd"])(X)
    # reverse over reverse: the VJP function's own derivatives
    U.check_grads(_vjp_rule(second_ok=False), modes=["rev"], order=1)(X)
    with pytest.raises(AssertionError, match=r"checking vjp\(f\)"):
        U.check_grads(_vjp_rule(second_ok=False), modes=["rev"])(X)


def test_only_the_named_argument_is_checked():
    f = lambda x, y: _jvp_rule(first_ok=False)(y) + x  # noqa: E731
    U.check_grads(f, 0)(X, X)
    with pytest.raises(AssertionError):
        U.check_grads(f, 1, order=1)(X, X)


def test_complex_functions_are_checked_as_real_maps():
    z = np.array([0.5 + 0.2j, -0.3 + 1.0j])
    g, args = U._as_real(lambda x: x[0] * x[1], (z, 2.0), z)
    assert len(args) == 3 and all(not np.iscomplexobj(a) for a in args)
    re, im = g(*args)
    np.testing.assert_allclose(re + 1j * im, 2.0 * z)


def test_integer_arguments_are_refused():
    with pytest.raises(TypeError, match="int64 has no tangent space"):
        U.check_grads(np.sin)(np.arange(3))


def test_record_mode_collects_failures_real_and_complex_apart(monkeypatch):
    monkeypatch.setenv("AGSHIM_RECORD", "x")
    U.RECORDS.clear()
    U.check_grads(_jvp_rule(first_ok=False), order=1)(X)
    U.check_grads(np.sin, order=1)(X)
    assert [r["complex"] for r in U.RECORDS] == [False, False]
    assert isinstance(U.RECORDS[0]["error"], AssertionError) and U.RECORDS[1]["error"] is None
    U.RECORDS.clear()
