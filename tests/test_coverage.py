"""NumPy coverage: the functions composed in jitgrad.numpy's arrays, elementwise,
statistics and calculus families (and the cumprod and tie_mean primitives).

One row per case: a function of one float array (other arguments are
constants inside it), how to draw its input, and flags.  Every row is checked
for value, dtype and shape against NumPy in the interpreter, for derivatives
against finite differences (forward and reverse, to second order), and under
vmap against a Python loop.  The compiled tier runs a sample of each family's
rows, one program per row (its value and gradient together).
Special points (ties, zeros, NaNs, sinc at 0) and errors have their own tables.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import jitgrad
import jitgrad.numpy as jnp
from jitgrad.testing import check_grads


class Row:
    def __init__(self, id, fn, shape=(3, 4), make=None, diff=True, vmap=True, rtol=1e-12, order=2):
        self.id, self.fn, self.shape, self.make = id, fn, shape, make
        self.diff, self.vmap, self.rtol, self.order = diff, vmap, rtol, order

    def args(self, rng):
        if self.make is not None:
            return (self.make(rng),)
        return (rng.standard_normal(self.shape),)


def nans(rng, shape=(3, 4)):
    x = rng.standard_normal(shape)
    x.flat[[1, 6]] = np.nan
    return x


def with_nan_row(rng):
    x = rng.standard_normal((3, 4))
    x[1] = np.nan                       # an all-NaN slice along axis 1
    x[0, 2] = np.nan
    return x


XP = np.array([-1.0, 0.0, 0.5, 2.0])
FP = np.array([1.0, 3.0, -1.0, 0.0])
W4 = np.arange(1.0, 5.0)

ROWS = [
    # rearranging, repeating, splitting, joining
    Row("repeat", lambda a: np.repeat(a, 2, axis=1)),
    Row("repeat_counts", lambda a: np.repeat(a, [1, 0, 2], axis=0)),
    Row("repeat_flat", lambda a: np.repeat(a, 3)),
    Row("tile", lambda a: np.tile(a, (2, 1, 3))),
    Row("tile_short_reps", lambda a: np.tile(a, 2)),
    Row("roll", lambda a: np.roll(a, (1, -2), (0, 1))),
    Row("roll_flat", lambda a: np.roll(a, 5)),
    Row("rot90", lambda a: np.rot90(a)),
    Row("rot90_k3", lambda a: np.rot90(a, 3, (1, 0))),
    Row("rot90_k2", lambda a: np.rot90(a, -2)),
    Row("flip", lambda a: np.flip(a)),
    Row("flip_axis", lambda a: np.flip(a, -1)),
    Row("fliplr", lambda a: np.fliplr(a)),
    Row("flipud", lambda a: np.flipud(a)),
    Row("triu", lambda a: np.triu(a, 1)),
    Row("tril", lambda a: np.tril(a, -1)),
    Row("tril_1d", lambda a: np.tril(a), shape=(4,)),
    Row("triu_3d", lambda a: np.triu(a), shape=(2, 3, 3)),
    Row("split", lambda a: np.split(a, 2, axis=1)),
    Row("split_indices", lambda a: np.split(a, [1, 3, 10]), shape=(5,)),
    Row("array_split", lambda a: np.array_split(a, 3), shape=(5,)),
    Row("hsplit", lambda a: np.hsplit(a, 2)),
    Row("vsplit", lambda a: np.vsplit(a, [1])),
    Row("dsplit", lambda a: np.dsplit(a, 2), shape=(2, 2, 4)),
    Row("column_stack", lambda a: np.column_stack([a[0], a[1], a[:2].T])),
    Row("dstack", lambda a: np.dstack([a, a[::-1]])),
    Row("append", lambda a: np.append(a, a[0])),
    Row("append_axis", lambda a: np.append(a, a[:1], axis=0)),
    Row("atleast_2d", lambda a: np.atleast_2d(a), shape=(4,)),
    Row("atleast_3d", lambda a: np.atleast_3d(a, a[0], a[0, 0])),
    Row("atleast_1d_many", lambda a: np.atleast_1d(a[0, 0], a)),
    Row("rollaxis", lambda a: np.rollaxis(a, 2), shape=(2, 3, 4)),
    Row("rollaxis_start", lambda a: np.rollaxis(a, 0, 3), shape=(2, 3, 4)),
    Row("moveaxis", lambda a: np.moveaxis(a, 0, -1), shape=(2, 3, 4)),
    Row("kron", lambda a: np.kron(a, a[:2, :2])),
    Row("kron_1d_2d", lambda a: np.kron(a[0], a)),
    Row("meshgrid", lambda a: np.meshgrid(a[0], a[1, :2], a[2, :3])),
    Row("meshgrid_ij_sparse", lambda a: np.meshgrid(a[0], a[1, :2], indexing="ij", sparse=True)),
    Row("diagflat", lambda a: np.diagflat(a[:2], 1)),
    Row("outer", lambda a: np.outer(a[0], a[1])),
    Row("eye_scaled", lambda a: np.eye(3, 4, 1) * a[0, 0] + np.identity(4)[0] * a[1]),
    Row("full_like_traced", lambda a: np.full_like(a, a[0, 0])),
    Row("linspace", lambda a: np.linspace(a[0, 0], a[0, 1], 5)),
    Row("linspace_arrays", lambda a: np.linspace(a[0, :2], a[1, :2], 4, endpoint=False, axis=1)),
    Row("linspace_retstep", lambda a: np.linspace(a[0, 0], 3.0, 4, retstep=True)),
    Row("pad_constant", lambda a: np.pad(a, ((1, 2), (0, 1)), constant_values=((1., 2.), (3., 4.)))),
    Row("pad_traced_constant", lambda a: np.pad(a, 1, constant_values=a[0, 0])),
    Row("pad_edge", lambda a: np.pad(a, 2, mode="edge")),
    Row("pad_reflect", lambda a: np.pad(a, (3, 5), mode="reflect")),
    Row("pad_symmetric", lambda a: np.pad(a, ((1, 4), (2, 0)), mode="symmetric")),
    Row("pad_wrap", lambda a: np.pad(a, 5, mode="wrap")),
    # elementwise
    Row("select", lambda a: np.select([a > 0.5, a < -0.5], [a, a * 2], -1.0)),
    Row("fmin", lambda a: np.fmin(a, np.where(a > 0, np.nan, 0.3))),
    Row("fmax", lambda a: np.fmax(np.where(a > 1, np.nan, a), -a[::-1])),
    Row("logaddexp2", lambda a: np.logaddexp2(a, a[::-1] * 3)),
    Row("sinc", lambda a: np.sinc(a), make=lambda r: np.r_[r.standard_normal(8), 0.0, 0.05, -0.3]),
    Row("nan_to_num", lambda a: np.nan_to_num(a, posinf=5.0, neginf=-7.0),
        make=lambda r: np.r_[r.standard_normal(4), np.nan, np.inf, -np.inf]),
    Row("nan_to_num_default", lambda a: np.nan_to_num(a) * 1e-300,
        make=lambda r: np.r_[r.standard_normal(4), np.nan, np.inf, -np.inf], diff=False),
    Row("radians_degrees", lambda a: np.radians(a) + np.degrees(a) + np.deg2rad(a) + np.rad2deg(a)),
    # running products, differences, integrals, vector products
    Row("cumprod", lambda a: np.cumprod(a, axis=1)),
    Row("cumprod_flat", lambda a: np.cumprod(a)),
    Row("nancumsum_nancumprod", lambda a: np.nancumsum(a, 0) + np.nancumprod(a, 1), make=nans),
    Row("diff_prepend_append", lambda a: np.diff(a, prepend=0.0, append=a[:, :1])),
    Row("diff_n2", lambda a: np.diff(a, 2, axis=0), shape=(4, 3)),
    Row("ediff1d", lambda a: np.ediff1d(a, to_begin=[1.0, 2.0], to_end=3.0)),
    Row("trapezoid", lambda a: np.trapezoid(a)),
    Row("trapezoid_x", lambda a: np.trapezoid(a, np.array([0., 1., 3., 4.5]))),
    Row("trapezoid_dx_axis0", lambda a: np.trapezoid(a, dx=0.3, axis=0)),
    Row("gradient", lambda a: np.gradient(a)),
    Row("gradient_spacing_edge2", lambda a: np.gradient(a, 0.5, axis=1, edge_order=2)),
    Row("gradient_coords_edge2", lambda a: np.gradient(a, np.array([0., 1., 3., 4.5]), axis=1,
                                                       edge_order=2)),
    Row("gradient_coords", lambda a: np.gradient(a, [0., 1., 2.5], np.array([0., 1., 3., 4.5]))),
    Row("cross", lambda a: np.cross(a[:, :3], a[::-1, 1:])),
    Row("cross_axis", lambda a: np.cross(a[:3], a[1:], axis=0), shape=(4, 2)),
    # reductions and statistics
    Row("nansum", lambda a: np.nansum(a, axis=0), make=nans),
    Row("nanmean", lambda a: np.nanmean(a, axis=1, keepdims=True), make=nans),
    Row("nanmax", lambda a: np.nanmax(a, axis=1), make=with_nan_row),
    Row("nanmin", lambda a: np.nanmin(a), make=nans),
    Row("nanprod", lambda a: np.nanprod(a, axis=1), make=nans),
    Row("nanstd", lambda a: np.nanstd(a, axis=1, ddof=1), make=nans),
    Row("nanvar", lambda a: np.nanvar(a), make=nans),
    Row("nanargmax", lambda a: np.nanargmax(a, axis=1), make=nans, diff=False),
    Row("nanargmin", lambda a: np.nanargmin(a), make=nans, diff=False),
    Row("average", lambda a: np.average(a, axis=1, weights=W4)),
    Row("average_returned", lambda a: np.average(a, axis=0, weights=a * a, returned=True)),
    Row("average_plain", lambda a: np.average(a, returned=True)),
    Row("median", lambda a: np.median(a, axis=1)),
    Row("median_all", lambda a: np.median(a)),
    Row("median_odd_keepdims", lambda a: np.median(a, axis=0, keepdims=True)),
    Row("percentile", lambda a: np.percentile(a, [10, 50, 90], axis=0)),
    Row("quantile", lambda a: np.quantile(a, 0.3, axis=1, keepdims=True)),
    Row("quantile_nearest", lambda a: np.quantile(a, [0.3, 0.7], method="nearest")),
    Row("quantile_hazen", lambda a: np.quantile(a, [0.3, 0.7], method="hazen", axis=(0, 1))),
    Row("quantile_methods", lambda a: [np.quantile(a, 0.4, axis=1, method=m) for m in (
        "inverted_cdf", "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf",
        "weibull", "median_unbiased", "normal_unbiased", "lower", "higher", "midpoint")]),
    Row("nanmedian", lambda a: np.nanmedian(a, axis=1), make=nans),
    Row("nanquantile", lambda a: np.nanquantile(a, [0.2, 0.9], axis=0), make=nans),
    Row("nanpercentile", lambda a: np.nanpercentile(a, 40), make=nans),
    Row("partition", lambda a: np.partition(a, 2)[2], shape=(5,)),
    Row("cov", lambda a: np.cov(a)),
    Row("cov_y_bias", lambda a: np.cov(a[0], a[1], bias=True)),
    Row("cov_weights", lambda a: np.cov(a, rowvar=False, aweights=np.arange(1., 4.),
                                        fweights=[1, 2, 1])),
    Row("corrcoef", lambda a: np.corrcoef(a)),
    Row("ptp", lambda a: np.ptp(a, axis=0)),
    # signal and interpolation
    Row("convolve", lambda a: np.convolve(a, a[:3]), shape=(5,)),
    Row("convolve_same", lambda a: np.convolve(a[:2], a, "same"), shape=(5,)),
    Row("convolve_valid", lambda a: np.convolve(a, a[:2], "valid"), shape=(5,)),
    Row("correlate_full", lambda a: np.correlate(a, a[:3], "full"), shape=(5,)),
    Row("correlate_same_short_first", lambda a: np.correlate(a[:2], a, "same"), shape=(5,)),
    Row("correlate_same_even", lambda a: np.correlate(a, a[:4], "same"), shape=(5,)),
    Row("correlate_valid", lambda a: np.correlate(a[:2], a), shape=(5,)),
    Row("interp", lambda a: np.interp(a, XP, FP)),
    Row("interp_traced_fp", lambda a: np.interp(a, XP[:3], a[0, :3], left=-5.0, right=7.0)),
    Row("interp_period", lambda a: np.interp(a, np.array([0., 1., 2.5]), np.array([1., 3., -1.]),
                                             period=3.0)),
    Row("searchsorted", lambda a: np.searchsorted(XP, a), diff=False),
    Row("searchsorted_right_sorter", lambda a: np.searchsorted(a[0], a[1], side="right",
                                                               sorter=np.argsort(a[0])), diff=False),
]

BY_ID = {r.id: r for r in ROWS}
assert len(BY_ID) == len(ROWS)


def _leaves(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check_same(got, ref, rtol):
    got, ref = _leaves(got), _leaves(ref)
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        g, r = np.asarray(g), np.asarray(r)
        assert g.dtype == r.dtype and g.shape == r.shape, (g.dtype, r.dtype, g.shape, r.shape)
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol * (1 + np.nanmax(np.abs(r), initial=0)),
                                       equal_nan=True)
        else:
            np.testing.assert_array_equal(g, r)


def _is_float(x):
    return (x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype).kind == "f"


def _numpy(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # (all-NaN slices and 2-vector cross products warn)
        return fn(*args)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@pytest.mark.parametrize("r", ROWS, ids=lambda r: r.id)
def test_value(r, rng):
    args = r.args(rng)
    _check_same(jitgrad.jit(r.fn)(*args), _numpy(r.fn, *args), r.rtol)


def _scalarised(fn, args, rng):
    """sum of every float output times fixed random weights."""
    ws = [rng.standard_normal(np.shape(o)) for o in _leaves(_numpy(fn, *args))]

    def g(*a):
        total = 0.0
        for o, w in zip(_leaves(fn(*a)), ws):
            if _is_float(o):        # (NaN outputs, such as all-NaN slices, count as 0)
                total = total + np.sum(np.where(np.isnan(o), 0.0, o) * w)
        return total
    return g


@pytest.mark.parametrize("r", [r for r in ROWS if r.diff], ids=lambda r: r.id)
def test_grads(r, rng):
    args = r.args(rng)
    check_grads(_scalarised(r.fn, args, rng), args, order=r.order)


@pytest.mark.parametrize("r", [r for r in ROWS if r.vmap], ids=lambda r: r.id)
def test_vmap(r, rng):
    batch = [r.args(rng) for _ in range(3)]
    stacked = tuple(np.stack(a) for a in zip(*batch))
    got = jitgrad.vmap(r.fn)(*stacked)
    refs = [_leaves(_numpy(r.fn, *a)) for a in batch]
    want = [np.stack(parts) for parts in zip(*refs)]
    _check_same(_leaves(got), want, r.rtol)


# ---------------------------------------------------------------------------
# The compiled tier: a sample of the rows from each family, one program per row

# The program: value_and_grad of a weighted sum of the row's outputs (integer
# ones included), against NumPy's value and the interpreter's gradient.
# (Shapes and dtypes are fixed at trace time, the same in both tiers.)  One
# program per row rather than one per family: Numba's compile time grows
# faster than the program, so the grouped programs took longer to compile.
GROUPS = {
    "arrays": ["repeat_counts", "tile", "roll", "pad_reflect", "kron", "linspace_arrays"],
    "elementwise": ["select", "fmax", "logaddexp2", "sinc", "nan_to_num"],
    "calculus": ["cumprod", "diff_prepend_append", "trapezoid_x", "cross", "convolve_same",
                 "interp_traced_fp"],                # (interp compiles searchsorted's comparisons)
    "statistics": ["nanmean", "nanstd", "average_returned", "corrcoef"],
    "order_statistics": ["median", "nanquantile", "nanargmax"],
}
COMPILED = [BY_ID[i] for name in sorted(GROUPS) for i in GROUPS[name]]


@pytest.mark.parametrize("r", COMPILED, ids=lambda r: r.id)
def test_compiled_values_and_grads(r, rng):
    (x,) = r.args(rng)
    weights = [rng.standard_normal(np.shape(o)) for o in _leaves(_numpy(r.fn, x))]

    def loss(a):
        total = 0.0
        for o, w in zip(_leaves(r.fn(a)), weights):
            total = total + np.sum(np.where(np.isnan(o * 1.0), 0.0, o * 1.0) * w)
        return total

    want_value = _numpy(loss, x)
    want_grad = jitgrad.grad(loss)(x)
    with jitgrad.config(compile="always"):
        f = jitgrad.value_and_grad(loss)
        value, grad = f(x)
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None, f"not compiled: {entry.exe.error!r}"
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# Special points: where random points never land


def test_sinc_derivatives_at_zero():
    d1 = jitgrad.grad(np.sinc)
    d2 = jitgrad.grad(d1)
    d4 = jitgrad.grad(jitgrad.grad(d2))
    assert np.sinc(0.0) == jitgrad.jit(np.sinc)(0.0) == 1.0
    assert d1(0.0) == 0.0
    np.testing.assert_allclose(d2(0.0), -np.pi ** 2 / 3, rtol=1e-14)
    np.testing.assert_allclose(d4(0.0), np.pi ** 4 / 5, rtol=1e-12)
    # and on both sides of the switch between the series and sin(t)/t (|pi x| = 1)
    for x in (1 / np.pi - 1e-9, 1 / np.pi + 1e-9, 0.0, 1e-7, -2.5):
        check_grads(np.sinc, (np.array([x]),), order=2)


@pytest.mark.parametrize("zeros", [[2], [1, 3], [0, 2, 3], [1, 2, 3, 4]])
def test_cumprod_at_zeros(zeros, rng):
    x = rng.uniform(0.5, 1.5, 6) * rng.choice([-1, 1], 6)
    x[zeros] = 0.0
    check_grads(lambda a: np.cumprod(a), (x,), order=2)
    check_grads(lambda a: np.cumprod(a.reshape(2, 3), axis=1), (x,), order=2)
    # the gradient of the last running product is the product of the others
    g = jitgrad.grad(lambda a: np.cumprod(a)[-1])(x)
    want = [np.prod(np.delete(x, i)) for i in range(6)]
    np.testing.assert_allclose(g, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("fn", [
    lambda a: np.median(a), lambda a: np.percentile(a, [20, 50]), lambda a: np.quantile(a, 0.75),
    lambda a: np.nanmedian(a), lambda a: np.nanmax(a), lambda a: np.partition(a, 2)[2],
    lambda a: np.median(a.reshape(1, 5), axis=1)], ids=["median", "percentile", "quantile",
                                                        "nanmedian", "nanmax", "partition",
                                                        "median_axis"])
def test_order_statistics_at_ties(fn):
    # two elements tie at each order statistic used: the central difference
    # sees the mean of their derivatives, and so does jitgrad.  (The second
    # derivative is 0, but a difference of first derivatives across a tie is not.)
    for x in ([1.0, 2.0, 2.0, 5.0, 0.0], [3.0, 3.0, 1.0, 1.0, 2.0], [2.0, 1.0, 1.0, 3.0, 3.0]):
        x = np.array(x)
        check_grads(fn, (x,), order=1)
        hess_v = jitgrad.grad(lambda a: np.sum(jitgrad.grad(lambda b: np.sum(fn(b)))(a) * x))(x)
        np.testing.assert_array_equal(hess_v, 0.0)


def test_nan_functions_ignore_nan_positions():
    x = np.array([1.0, np.nan, -2.0, 3.0, np.nan, 0.5])
    for f in (np.nansum, np.nanmean, np.nanmax, np.nanmin, np.nanprod, np.nanstd, np.nanvar,
              np.nanmedian, lambda a: np.nanquantile(a, 0.3), lambda a: np.nancumsum(a)[-1],
              lambda a: np.fmax(a, 0.0).sum(), lambda a: np.nan_to_num(a).sum()):
        g = jitgrad.grad(f)(x)
        assert np.all(g[np.isnan(x)] == 0.0) and np.all(np.isfinite(g)), g
        check_grads(f, (x,), order=2)


def test_fmax_fmin_take_the_number_beside_nan():
    x, y = np.array([np.nan, 1.0, 2.0]), np.array([3.0, np.nan, 1.0])
    gx, gy = jitgrad.grad(lambda a, b: np.sum(np.fmax(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(gy, [1.0, 0.0, 0.0])


def test_special_points_compiled():
    x = np.array([0.7, 0.0, -1.2, 0.0, 0.9])

    def f(a):
        return np.sum(np.cumprod(a) * np.arange(1.0, 6.0))

    want = jitgrad.grad(f)(x)
    with jitgrad.config(compile="always"):
        got = jitgrad.grad(f)(x)
        d2 = jitgrad.grad(jitgrad.grad(np.sinc))(0.0)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_allclose(d2, -np.pi ** 2 / 3, rtol=1e-14)


# ---------------------------------------------------------------------------
# dtypes: integer and float32 inputs give NumPy's dtypes


DTYPE_ROWS = [
    ("cumprod", lambda a: np.cumprod(a)), ("sinc", np.sinc), ("median", np.median),
    ("quantile", lambda a: np.quantile(a, [0.2, 0.5])), ("nansum", np.nansum),
    ("nanmean", np.nanmean), ("nanvar", np.nanvar), ("nanmax", np.nanmax),
    ("average", lambda a: np.average(a, weights=np.ones(a.shape, a.dtype))),
    ("gradient", np.gradient), ("trapezoid", np.trapezoid), ("interp", lambda a: np.interp(a, XP, FP)),
    ("convolve", lambda a: np.convolve(a, a[:2])), ("cross", lambda a: np.cross(a[:3], a[1:4])),
    ("kron", lambda a: np.kron(a, a[:2])), ("tile", lambda a: np.tile(a, 2)),
    ("pad", lambda a: np.pad(a, 1, constant_values=2.5)), ("pad_reflect", lambda a: np.pad(a, 2, "reflect")),
    ("cov", lambda a: np.cov(a)), ("corrcoef", lambda a: np.corrcoef(a, a[::-1])),
    ("linspace", lambda a: np.linspace(a[0], a[1], 3)), ("logaddexp2", lambda a: np.logaddexp2(a, 1)),
    ("fmax", lambda a: np.fmax(a, 1)), ("nan_to_num", np.nan_to_num), ("diff_bool", lambda a: np.diff(a > 1)),
    ("select", lambda a: np.select([a > 1], [a])), ("repeat", lambda a: np.repeat(a, 2)),
    ("searchsorted", lambda a: np.searchsorted(np.sort(a), a)), ("ptp", np.ptp),
    ("ediff1d", lambda a: np.ediff1d(a, to_begin=1)), ("percentile", lambda a: np.percentile(a, 30.0)),
]


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
@pytest.mark.parametrize("name,fn", DTYPE_ROWS, ids=[n for n, _ in DTYPE_ROWS])
def test_dtypes(name, fn, dtype):
    a = np.array([3, 1, 4, 1, 5, 9], dtype)
    ref = _numpy(fn, a)
    rtol = 1e-6 if any(np.asarray(r).dtype == np.float32 for r in _leaves(ref)) else 1e-12
    _check_same(jitgrad.jit(fn)(a), ref, rtol)


# ---------------------------------------------------------------------------
# Errors: the exception NumPy raises, at trace time


X34 = np.arange(12.0).reshape(3, 4)
_ZERO_WEIGHTS = np.zeros(4)
ERRORS = [
    ("roll_axis", lambda a: np.roll(a, 1, axis=5)), ("flip_axis", lambda a: np.flip(a, 2)),
    ("fliplr_1d", lambda a: np.fliplr(a[0])), ("flipud_0d", lambda a: np.flipud(a[0, 0])),
    ("rot90_same_axes", lambda a: np.rot90(a, 1, (0, 0))), ("rot90_bad_axes", lambda a: np.rot90(a, 1, (0, 5))),
    ("rot90_three_axes", lambda a: np.rot90(a, 1, (0, 1, 2))),
    ("split_unequal", lambda a: np.split(a, 3, axis=1)), ("split_axis", lambda a: np.split(a, 2, axis=3)),
    ("array_split_zero", lambda a: np.array_split(a, 0)),
    ("vsplit_1d", lambda a: np.vsplit(a[0], 2)), ("dsplit_2d", lambda a: np.dsplit(a, 2)),
    ("hsplit_0d", lambda a: np.hsplit(a[0, 0], 1)),
    ("repeat_negative", lambda a: np.repeat(a, -1)), ("repeat_counts", lambda a: np.repeat(a, [1, 2], axis=0)),
    ("repeat_axis", lambda a: np.repeat(a, 2, axis=2)),
    ("pad_negative", lambda a: np.pad(a, -1)), ("pad_mode", lambda a: np.pad(a, 1, mode="bogus")),
    ("pad_kwarg", lambda a: np.pad(a, 1, mode="edge", constant_values=3)),
    ("pad_width_shape", lambda a: np.pad(a, ((1, 2, 3),))),
    ("pad_empty_reflect", lambda a: np.pad(a[:0], 1, mode="reflect")),
    ("select_lengths", lambda a: np.select([a > 1], [a, a])), ("select_empty", lambda a: np.select([], [])),
    ("select_not_bool", lambda a: np.select([a], [a])),
    ("linspace_negative", lambda a: np.linspace(a[0, 0], 1.0, -1)),
    ("cross_dims", lambda a: np.cross(a, a)), ("gradient_small", lambda a: np.gradient(a[:, :1], axis=1)),
    ("gradient_args", lambda a: np.gradient(a, 1.0, 2.0, 3.0)),
    ("gradient_edge3", lambda a: np.gradient(a, edge_order=3)),
    ("gradient_coords_len", lambda a: np.gradient(a, np.arange(3.0), axis=1)),
    ("partition_kth", lambda a: np.partition(a, 7)),
    ("quantile_q", lambda a: np.quantile(a, 1.5)), ("percentile_q", lambda a: np.percentile(a, -1)),
    ("quantile_method", lambda a: np.quantile(a, 0.5, method="bogus")),
    ("median_axis", lambda a: np.median(a, axis=2)), ("nanmean_axis", lambda a: np.nanmean(a, axis=-3)),
    ("cumprod_axis", lambda a: np.cumprod(a, axis=2)), ("nanmax_empty", lambda a: np.nanmax(a[:0])),
    ("average_no_axis", lambda a: np.average(a, weights=np.ones(4))),
    ("average_weights_shape", lambda a: np.average(a, axis=1, weights=np.ones(3))),
    # (weights made outside the function: np.zeros inside a traced function is traced, and
    # a traced sum of weights cannot raise)
    ("average_zero_weights", lambda a: np.average(a, axis=1, weights=_ZERO_WEIGHTS)),
    ("convolve_empty", lambda a: np.convolve(a[0], a[0, :0])),
    ("correlate_mode", lambda a: np.correlate(a[0], a[1], "bogus")),
    ("interp_lengths", lambda a: np.interp(a, XP, FP[:3])), ("interp_empty", lambda a: np.interp(a, XP[:0], FP[:0])),
    ("interp_period_zero", lambda a: np.interp(a, XP, FP, period=0)),
    ("searchsorted_side", lambda a: np.searchsorted(XP, a, side="middle")),
    ("searchsorted_2d", lambda a: np.searchsorted(a, a[0])),
    ("meshgrid_indexing", lambda a: np.meshgrid(a[0], a[1], indexing="xyz")),
    ("diff_negative", lambda a: np.diff(a, -1)), ("diff_0d", lambda a: np.diff(a[0, 0])),
    ("rollaxis_start", lambda a: np.rollaxis(a, 0, 5)), ("rollaxis_axis", lambda a: np.rollaxis(a, 3)),
    ("cov_3d", lambda a: np.cov(a.reshape(1, 3, 4))), ("tile_negative", lambda a: np.tile(a, -1)),
    ("ediff1d_cast", lambda a: np.ediff1d(a.astype(np.int64), to_begin=1.5)),
    ("kron_ok_trap", lambda a: np.trapezoid(a, axis=3)),
    ("append_axis", lambda a: np.append(a, a[0], axis=0)), ("column_stack_rows", lambda a: np.column_stack([a, a[0]])),
]


@pytest.mark.parametrize("name,fn", ERRORS, ids=[n for n, _ in ERRORS])
def test_errors_match_numpy(name, fn):
    with pytest.raises(Exception) as numpy_error:
        _numpy(fn, X34)
    with pytest.raises(type(numpy_error.value)):
        jitgrad.jit(fn)(X34)


def test_unique_of_traced_array_raises_clearly():
    assert np.array_equal(jnp.unique(np.array([2, 1, 2])) if False else np.unique([2, 1, 2]), [1, 2])
    with pytest.raises(NotImplementedError, match="shape depends on the values"):
        jitgrad.jit(lambda a: np.unique(a))(X34)


def test_full_eye_identity_tri_in_jitgrad_numpy():
    f = jitgrad.jit(lambda s: jnp.full((2, 3), s) + jnp.eye(2, 3) * s + jnp.tri(2, 3) + jnp.identity(3)[:2])
    s = 1.5
    np.testing.assert_array_equal(f(s), np.full((2, 3), s) + np.eye(2, 3) * s + np.tri(2, 3) + np.identity(3)[:2])
    np.testing.assert_allclose(jitgrad.grad(lambda s: jnp.full((2, 3), s).sum())(s), 6.0)
    assert jnp.trapz is jnp.trapezoid


# ---------------------------------------------------------------------------
# Edge cases: 0-d, empty, NaN and inf, integer inputs, non-contiguous views

EDGE = {
 "median_empty_axis": (lambda a: np.median(a, axis=1), np.zeros((2, 0))),
 "quantile_empty": (lambda a: np.quantile(a, 0.5), np.zeros(0)),
 "median_empty": (lambda a: np.median(a), np.zeros(0)),
 "nanmedian_empty": (lambda a: np.nanmedian(a), np.zeros(0)),
 "cumprod_0d": (lambda a: np.cumprod(a), np.float64(3.)),
 "sinc_int": (lambda a: np.sinc(a), np.int64(2)),
 "repeat_0d": (lambda a: np.repeat(a, 2), np.float64(3.)),
 "tile_0d": (lambda a: np.tile(a, 3), np.float64(2.)),
 "roll_0d": (lambda a: np.roll(a, 1), np.float64(2.)),
 "flip_0d": (lambda a: np.flip(a), np.float64(3.)),
 "pad_0d": (lambda a: np.pad(a, 1), np.float64(2.)),
 "gradient_empty": (lambda a: np.gradient(a), np.zeros(0)),
 "trapezoid_empty": (lambda a: np.trapezoid(a), np.zeros(0)),
 "cov_one_obs": (lambda a: np.cov(a), np.zeros((2, 1))),
 "interp_scalar": (lambda a: np.interp(a, [1., 3.], [0., 1.]), np.float64(2.)),
 "searchsorted_scalar": (lambda a: np.searchsorted([1., 2.], a), np.float64(1.5)),
 "linspace_1": (lambda a: np.linspace(a, 1., 1), np.float64(0.)),
 "linspace_0": (lambda a: np.linspace(a, 1., 0), np.float64(0.)),
 "nansum_empty": (lambda a: np.nansum(a), np.zeros(0)),
 "average_empty": (lambda a: np.average(a), np.zeros(0)),
 "nanmean_allnan": (lambda a: np.nanmean(a), np.full(3, np.nan)),
 "nanvar_ddof": (lambda a: np.nanvar(a, ddof=3), np.array([1., np.nan, 2.])),
 "cumprod_empty": (lambda a: np.cumprod(a), np.zeros(0)),
 "roll_empty": (lambda a: np.roll(a, 2), np.zeros(0)),
 "split_empty": (lambda a: np.array_split(a, 3), np.zeros(2)),
 "median_inf": (lambda a: np.median(a), np.array([np.inf, 1., np.inf])),
 "median_nan": (lambda a: np.median(a, axis=0), np.array([[np.nan, 1.], [2., 3.]])),
 "quantile_nan": (lambda a: np.quantile(a, [0., 1.], axis=1), np.array([[np.nan, 1.], [2., 3.]])),
 "kron_0d": (lambda a: np.kron(a, np.ones(2)), np.float64(2.)),
 "cross_bcast": (lambda a: np.cross(a, [1., 2., 3.]), np.ones((2, 3))),
 "meshgrid_one": (lambda a: np.meshgrid(a), np.ones(3)),
 "meshgrid_none": (lambda a: np.meshgrid(), np.ones(3)),
 "noncontig": (lambda a: np.median(a[::2, ::-1], axis=0) + np.cumprod(a.T[1]).sum(), np.arange(12.).reshape(4, 3)),
 "float32_cumprod": (lambda a: np.cumprod(a), np.arange(1, 5, dtype=np.float32)),
 "tril_int": (lambda a: np.tril(a), np.arange(9).reshape(3, 3)),
 "pad_int_float": (lambda a: np.pad(a, 1, constant_values=2.7), np.arange(3)),
 "nan_to_num_int": (lambda a: np.nan_to_num(a), np.arange(3)),
 "select_scalar_choice": (lambda a: np.select([a > 1, a < 0], [1.5, a]), np.arange(3.)),
 "logaddexp2_inf": (lambda a: np.logaddexp2(a, a), np.array([-np.inf, np.inf, 1.])),
 "fmax_both_nan": (lambda a: np.fmax(a, a), np.array([np.nan, 1.])),
 "sinc_inf": (lambda a: np.sinc(a), np.array([np.inf, np.nan, -0.0])),
 "interp_nan": (lambda a: np.interp(a, [0., 1.], [0., 1.]), np.array([np.nan, 0.5])),
 "corrcoef_1d": (lambda a: np.corrcoef(a), np.arange(3.)),
 "average_int": (lambda a: np.average(a, weights=[1, 2, 3]), np.arange(3)),
 "ptp_int": (lambda a: np.ptp(a), np.arange(3)),
 "diff_int_prepend_float": (lambda a: np.diff(a, prepend=0.5), np.arange(3)),
 "convolve_int_float": (lambda a: np.convolve(a, [0.5, 1.]), np.arange(3)),
}


@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_cases_agree_with_numpy(name):
    f, a = EDGE[name]
    try:
        ref = _numpy(f, a)
    except Exception as e:
        with pytest.raises(type(e)):
            jitgrad.jit(f)(a)
        return
    _check_same(jitgrad.jit(f)(a), ref, 1e-12)


def test_methods():
    a = np.arange(1.0, 4.0)
    np.testing.assert_array_equal(jitgrad.jit(lambda x: x.cumprod() + x.repeat(1))(a), [2.0, 4.0, 9.0])


@pytest.mark.parametrize("id", ["sinc", "cumprod", "median", "logaddexp2", "nanmean", "pad_reflect",
                                "convolve", "gradient", "quantile", "cov", "kron", "nan_to_num"])
def test_float32(id, rng):
    r = BY_ID[id]
    a = r.args(rng)[0].astype(np.float32)
    _check_same(jitgrad.jit(r.fn)(a), _numpy(r.fn, a), 2e-6)
    check_grads(_scalarised(r.fn, (a,), rng), (a,), order=1)


@pytest.mark.parametrize("zeros", [[], [1], [0, 2], [0, 1, 3]])
def test_prod_second_derivative_at_zeros(zeros, rng):
    x = rng.uniform(0.5, 2.0, (2, 4))
    x[0, zeros] = 0.0
    for f in (np.prod, lambda a: np.prod(a, axis=1), lambda a: np.prod(a, axis=0)):
        check_grads(f, (x,), order=2)
