"""The hostile user: bad inputs, odd dtypes and layouts, threads, processes,
cache faults, resource growth and tape misuse.

Each family is a table; a new case is one line in it.  The generic tests
below the tables run every row:

- ``AGREE``: ``f(*args)`` must give NumPy's answer (value and dtype, or the
  same exception type) on the interpreter and on the compiled tier;
- ``FRESH``: a call whose results must not share memory with any array the
  user still holds (inputs, captured constants);
- ``RAISES``: a call that must raise the given exception, whose message must
  match the given pattern (names the problem, suggests the fix);
- ``EQUALS``: a call whose result must equal an expected value (NaN where
  NaN is right), compared with ``assert_allclose`` (``equal_nan``).

Families that need more than one call (threads, processes, caches, growth)
are tests of their own further down, each built on a small table too.
"""
from __future__ import annotations

import re
import warnings
import warnings

import numpy as np
import pytest

import jitgrad
from jitgrad import tree as tree_util

rs = np.random.default_rng(0)
W = rs.standard_normal(3)          # a captured constant


def _compiled(f, *args):
    """``jit(f)(*args)`` with compiled code asked for; a compile that fails
    (rather than being skipped for a dtype native code cannot take) fails the test."""
    import warnings
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return jitgrad.jit(f)(*args)


def _always(call):
    """``call()`` with compiled code asked for (a transform's own executable)."""
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return call()


# ---------------------------------------------------------------------------
# AGREE: (id, f, args) or (id, f, args, rtol).  f is called through
# jitgrad.jit in both tiers and compared with plain NumPy: exactly (signed
# zeros included), or to rtol where NumPy's own kernels round differently
# (pairwise float32 sums, its SIMD exp/sin/pow); dtypes always exactly.

