"""Accuracy, special values and vectorisation of jitgrad.vecmath.

Each kernel runs inside a small compiled loop over an array (the way generated
code uses it) and is compared with NumPy.  Errors are in units of the spacing
of NumPy's result (np.spacing, which is the smallest subnormal at 0).
"""
import re

import numba
import numpy as np
import pytest

from jitgrad.backend import vecmath
from jitgrad.backend.vecmath import TRIG_LIMIT, vcos, vexp, vexpm1, vlog, vlog1p, vsin, vtanh

FUNCS = {"exp": vexp, "log": vlog, "sin": vsin, "cos": vcos,
         "tanh": vtanh, "expm1": vexpm1, "log1p": vlog1p}
TINY = np.finfo(np.float64).smallest_normal
MAX_ULP = 2.0


def _make_loop(f, fastmath=False):
    @numba.njit(fastmath=fastmath)
    def loop(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = f(x[i])
        return out
    return loop


# One compiled loop per function (and per option), shared by all tests of the
# module; each is compiled once for float64 and once for float32.
_LOOPS = {}


def run(name, x, fastmath=False):
    key = (name, fastmath)
    if key not in _LOOPS:
        _LOOPS[key] = _make_loop(FUNCS[name], fastmath)
    return _LOOPS[key](np.ascontiguousarray(x))


def numpy_ref(name, x):
    with np.errstate(all="ignore"):
        return getattr(np, name)(x)


def ulp_error(ours, ref):
    """|ours - ref| in units of spacing(ref); 0 where both are equal (including
    equal infinities) or both nan, inf where only one is nan or infinite."""
    assert ours.dtype == ref.dtype
    with np.errstate(all="ignore"):
        err = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        err = err / np.abs(np.spacing(ref)).astype(np.float64)
    same = (ours == ref) | (np.isnan(ours) & np.isnan(ref))
    err = np.where(same, 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def _signed(rng, mags):
    return mags * rng.choice([-1.0, 1.0], mags.size)


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _near_pio2_multiples(rng, n):
    """Doubles nearest to k*pi/2 and their neighbours, where sin or cos cancel."""
    k = np.concatenate([np.arange(1, 200), rng.integers(200, int(TRIG_LIMIT / (np.pi / 2)), n)])
    x = k * (np.pi / 2)          # within an ulp or so of the nearest double
    x = np.concatenate([x, np.nextafter(x, 0), np.nextafter(x, np.inf)])
    return _signed(rng, x[x <= TRIG_LIMIT])


N = 40_000      # points per range; five or more ranges per function


def ranges(name, rng):
    """The float64 test inputs of one function, by range name."""
    r = {
        "tiny": _signed(rng, _log_uniform(rng, 1e-300, 1e-8, N)),
        "small": rng.uniform(-1, 1, N),
        "moderate": rng.uniform(-30, 30, N),
        "subnormal": _signed(rng, rng.uniform(0, TINY, N)),
    }
    if name in ("exp", "expm1"):
        r["wide"] = _signed(rng, _log_uniform(rng, 1e-8, 745.2, N))
        r["thresholds"] = np.concatenate([rng.uniform(700, 710, N // 2), rng.uniform(-746, -700, N // 2)])
    elif name in ("sin", "cos"):
        r["wide"] = _signed(rng, _log_uniform(rng, 1e-8, TRIG_LIMIT, N))
        r["near_k_pi_2"] = _near_pio2_multiples(rng, N // 3)
    elif name == "tanh":
        r["wide"] = _signed(rng, _log_uniform(rng, 1e-8, 1e300, N))
        r["saturation"] = _signed(rng, rng.uniform(15, 25, N))
    elif name == "log":
        r = {key: np.abs(v) for key, v in r.items()}
        r["wide"] = _log_uniform(rng, 1e-308, 1e308, N)
        r["near_1"] = 1 + rng.uniform(-1e-3, 1e-3, N) * _log_uniform(rng, 1e-13, 1, N)
    elif name == "log1p":
        r["small"] = rng.uniform(-1, 1, N)
        r["moderate"] = rng.uniform(-1, 30, N)
        r["wide"] = _log_uniform(rng, 1e-308, 1e308, N)
        r["near_minus_1"] = -1 + _log_uniform(rng, 1e-16, 1e-2, N)
    return r


CASES = [(name, rng_name) for name in FUNCS
         for rng_name in ranges(name, np.random.default_rng(0))]


@pytest.mark.parametrize("name,range_name", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_float64_within_2ulp_of_numpy(name, range_name):
    x = ranges(name, np.random.default_rng(12345))[range_name]
    ours = run(name, x)
    assert ours.dtype == np.float64
    err = ulp_error(ours, numpy_ref(name, x))
    i = int(np.argmax(err))
    assert err[i] <= MAX_ULP, (name, range_name, x[i], ours[i], numpy_ref(name, x[i:i + 1])[0])


inf, nan = np.inf, np.nan
SPECIAL = {
    "exp": [(nan, nan), (inf, inf), (-inf, 0.0), (0.0, 1.0), (-0.0, 1.0), (710.0, inf),
            (709.7827128933841, inf), (1e300, inf), (-746.0, 0.0), (-1e300, 0.0),
            (-745.1332191019412, 0.0), (-745.1332191019411, 5e-324), (-745.0, 5e-324),
            (709.782712893384, 1.7976931348622732e308)],
    "log": [(nan, nan), (inf, inf), (-inf, nan), (0.0, -inf), (-0.0, -inf), (-1.0, nan),
            (-5e-324, nan), (1.0, 0.0), (5e-324, -744.4400719213812),
            (1.7976931348623157e308, 709.782712893384)],
    "sin": [(nan, nan), (inf, nan), (-inf, nan), (0.0, 0.0), (-0.0, -0.0), (5e-324, 5e-324),
            (-5e-324, -5e-324), (1e-20, 1e-20), (-1e-20, -1e-20), (1e300, nan),
            (np.nextafter(TRIG_LIMIT, inf), nan)],
    "cos": [(nan, nan), (inf, nan), (-inf, nan), (0.0, 1.0), (-0.0, 1.0), (5e-324, 1.0),
            (1e300, nan), (-np.nextafter(TRIG_LIMIT, inf), nan)],
    "tanh": [(nan, nan), (inf, 1.0), (-inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (5e-324, 5e-324),
             (-5e-324, -5e-324), (20.0, 1.0), (-20.0, -1.0), (1e300, 1.0), (-1e300, -1.0)],
    "expm1": [(nan, nan), (inf, inf), (-inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (5e-324, 5e-324),
              (-5e-324, -5e-324), (710.0, inf), (709.7827128933841, inf), (-40.0, -1.0),
              (-1e300, -1.0), (1e-20, 1e-20)],
    "log1p": [(nan, nan), (inf, inf), (-inf, nan), (-1.0, -inf), (-1.5, nan), (0.0, 0.0),
              (-0.0, -0.0), (5e-324, 5e-324), (-5e-324, -5e-324), (1e-20, 1e-20),
              (1.7976931348623157e308, 709.782712893384)],
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_special_values_exact(name):
    x = np.array([a for a, _ in SPECIAL[name]])
    want = np.array([b for _, b in SPECIAL[name]])
    got = run(name, x)
    for xi, g, w in zip(x, got, want):
        if np.isnan(w):
            assert np.isnan(g), (name, xi, g)
        else:
            assert g == w and np.signbit(g) == np.signbit(w), (name, xi, g, w)
    # the expected values are NumPy's, except beyond TRIG_LIMIT (nan by design)
    ref = numpy_ref(name, x)
    keep = ~((np.abs(x) > TRIG_LIMIT) & np.isfinite(x)) if name in ("sin", "cos") else slice(None)
    np.testing.assert_array_equal(want[keep], ref[keep])


def _float32_inputs(name, rng):
    # every binade: random bit patterns (nan and inf included), plus |x| < 30
    x = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x, rng.uniform(-30, 30, 50_000).astype(np.float32)])
    if name in ("sin", "cos"):
        x = x[~(np.abs(x) > TRIG_LIMIT)]
    return x


@pytest.mark.parametrize("name", list(FUNCS))
def test_float32(name):
    x = _float32_inputs(name, np.random.default_rng(777))
    ours = run(name, x)
    assert ours.dtype == np.float32
    # The float32 result is the float64 kernel rounded once: within 1 ulp of
    # the correctly rounded float32 value (NumPy's float64 result rounded).
    with np.errstate(all="ignore"):
        exact = numpy_ref(name, x.astype(np.float64)).astype(np.float32)
    err = ulp_error(ours, exact)
    assert err.max() <= 1.0, (x[np.argmax(err)], err.max())
    # Against NumPy's own float32 ufuncs: within 2 ulp wherever NumPy's float32
    # result is itself within 1 ulp of the correctly rounded value (NumPy's
    # float32 SIMD log, for one, is up to 4 ulp off on some inputs).
    np32 = numpy_ref(name, x)
    trusted = ulp_error(np32, exact) <= 1.0
    err = ulp_error(ours, np32)[trusted]
    assert err.max() <= MAX_ULP, (x[trusted][np.argmax(err)], err.max())


@pytest.mark.parametrize("name", list(FUNCS))
def test_accuracy_kept_in_fastmath_caller(name):
    # The kernels are inlined by LLVM with their own (strict) flags, so a
    # caller compiled with fastmath=True gets the same accuracy.
    rng = np.random.default_rng(99)
    r = ranges(name, rng)
    x = np.concatenate([r["small"], r["moderate"], r["wide"]])
    ours = run(name, x, fastmath=True)
    assert ulp_error(ours, numpy_ref(name, x)).max() <= MAX_ULP


@pytest.mark.parametrize("name", list(FUNCS))
def test_loop_is_vectorised(name):
    run(name, np.zeros(4))
    loop = _LOOPS[(name, False)]
    llvm_ir = loop.inspect_llvm((numba.float64[::1],))
    assert re.search(r"<\d+ x double>", llvm_ir), f"{name}: loop not vectorised"
    # the kernel is inlined: no call to a compiled helper from the loop
    assert "7jitgrad7vecmath" not in "".join(re.findall(r"call [^\n]*", llvm_ir))


def test_python_stubs_are_numpy():
    x = np.linspace(0.1, 3, 7)
    for name, f in FUNCS.items():
        np.testing.assert_array_equal(f(x), numpy_ref(name, x))
        assert f(0.5) == numpy_ref(name, 0.5)


def test_trig_limit():
    assert vecmath.TRIG_LIMIT == 1572864.0
    # k = round(x*2/pi) stays below 2^20 up to the limit, so k*PIO2_{1,2,3} are exact
    assert round(TRIG_LIMIT * 2 / np.pi) < 2**20
    for part in (vecmath.PIO2_1, vecmath.PIO2_2, vecmath.PIO2_3):
        mantissa = int.from_bytes(np.float64(part).tobytes(), "little") & ((1 << 52) - 1)
        assert mantissa & ((1 << 20) - 1) == 0      # at most 33 significant bits
    x = np.array([TRIG_LIMIT, -TRIG_LIMIT, np.nextafter(TRIG_LIMIT, 0)])
    for name in ("sin", "cos"):
        assert ulp_error(run(name, x), numpy_ref(name, x)).max() <= MAX_ULP