AGREE = [
    ("sum_float", lambda x: np.sum(x * 2.0), (np.arange(4.0),)),
    # -- core
    # an axis out of bounds is NumPy's AxisError, never wrapped onto another axis
    ("transpose_axis_out_of_bounds", lambda x: x.transpose(0, 3), (np.ones((2, 3)),)),
    ("swapaxes_axis_out_of_bounds", lambda x: np.swapaxes(x, 0, 2), (np.ones((2, 3)),)),
    ("moveaxis_axis_out_of_bounds", lambda x: np.moveaxis(x, 0, 2), (np.ones((2, 3)),)),
    ("moveaxis_lengths_differ", lambda x: np.moveaxis(x, (0, 1), 0), (np.ones((2, 3)),)),
    ("expand_dims_axis_out_of_bounds", lambda x: np.expand_dims(x, 4), (np.ones((2, 3)),)),
    ("concatenate_axis_out_of_bounds", lambda x: np.concatenate([x, x], axis=2), (np.ones((2, 3)),)),
    ("stack_axis_out_of_bounds", lambda x: np.stack([x, x], axis=4), (np.ones((2, 3)),)),
    ("take_axis_out_of_bounds", lambda x: np.take(x, [0], axis=2), (np.ones((2, 3)),)),
    ("diff_axis_out_of_bounds", lambda x: np.diff(x, axis=2), (np.ones((2, 3)),)),
    ("reshape_two_unknown_dimensions", lambda x: x.reshape(-1, -1), (np.ones((2, 3)),)),
    ("reshape_unknown_beside_zero", lambda x: x.reshape(-1, 0), (np.ones((0, 3)),)),
    ("reshape_unknown_not_a_divisor", lambda x: x.reshape(-1, 4), (np.ones((2, 3)),)),
    ("reshape_to_an_array_of_sizes", lambda x: x.reshape(np.array([3, 2])), (np.arange(6.0).reshape(2, 3),)),
    ("negative_axes_still_count_from_the_end", lambda x: (np.swapaxes(x, -1, 0), np.moveaxis(x, -1, 0),
                                                          np.stack([x, x], axis=-1), np.diff(x, axis=-1)),
     (np.arange(6.0).reshape(2, 3),)),

    # -- numerics
    # reductions without an identity raise on an empty axis; sum/prod/mean do not
    ("argmax_empty", np.argmax, (np.zeros(0),)),
    ("max_empty", np.max, (np.zeros(0),)),
    ("min_empty_axis", lambda x: np.min(x, axis=1), (np.zeros((2, 0)),)),
    ("max_empty_other_axis", lambda x: np.max(x, axis=0), (np.zeros((2, 0)),)),
    ("argmin_empty_axis", lambda x: np.argmin(x, axis=1), (np.zeros((3, 0)),)),
    ("sum_prod_mean_empty", lambda x: (np.sum(x), np.prod(x), np.mean(x)), (np.zeros(0),)),
    ("max_bool_axis", lambda x: np.max(x, axis=0), (np.array([[True, False], [False, False]]),)),
    ("argmax_uint8", np.argmax, (np.array([0, 255, 3], np.uint8),)),
    ("argmax_int_min", np.argmax, (np.array([np.iinfo(np.int64).min, 5]),)),
    ("argmin_uint64", np.argmin, (np.array([2**63, 5, 2**64 - 1], np.uint64),)),
    ("argmax_first_nan", lambda x: np.argmax(x, axis=1), (np.array([[1., np.nan, 3.], [np.nan, np.nan, 1.]]),)),
    # traced indices: -n..-1 count from the end, anything else raises IndexError
    ("index_minus_4_of_3", lambda x, i: x[i], (np.arange(3.0), np.array(-4))),
    ("index_minus_3_of_3", lambda x, i: x[i], (np.arange(3.0), np.array([-3, -2, -1]))),
    ("index_3_of_3", lambda x, i: x[i], (np.arange(3.0), np.array([3]))),
    ("index_2d_inner_axis_oob", lambda x, i, j: x[i, j], (np.arange(6.0).reshape(2, 3), np.array([-1]), np.array([-4]))),
    ("index_2d_negative", lambda x, i, j: x[i, j], (np.arange(6.0).reshape(2, 3), np.array([-1, 0]), np.array([-3, 2]))),
    ("take_negative", lambda x, i: np.take(x, i), (np.arange(6.0).reshape(2, 3), np.array([-1, -6]))),
    ("take_oob", lambda x, i: np.take(x, i), (np.arange(6.0).reshape(2, 3), np.array([-7]))),
    ("index_uint64", lambda x, i: x[i], (np.arange(3.0), np.array([2, 2**64 - 1], np.uint64))),
    # remainder and floor_divide: NumPy's divmod (fmod-based), integers by zero give 0
    ("remainder_huge_quotient", lambda a, b: (a % b, a // b),
     (np.array([2.0**60 + 2**8, -1e-300, 1e300, 5.5, -5.5, 3.0]), np.array([3.0, 1e300, 3.0, -2.0, 2.0, -3.0]))),
    ("remainder_quotient_overflows", lambda a, b: (a % b, a // b),
     (np.array([1e300, 1.47e-300, 5e-324]), np.array([1e-300, 1e-300, 1e-323]))),
    ("int_quotient_beyond_2_53", lambda a, b: (a % b, a // b),
     (np.array([2**60 + 1, -(2**62) - 5, 2**63 - 1]), np.array([3, 7, 2]))),
    ("remainder_special", lambda a, b: (a % b, a // b),
     (np.array([0.0, -0.0, np.inf, np.nan, 7.0, 1.0, -1.0]), np.array([-1.0, 1.0, 2.0, 1.0, 0.0, np.inf, np.inf]))),
    ("remainder_float32", lambda a, b: (a % b, a // b),
     (np.array([5.5, -5.5, 1e30, 3.0], np.float32), np.array([-2.0, 2.0, 3.0, -3.0], np.float32))),
    ("int_divide_by_zero", lambda a, b: (a // b, a % b), (np.array([4, -4, 0]), np.array([0, 0, 0]))),
    ("int_signs", lambda a, b: (a // b, a % b), (np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2]))),
    ("int_min_by_minus_1", lambda a, b: (a // b, a % b), (np.array([np.iinfo(np.int64).min] * 2), np.array([-1, 3]))),
    ("int8_min_by_minus_1", lambda a, b: (a // b, a % b), (np.array([-128, -128], np.int8), np.array([-1, 0], np.int8))),
    ("int32_by_zero", lambda a, b: (a // b, a % b), (np.array([7, -7], np.int32), np.array([0, 0], np.int32))),
    ("uint_by_zero", lambda a, b: (a // b, a % b), (np.array([7, 255], np.uint8), np.array([0, 2], np.uint8))),
    ("uint64_big", lambda a, b: (a // b, a % b), (np.array([2**64 - 1], np.uint64), np.array([7], np.uint64))),
    ("bool_divmod", lambda a, b: (a // b, a % b), (np.array([True, False, True]), np.array([True, True, False]))),
    # integers narrower than 64 bits wrap after every operation
    ("int8_wraps_before_compare", lambda x: (x + x) > 0, (np.array([100, -100, 127, -128], np.int8),)),
    ("int8_wraps_before_sum", lambda x: np.sum(x * x), (np.array([100, -100, 127], np.int8),)),
    ("int32_wraps_before_divide", lambda x: (x * x) // 7, (np.array([2**20, 3], np.int32),)),
    ("uint8_wraps_before_compare", lambda x: (x - 1) > 5, (np.array([0, 3], np.uint8),)),
    ("int8_sum_dtype", lambda x: np.sum(x, dtype=np.int8) > 0, (np.array([100, 100], np.int8),)),
    ("abs_int_min", lambda x: (np.abs(x), np.abs(x.astype(np.int8)) > 0), (np.array([np.iinfo(np.int64).min, -128]),)),
    # booleans: + and * are logical; - has no boolean loop
    ("bool_add_then_int", lambda x, y: (x + y).astype(np.int64), (np.array([True, False]), np.array([True, True]))),
    ("bool_negative", lambda x: -x, (np.array([True, False]),)),
    ("bool_subtract", lambda x, y: (x - y), (np.array([True, False]), np.array([True, True]))),
    ("bool_minus_python_int", lambda x: (x - 1, 1 - x), (np.array([True, False]),)),
    ("bool_minus_python_bool", lambda x: x - True, (np.array([True, False]),)),
    ("int8_sqrt_is_float16", np.sqrt, (np.array([4, 2], np.int8),)),
    ("bool_square_power", lambda x: (np.square(x), x ** x), (np.array([True, False]),)),
    # integer powers: negative exponents raise, positive ones wrap
    ("int_power_negative_array", lambda x, y: x ** y, (np.array([2, 3]), np.array([-1, 2]))),
    ("int_power_negative_scalar", lambda x: x ** -1, (np.array([2, 3]),)),
    ("int_power_wraps", lambda x: (x ** 70, x ** 3), (np.array([3, -3]),)),
    # dtypes of float functions of integers (NumPy's loops), and of those that keep integers
    ("float_ufunc_of_int16", lambda x: (np.sqrt(x), np.arctan2(x, x), np.deg2rad(x), np.log2(x)),
     (np.array([1, 4], np.int16),), 1e-6),
    ("true_divide_int8", lambda x, y: x / y, (np.array([1, 7], np.int8), np.array([3, 2], np.int8))),
    ("floor_ceil_trunc_round_int", lambda x: (np.floor(x), np.ceil(x), np.trunc(x), np.round(x), np.round(x, -1)),
     (np.array([15, 25, -35]),)),
    ("reciprocal_int", np.reciprocal, (np.array([2, 1, -1]),)),
    ("log2_log10_exact", lambda x: (np.log2(x), np.log10(x)), (np.array([8.0, 2.0**-1074, 1024.0, 1000.0, 1e22]),)),
    # rounding and signed zeros
    ("round_half_even", lambda x: (np.round(x), np.rint(x)), (np.array([0.5, 1.5, 2.5, -0.5, -2.5, -0.4]),)),
    ("round_half_even_float32", np.round, (np.array([0.5, 1.5, 2.5, -2.5], np.float32),)),
    ("sign_of_zeros", np.sign, (np.array([-0.0, 0.0, np.nan, -3.0]),)),
    ("signed_zero_ops", lambda x: (-x, np.abs(x), np.sqrt(x), x * 0.0), (np.array([0.0, -0.0]),)),
    ("max_min_nan", lambda x, y: (np.maximum(x, y), np.minimum(x, y)),
     (np.array([0.0, np.nan, 1.0]), np.array([-0.0, 1.0, np.nan]))),
    # mixed promotion (NumPy 2: Python scalars are weak) and out-of-range Python integers
    ("float32_plus_python_float", lambda x: x + 1e-8, (np.ones(2, np.float32),)),
    ("int8_float32", lambda x, y: (x * y, x + 1), (np.array([3, 127], np.int8), np.ones(2, np.float32))),
    ("uint64_int64", lambda x, y: x + y, (np.array([1], np.uint64), np.array([1]))),
    ("uint8_compared_with_minus_1", lambda x: (x > -1, x == 300, x < 2**70), (np.array([0, 255], np.uint8),)),
    ("int8_clip_beyond_range", lambda x: np.clip(x, -200, 200), (np.array([100, -100], np.int8),)),
    ("int_float_compare_exact", lambda x, y: x == y, (np.array([2**53 + 1]), np.array([2.0**53]))),
    ("negative_float_to_unsigned", lambda x: (x.astype(np.uint8), x.astype(np.uint32), x.astype(np.uint64)),
     (np.array([-1.7, -300.5, 255.9]),)),
    ("float_beyond_int64_to_uint64", lambda x: x.astype(np.uint64), (np.array([2.0**63 + 2**11, 1.5]),)),
    ("float_to_int_and_bool", lambda x: (x.astype(np.int64), x.astype(bool)), (np.array([1.7, -1.7, 0.0, -0.0, np.nan]),)),
    # layouts: Fortran order, negative strides, zero strides, 0-d
    ("fortran_order", lambda x: (x * 2 + 1, np.sum(x, axis=0), x @ x.T), (np.asfortranarray(np.arange(12.0).reshape(3, 4)),)),
    ("negative_strides", lambda x: (x * 2, np.cumsum(x, axis=1)), (np.arange(12.0).reshape(3, 4)[::-1, ::-2],)),
    ("zero_strides", lambda x: np.sum(x, axis=0), (np.broadcast_to(np.arange(3.0), (4, 3)),)),
    ("zero_d", lambda x: (x * 2 + 1, np.max(x), np.argmax(x)), (np.array(7.0),)),
    ("zero_d_int8", lambda x: x + x, (np.array(100, np.int8),)),
    # float32 accumulation: NumPy's dtype; the value to rounding (NumPy sums pairwise)
    ("float32_sum_mean", lambda x: (np.sum(x), np.mean(x), np.sum(x.reshape(143, 7), axis=0)),
     (np.linspace(0, 1, 1001, dtype=np.float32),), 1e-6),
    ("float32_transcendental", lambda x: (np.exp(x), np.sin(x)), (np.array([1.0, 2.0, 100.0], np.float32),), 1e-6),
    ("float_power_three", lambda x: (x ** 3, x ** -2, x ** 2), (np.linspace(-3, 3, 7) + 0.1,), 1e-15),
    ("divmod", lambda x, y: (divmod(x, y), np.divmod(x, y), divmod(7, y)),
     (np.array([5, -7, 7]), np.array([2, 2, 0]))),
    ("ptp", lambda x: (np.ptp(x), np.ptp(x, axis=0)), (np.array([[1, 5], [-3, 2]], np.int8),)),
    ("ptp_empty_axis", lambda x: np.ptp(x, axis=1), (np.zeros((2, 0)),)),
    ("var_ddof_at_least_n", lambda x: (np.var(x, ddof=1), np.std(x, ddof=2)), (np.array([1.0]),)),
    ("clip_keeps_signed_zero", lambda x: np.clip(x, 0.0, 1.0), (np.array([-0.0, 0.0, 2.0, np.nan]),)),
    ("int8_matmul_wraps", lambda x, y: x @ y, (np.full((2, 2, 3), 100, np.int8), np.full((2, 3, 2), 3, np.int8))),
    ("int_and_bool_products", lambda x, y, b: (x @ y, np.dot(x, x), np.outer(x, y), b @ b),
     (np.arange(6).reshape(2, 3), np.arange(3), np.array([[True, False], [True, True]]))),
    # truth reductions: NaN is nonzero, an empty axis is any False / all True
    ("any_all_count_nonzero", lambda x, e, c: (
        np.any(x), np.all(x), np.any(x > 1, axis=0), x.all(axis=1, keepdims=True), np.count_nonzero(x),
        np.count_nonzero(x, axis=(0, 1)), np.any(e), np.all(e, axis=0), np.count_nonzero(e, axis=1),
        np.any(c), np.all(c)),
     (np.array([[0.0, np.nan], [2.0, -0.0]]), np.zeros((0, 2)), np.array([0j, 1j]))),

    # -- api
    # arguments of every layout, byte order and plain subclass
    ("big_endian_argument", lambda x: x * 2.0, (np.arange(3.0).astype(">f8"),)),
    ("fortran_argument", lambda x: x * 2.0 + x.T.T, (np.asfortranarray(np.arange(6.0).reshape(2, 3)),)),
    ("negative_strides", lambda x: np.sum(x * x), (np.arange(4.0)[::-1],)),
    ("read_only_broadcast", lambda x: x * 2.0, (np.broadcast_to(np.arange(3.0), (2, 3)),)),
    ("empty_argument", lambda x: np.sum(x * 2.0, axis=1), (np.zeros((0, 3)),)),
    ("plain_subclass", lambda x: x * 2.0 + 1.0, (np.arange(3.0).view(type("Sub", (np.ndarray,), {})),)),
    ("uint8_wraps", lambda x: x + x, (np.array([200, 100], np.uint8),)),
    ("bool_scalar_argument", lambda x, b: x * b, (np.ones(2), True)),
    ("none_in_arguments", lambda x, n: x * 2.0, (np.ones(2), None)),
    ("list_argument", lambda p: p[0] * p[1], ([np.ones(2), np.arange(2.0)],)),
    # control flow: narrow integer carries wrap at every step; a switch index beyond int32 is clipped
    ("scan_int8_carry_wraps", lambda x: jitgrad.scan(lambda c, t: (c * t + t, c), np.int8(3), x),
     (np.array([100, 27, -5], np.int8),)),
    ("switch_index_beyond_int32", lambda x, k: jitgrad.switch(k, [lambda a: a, lambda a: -a], x),
     (np.arange(3.0), np.int64(2 ** 32))),

    # -- runtime
    ("big_endian_argument_summed", lambda x: np.sum(x * 2.0), (np.arange(4.0).astype(">f8"),)),
    ("big_endian_constant", lambda x: x * np.arange(4.0).astype(">f8"), (np.ones(4),)),

    # -- tape
]


# -- tape helpers: each runs one recording and returns what the row checks.

def _tape(fn, sources, persistent=False, **kw):
    """Record ``fn()`` (returns the target and the intermediate sources) on a
    tape; the gradient of the target with respect to ``sources + intermediates``."""
    with jitgrad.GradientTape(persistent=persistent) as tape:
        target, extra = fn()
    return tape.gradient(target, list(sources) + list(extra), **kw)


def _tape_nested(power):
    """d/dw of the inner gradient with respect to h = 2w, for loss = h**power."""
    w = jitgrad.Variable(3.0)
    with jitgrad.GradientTape() as outer:
        with jitgrad.GradientTape() as inner:
            h = 2 * w
            loss = h ** power
        dw, dh = inner.gradient(loss, [w, h])
    return outer.gradient([dw, dh], w)


def _tape_in_context():
    """A persistent tape differentiating inside its block records the derivative."""
    x = jitgrad.Variable(3.0)
    with pytest.warns(RuntimeWarning, match="inside its 'with' block"):
        with jitgrad.GradientTape(persistent=True) as tape:
            dy = tape.gradient(x * x * x, x)
    return tape.gradient(dy, x)


def _tape_reassigned():
    """A Variable assigned inside the tape: each read differentiates at its value."""
    a = jitgrad.Variable(1.0)
    with jitgrad.GradientTape() as tape:
        y = a * a
        a.assign(3.0)
        y = y + a * a
    return tape.gradient(y, a)


def _tape_watch_then_assign():
    a = jitgrad.Variable(1.0)
    with jitgrad.GradientTape() as tape:
        tape.watch(a)
        a.assign(5.0)
        y = a * a
    return tape.gradient(y, a)


def _tape_watched_after_gradient():
    w, v = jitgrad.Variable(1.0), jitgrad.Variable(2.0)
    with jitgrad.GradientTape() as tape:
        y = w * v * w
    tape.gradient(y, w)
    watched = tape.watched_variables()
    return [len(watched)] + [x.numpy() for x in watched]


def _tape_twice():
    w = jitgrad.Variable(3.0)
    with jitgrad.GradientTape() as tape:
        y = w * w
    tape.gradient(y, w)
    return tape.gradient(y, w)


def _tape_jacobian_mixed():
    v = jitgrad.Variable(np.array([1.0, 2.0]))
    with jitgrad.GradientTape(persistent=True) as tape:
        h = v * v
        y = h * v
    return tape.jacobian(y, [v, h])


def _fresh_tape(C, extra=()):
    v = jitgrad.Variable(np.ones(3))
    with jitgrad.GradientTape() as tape:
        loss = (v * C).sum()
    return tape.gradient(loss, v), [C, *extra]


def _fresh_output_gradients():
    c = np.arange(3.0)
    x = jitgrad.constant(np.ones(3))
    with jitgrad.GradientTape() as tape:
        tape.watch(x)
        y = x * 1.0
    return tape.gradient(y, [x, y], output_gradients=c), [c]


def _fresh_same_source_twice():
    v = jitgrad.Variable(np.ones(3))
    with jitgrad.GradientTape() as tape:
        loss = (v * 2.0).sum()
    g1, g2 = tape.gradient(loss, [v, v])
    return g2, [g1]


def _fresh_accumulator():
    t = np.arange(3.0)
    x = jitgrad.constant(np.ones(3))
    with jitgrad.ForwardAccumulator(x, t) as acc:
        y = x * 2.0
    return acc.jvp([x, y]), [t]


def _tape_constant_updated_in_place():
    """The user's array changes after the operation used it: the gradient is at
    the value the operation saw."""
    w, C = jitgrad.Variable(np.ones(2)), np.ones(2)
    with jitgrad.GradientTape() as tape:
        y = (w * C).sum()
    C[:] = 5.0
    return tape.gradient(y, w)


def _variable_asarray_updated():
    """np.asarray(v) is a copy (as in TensorFlow): updating it leaves v alone."""
    v = jitgrad.Variable(np.ones(2))
    np.asarray(v)[:] = 7.0
    return v.numpy()


def _tape_recording(op):
    """Run ``op(w)`` while a tape records."""
    w = jitgrad.Variable(np.ones(3))
    with jitgrad.GradientTape():
        op(w)


def _variable_value_updated():
    """v.value() is a Tensor of its own array: updating its numpy() leaves v alone."""
    v = jitgrad.Variable(np.ones(2))
    v.value().numpy()[:] = 7.0
    return v.numpy()


def _tape_integer_source():
    """An integer source has no gradient (TensorFlow: None, with a warning)."""
    k = jitgrad.constant(np.array([1, 2]))
    with jitgrad.GradientTape() as tape:
        tape.watch(k)
        y = (k * 2.5).sum()
    with pytest.warns(RuntimeWarning, match="source 0 has dtype int"):
        return [tape.gradient(y, k) is None]


def _tape_misuse(call):
    w = jitgrad.Variable(np.ones(3))
    with jitgrad.GradientTape() as tape:
        y = w * 2.0
    return call(tape, w, y)


# ---------------------------------------------------------------------------
# FRESH: (id, call) where call() -> (results, [arrays the user still holds]).

def _grad_mul(y):
    g = jitgrad.grad(lambda a, b: np.sum(a * b))(np.ones(3), y)
    return g, [y]


FRESH = [
    ("grad_of_product_is_not_other_input", lambda: _grad_mul(np.arange(3.0))),
    # -- core

    # -- numerics

    # -- api
    # an output that is an input, a captured constant or a view of one (both tiers)
    ("jit_times_one_is_not_input", lambda: (jitgrad.jit(lambda v: v * 1.0)(Y), [Y])),
    ("jit_identity", lambda: (jitgrad.jit(lambda v: v)(Y), [Y])),
    ("jit_transpose_view", lambda: (jitgrad.jit(lambda x: x.T)(M), [M])),
    ("jit_reshape_view", lambda: (jitgrad.jit(lambda x: x.reshape(6))(M), [M])),
    ("jit_ravel_view", lambda: (jitgrad.jit(lambda x: x.ravel())(M), [M])),
    ("jit_full_slice_view", lambda: (jitgrad.jit(lambda x: x[:, :])(M), [M])),
    ("jit_expand_dims_view", lambda: (jitgrad.jit(lambda x: x[None])(Y), [Y])),
    ("jit_strided_input", lambda: (jitgrad.jit(lambda x: x * 1.0)(M[:, ::2]), [M])),
    ("jit_returns_constant", lambda: (jitgrad.jit(lambda x: W)(Y), [])),
    ("jit_returns_constant_view", lambda: (jitgrad.jit(lambda x: W.reshape(3, 1))(Y), [])),
    ("jit_static_and_dict", lambda: (jitgrad.jit(lambda d, k: d["a"] * k, static_argnums=1)(
        {"a": Y}, 1), [Y])),
    ("grad_of_captured_product_is_not_W", lambda: (jitgrad.grad(lambda x: np.sum(x * W))(Y), [Y])),
    ("grad_argnums_pair", lambda: (jitgrad.grad(lambda a, b: np.sum(a * b), argnums=(0, 1))(Y, Z),
                                   [Y, Z])),
    ("grad_pytree_argument", lambda: (jitgrad.grad(lambda p: np.sum(p["a"] * p["b"]))(
        {"a": Y, "b": Z}), [Y, Z])),
    ("value_and_grad_of_product", lambda: (jitgrad.value_and_grad(lambda a, b: np.sum(a * b))(Y, Z),
                                           [Y, Z])),
    ("grad_aux_is_input", lambda: (jitgrad.grad(lambda x: (np.sum(x * x), x), has_aux=True)(Y), [Y])),
    ("jvp_identity", lambda: (jitgrad.jvp(lambda x: x * 1.0, (Y,), (Z,)), [Y, Z])),
    ("jvp_tangent_of_sum_is_not_tangent", lambda: (jitgrad.jvp(lambda a, b: a + b * 0.0, (Y, Y),
                                                               (Z, Z)), [Y, Z])),
    ("vjp_output_and_cotangent", lambda: _vjp_both(lambda x: x * 1.0, Y, Z)),
    ("vjp_cotangent_is_W", lambda: _vjp_both(lambda x: np.sum(x * W), Y, 1.0)),
    ("linearize_identity", lambda: _linearize_both(lambda x: x * 1.0, Y, Z)),
    ("hvp_of_half_square", lambda: (jitgrad.hvp(lambda x: np.sum(x * x) / 2, (Y,), (Z,)), [Y, Z])),
    ("jacfwd_linear", lambda: (jitgrad.jacfwd(lambda x, w: x * w, argnums=1)(Y, Z), [Y, Z])),
    ("jacrev_of_dot_is_not_W", lambda: (jitgrad.jacrev(lambda x: np.dot(W, x))(Y), [Y])),
    ("hessian_of_dot", lambda: (jitgrad.hessian(lambda x: np.dot(x, Z) * 1.0)(Y), [Y, Z])),
    ("vmap_identity", lambda: (jitgrad.vmap(lambda x: x)(M), [M])),
    ("vmap_unmapped_argument", lambda: (jitgrad.vmap(lambda x, w: w * 1.0, in_axes=(0, None))(M, Z),
                                        [M, Z])),
    # results never alias each other ...
    ("jit_cse_outputs_apart", lambda: _apart(jitgrad.jit(lambda x: (x * 2, x * 2))(Y))),
    ("jit_same_output_twice", lambda: _apart(jitgrad.jit(lambda x: (x, x))(Y))),
    ("jit_output_and_its_view", lambda: _apart(jitgrad.jit(lambda x: (x * 2, (x * 2).reshape(3, 1)))(Y))),
    ("jvp_outputs_apart", lambda: _apart(jitgrad.jvp(lambda x: x, (Y,), (Y,)))),
    ("loop_of_no_steps_is_not_init", lambda: (jitgrad.jit(
        lambda v: jitgrad.scan(lambda c, t: (c, c), v, None, length=0)[0])(Y), [Y])),
    ("cond_identity_is_not_operand", lambda: (jitgrad.jit(
        lambda v: jitgrad.cond(v[0] > 0, lambda a: a, lambda a: a, v))(Y), [Y])),
    ("cond_same_output_twice_apart", lambda: _apart(jitgrad.jit(
        lambda v: jitgrad.cond(v[0] > 0, lambda a: (a, a), lambda a: (a, a), v))(Y))),
    # ... nor the results of an earlier call (a constant of the compiled function)
    ("jacfwd_identity_basis", lambda: _twice(lambda: _JACFWD_IDENTITY(Y))),
    ("jacrev_identity_basis", lambda: _twice(lambda: _JACREV_IDENTITY(Y))),
    ("jit_constant_twice", lambda: _twice(lambda: _JIT_CONSTANT(Y))),

    # -- runtime

    # -- tape
    ("tape_grad_is_not_captured_constant", lambda: _fresh_tape(np.arange(3.0))),
    ("tape_grad_is_not_broadcast_0d_constant", lambda: _fresh_tape(np.array(2.0))),
    ("tape_grad_is_not_output_gradients", _fresh_output_gradients),
    ("tape_same_source_twice_two_arrays", _fresh_same_source_twice),
    ("tape_jvp_is_not_tangent", _fresh_accumulator),
]


# ---------------------------------------------------------------------------
# RAISES: (id, call, exception type, message pattern).

RAISES = [
    ("argnums_out_of_range", lambda: jitgrad.grad(lambda x: x * 2.0, argnums=3)(1.0),
     ValueError, "out of range"),
    # -- core
    ("vmap_in_axes_keys_mismatch", lambda: jitgrad.vmap(lambda p: p["w"], in_axes=({"v": 0},))(
        {"w": np.ones(2)}), ValueError, "has keys \\['v'\\] but the argument has \\['w'\\]"),
    ("vmap_in_axes_structure_mismatch", lambda: jitgrad.vmap(lambda t: t[0], in_axes=((0, 0, 0),))(
        (np.ones(2), np.ones(2))), ValueError, "does not match the structure"),
    ("vmap_nested_out_axes", lambda: jitgrad.vmap(lambda x: (x, x), out_axes=((0, 0),))(np.ones(2)),
     ValueError, r"out_axes=\(\(0, 0\),\) has 1 entry but <lambda> returns tuple\(\*, \*\)"),
    # grad wants one scalar, not a structure holding one (as JAX), and says what it got
    ("grad_of_a_list_of_one_scalar", lambda: jitgrad.grad(lambda x: [x * x])(1.0), TypeError,
     r"return a scalar, but it returned a list of 1 values"),
    ("grad_of_none", lambda: jitgrad.grad(lambda x: None)(1.0), TypeError,
     r"return a scalar, but it returned no values"),
    # an operator jitgrad does not trace names itself, as its NumPy function does
    ("left_shift_operator", lambda: jitgrad.jit(lambda x: x << 2)(np.arange(3)), NotImplementedError,
     r"does not support numpy.left_shift"),
    ("right_shift_reflected", lambda: jitgrad.jit(lambda x: 8 >> x)(np.arange(3)), NotImplementedError,
     r"does not support numpy.right_shift"),
    # a shape must be known while tracing: the tracer's error, which says to mark it static
    ("reshape_to_traced_shape", lambda: jitgrad.jit(lambda x, n: x.reshape(n))(np.ones(3), 3),
     jitgrad.TracerBoolError, r"use as an index on a traced array .* static_argnums"),
    ("broadcast_to_traced_shape", lambda: jitgrad.jit(lambda x, n: np.broadcast_to(x, (n, 3)))(np.ones(3), 2),
     jitgrad.TracerBoolError, r"use as an index on a traced array .* static_argnums"),
    ("python_int_beyond_int64", lambda: jitgrad.jit(lambda x: x * 2)(2 ** 70), OverflowError,
     "does not fit in int64"),
    # custom rules whose results do not fit the function: a clear error naming the rule
    ("custom_jvp_tangent_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cj_bad_shape(x)))(np.ones(3)),
     TypeError, r"jvp rule .* of custom_jvp function _cj_bad_shape: its tangent output has shape \(5,\)"),
    ("custom_jvp_tangent_wrong_dtype", lambda: jitgrad.jvp(_cj_bad_dtype, (np.ones(3),), (np.ones(3),)),
     TypeError, r"tangent output .* dtype float32; expected .* float64"),
    ("custom_jvp_rule_not_a_pair", lambda: jitgrad.grad(_cj_single)(1.0),
     TypeError, r"must return a pair \(primal_out, tangent_out\)"),
    ("custom_jvp_primal_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cj_bad_primal(x)))(np.ones(3)),
     TypeError, r"its primal output has shape \(4,\)"),
    ("custom_jvp_tangent_wrong_structure", lambda: jitgrad.grad(lambda x: _cj_two_list(x)[0])(1.0),
     TypeError, r"tangent output must have the structure tuple\(\*, \*\), got list"),
    ("custom_vjp_cotangent_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cv_bad_shape(x)))(np.ones(3)),
     TypeError, r"bwd rule .* of custom_vjp function _cv_bad_shape: its cotangent 0 has shape \(5,\)"),
    ("custom_vjp_fwd_output_wrong_shape", lambda: jitgrad.grad(lambda x: np.sum(_cv_bad_fwd(x)))(np.ones(3)),
     TypeError, r"fwd rule .* its output has shape \(4,\)"),
    ("custom_vjp_fwd_not_a_pair", lambda: jitgrad.grad(_cv_fwd_single)(1.0),
     TypeError, r"must return a pair \(output, residuals\)"),
    ("custom_vjp_bwd_not_a_tuple", lambda: jitgrad.grad(_cv_bwd_bare)(1.0),
     TypeError, r"one cotangent per argument \(1\)"),
    ("custom_vjp_under_jvp", lambda: jitgrad.jvp(_cv_exp, (1.0,), (1.0,)),
     NotImplementedError, "forward-mode .* custom_vjp"),
    ("custom_jvp_wrt_closed_over_value", lambda: jitgrad.grad(_closes_over_its_input)(3.0),
     jitgrad.core.errors.JitgradError, "differentiated with respect to a traced value it closes over"),
    ("custom_vjp_traced_nondiff_argument", lambda: jitgrad.grad(lambda x: _cv_pow(x, x))(2.0),
     TypeError, "argument 1 is in nondiff_argnums but holds a traced array"),
    ("custom_jvp_unknown_keyword", lambda: jitgrad.grad(lambda x: _cj_sin(y=x))(1.0),
     TypeError, "custom_jvp function _cj_sin: .*argument"),
    ("custom_jvp_rule_error_kept", lambda: jitgrad.grad(_cj_raises)(1.0), ValueError, "rule failed"),
    ("jacrev_integer_output", lambda: jitgrad.jacrev(lambda x: (x > 0).astype(int))(np.ones(2)),
     TypeError, "jacrev requires floating-point outputs"),
    # pytree registration misuse
    ("tree_flatten_returns_list", lambda: tree_util.flatten(_BadFlatten(1.0)),
     TypeError, r"flatten function registered for _BadFlatten must return a pair"),
    ("tree_register_not_a_class", lambda: tree_util.register("point", lambda p: ([], None), None),
     TypeError, "must be a class"),

    # -- numerics
    ("bitwise_and_of_ints", lambda: jitgrad.jit(lambda x, y: x & y)(np.array([6, 3]), np.array([3, 5])),
     NotImplementedError, "only on booleans"),
    ("invert_of_ints", lambda: jitgrad.jit(lambda x: ~x)(np.array([0, 5])),
     NotImplementedError, "only on booleans"),
    ("max_of_empty", lambda: jitgrad.jit(np.max)(np.zeros((2, 0))), ValueError, "zero-size array"),
    ("argmax_of_empty", lambda: jitgrad.jit(np.argmax)(np.zeros(0)), ValueError, "empty sequence"),
    ("int_power_negative", lambda: jitgrad.jit(lambda x: x ** -2)(np.arange(3)), ValueError,
     "negative integer powers"),

    # -- api
    # complex numbers: the tangent or cotangent of a complex value must be
    # complex; a complex output needs holomorphic=True (JAX's rules)
    ("complex_jvp_real_tangent", lambda: jitgrad.jvp(np.dot, (CV, Y), (Y, Y)), TypeError,
     r"tangent 0 has dtype float64 but its primal has dtype complex128"),
    ("complex_grad_of_complex_output", lambda: jitgrad.grad(lambda x: np.sum(x * x))(CV), TypeError,
     r"real-valued outputs.*holomorphic=True"),
    ("complex_jacrev_of_complex_output", lambda: jitgrad.jacrev(lambda x: x * 2)(CV), TypeError,
     r"output 0 of .* complex128.*holomorphic=True"),
    ("complex_holomorphic_real_input", lambda: jitgrad.grad(np.sin, holomorphic=True)(1.0), TypeError,
     r"holomorphic=True requires complex inputs"),
    ("complex_holomorphic_real_output", lambda: jitgrad.grad(np.abs, holomorphic=True)(1j), TypeError,
     r"holomorphic=True requires complex outputs"),
    ("complex_vjp_cotangent", lambda: jitgrad.vjp(lambda x: x * 2.0, Y)[1](CV), TypeError,
     r"cotangent 0 has dtype complex128"),
    ("complex_jacfwd", lambda: jitgrad.jacfwd(lambda x: x * 2)(CV), TypeError,
     r"real-valued inputs.*holomorphic=True"),
    ("complex_hvp_tangent", lambda: jitgrad.hvp(lambda x: np.sum(x * x), (Y,), (CV,)), TypeError,
     r"tangent 0 .*complex"),
    ("complex_no_complex_loop", lambda: jitgrad.jit(lambda z: np.logaddexp(z, z))(CV), TypeError,
     "not supported for complex inputs"),
    # argnums
    ("argnums_duplicate", lambda: jitgrad.grad(lambda a, b: np.sum(a * b), argnums=(0, 0))(Y, Z),
     ValueError, r"names argument 0 .* more than once"),
    ("argnums_duplicate_negative", lambda: jitgrad.jacrev(lambda a, b: a * b, argnums=(1, -1))(Y, Z),
     ValueError, "more than once"),
    ("argnums_float", lambda: jitgrad.grad(lambda x: x * x, argnums=0.0), TypeError,
     "argnums must be an int or a tuple of ints"),
    ("argnums_bool", lambda: jitgrad.value_and_grad(lambda x: x * x, argnums=True), TypeError,
     "argnums must be an int"),
    ("argnums_empty", lambda: jitgrad.grad(lambda x: x * x, argnums=()), ValueError, "argnums is empty"),
    ("argnums_negative_out_of_range", lambda: jitgrad.grad(lambda x: x * x, argnums=-2)(1.0),
     ValueError, "out of range"),
    ("jacfwd_argnums_string", lambda: jitgrad.jacfwd(lambda x: x, argnums="0"), TypeError, "argnums"),
    # static_argnums
    ("static_argnums_beyond_signature", lambda: jitgrad.jit(lambda a, b: a * b, static_argnums=4),
     ValueError, r"static_argnums=4 is out of range: <lambda> takes 2 positional arguments"),
    ("static_argnums_negative_beyond_call", lambda: jitgrad.jit(lambda *a: a[0], static_argnums=-3)(
        1.0, 2.0), ValueError, r"static_argnums=-3 is out of range"),
    ("static_argnums_float", lambda: jitgrad.jit(lambda a: a, static_argnums=1.0), TypeError,
     "static_argnums must be an int"),
    ("static_unhashable", lambda: jitgrad.jit(lambda a, b: a, static_argnums=1)(1.0, [1]), TypeError,
     r"static argument 1 must be hashable .*got a list"),
    ("static_keyword_unhashable", lambda: jitgrad.jit(lambda a, n=1: a * 2, static_argnums=1)(
        1.0, n=[1]), TypeError, "must be hashable"),
    # vmap axes
    ("vmap_in_axes_beyond_rank", lambda: jitgrad.vmap(lambda v: v * 2, in_axes=2)(M), ValueError,
     r"in_axes=2 is out of range for argument 0 .* shape \(2, 3\)"),
    ("vmap_negative_in_axes_beyond_rank", lambda: jitgrad.vmap(lambda a, v: v, in_axes=(None, -3))(
        1.0, M), ValueError, r"in_axes=-3 is out of range for argument 1"),
    ("vmap_0d_argument", lambda: jitgrad.vmap(lambda v: v * 2)(np.float64(3.0)), ValueError,
     r"shape \(\).*0-d array has no axis to map"),
    ("vmap_mismatched_sizes", lambda: jitgrad.vmap(lambda a, b: a * b)(np.ones(2), np.ones(3)),
     ValueError, r"argument 0 has shape \(2,\).*argument 1 has shape \(3,\)"),
    ("vmap_nothing_mapped", lambda: jitgrad.vmap(lambda a: a, in_axes=None)(Y), ValueError,
     "maps none of the arguments"),
    ("vmap_in_axes_float", lambda: jitgrad.vmap(lambda a: a, in_axes=0.5), TypeError, "in_axes must be"),
    ("vmap_in_axes_length", lambda: jitgrad.vmap(lambda a, b: a, in_axes=(0,))(M, M), ValueError,
     "in_axes has 1 entries"),
    ("vmap_out_axes_beyond_rank", lambda: jitgrad.vmap(lambda v: v * 2, out_axes=2)(M), ValueError,
     r"out_axes=2 is out of range for output 0"),
    ("vmap_out_axes_structure", lambda: jitgrad.vmap(lambda v: (v, v), out_axes=(0, 1, 0))(M),
     ValueError, "out_axes=.* has 3 entries"),
    # arguments jitgrad cannot compute on
    ("masked_array_argument", lambda: jitgrad.jit(np.sum)(np.ma.MaskedArray(Y, mask=[0, 1, 0])),
     TypeError, r"argument 0 is a np.ma.MaskedArray.*filled"),
    ("masked_array_to_grad", lambda: jitgrad.grad(np.sum)(np.ma.MaskedArray(Y, mask=[0, 1, 0])),
     TypeError, "MaskedArray"),
    ("matrix_argument", lambda: jitgrad.jit(lambda m: m * m)(_matrix()), TypeError,
     r"np.matrix.*np.asarray"),
    ("subclass_with_own_ufuncs", lambda: jitgrad.grad(np.sum)(np.ones(2).view(_Units)), TypeError,
     r"_Units, an ndarray subclass that changes what NumPy computes \(__array_ufunc__\).*np.asarray"),
    ("object_array_argument", lambda: jitgrad.jit(lambda a: a)(np.array([1.0, None])), TypeError,
     "dtype object"),
    ("string_array_argument", lambda: jitgrad.jit(lambda a: a)(np.array(["a"])), TypeError, "dtype <U1"),
    ("datetime_argument", lambda: jitgrad.jit(lambda a: a)(np.array(["2020-01-01"], "datetime64[D]")),
     TypeError, "datetime64"),
    ("generator_argument", lambda: jitgrad.jit(lambda a: a)(i for i in range(3)), TypeError,
     "generator"),
    ("bool_argument_to_grad", lambda: jitgrad.grad(lambda a: a * 2.0)(True), TypeError,
     "floating-point inputs"),
    # transforms used wrongly
    ("has_aux_without_pair", lambda: jitgrad.grad(lambda x: np.sum(x), has_aux=True)(Y), TypeError,
     "must return a pair"),
    ("has_aux_triple", lambda: jitgrad.value_and_grad(lambda x: (np.sum(x), x, x), has_aux=True)(Y),
     TypeError, "must return a pair"),
    ("jvp_int_tangent_for_float", lambda: jitgrad.jvp(lambda x: x, (Y,), (np.ones(3, int),)), TypeError,
     "tangent 0 has dtype int64"),
    ("jvp_tangent_structure", lambda: jitgrad.jvp(lambda p: p[0], ([Y],), ((Y,),)), ValueError,
     "same structure"),
    ("vjp_fn_list_for_tuple", lambda: jitgrad.vjp(lambda x: (x, x), Y)[1]([Y, Y]), ValueError,
     "output's structure"),
    ("vjp_fn_wrong_shape", lambda: jitgrad.vjp(lambda x: x * 2.0, Y)[1](np.ones(2)), ValueError,
     r"cotangent 0 has shape \(2,\)"),
    ("jacfwd_int_input", lambda: jitgrad.jacfwd(lambda x: x * 2)(np.arange(3)), TypeError,
     "floating-point inputs"),
    ("jacrev_int_output", lambda: jitgrad.jacrev(lambda x: (x > 0).astype(int))(Y), TypeError,
     "jacrev requires floating-point outputs"),
    ("hvp_bare_arrays", lambda: jitgrad.hvp(lambda x: np.sum(x * x), Y, Y), TypeError,
     r"hvp\(f, \(x,\), \(v,\)\)"),
    ("grad_of_non_callable", lambda: jitgrad.grad(3.0), TypeError, "grad expects a function"),
    ("jit_of_array", lambda: jitgrad.jit(Y), TypeError, "jit expects a function .* ndarray"),
    ("vmap_of_non_callable", lambda: jitgrad.vmap("f"), TypeError, "vmap expects a function"),
    ("jvp_of_non_callable", lambda: jitgrad.jvp(None, (Y,), (Y,)), TypeError, "jvp expects a function"),
    ("hessian_of_non_callable", lambda: jitgrad.hessian([]), TypeError, "hessian expects a function"),
    # a traced value kept past its trace
    ("escaped_tracer_times_number", lambda: _escaped() * 2, jitgrad.JitgradError, "escaped"),
    ("escaped_tracer_plus_array", lambda: _escaped() + Y, jitgrad.JitgradError, "escaped"),
    ("escaped_tracer_in_ufunc", lambda: np.sin(_escaped()), jitgrad.JitgradError, "escaped"),
    ("escaped_tracer_asarray", lambda: np.asarray(_escaped()), jitgrad.JitgradError, "escaped"),
    ("escaped_tracer_bool", lambda: bool(_escaped()), jitgrad.JitgradError, "escaped"),
    ("escaped_tracer_as_argument", lambda: jitgrad.jit(lambda x: x * 2.0)(_escaped()),
     jitgrad.JitgradError, "escaped"),
    ("escaped_tracer_in_other_trace", lambda: jitgrad.grad(lambda x: x * _escaped())(1.0),
     jitgrad.JitgradError, "escaped"),
    # control flow misuse names the function and the fix
    ("fori_loop_float_bound", lambda: jitgrad.jit(lambda x: jitgrad.fori_loop(0, 2.5, lambda i, v: v + 1, x))(Y),
     TypeError, r"fori_loop: the upper bound must be an integer scalar, got f64\[\]"),
    ("scan_length_float", lambda: jitgrad.scan(lambda c, t: (c, None), Y, None, length=2.5),
     TypeError, r"scan: length must be an integer"),
    ("cond_branches_disagree", lambda: jitgrad.jit(
        lambda x: jitgrad.cond(x[0] > 0, lambda a: a, lambda a: a[:2], x))(Y),
     TypeError, r"cond: true_fun returns \* of \(f64\[3\]\), cond: false_fun returns \* of \(f64\[2\]\)"),

    # -- runtime
    ("config_compile_typo", lambda: jitgrad.config(compile="alwyas"),
     ValueError, r"compile must be one of 'auto', 'always', 'never', got 'alwyas'"),
    ("config_compile_typo_assigned", lambda: setattr(jitgrad.config, "compile", "alwyas"),
     ValueError, r"compile must be one of 'auto', 'always', 'never'"),
    ("config_hot_calls_string", lambda: jitgrad.config(hot_calls="2"),
     ValueError, r"hot_calls must be an integer >= 1, got '2'"),
    ("config_hot_calls_zero", lambda: setattr(jitgrad.config, "hot_calls", 0),
     ValueError, r"hot_calls must be an integer >= 1"),
    ("config_hot_calls_bool", lambda: jitgrad.config(hot_calls=True),
     ValueError, r"hot_calls must be an integer"),
    ("config_big_elements_float", lambda: jitgrad.config(big_elements=1e5),
     ValueError, r"big_elements must be an integer >= 0, got 100000.0"),
    ("config_big_elements_negative", lambda: setattr(jitgrad.config, "big_elements", -1),
     ValueError, r"big_elements must be an integer >= 0"),
    ("config_cache_dir_number", lambda: jitgrad.config(cache_dir=3),
     ValueError, r"cache_dir must be a folder path"),
    ("config_cache_dir_empty", lambda: jitgrad.config(cache_dir=""),
     ValueError, r"cache_dir must be a folder path"),
    ("config_unknown_setting", lambda: jitgrad.config(compil="always"),
     AttributeError, r"no setting 'compil'; the settings are compile, hot_calls"),
    ("config_unknown_setting_assigned", lambda: setattr(jitgrad.config, "hot_call", 3),
     AttributeError, r"no setting 'hot_call'"),

    # -- tape
    ("tape_output_gradients_wrong_shape", lambda: _tape_misuse(
        lambda t, w, y: t.gradient(y, w, output_gradients=np.ones(2))),
     ValueError, r"shape \(2,\) but target 0 has shape \(3,\)"),
    ("tape_output_gradients_wrong_count", lambda: _tape_misuse(
        lambda t, w, y: t.gradient([y, y], w, output_gradients=[np.ones(3)])),
     ValueError, "1 arrays for 2 targets"),
    ("tape_gradient_twice", _tape_twice, RuntimeError, "persistent=True"),
    ("tape_target_numpy", lambda: _tape_misuse(lambda t, w, y: t.gradient(y.numpy(), w)),
     TypeError, "not a jitgrad Tensor"),
    ("tape_target_none", lambda: _tape_misuse(lambda t, w, y: t.gradient(None, w)),
     TypeError, "target is None"),
    ("tape_source_python_number", lambda: _tape_misuse(lambda t, w, y: t.gradient(y, 3.0)),
     TypeError, "source 0 is a float.*jitgrad.constant"),
    ("tape_jacobian_source_array", lambda: _tape_misuse(lambda t, w, y: t.jacobian(y, np.ones(3))),
     TypeError, "source 0 is a ndarray"),
    ("tape_masked_array_operand", lambda: _tape_recording(
        lambda w: w * np.ma.array(np.ones(3), mask=[0, 1, 0])), TypeError, "np.ma.filled"),
    ("tape_masked_array_variable", lambda: jitgrad.Variable(np.ma.array([1.0], mask=[1])),
     TypeError, "MaskedArray"),
    ("tape_complex_operand", lambda: _tape_recording(lambda w: abs(w * (1 + 2j))),
     TypeError, "cannot differentiate complex numbers"),
    ("tape_complex_variable", lambda: _tape_recording(
        lambda w: np.abs(jitgrad.Variable(np.array([1 + 2j])))), TypeError, "complex128"),
    ("tape_complex_output_gradients", lambda: _tape_misuse(
        lambda t, w, y: t.gradient(y, w, output_gradients=np.full(3, 1j))), TypeError, "must be real"),
    ("accumulator_complex_tangent", lambda: jitgrad.ForwardAccumulator(
        jitgrad.constant(np.ones(2)), np.full(2, 1j)), TypeError, "must be real"),
    ("tape_unconnected_bad_mode", lambda: _tape_misuse(
        lambda t, w, y: t.gradient(y, w, unconnected_gradients="zeros")), ValueError, "'none' or 'zero'"),
]


# ---------------------------------------------------------------------------
# EQUALS: (id, call, expected).

EQUALS = [
    ("grad_square", lambda: jitgrad.grad(lambda x: x * x)(3.0), 6.0),
    # -- core
    ("vmap_dict_in_axes", lambda: jitgrad.vmap(lambda p, x: p["w"] * x + p["b"],
                                               in_axes=({"w": 0, "b": None}, 0))(
        {"w": np.arange(3.0), "b": 1.0}, np.ones(3)), np.arange(3.0) + 1.0),
    ("vmap_tuple_in_axes_inside_argument", lambda: jitgrad.vmap(
        lambda t: t[0] * t[1], in_axes=((0, None),))((np.arange(3.0), 2.0)), 2 * np.arange(3.0)),
    ("jit_of_no_outputs_compiled", lambda: _compiled(lambda x: None, 1.0), None),
    ("float16_answers_without_compiling", lambda: _compiled(lambda x: np.sqrt(x), np.float16(4.0)), 2.0),
    # an integer primal's tangent is ignored, whatever its dtype, in both tiers
    ("jvp_int_primal_float_tangent", lambda: jitgrad.jvp(lambda x: x * x, (np.arange(3),), (np.ones(3),)),
     (np.arange(3) ** 2, np.zeros(3))),
    ("jvp_int_primal_float_tangent_compiled", lambda: _always(
        lambda: jitgrad.jvp(lambda x: x * x, (np.arange(3),), (np.ones(3),))), (np.arange(3) ** 2, np.zeros(3))),
    # custom rules: pytrees, several outputs, keywords, nondiff_argnums, vmap keeps the rule
    ("custom_jvp_rule_used_under_vmap", lambda: jitgrad.grad(lambda x: np.sum(jitgrad.vmap(_cj_twice_cos)(x)))(
        np.zeros(3)), 2 * np.ones(3)),
    ("custom_vjp_rule_used_under_vmap", lambda: jitgrad.grad(lambda x: np.sum(jitgrad.vmap(_cv_exp)(x)))(
        np.zeros(2)), 7 * np.ones(2)),
    ("custom_vjp_vmap_unbatched_argument", lambda: jitgrad.grad(
        lambda x, y: np.sum(jitgrad.vmap(_cv_two, in_axes=(0, None))(x, y)[1]), argnums=(0, 1))(
        np.ones(3), 2.0), (np.ones(3), 30.0)),
    ("custom_jvp_dict_in_out", lambda: jitgrad.jacfwd(_cj_dict)({"a": 1.0, "b": 2.0}),
     {"p": {"a": 2.0, "b": 1.0}, "s": {"a": 1.0, "b": 1.0}}),
    ("custom_jvp_dict_in_out_jacrev", lambda: jitgrad.jacrev(_cj_dict)({"a": 1.0, "b": 2.0}),
     {"p": {"a": 2.0, "b": 1.0}, "s": {"a": 1.0, "b": 1.0}}),
    ("custom_vjp_tuple_out", lambda: jitgrad.jacrev(_cv_two, argnums=(0, 1))(1.0, 2.0),
     ((2.0, 1.0), (1.0, 10.0))),
    ("custom_vjp_none_cotangent", lambda: jitgrad.grad(_cv_none, argnums=(0, 1))(3.0, 2.0), (0.0, 3.0)),
    ("custom_jvp_keyword_argument", lambda: jitgrad.grad(lambda x: _cj_sin(x=x))(0.0), 3.0),
    ("custom_jvp_keyword_outside", lambda: _cj_sin(x=0.5), np.sin(0.5)),
    ("custom_jvp_nondiff_argnums", lambda: jitgrad.grad(lambda x: _cj_apply(np.sin, x))(1.0), 3.0),
    ("custom_vjp_nondiff_argnums", lambda: jitgrad.grad(lambda x: _cv_pow(x, 3))(2.0), 30.0),
    ("custom_jvp_closes_over_constant", lambda: jitgrad.grad(_closes_over_constant, argnums=0)(
        np.ones(2), 2.0), np.array([20.0, 20.0])),
    ("custom_jvp_rule_calls_itself", lambda: jitgrad.grad(jitgrad.grad(_cj_recursive))(2.0), 2.0),
    ("custom_jvp_recursive_under_vmap", lambda: jitgrad.grad(
        lambda x: np.sum(jitgrad.vmap(_cj_recursive)(x)))(np.ones(2)), np.array([2.0, 2.0])),
    # forward over reverse differentiates bwd, 7 ct: a zero Hessian
    ("custom_vjp_hessian", lambda: jitgrad.hessian(lambda x: np.sum(_cv_exp(x)))(np.ones(2)),
     np.zeros((2, 2))),
    # pytrees
    ("namedtuple_grad", lambda: jitgrad.grad(lambda p: np.sum(p.x * p.y))(_NT(np.ones(2), np.full(2, 3.0))),
     (np.full(2, 3.0), np.ones(2))),
    ("namedtuple_output_type", lambda: type(jitgrad.jit(lambda x: _NT(x, x * 2))(np.ones(2))).__name__ == "_NT",
     True),
    ("dict_keys_sorted", lambda: list(jitgrad.jit(lambda d: d)({"b": np.ones(1), "a": np.zeros(1)})) == ["a", "b"],
     True),
    ("none_leaf_keeps_none", lambda: jitgrad.grad(lambda d: np.sum(d["a"]))({"a": np.ones(2), "b": None}),
     {"a": np.ones(2), "b": None}),
    ("empty_tuple_argument", lambda: jitgrad.grad(lambda e, x: np.sum(x), argnums=(0, 1))((), np.ones(2)),
     ((), np.ones(2))),
    ("jacrev_of_tuple_output", lambda: jitgrad.jacrev(lambda x: {"a": x * 2, "b": (np.sum(x), x[0])})(np.ones(2)),
     {"a": 2 * np.eye(2), "b": (np.ones(2), np.array([1.0, 0.0]))}),
    ("vmap_size_zero", lambda: jitgrad.vmap(jitgrad.grad(lambda x: np.sum(x * x)))(np.ones((0, 2))).shape == (0, 2),
     True),
    ("vmap_constant_output", lambda: jitgrad.vmap(lambda x: np.ones(2))(np.ones((3, 2))), np.ones((3, 2))),
    # special points.  abs'(0): JAX gives 1 (select(x >= 0, t, -t)), TensorFlow and PyTorch
    # sign(0) = 0; jitgrad keeps 0.
    ("abs_at_zero", lambda: jitgrad.grad(np.abs)(0.0), 0.0),
    ("where_nan_untaken_through_reshape", lambda: jitgrad.grad(
        lambda x: np.sum(np.where(x > 0, np.sqrt(x.reshape(2, 2)).T.ravel(), 0.0)))(np.array([0.0, 1.0, 4.0, -1.0])),
     np.array([0.0, 0.5, 0.25, 0.0])),
    ("max_ties_split", lambda: jitgrad.grad(np.max)(np.array([1.0, 3.0, 3.0])), np.array([0.0, 0.5, 0.5])),
    ("maximum_tie_split", lambda: jitgrad.grad(lambda x: np.maximum(x, 0.0))(0.0), 0.5),
    ("pow_float_exponent_at_zero", lambda: jitgrad.grad(lambda x: x ** 2.0)(0.0), 0.0),
    ("sqrt_at_zero", lambda: jitgrad.grad(np.sqrt)(0.0), np.inf),
    ("norm_at_zero_is_nan_as_jax", lambda: jitgrad.grad(np.linalg.norm)(np.zeros(2)), np.array([np.nan, np.nan])),

    # -- numerics
    # a NaN input gives a NaN derivative (JAX, PyTorch), also through max/where compositions
    ("grad_logaddexp_nan", lambda: jitgrad.grad(lambda x: np.sum(np.logaddexp(x, .5)))(np.array([np.nan])),
     np.array([np.nan])),
    ("grad_logaddexp_nan_other", lambda: jitgrad.grad(lambda y: np.sum(np.logaddexp(.5, y)))(np.array([np.nan])),
     np.array([np.nan])),
    ("grad_softplus_nan", lambda: jitgrad.grad(lambda x: np.sum(np.logaddexp(0.0, x)))(np.array([np.nan, 0.0])),
     np.array([np.nan, 0.5])),
    ("grad_logaddexp_equal_infinities", lambda: jitgrad.grad(lambda x, y: np.sum(np.logaddexp(x, y)),
                                                             argnums=(0, 1))(np.array([np.inf]), np.array([np.inf])),
     (np.array([1.0]), np.array([1.0]))),
    ("grad_logaddexp_ties_and_limits", lambda: jitgrad.grad(lambda x, y: np.sum(np.logaddexp(x, y)), argnums=(0, 1))(
        np.array([1.0, -np.inf, np.inf]), np.array([1.0, 0.0, -np.inf])), (np.array([0.5, 0.0, 1.0]), np.array([0.5, 1.0, 0.0]))),
    ("grad_maximum_nan", lambda: jitgrad.grad(lambda x, y: np.sum(np.maximum(x, y)), argnums=(0, 1))(
        np.array([np.nan, 1.0, 2.0, 1.0]), np.array([1.0, np.nan, 1.0, 1.0])),
     (np.array([np.nan, 0.0, 1.0, 0.5]), np.array([0.0, np.nan, 0.0, 0.5]))),
    ("grad_minimum_nan", lambda: jitgrad.grad(lambda x: np.sum(np.minimum(x, 1.0)))(np.array([np.nan, 0.0, 2.0])),
     np.array([np.nan, 1.0, 0.0])),
    ("grad_clip_nan", lambda: jitgrad.grad(lambda x: np.sum(np.clip(x, 0, 1)))(np.array([np.nan, 0.5, 2.0])),
     np.array([np.nan, 1.0, 0.0])),
    ("grad_relu_nan", lambda: jitgrad.grad(lambda x: np.sum(np.maximum(x, 0)))(np.array([np.nan, 1.0])), np.array([np.nan, 1.0])),
    ("grad_abs_nan", lambda: jitgrad.grad(lambda x: np.sum(np.abs(x)))(np.array([np.nan, -2.0])), np.array([np.nan, -1.0])),
    ("grad_max_reduction_nan", lambda: jitgrad.grad(np.max)(np.array([np.nan, 1.0])), np.array([np.nan, np.nan])),
    ("grad_where_masks_nan_input", lambda: jitgrad.grad(lambda x: np.sum(np.where(x > 0, x, 0.0)))(
        np.array([np.nan, 1.0])), np.array([0.0, 1.0])),
    ("grad_remainder", lambda: jitgrad.grad(lambda x, y: np.sum(x % y), argnums=(0, 1))(
        np.array([5.5, -5.5]), np.array([2.0, 2.0])), (np.array([1.0, 1.0]), np.array([-2.0, 3.0]))),

    # -- api
    ("static_keyword_is_static", lambda: jitgrad.jit(lambda x, n=1: x if n else -x, static_argnums=1)(
        2.0, n=False), -2.0),
    ("vjp_fn_after_primal_mutated", lambda: _mutate_after(jitgrad.vjp), (np.array([2.0, 4.0]),)),
    ("linearize_after_primal_mutated", lambda: _mutate_after(jitgrad.linearize), np.array([2.0, 4.0])),
    # equal static values of different types (2 == 2.0) are different specialisations
    ("static_int_then_equal_float", lambda: [
        _JIT_TIMES_STATIC(np.arange(3), n).dtype == np.float64 for n in (2, 2.0, np.float32(2))],
     [False, True, True]),
    ("static_keyword_beside_traced_keyword", lambda: jitgrad.jit(
        lambda x, n=2, c=0.0: x * n + c, static_argnums=1)(1.0, c=np.ones(2)), np.array([3.0, 3.0])),
    ("static_argnums_default_left", lambda: jitgrad.jit(lambda x, n=3: x * n, static_argnums=1)(2.0), 6.0),
    ("static_negative_index", lambda: jitgrad.jit(lambda x, n: x * n, static_argnums=-1)(2.0, 3), 6.0),
    ("argnums_numpy_int", lambda: jitgrad.grad(lambda a, b: a * b, argnums=np.int64(1))(2.0, 3.0), 2.0),
    ("argnums_list", lambda: jitgrad.grad(lambda a, b: a * b, argnums=[1, 0])(2.0, 3.0), (2.0, 3.0)),
    ("dtype_changes_between_calls", lambda: [_JIT_DOUBLE(np.ones(2)).dtype.itemsize,
                                             _JIT_DOUBLE(np.ones(2, np.float32)).dtype.itemsize,
                                             _JIT_DOUBLE(np.ones(2, np.int16)).dtype.itemsize], [8, 4, 2]),
    ("float32_stays_float32", lambda: jitgrad.grad(lambda x: np.sum(x * x))(np.ones(2, np.float32)).dtype
     == np.float32, True),
    ("float16_gradient", lambda: jitgrad.grad(lambda x: np.sum(x * x))(np.ones(2, np.float16)), np.array([2.0, 2.0])),
    ("grad_of_list_is_list", lambda: isinstance(jitgrad.grad(lambda p: p[0] * p[1])([2.0, 3.0]), list),
     True),
    ("grad_of_tuple_is_tuple", lambda: jitgrad.grad(lambda p: p[0] * p[1])((2.0, 3.0)), (3.0, 2.0)),
    ("grad_with_keyword", lambda: jitgrad.grad(lambda x, s: np.sum(x * s))(Y, s=2.0), np.array([2.0, 2.0, 2.0])),
    ("hessian_of_non_scalar", lambda: jitgrad.hessian(lambda x: x ** 3)(np.array([1.0, 2.0]))[1, 1],
     np.array([0.0, 12.0])),
    ("vmap_in_axes_negative", lambda: jitgrad.vmap(np.sum, in_axes=-1)(M), np.array([3.0, 5.0, 7.0])),
    ("vmap_out_axes", lambda: jitgrad.vmap(lambda v: v * 2.0, out_axes=1)(M), np.array([[0.0, 6.0], [2.0, 8.0], [4.0, 10.0]])),
    ("vmap_out_axes_negative_per_output", lambda: jitgrad.vmap(lambda v: (v, np.sum(v)), out_axes=(-1, 0))(M),
     (np.array([[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]), np.array([3.0, 12.0]))),
    ("vjp_int_primal_cotangent_is_zero", lambda: jitgrad.vjp(lambda a, n: a * n, Y, 3)[1](Z)[1], 0),
    ("memmap_view_argument", lambda: jitgrad.grad(lambda x: np.sum(x * x))(np.ones(2).view(np.memmap)),
     np.array([2.0, 2.0])),
    ("subclass_argument_gradient", lambda: jitgrad.grad(lambda x: np.sum(x * x))(
        np.arange(3.0).view(type("Sub", (np.ndarray,), {}))), np.array([0.0, 2.0, 4.0])),
    ("checkpoint_keyword_argument", lambda: jitgrad.grad(
        lambda x: jitgrad.checkpoint(lambda a, b=1.0: a * b)(x, b=x * 3.0))(2.0), 12.0),
    ("grad_of_cond_inside_scan", lambda: jitgrad.grad(lambda x: jitgrad.scan(
        lambda c, t: (jitgrad.cond(c > 0.5, lambda a: a * t, lambda a: a + t, c), None), x, Z)[0])(1.0), 0.5),

    # -- runtime
    # arguments are taken in native byte order: an identity returns a native copy
    ("big_endian_identity_is_native",
     lambda: jitgrad.jit(lambda x: x)(np.arange(4.0).astype(">f8")).dtype.isnative, True),
    ("config_numpy_integer_setting", lambda: _setting_inside("hot_calls", np.int64(5)), 5),
    ("config_unchanged_by_rejected_override", lambda: _hot_calls_after_rejected_override(), 2),

    # -- tape
    ("tensor_bitwise_on_integers_as_numpy", lambda: [np.asarray(op(jitgrad.constant(np.array([6, 5])),
                                                                      jitgrad.constant(np.array([3, 1]))))
                                                    for op in (lambda a, b: a & b, lambda a, b: a | b,
                                                               lambda a, b: a ^ b, lambda a, b: ~a)],
     [np.array([2, 1]), np.array([7, 5]), np.array([5, 4]), np.array([-7, -6])]),
    ("tape_mixed_sources_pow", lambda: (lambda w: _tape(lambda: ((lambda h: (h ** 2, [h]))(2 * w)), [w]))(
        jitgrad.Variable(3.0)), [24.0, 12.0]),
    ("tape_mixed_sources_mul", lambda: (lambda w: _tape(lambda: ((lambda h: (h * w, [h]))(2 * w)), [w]))(
        jitgrad.Variable(3.0)), [12.0, 3.0]),
    ("tape_mixed_sources_zero", lambda: (lambda w, u: _tape(lambda: ((lambda h: (h * w, [h]))(2 * w)), [w, u],
                                                           unconnected_gradients="zero"))(
        jitgrad.Variable(3.0), jitgrad.Variable(1.0)), [12.0, 0.0, 3.0]),
    ("tape_mixed_chain_of_intermediates", lambda: (lambda w: _tape(
        lambda: (lambda h: (lambda k: (k * h, [h, k]))(h * h))(2 * w), [w]))(jitgrad.Variable(1.0)),
     [24.0, 12.0, 2.0]),
    ("tape_source_is_target", lambda: (lambda w: _tape(lambda: (lambda h: (h, [h]))(w * w), [w]))(
        jitgrad.Variable(3.0)), [6.0, 1.0]),
    ("tape_stop_gradient", lambda: (lambda a: _tape(lambda: (a * jitgrad.stop_gradient(a), []), [a]))(
        jitgrad.Variable(3.0)), [3.0]),
    ("tape_stop_gradient_of_a_list", lambda: (lambda w: _tape(
        lambda: (lambda ab: ((ab[0] * w).sum() + (ab[1] * w).sum(), []))(
            jitgrad.stop_gradient([w * 1.0, w * 2.0])), [w]))(jitgrad.Variable(np.array([1.0, 2.0]))),
     [np.array([3.0, 6.0])]),
    ("stop_gradient_of_a_list_in_grad", lambda: jitgrad.grad(
        lambda x: np.sum(jitgrad.stop_gradient([x, x])[0] * x))(np.array([1.0, 2.0])), np.array([1.0, 2.0])),
    ("tape_nested_mixed_sources", lambda: _tape_nested(3), 144.0 + 72.0),
    ("tape_persistent_inside_block", _tape_in_context, 18.0),
    ("tape_variable_assigned_inside", _tape_reassigned, 8.0),
    ("tape_watch_then_assign", _tape_watch_then_assign, 10.0),
    ("tape_watched_variables_kept", _tape_watched_after_gradient, [2, 1.0, 2.0]),
    ("tape_jacobian_mixed_sources", _tape_jacobian_mixed, [np.diag([3.0, 12.0]), np.diag([1.0, 2.0])]),
    ("tape_target_listed_twice", lambda: (lambda w: _tape(lambda: ([w * w, w * w][:1] * 2, []), [w]))(
        jitgrad.Variable(3.0)), [12.0]),
    ("tape_constant_updated_in_place", _tape_constant_updated_in_place, [1.0, 1.0]),
    ("tape_variable_asarray_is_a_copy", _variable_asarray_updated, [1.0, 1.0]),
    ("tape_variable_value_is_a_copy", _variable_value_updated, [1.0, 1.0]),
    ("tape_integer_source_is_none", _tape_integer_source, [True]),
    ("tape_dict_sources", lambda: (lambda v, w: _tape(lambda: ((v * w).sum(), []), [{"a": v, "b": [w]}]))(
        jitgrad.Variable(np.array([1.0, 2.0])), jitgrad.Variable(3.0)), [[3.0, 3.0], 3.0]),
]


# ---------------------------------------------------------------------------
# The generic tests.


def _numpy_outcome(f, args):
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # NumPy's own (mean of empty, ddof)
            return f(*args), None
    except Exception as exc:     # noqa: BLE001 - the exception type is the outcome
        return None, type(exc)


def _check_outcome(got_fn, want, want_exc, tier, rtol=0.0):
    if want_exc is not None:
        with pytest.raises(want_exc):
            got_fn()
        return
    got = got_fn()
    got, want = tree_util.flatten(got)[0], tree_util.flatten(want)[0]
    assert len(got) == len(want), f"{tier}: number of results"
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype, f"{tier}: dtype {g.dtype}, NumPy's {w.dtype}"
        if rtol:
            np.testing.assert_allclose(g, w, rtol=rtol, err_msg=tier)
            continue
        np.testing.assert_array_equal(g, w, err_msg=tier)
        if w.dtype.kind == "f":     # the sign of zero too (not of NaN: NumPy does not define it)
            np.testing.assert_array_equal(np.signbit(g) & ~np.isnan(g), np.signbit(w) & ~np.isnan(w),
                                          err_msg=f"{tier}: sign")


@pytest.mark.parametrize("f, args, rtol", [(r[1], r[2], r[3] if len(r) > 3 else 0.0) for r in AGREE],
                         ids=[r[0] for r in AGREE])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_agrees_with_numpy(f, args, rtol, mode):
    want, want_exc = _numpy_outcome(f, args)
    with jitgrad.config(compile=mode):
        _check_outcome(lambda: jitgrad.jit(f)(*args), want, want_exc, mode, rtol)


def _leaves(x):
    return [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in tree_util.flatten(x)[0]]


@pytest.mark.parametrize("call", [r[1] for r in FRESH], ids=[r[0] for r in FRESH])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_results_are_fresh(call, mode):
    with jitgrad.config(compile=mode):
        for _ in range(2):              # the first call and a cached one
            results, held = call()
            held = held + [W]
            for r in _leaves(results):
                for h in held:
                    assert not np.shares_memory(r, h), "a result shares memory with an array the user holds"


@pytest.mark.parametrize("call, exc, pattern", [r[1:] for r in RAISES], ids=[r[0] for r in RAISES])
def test_raises_clearly(call, exc, pattern):
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("call, expected", [r[1:] for r in EQUALS], ids=[r[0] for r in EQUALS])
def test_equals(call, expected):
    got = call()
    for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(expected)[0]):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), rtol=1e-12, equal_nan=True)


# === core ===
# Tracing state is per thread.  The races are made likely, not left to luck:
# the interpreter switches threads every 10 µs, and every thread starts at a
# barrier.  Each case is (id, make(k) -> (function of thread k, its argument,
# its exact answer)); every thread checks its own answer, on a cold and a warm
# cache.

import sys
import threading

from jitgrad.core.errors import JitgradError


def _run_threads(n, work):
    """Run ``work(k)`` on ``n`` threads at once; re-raise the first failure."""
    errors, barrier = [], threading.Barrier(n)

    def body(k):
        try:
            barrier.wait()
            work(k)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]


_shared_grad = jitgrad.grad(lambda x: np.sum(np.sin(x) * x))


def _own_grad(k):
    c = float(k + 1)
    return jitgrad.grad(lambda x: np.sum(c * x * x)), np.arange(3.0) + k, 2 * c * (np.arange(3.0) + k)


def _shared_cold(k):
    x = np.linspace(0, 1, 2 + k)      # a new shape per thread: each traces
    return _shared_grad, x, np.cos(x) * x + np.sin(x)


def _nested(k):
    c = float(k + 1)
    f = jitgrad.grad(jitgrad.grad(lambda x: c * x ** 3))
    return f, 2.0, 6 * c * 2.0


def _jvp_thread(k):
    c = float(k + 1)
    f = lambda x: jitgrad.jvp(lambda y: c * np.sum(y * y), (x,), (np.ones_like(x),))[1]
    x = np.arange(4.0)
    return f, x, c * 2 * np.sum(x)


def _vmap_thread(k):
    c = float(k + 1)
    f = jitgrad.vmap(jitgrad.grad(lambda x: c * np.sum(x * x)))
    x = np.arange(6.0).reshape(2, 3) + k
    return f, x, 2 * c * x


def _custom(k):
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(x), np.cos(x) * t

    c = float(k + 1)
    return jitgrad.grad(lambda x: c * np.sum(f(x))), np.arange(3.0), c * np.cos(np.arange(3.0))


THREADS = [
    ("own_function_each", _own_grad),
    ("one_function_new_shapes", _shared_cold),
    ("grad_of_grad", _nested),
    ("jvp", _jvp_thread),
    ("vmap_of_grad", _vmap_thread),
    ("custom_jvp", _custom),
]


@pytest.mark.parametrize("make", [r[1] for r in THREADS], ids=[r[0] for r in THREADS])
def test_threads_trace_independently(make):
    def work(k):
        f, x, want = make(k)
        for _ in range(3):            # cold, then cached
            got = f(x)
            assert type(got) in (np.ndarray, np.float64), f"thread {k} got {type(got).__name__}"
            np.testing.assert_allclose(got, want, rtol=1e-13)
    _run_threads(6, work)


def test_warm_calls_while_another_thread_traces():
    warm = jitgrad.grad(lambda x: np.sum(x * x))
    x = np.arange(3.0)
    warm(x)
    stop = threading.Event()

    def work(k):
        if k == 0:                    # keeps tracing new functions
            for i in range(30):
                c = float(i)
                assert jitgrad.grad(lambda y: c * y * y)(1.0) == 2 * c
            stop.set()
        else:                         # calls the warm one meanwhile
            while not stop.is_set():
                np.testing.assert_array_equal(warm(x), 2 * x)
    _run_threads(3, work)


def test_background_compile_never_traces(monkeypatch):
    # In "auto" mode the compile runs on a thread of its own; a function with a
    # custom rule used to be inlined there, opening a trace the calling thread saw.
    opened_on = set()
    init = jitgrad.core.trace.Trace.__init__

    def recording_init(self):
        opened_on.add(threading.current_thread().name)
        init(self)
    monkeypatch.setattr(jitgrad.core.trace.Trace, "__init__", recording_init)

    @jitgrad.custom_jvp
    def g(x):
        return np.exp(x)

    @g.defjvp
    def g_jvp(primals, tangents):
        return np.exp(primals[0]), np.exp(primals[0]) * tangents[0]

    f = jitgrad.grad(lambda x: np.sum(g(x) * x))
    x = np.linspace(0, 1, 5)
    want = np.exp(x) * x + np.exp(x)
    with jitgrad.config(compile="auto", hot_seconds=0):
        for _ in range(20):
            others = jitgrad.grad(lambda y: np.sum(y ** 3))(x)   # traces while the compile runs
            np.testing.assert_allclose(others, 3 * x ** 2, rtol=1e-13)
            np.testing.assert_allclose(f(x), want, rtol=1e-13)
        jitgrad.wait_for_compiles()
        np.testing.assert_allclose(f(x), want, rtol=1e-13)
    assert opened_on == {threading.current_thread().name}


def test_traced_value_from_another_thread_is_refused():
    box, ready, done = [], threading.Event(), threading.Event()

    def other(x):
        box.append(x)
        ready.set()
        done.wait(5)
        return x * 2.0

    t = threading.Thread(target=lambda: jitgrad.jit(other)(np.ones(2)))
    t.start()
    try:
        ready.wait(5)
        with pytest.raises(JitgradError, match="another thread"):
            jitgrad.jit(lambda y: y + box[0])(np.ones(2))
        with pytest.raises(JitgradError, match="another thread"):      # outside any trace
            box[0] + np.ones(2)
    finally:
        done.set()
        t.join()

# === api ===
# The user's arrays for the api rows of the tables above.
Y = np.arange(3.0)
Z = np.array([0.5, -1.0, 2.0])
M = np.arange(6.0).reshape(2, 3)
CV = np.array([1 + 2j, -1j, 0.5])     # complex
_JIT_DOUBLE = jitgrad.jit(lambda x: x * 2)
_JIT_TIMES_STATIC = jitgrad.jit(lambda x, n: x * n, static_argnums=1)


def _mutate_after(transform):
    """vjp's vjp_fn and linearize's f_jvp keep the point they were made at."""
    x = np.array([1.0, 2.0])
    _, fn = transform(lambda v: v ** 2, x)
    x *= 10.0
    return fn(np.ones(2))


class _Units(np.ndarray):
    """A units-like subclass: NumPy's functions mean something else on it."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return NotImplemented


def _matrix():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix([[1.0, 2.0]])


def _escaped():
    """A tracer kept in a list past the trace that made it."""
    kept = []
    jitgrad.jit(lambda x: kept.append(x) or x * 2.0)(1.0)
    return kept[0]


def _vjp_both(f, x, ct):
    out, fn = jitgrad.vjp(f, x)
    return (out, fn(ct)), [x] + ([ct] if isinstance(ct, np.ndarray) else [])


def _linearize_both(f, x, t):
    out, fn = jitgrad.linearize(f, x)
    return (out, fn(t)), [x, t]


def _apart(results):
    """Results of one call must not share memory with each other."""
    first, *rest = tree_util.flatten(results)[0]
    return rest, [first]


# transformed once, so that the second call of a row is a cached one
_JACFWD_IDENTITY = jitgrad.jacfwd(lambda x: x)
_JACREV_IDENTITY = jitgrad.jacrev(lambda x: x)
_JIT_CONSTANT = jitgrad.jit(lambda x: W)


def _twice(call):
    """A cached call must not hand back the memory of an earlier result."""
    first = call()
    return call(), _leaves(first)


# === tape ===

import sys  # noqa: E402
import threading  # noqa: E402

from jitgrad.core import trace as core  # noqa: E402
from jitgrad.tape import derivatives as tape_mod  # noqa: E402


def _thread_tape_plain(x0):
    w = jitgrad.Variable(x0)
    with jitgrad.GradientTape() as tape:
        y = w * w * w
    return tape.gradient(y, w), 3 * x0 ** 2


def _thread_tape_persistent(x0):
    w = jitgrad.Variable(x0)
    with jitgrad.GradientTape(persistent=True) as tape:
        h = 2.0 * w
        y = h * w
    return tape.gradient(y, [w, h]), [4 * x0, x0]


def _thread_tape_nested(x0):
    w = jitgrad.Variable(x0)
    with jitgrad.GradientTape() as outer:
        with jitgrad.GradientTape() as inner:
            y = w * w * w
        dy = inner.gradient(y, w)
    assert isinstance(dy, jitgrad.Tensor)   # recorded by the outer tape
    return [dy.numpy(), outer.gradient(dy, w)], [3 * x0 ** 2, 6 * x0]


def _thread_tape_paused(x0):
    w = jitgrad.Variable(x0)
    with jitgrad.GradientTape() as tape:
        y = w * w
        with tape.stop_recording():
            y2 = y * w                  # not recorded
        y = y + jitgrad.stop_gradient(y2)
    return tape.gradient(y, w), 2 * x0


# (id, the body each thread runs on its own value: returns (got, expected))
THREAD_TAPES = [
    ("plain", _thread_tape_plain),
    ("persistent_mixed", _thread_tape_persistent),
    ("nested", _thread_tape_nested),
    ("paused", _thread_tape_paused),
]


def _trace_state_is_per_thread():
    seen = []
    with core.new_trace():
        probe = threading.Thread(target=lambda: seen.append(core.is_tracing()))
        probe.start()
        probe.join()
    return not seen[0]


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_tapes_in_threads_record_only_their_own_thread(cache, monkeypatch):
    """Several threads, each with its own tapes on its own values, at once: every
    gradient is exact, and a Tensor of a plain array (no tracer from another
    thread's replay).  Warm: every
    derivative is cached first, so no thread traces; cold: the threads build
    them, tracing at the same time."""
    if cache == "warm":
        for _, body in THREAD_TAPES:
            body(1.0)
    else:
        assert _trace_state_is_per_thread()
        monkeypatch.setattr(tape_mod, "_CACHE", type(tape_mod._CACHE)())
    bodies = [body for _, body in THREAD_TAPES * 2]

    def work(k):
        body, x0 = bodies[k], float(k) + 1.0
        for i in range(40):
            got, want = body(x0 + i)
            for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(want)[0]):
                # gradients are Tensors holding plain arrays (the nested body
                # returns one's .numpy())
                g = g.numpy() if isinstance(g, jitgrad.Tensor) else g
                assert isinstance(g, (np.ndarray, np.generic)), f"got a {type(g).__name__}"
                assert float(g) == float(w), (body.__name__, x0 + i, g, w)
    _run_threads(len(bodies), work)


def test_tape_entered_on_another_thread_does_not_record_here():
    w = jitgrad.Variable(2.0)
    with jitgrad.GradientTape() as tape:
        done = threading.Event()

        def other():
            v = jitgrad.Variable(5.0)
            v * v                        # another thread: not this tape's business
            done.set()
        threading.Thread(target=other).start()
        done.wait()
        y = w * w
    assert len(tape.watched_variables()) == 1
    assert tape.gradient(y, w) == 4.0


# (id, the step's scalar, made from the step number)
SCHEDULES = [
    ("python_float", lambda i: 0.1 / (1 + i)),
    ("numpy_float32", lambda i: np.float32(0.1) / np.float32(1 + i)),
    ("numpy_0d", lambda i: np.array(0.1 / (1 + i))),
]


@pytest.mark.parametrize("lr", [r[1] for r in SCHEDULES], ids=[r[0] for r in SCHEDULES])
def test_tape_schedule_does_not_grow_the_cache(lr):
    """A loss scaled by a new scalar each step (a learning-rate schedule) reuses
    one derivative: the scalar is an input of the recording, not part of its key."""
    w = jitgrad.Variable(np.array([1.0, 2.0]))
    before_cache, before_builds = len(tape_mod._CACHE), tape_mod.build_count
    for i in range(200):
        with jitgrad.GradientTape() as tape:
            loss = (w * w).sum() * lr(i) + w[0] * lr(i + 1)
        g = tape.gradient(loss, w)
        want = 2 * w.numpy() * lr(i) + np.array([lr(i + 1), 0.0])
        np.testing.assert_allclose(g, want, rtol=1e-6)
    assert tape_mod.build_count - before_builds <= 1
    assert len(tape_mod._CACHE) - before_cache <= 1


def test_tape_python_float_keeps_the_tensor_dtype():
    """A Python float beside a float32 tensor is weakly typed (NumPy's rule), also
    as a runtime input of the recording; beside an int tensor it is float64."""
    w = jitgrad.Variable(np.array([1.0, 2.0], np.float32))
    k = jitgrad.constant(np.array([1, 2], np.int32))
    with jitgrad.GradientTape() as tape:
        tape.watch(k)
        y = w * 0.1
        z = k * 0.5
        loss = y.sum() + (z * w).sum()
    assert y.dtype == np.float32 and z.dtype == np.float64
    g = tape.gradient(loss, w)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.float32(0.1) + np.array([0.5, 1.0]), rtol=1e-6)


def test_tape_cache_is_bounded(monkeypatch):
    """Recordings of a new structure every step: the cache keeps the most recent."""
    monkeypatch.setattr(tape_mod, "CACHE_SIZE", 8)
    w = jitgrad.Variable(2.0)
    for i in range(1, 30):
        with jitgrad.GradientTape() as tape:
            y = w ** i                   # an int exponent: part of the structure
        assert tape.gradient(y, w) == i * 2.0 ** (i - 1)
        assert len(tape_mod._CACHE) <= 8


# === numerics ===

def _strided_view_closure():
    base = np.arange(20.0)
    view = base[::-4]                                # strided, negative step
    matrix = base.reshape(4, 5)[::-2, ::2]           # a 2-d strided view (BLAS needs a copy)
    return base, view, (lambda x: x * view), (lambda y: y @ matrix)


@pytest.mark.parametrize("mode", ["never", "always"])
def test_closure_over_a_mutated_view_reads_live_values(mode):
    """Both tiers read a captured view's values at call time, as the NumPy
    function itself does (no copy taken at compile time)."""
    base, view, f, g = _strided_view_closure()
    with jitgrad.config(compile=mode):
        jf, jg = jitgrad.jit(f), jitgrad.jit(g)
        x, y = np.ones(5), np.arange(6.0).reshape(3, 2)
        for step in range(3):
            base[:] = np.arange(20.0) * (step + 1)
            np.testing.assert_array_equal(jf(x), f(x))
            np.testing.assert_array_equal(jg(y), g(y))
            np.testing.assert_array_equal(jitgrad.grad(lambda v: np.sum(f(v)))(x), view)


_NAN_GRADIENTS = [r for r in EQUALS if r[0] in (
    "grad_logaddexp_nan", "grad_softplus_nan", "grad_maximum_nan", "grad_clip_nan", "grad_remainder")]


@pytest.mark.parametrize("call, expected", [r[1:] for r in _NAN_GRADIENTS], ids=[r[0] for r in _NAN_GRADIENTS])
def test_nan_gradients_compiled(call, expected):
    """The NaN-propagating derivatives are IR, so the compiled tier gives them too."""
    with jitgrad.config(compile="always"):
        got = call()
    for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(expected)[0]):
        np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), rtol=1e-12, equal_nan=True)


# === runtime ===
# Compiling, the parallel loops, threads and processes, the disk cache, the
# compile queue and what the caches keep alive.  Anything that could abort or
# hang the interpreter runs in a subprocess.

import gc                 # noqa: E402
import os                 # noqa: E402
import subprocess         # noqa: E402
import sys                # noqa: E402
import textwrap           # noqa: E402
import threading          # noqa: E402
import warnings           # noqa: E402
import weakref            # noqa: E402

from jitgrad.backend import compile as native  # noqa: E402
from jitgrad.backend import executable as runtime  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(jitgrad.__file__)))
PARALLEL_N = 1 << 18       # the smallest size that takes the parallel path


def _setting_inside(name, value):
    with jitgrad.config(**{name: value}):
        got = getattr(jitgrad.config, name)
    assert type(got) is int
    return got


def _hot_calls_after_rejected_override():
    """An override with one bad setting changes none, not even its valid ones."""
    with pytest.raises(ValueError):
        with jitgrad.config(hot_calls=7, compile="alwyas"):
            pass
    return jitgrad.config.hot_calls


def _python(code, timeout=240, **env):
    """Run ``code`` in a fresh interpreter importing this jitgrad; returns the
    completed process (an abort or a hang cannot take pytest with it)."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def _ok(proc, *expected):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for line in expected:
        assert line in proc.stdout, f"{line!r} not in\n{proc.stdout}\n{proc.stderr}"


def sincos(x):
    return np.sum(np.sin(x) + np.cos(2 * x))


def sincos_grad_exact(x):
    return np.cos(x) - 2 * np.sin(2 * x)


# The parallel program every process test runs, and its check.
PARALLEL_SETUP = f"""
import os, sys, threading, warnings
import numpy as np
import jitgrad
warnings.simplefilter("error")
jitgrad.config.compile = "always"
x = np.linspace(-3, 3, {PARALLEL_N})
g = jitgrad.grad(lambda x: np.sum(np.exp(-x * x) * x))
want = np.exp(-x * x) * (1 - 2 * x * x)
def check():
    assert np.allclose(g(x), want, rtol=1e-13, atol=1e-13)
    return True
"""


@pytest.mark.parametrize("transform", ["jit", "grad"])
def test_parallel_sin_cos_loop_compiles(transform):
    x = np.linspace(-3, 3, PARALLEL_N)
    f = getattr(jitgrad, transform)(sincos)
    assert " in prange(" in jitgrad.source(f)(x), "not the parallel path"
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(x)
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None
    want = sincos(x) if transform == "jit" else sincos_grad_exact(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_big_endian_arguments_answer_without_warnings():
    x = np.arange(4.0).astype(">f8")
    f = jitgrad.grad(lambda x: np.sum(x * x * 1.25))
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(f(x), 2.5 * x)
        np.testing.assert_allclose(jitgrad.jit(lambda a: a * x)(np.ones(4)), x)


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# (id, the argument in another layout than the C-contiguous one compiled for)
LAYOUTS = [
    ("strided", np.linspace(0, 1, 24)[::2]),
    ("reversed", np.linspace(0, 1, 12)[::-1]),
    ("read_only", _read_only(np.linspace(0, 1, 12))),
    ("unaligned", np.frombuffer(b"\0" + np.linspace(0, 1, 12).tobytes(), offset=1)),
]


@pytest.mark.parametrize("x", [r[1] for r in LAYOUTS], ids=[r[0] for r in LAYOUTS])
def test_other_layouts_are_not_compiled_on_the_calling_thread(x):
    f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.1875))
    with jitgrad.config(compile="always"):
        f(np.linspace(0, 1, 12))
        got = f(x)
    np.testing.assert_allclose(got, 1.1875 * np.exp(x), rtol=1e-13)
    (entry,) = f._staged.cache.values()
    assert len(entry.exe.fn.signatures) == 1, "compiled again for the layout"


def test_compiled_code_releases_the_gil():
    assert "nogil=True" in jitgrad.source(jitgrad.grad(sincos))(np.ones(3))


def test_fork_after_a_parallel_kernel():
    proc = _python(PARALLEL_SETUP + textwrap.dedent("""
        check()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if check() else 1)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """))
    _ok(proc, "child exit 0")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_after_a_parallel_kernel(method, tmp_path):
    # spawn imports the main module in the children: a script file
    script = tmp_path / "pool_script.py"
    script.write_text(PARALLEL_SETUP + textwrap.dedent(f"""
        def work(i):
            return check()
        if __name__ == "__main__":
            import multiprocessing
            check()
            with multiprocessing.get_context("{method}").Pool(2) as pool:
                print("pool", pool.map(work, range(2)))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "PYTHONPATH": ROOT})
    _ok(proc, "pool [True, True]")


def test_threads_call_a_parallel_gradient_concurrently():
    proc = _python(PARALLEL_SETUP + textwrap.dedent("""
        check()
        sys.setswitchinterval(1e-5)
        errors = []
        def run():
            try:
                for _ in range(5):
                    check()
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("errors", errors)
    """), NUMBA_THREADING_LAYER="workqueue")
    _ok(proc, "errors []")


def test_threads_overlap_compiled_calls():
    # serial compiled calls from several threads at once, each with its own
    # arrays: every answer right (the calls run without the GIL)
    f = jitgrad.grad(lambda x: np.sum(np.exp(-x * x) * x))
    xs = [np.linspace(-1, 1, 64) + k for k in range(4)]
    want = [np.exp(-x * x) * (1 - 2 * x * x) for x in xs]
    with jitgrad.config(compile="always"):
        f(xs[0])
    results = [[] for _ in xs]

    def run(k):
        for _ in range(200):
            results[k].append(f(xs[k]))
    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, rs in enumerate(results):
        assert len(rs) == 200
        for r in rs:
            np.testing.assert_allclose(r, want[k], rtol=1e-13, atol=1e-15)


def test_fork_during_a_background_compile():
    # the child must not inherit a compile lock held by a thread it lacks
    proc = _python("""
        import os
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.big_elements = 0          # compile every signature at once
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.25 + np.tanh(x)))
        f(np.arange(3.0))                        # queued: compiling in the background
        pid = os.fork()
        if pid == 0:
            with jitgrad.config(compile="always"):
                g = jitgrad.grad(lambda x: np.sum(np.cos(x) * 1.75))
                ok = np.allclose(g(np.arange(3.0)), -1.75 * np.sin(np.arange(3.0)))
                jitgrad.wait_for_compiles()
            os._exit(0 if ok else 1)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """, timeout=120)
    _ok(proc, "child exit 0")


def test_exit_while_compiling_in_the_background():
    proc = _python("""
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.big_elements = 0
        for k in range(3):
            jitgrad.grad(lambda x: np.sum(np.exp(x) * (k + 0.5)))(np.arange(3.0))
        print("done")
    """)
    _ok(proc, "done")
    assert "Fatal" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_keyboard_interrupt_while_waiting_for_a_compile():
    # interrupted, wait_for_compiles still knows the compile, and waits for it
    proc = _python("""
        import os, signal, threading
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.big_elements = 0
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.375 + np.tanh(x)))
        f(np.arange(3.0))
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            jitgrad.wait_for_compiles()
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
        jitgrad.wait_for_compiles()
        (entry,) = f._staged.cache.values()
        print("compiled", entry.exe.fn is not None)
    """)
    _ok(proc, "compiled True")


def test_keyboard_interrupt_during_a_compile_on_the_calling_thread():
    # whatever the interrupt cuts short (at 50 ms, the import of Numba), the
    # next call compiles and is right
    proc = _python("""
        import os, signal, threading, warnings
        import numpy as np
        import jitgrad
        warnings.simplefilter("error")
        jitgrad.config.compile = "always"
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.625 + np.tanh(x)))
        x = np.arange(3.0)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            f(x)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
        want = 1.625 * np.exp(x) + 1 / np.cosh(x) ** 2
        print("right", np.allclose(f(x), want, rtol=1e-13))
        (entry,) = f._staged.cache.values()
        print("compiled", entry.exe.fn is not None)
    """)
    _ok(proc, "right True", "compiled True")


def test_forked_child_compiles_the_signatures_queued_before_the_fork():
    proc = _python("""
        import os
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.hot_seconds = 0
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.8125))
        x = np.arange(3.0)
        with jitgrad.backend.compile._compile_lock:     # the worker cannot start it before the fork
            f(x), f(x)                          # hot: queued
            pid = os.fork()
        if pid == 0:
            import time
            give_up = time.monotonic() + 60     # (a compile on a busy machine: seconds)
            while time.monotonic() < give_up:
                f(x)                            # a call of a queued signature starts a worker
                (entry,) = f._staged.cache.values()
                if entry.exe.fn is not None:
                    os._exit(0)
                time.sleep(0.1)
            os._exit(1)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    _ok(proc, "child exit 0")


def test_empty_cache_dir_variable_means_the_default():
    proc = _python("import jitgrad; print(jitgrad.config.cache_dir)", JITGRAD_CACHE_DIR="")
    _ok(proc, os.path.join(".cache", "jitgrad"))


def test_config_overrides_on_two_threads_do_not_undo_each_other():
    # A enters, B enters, A leaves, B leaves: with one shared override, B's
    # exit would restore A's setting for everyone
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with jitgrad.config(compile="always", hot_calls=3):
            a_in.set()
            b_in.wait()
            seen["a"] = (jitgrad.config.compile, jitgrad.config.hot_calls)
        a_out.set()

    def b():
        a_in.wait()
        with jitgrad.config(compile="auto"):
            b_in.set()
            a_out.wait()
            seen["b"] = (jitgrad.config.compile, jitgrad.config.hot_calls)
    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": ("always", 3), "b": ("auto", 2)}
    assert (jitgrad.config.compile, jitgrad.config.hot_calls) == ("never", 2)


def test_environment_compile_mode_is_checked():
    proc = _python("import jitgrad", JITGRAD_COMPILE="alwyas")
    assert proc.returncode != 0
    assert "JITGRAD_COMPILE must be one of 'auto', 'always', 'never', got 'alwyas'" in proc.stderr


# -- the disk cache

def _cache_files(folder, suffix):
    return sorted(p for p in folder.rglob("*" + suffix))


CACHE_PROGRAM = """
    import warnings
    import numpy as np
    import jitgrad
    warnings.simplefilter("error")              # a fallback to the interpreter warns
    jitgrad.config.compile = "always"
    f = jitgrad.grad(lambda x: np.sum(np.exp(x) * np.tanh(x)))
    x = np.linspace(-1, 1, 7)
    want = np.exp(x) * np.tanh(x) + np.exp(x) / np.cosh(x) ** 2
    assert np.allclose(f(x), want, rtol=1e-13)
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None, entry.exe.error
    print("compiled")
"""


def _truncate(path):
    path.write_bytes(path.read_bytes()[:20])


def _garble(path):
    path.write_bytes(bytes(range(256)) * 3)


# (id, what to damage: [(suffix, damage)])
CACHE_DAMAGE = [
    ("index_truncated", [(".nbi", _truncate)]),
    ("index_garbled", [(".nbi", _garble)]),
    ("data_garbled", [(".nbc", _garble)]),
    ("everything_garbled", [(".nbi", _garble), (".nbc", _garble), (".py", _garble)]),
]


@pytest.mark.parametrize("damage", [r[1] for r in CACHE_DAMAGE], ids=[r[0] for r in CACHE_DAMAGE])
def test_damaged_cache_entry_is_rebuilt(damage, tmp_path):
    env = {"JITGRAD_CACHE_DIR": str(tmp_path)}
    _ok(_python(CACHE_PROGRAM, **env), "compiled")
    damaged = {}
    for suffix, fn in damage:
        (path,) = _cache_files(tmp_path, suffix)
        fn(path)
        damaged[path] = path.read_bytes()
    _ok(_python(CACHE_PROGRAM, **env), "compiled")
    for path, data in damaged.items():
        assert path.exists() and path.read_bytes() != data, f"{path.name} not repaired"
    _ok(_python(CACHE_PROGRAM, **env), "compiled")     # and the repaired entry loads


def test_two_processes_fill_one_cache_entry(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "JITGRAD_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CACHE_PROGRAM)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0 and "compiled" in out, err
    _ok(_python(CACHE_PROGRAM, JITGRAD_CACHE_DIR=str(tmp_path)), "compiled")
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"


def _fresh_compile(scale):
    """Compile a function no other test compiles (its constant is in the source)."""
    f = jitgrad.jit(lambda x: np.sum(np.exp(x) * scale))
    with jitgrad.config(compile="always"):
        got = f(np.arange(3.0))
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None, entry.exe.error
    np.testing.assert_allclose(got, np.sum(np.exp(np.arange(3.0)) * scale))


# (id, a cache folder that cannot be used, given a temporary folder, scale for a fresh compile)
UNUSABLE_CACHE_DIRS = [
    ("a_file", lambda tmp: tmp / "file", 1.0625),
    ("under_a_file", lambda tmp: tmp / "file" / "cache", 1.09375),
    ("read_only_file_system", lambda tmp: "/proc/jitgrad-cache", 1.15625),
]


@pytest.mark.parametrize("folder, scale", [r[1:] for r in UNUSABLE_CACHE_DIRS],
                         ids=[r[0] for r in UNUSABLE_CACHE_DIRS])
def test_unusable_cache_dir_compiles_without_a_disk_cache(folder, scale, tmp_path):
    (tmp_path / "file").write_text("a file")
    with jitgrad.config(cache_dir=str(folder(tmp_path))):
        with pytest.warns(RuntimeWarning, match="cannot use the compile cache"):
            _fresh_compile(scale)
    assert (tmp_path / "file").read_text() == "a file"


def test_cache_on_a_full_disk(tmp_path, monkeypatch):
    import errno
    from numba.core import caching

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    monkeypatch.setattr(caching.IndexDataCacheFile, "_open_for_write", full)
    with jitgrad.config(cache_dir=str(tmp_path)):
        with pytest.warns(RuntimeWarning, match="No space left on device"):
            _fresh_compile(1.1875)


def test_compile_failure_while_another_thread_calls(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler today")
    monkeypatch.setattr(runtime, "compile_ir", broken)
    f = jitgrad.grad(lambda x: np.sum(x * x * 1.3125))
    x = np.arange(4.0)
    results = []
    jitgrad.config.compile = "always"                # for every thread
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threads = [threading.Thread(target=lambda: results.append(f(x))) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        jitgrad.config.compile = "never"
    assert len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, 2.625 * x)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "no compiler today" in messages[0], messages


# -- the compile queue

def _compile_threads():
    return [t for t in threading.enumerate() if t.name.startswith("jitgrad-compile")]


def test_new_shapes_do_not_each_start_a_compile(monkeypatch):
    compiled = []
    real = runtime.compile_ir
    monkeypatch.setattr(runtime, "compile_ir", lambda ir, *a: compiled.append(ir) or real(ir, *a))
    f = jitgrad.grad(lambda x: np.sum(np.sin(x) * 1.4375))
    jitgrad.wait_for_compiles()
    with jitgrad.config(compile="auto", hot_seconds=0):
        with native._compile_lock:              # the worker waits: the queue only grows
            for n in range(1, 41):
                x = np.linspace(0, 1, n)
                f(x), f(x)
                assert len(_compile_threads()) <= 1
        jitgrad.wait_for_compiles()
        assert len(compiled) == 1                # the first hot shape; the rest waited
        assert not native._queue.jobs and not native._queue.busy
        x = np.linspace(0, 1, 7)                 # with the queue empty, a hot shape compiles
        for _ in range(jitgrad.config.hot_calls):
            f(x)
        jitgrad.wait_for_compiles()
    assert len(compiled) == 2
    np.testing.assert_allclose(f(x), 1.4375 * np.cos(x), rtol=1e-13)


def test_queued_compiles_of_dropped_functions_are_skipped(monkeypatch, frozen_heap):
    compiled = []
    real = runtime.compile_ir
    monkeypatch.setattr(runtime, "compile_ir", lambda ir, *a: compiled.append(ir) or real(ir, *a))
    jitgrad.wait_for_compiles()
    refs = []
    with jitgrad.config(compile="auto", big_elements=0):   # every signature queued at once
        with native._compile_lock:
            for k in range(20):
                def f(x, k=k):
                    return np.sum(np.sin(x) * (k + 0.5))
                g = jitgrad.grad(f)
                g(np.arange(3.0))
                refs.append(weakref.ref(f))
                del f, g
            gc.collect()
            assert all(r() is None for r in refs), "a queued compile keeps its function alive"
        jitgrad.wait_for_compiles()
    assert compiled == []


# -- what the caches keep alive

def _drops(use):
    """Whether a function (closure included) is freed once the caller drops it,
    after ``use(f)`` called a transform of it."""
    big = np.ones(1000)

    def f(a):
        return np.sum(np.sin(a) * big[:3])
    use(f)
    ref = weakref.ref(f)
    del f
    gc.collect()
    return ref() is None


X3 = np.arange(3.0)
RELEASES = [
    ("grad", lambda f: jitgrad.grad(f)(X3)),
    ("jit", lambda f: jitgrad.jit(f)(X3)),
    ("jvp", lambda f: jitgrad.jvp(f, (X3,), (X3,))),
    ("vjp", lambda f: jitgrad.vjp(f, X3)[1](1.0)),
    ("linearize", lambda f: jitgrad.linearize(f, X3)[1](X3)),
    ("hvp", lambda f: jitgrad.hvp(f, (X3,), (X3,))),
    ("jacfwd", lambda f: jitgrad.jacfwd(f)(X3)),
    ("vmap", lambda f: jitgrad.vmap(f)(np.ones((2, 3)))),
]


@pytest.mark.parametrize("use", [r[1] for r in RELEASES], ids=[r[0] for r in RELEASES])
def test_transforms_release_the_function(use, frozen_heap):
    assert _drops(use)


def test_a_failed_compile_releases_the_function(monkeypatch, frozen_heap):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler today")
    monkeypatch.setattr(runtime, "compile_ir", broken)
    with jitgrad.config(compile="always"), pytest.warns(RuntimeWarning, match="no compiler"):
        assert _drops(lambda f: jitgrad.jvp(f, (X3,), (X3,)))


def test_compiled_jvp_releases_the_function(frozen_heap):
    with jitgrad.config(compile="always"):
        assert _drops(lambda f: jitgrad.jvp(f, (X3,), (X3,)))


def test_jvp_cache_still_serves_a_live_function():
    h = lambda a: np.sum(a * a * 1.5625)   # noqa: E731
    for _ in range(3):
        out, tan = jitgrad.jvp(h, (X3,), (np.ones(3),))
    np.testing.assert_allclose(tan, 3.125 * np.sum(X3))
    assert len(jitgrad.api.functions._STAGED[h]["jvp"].cache) == 1


# === transforms ===
# The custom functions and containers the core rows above use.

import collections
import functools

_NT = collections.namedtuple("_NT", "x y")


class _BadFlatten:
    def __init__(self, v):
        self.v = v


tree_util.register(_BadFlatten, lambda b: [b.v], lambda aux, c: _BadFlatten(*c))


def _custom_jvp(rule):
    """``custom_jvp(np.sin)`` with ``rule`` as its rule (a fresh function per use)."""
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)
    f.defjvp(rule)
    return f


def _named(f, name):
    f.__name__ = name
    return f


_cj_bad_shape = _named(_custom_jvp(lambda p, t: (np.sin(p[0]), np.ones(5))), "_cj_bad_shape")
_cj_bad_dtype = _custom_jvp(lambda p, t: (np.sin(p[0]), (np.cos(p[0]) * t[0]).astype(np.float32)))
_cj_single = _custom_jvp(lambda p, t: np.cos(p[0]) * t[0])
_cj_bad_primal = _custom_jvp(lambda p, t: (np.ones(4), np.cos(p[0]) * t[0]))
_cj_twice_cos = _custom_jvp(lambda p, t: (np.sin(p[0]), 2 * np.cos(p[0]) * t[0]))


def _cj_raising_rule(p, t):
    raise ValueError("rule failed")


_cj_raises = _custom_jvp(_cj_raising_rule)


@jitgrad.custom_jvp
def _cj_two_list(x):
    return x, x


@_cj_two_list.defjvp
def _cj_two_list_jvp(p, t):
    return (p[0], p[0]), [t[0], t[0]]


@jitgrad.custom_jvp
def _cj_sin(x):
    return np.sin(x)


@_cj_sin.defjvp
def _cj_sin_jvp(p, t):
    return np.sin(p[0]), 3.0 * t[0]


@jitgrad.custom_jvp
def _cj_dict(d):
    return {"s": d["a"] + d["b"], "p": d["a"] * d["b"]}


@_cj_dict.defjvp
def _cj_dict_jvp(p, t):
    (d,), (td,) = p, t
    return _cj_dict(d), {"s": td["a"] + td["b"], "p": td["a"] * d["b"] + d["a"] * td["b"]}


@jitgrad.custom_jvp
def _cj_recursive(x):
    return x * x


@_cj_recursive.defjvp
def _cj_recursive_jvp(p, t):
    return _cj_recursive(p[0]), 2 * p[0] * t[0]       # the rule calls its own function


@functools.partial(jitgrad.custom_jvp, nondiff_argnums=(0,))
def _cj_apply(fn, x):
    return fn(x)


@_cj_apply.defjvp
def _cj_apply_jvp(fn, p, t):
    return fn(p[0]), 3.0 * t[0]


def _custom_vjp(fwd, bwd, name="f"):
    @jitgrad.custom_vjp
    def f(x):
        return np.exp(x)
    f.defvjp(fwd, bwd)
    return _named(f, name)


_cv_bad_shape = _custom_vjp(lambda x: (np.exp(x), x), lambda r, ct: (np.ones(5),), "_cv_bad_shape")
_cv_bad_fwd = _custom_vjp(lambda x: (np.ones(4), x), lambda r, ct: (ct,))
_cv_fwd_single = _custom_vjp(lambda x: np.exp(x), lambda r, ct: (ct,))
_cv_bwd_bare = _custom_vjp(lambda x: (np.exp(x), x), lambda r, ct: ct)
_cv_exp = _custom_vjp(lambda x: (np.exp(x), x), lambda r, ct: (7.0 * ct,))


@jitgrad.custom_vjp
def _cv_two(x, y):
    return x * y, x + y


_cv_two.defvjp(lambda x, y: ((x * y, x + y), (x, y)),
               lambda r, ct: (ct[0] * r[1] + ct[1], ct[0] * r[0] + 10 * ct[1]))


@jitgrad.custom_vjp
def _cv_none(x, y):
    return x * y


_cv_none.defvjp(lambda x, y: (x * y, (x, y)), lambda r, ct: (None, ct * r[0]))


@functools.partial(jitgrad.custom_vjp, nondiff_argnums=(1,))
def _cv_pow(x, n):
    return x ** n


_cv_pow.defvjp(lambda x, n: (x ** n, x), lambda n, r, ct: (10.0 * n * ct,))


def _closes_over_its_input(y):
    @jitgrad.custom_jvp
    def c(x):
        return x * y

    @c.defjvp
    def c_jvp(p, t):
        return p[0] * y, t[0] * y
    return c(y)


def _closes_over_constant(x, y):
    # y is traced (an argument) but not differentiated: the rule may read it
    @jitgrad.custom_jvp
    def c(v):
        return v * y

    @c.defjvp
    def c_jvp(p, t):
        return p[0] * y, t[0] * y * 10
    return np.sum(c(x))


# Derivatives agree across transforms.  Each row is a composite function of a
# 3-vector through the public NumPy surface; the tests below check, at fixed
# random points, jacfwd == jacrev, the Hessian (symmetric, equal to
# jacrev(jacrev) and to central differences of the gradient), vmap(grad)
# against a loop of grads, jvp against vjp by the dot-product test, and the
# compiled tier against the interpreter (one compile for all rows).

_A = np.array([[3.0, 0.5, -0.2], [0.1, 2.5, 0.3], [-0.4, 0.2, 2.0]])
_B = np.array([1.0, -2.0, 0.5])

COMPOSITES = [
    ("sin_times_square", lambda x: np.sin(x) * x ** 2),
    ("prod_and_sum", lambda x: np.prod(x) * np.sum(x) + x),
    ("where_branches", lambda x: np.where(x > 0, x ** 2, -np.sin(x))),
    ("max_and_min", lambda x: np.max(x * np.cos(x)) * x + np.min(x) * x ** 2),
    ("fancy_indexing", lambda x: x[np.array([2, 0, 1])] * x[1] + x[::-1] * x),
    ("reshape_transpose", lambda x: (np.concatenate([x, x ** 2]).reshape(2, 3).T @ np.array([1.0, -1.0]))),
    ("matmul_quadratic", lambda x: (_A @ x) * (x @ _A @ x)),
    ("cumsum_exp", lambda x: np.exp(np.cumsum(x) / 3)),
    ("sort_weighted", lambda x: np.sort(x ** 3) * np.arange(1.0, 4.0)),
    ("solve", lambda x: np.linalg.solve(_A + np.diag(x ** 2), _B * x)),
    ("det_inv", lambda x: np.linalg.det(_A + np.outer(x, x)) * (np.linalg.inv(_A + np.diag(x)) @ x)),
    ("broadcast_outer", lambda x: np.sum(np.tanh(x[:, None] * x[None, :] + x), axis=0)),
]

_POINTS = np.random.default_rng(42).uniform(-1.5, 1.5, (3, 3)) + np.array([0.05, 0.1, 0.2])


def _scalar(f):
    return lambda x: np.sum(f(x) * np.array([1.0, -0.5, 2.0]))


@pytest.mark.parametrize("f", [r[1] for r in COMPOSITES], ids=[r[0] for r in COMPOSITES])
def test_derivatives_agree_across_transforms(f):
    g = _scalar(f)
    rng = np.random.default_rng(7)
    for x in _POINTS:
        jf, jr = jitgrad.jacfwd(f)(x), jitgrad.jacrev(f)(x)
        np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-12)
        # the dot-product test: <u, J v> == <J^T u, v>
        u, v = rng.standard_normal(3), rng.standard_normal(3)
        jv = jitgrad.jvp(f, (x,), (v,))[1]
        vju = jitgrad.vjp(f, x)[1](u)[0]
        np.testing.assert_allclose(u @ jv, vju @ v, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(jv, jf @ v, rtol=1e-12, atol=1e-12)
        H = jitgrad.hessian(g)(x)
        np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(H, jitgrad.jacrev(jitgrad.jacrev(g))(x), rtol=1e-10, atol=1e-12)
        gr = jitgrad.grad(g)
        h = 1e-5
        fd = np.stack([(gr(x + h * e) - gr(x - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
        np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.grad(g))(_POINTS),
                               np.stack([jitgrad.grad(g)(x) for x in _POINTS]), rtol=1e-12, atol=1e-12)
    # in_axes other than 0: the points as columns
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.grad(g), in_axes=1)(_POINTS.T),
                               np.stack([jitgrad.grad(g)(x) for x in _POINTS]), rtol=1e-12, atol=1e-12)


def test_derivatives_compiled_match_interpreted():
    # One compiled function computes every row's gradient, and one Hessian
    # (compile time grows faster than the program).
    def all_derivatives(x):
        return (tuple(jitgrad.grad(_scalar(f))(x) for _, f in COMPOSITES)
                + (jitgrad.hessian(_scalar(COMPOSITES[2][1]))(x),))
    x = _POINTS[0]
    ref = jitgrad.jit(all_derivatives)(x)
    with jitgrad.config(compile="always"):
        got = jitgrad.jit(all_derivatives)(x)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-13)


def test_vmap_batch_sizes_and_nesting():
    g = jitgrad.grad(lambda x, w: np.sum(np.sin(x) * w))
    w = np.array([1.0, 2.0])
    for n in (0, 1, 3):
        X = np.arange(2.0 * n).reshape(n, 2)
        got = jitgrad.vmap(g, in_axes=(0, None))(X, w)
        assert got.shape == (n, 2)
        np.testing.assert_allclose(got, np.cos(X) * w, rtol=1e-14)
    X = np.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_allclose(jitgrad.vmap(jitgrad.vmap(g, in_axes=(0, None)), in_axes=(0, None))(X, w),
                               np.cos(X) * w, rtol=1e-14)
    # mapped over axis 1 of the weights, axis 0 of x
    W = np.arange(6.0).reshape(2, 3)
    got = jitgrad.vmap(g, in_axes=(0, 1))(np.ones((3, 2)), W)
    np.testing.assert_allclose(got, np.cos(1.0) * W.T, rtol=1e-14)


def test_fork_while_another_thread_traces():
    # the child must not inherit the other thread's open trace (or its lock)
    proc = _python("""
        import os, threading
        import numpy as np
        import jitgrad
        inside, release = threading.Event(), threading.Event()

        def slow(x):
            inside.set()
            release.wait(10)
            return x * 2.0

        t = threading.Thread(target=lambda: jitgrad.jit(slow)(np.ones(2)))
        t.start()
        inside.wait(10)
        pid = os.fork()
        if pid == 0:
            g = jitgrad.grad(lambda x: np.sum(x * x))(np.arange(3.0))
            ok = list(g) == [0.0, 2.0, 4.0] and jitgrad.core.trace.traces_open == 0
            os._exit(0 if ok else 1)
        release.set()
        t.join()
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    _ok(proc, "child exit 0")


# === hostile pass 2 ===
# Where the areas meet: settings and background compiles, threads, tiers.


def test_background_compile_keeps_the_blocks_cache_folder(tmp_path):
    # a compile queued inside ``with config(cache_dir=...)`` runs on the worker
    # thread, where the block's settings used to be unknown: it wrote its
    # source to the global cache folder instead
    jitgrad.wait_for_compiles()
    with jitgrad.config(compile="auto", cache_dir=str(tmp_path), hot_calls=1, hot_seconds=0):
        f = jitgrad.jit(lambda x: x * 3.0 + 0.8125)
        for _ in range(3):
            f(np.ones(4))
        jitgrad.wait_for_compiles()
    assert any(name.endswith(".py") for name in os.listdir(tmp_path))
    np.testing.assert_array_equal(f(np.ones(4)), np.full(4, 3.8125))
