"""Branch-free scalar elementary functions that LLVM can vectorise.

Numba has no vector math library: ``math.exp(x[i])`` inside a loop becomes a
call into the C library for every element, and a loop containing a call
cannot be vectorised.  The kernels here are written only with adds,
multiplies, divisions, integer operations on the bits of a double and
selects (``a if cond else b``), so once inlined into a loop LLVM's loop
vectoriser turns them into SIMD code (AVX-512 / AVX2 where available).

Public API (usable from Numba-compiled code on float32 or float64 scalars,
returning the same dtype; from plain Python they call the NumPy ufunc):

    vexp, vlog, vsin, vcos, vtanh, vexpm1, vlog1p, TRIG_LIMIT

float64 arguments are computed in float64; float32 arguments are widened,
run through the float64 kernel and rounded once back to float32.

Accuracy.  Every kernel reduces its argument exactly (or as a double-double)
to a small interval, evaluates a truncated Taylor series there (coefficients
are 1/n! or 2/(2j+1), computed below with Python's correctly rounded integer
division, so nothing is copied from a table), and adds the small terms before
the large one so that only the last addition rounds at full weight.  The
error budget of each kernel is written next to it; all are below one ulp in
theory.  The tests check at most 2 ulp against NumPy over the whole float64
range (for vsin/vcos: |x| <= TRIG_LIMIT), subnormals included; float32
results are the correctly rounded value except in rare double-rounding cases.

Use in loops.  The kernels are compiled without fast-math and marked
alwaysinline, so they keep their exact IEEE behaviour inside callers compiled
with fastmath=True.  A strict-order reduction such as ``s += vexp(x[i])``
still keeps the loop scalar (LLVM only vectorises floating-point sums it may
reassociate); compile such callers with fastmath={"reassoc"} or write the
values to a buffer and sum that.

Special values are produced by selects, never by branches: exp/expm1
overflow to inf and underflow (gradually, through the subnormals) to 0 or -1,
log(0) = -inf, log(<0) = nan, log1p(-1) = -inf, tanh saturates at +-1, and
nan propagates everywhere.  vsin/vcos return nan for |x| > TRIG_LIMIT (and for
inf and nan), where their argument reduction is no longer exact; callers that
need those arguments fall back to NumPy.
"""
import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["vexp", "vlog", "vsin", "vcos", "vtanh", "vexpm1", "vlog1p", "TRIG_LIMIT"]


# ---------------------------------------------------------------------------
# Constants.  ln 2 and pi/2 are split into parts with few significant bits so
# that their products with the (small) integer k of the range reduction are
# exact.  The splits are computed here, at import, from 60-digit values.

def _round_bits(v, bits):
    """The rational v rounded to nearest with ``bits`` significant bits."""
    e = math.floor(math.log2(abs(v)))
    if Fraction(2) ** e > abs(v):    # guard against log2 rounding up
        e -= 1
    scale = Fraction(2) ** (bits - 1 - e)
    return Fraction(round(v * scale)) / scale


with localcontext() as _ctx:
    _ctx.prec = 60
    _LN2 = Fraction(Decimal(2).ln())
_PIO2 = Fraction(Decimal("1.57079632679489661923132169163975144209858469968755291048747229615"))

# ln 2 = LN2_HI + LN2_LO + O(2^-96): LN2_HI has 42 significant bits, so k*LN2_HI
# is exact for |k| < 2^11 (exp, expm1 and log use |k| <= 1076).
_ln2_hi = _round_bits(_LN2, 42)
LN2_HI = float(_ln2_hi)
LN2_LO = float(_LN2 - _ln2_hi)
INV_LN2 = float(1 / _LN2)

# pi/2 = PIO2_1 + PIO2_2 + PIO2_3 + PIO2_4 + O(2^-152): the first three parts are
# rounded to 33 significant bits, so k*PIO2_i is exact for |k| <= 2^20; the
# last is the remainder rounded to a double.
_p1 = _round_bits(_PIO2, 33)
_p2 = _round_bits(_PIO2 - _p1, 33)
_p3 = _round_bits(_PIO2 - _p1 - _p2, 33)
PIO2_1, PIO2_2, PIO2_3 = float(_p1), float(_p2), float(_p3)
PIO2_4 = float(_PIO2 - _p1 - _p2 - _p3)
TWO_OVER_PI = float(1 / _PIO2)

from .kernel_limits import TRIG_LIMIT  # noqa: E402  (1.5 * 2**20: why, see there)

# Adding then subtracting SHIFT = 1.5*2^52 rounds |y| < 2^51 to the nearest
# integer (ties to even); the integer is also the low bits of y + SHIFT.
SHIFT = 1.5 * 2.0**52
SHIFT_BITS = 0x4338000000000000
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD    # bits of sqrt(1/2) rounded to a double
SIGN_BIT = -0x8000000000000000          # 0x8000000000000000 as an int64
HIGH26_MASK = -(1 << 27)                # keeps the sign, exponent and 26 leading bits
TWO54 = 2.0**54
MIN_NORMAL = 2.0**-1022
INF = math.inf
NAN = math.nan

# Taylor coefficients 1/n! of exp, correctly rounded.
E2, E3, E4, E5, E6, E7, E8, E9, E10, E11, E12, E13 = (1 / math.factorial(n) for n in range(2, 14))
# sin r = r + r*z*(S3 + z*(S5 + ...)), z = r^2, S_n = (-1)^((n-1)/2) / n!.
S3, S5, S7, S9, S11, S13, S15, S17, S19 = (
    (-1) ** j / math.factorial(2 * j + 1) for j in range(1, 10))
# cos r = 1 - z/2 + z^2*(C4 + z*(C6 + ...)), C_n = (-1)^(n/2) / n!.
C4, C6, C8, C10, C12, C14, C16, C18 = ((-1) ** j / math.factorial(2 * j) for j in range(2, 10))
# 2*atanh(s) = 2s + s*z*(L3 + z*(L5 + ...)), z = s^2, L_n = 2/n.
L3, L5, L7, L9, L11, L13, L15, L17, L19, L21, L23 = (2 / n for n in range(3, 24, 2))


# ---------------------------------------------------------------------------
# Intrinsics: bit casts between float64 and int64, and a multiply-add that
# the backend fuses into one FMA instruction where the target has one.

@intrinsic
def _bits(typingctx, x):
    """Reinterpret a float64 as an int64."""
    if x == types.float64:
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(64))
        return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """Reinterpret an int64 as a float64."""
    if isinstance(i, types.Integer) and i.bitwidth == 64:
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.DoubleType())
        return types.float64(i), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a*b + c via llvm.fmuladd: one rounding where FMA hardware exists, two
    otherwise.  Only used where either is accurate enough (polynomials and
    small correction terms)."""
    if a == b == c == types.float64:
        def codegen(context, builder, sig, args):
            d = ir.DoubleType()
            fn = builder.module.declare_intrinsic(
                "llvm.fmuladd", [d], fnty=ir.FunctionType(d, [d, d, d]))
            return builder.call(fn, args)
        return types.float64(types.float64, types.float64, types.float64), codegen


# Kernel compile options.  No fast-math: the shifter rounding and the
# TwoSum/Fast2Sum error terms rely on IEEE evaluation order.  error_model
# "numpy" removes the division-by-zero check (and its exception branch),
# which would otherwise stop vectorisation.  forceinline marks the kernels
# alwaysinline for LLVM, so they are inlined into the caller's loop whatever
# its size while their instructions keep these flags even when the caller is
# compiled with fastmath=True (Numba-level inlining, inline="always", would
# instead re-type the kernel's code under the caller's flags).  cache: the
# kernels' compiled form is kept on disk, which halves the first compile of a
# generated function in a new process (measured: 1.05 s -> 0.54 s for a loop
# calling three kernels); the cached kernels are still inlined and vectorised.
_KERNEL_OPTIONS = dict(fastmath=False, error_model="numpy", forceinline=True, cache=True)


# ---------------------------------------------------------------------------
# exp and expm1.  x = k*ln2 + r with k = round(x/ln2), |r| <= ln2/2 + tiny.
# r1 = x - k*LN2_HI is exact (k*LN2_HI is exact and x, k*LN2_HI agree in
# their leading bits, so the difference fits in 53 bits); r = r1 - k*LN2_LO
# rounds, and c = (r1 - r) - k*LN2_LO recovers that rounding error, so r + c
# equals x - k*ln2 to about 2^-85.  exp(r) - 1 - r = r^2*(1/2! + ... + r^11/13!)
# with a truncation error below r^14/14! < 4.2e-18 (0.04 ulp of 1).

@njit(**_KERNEL_OPTIONS)
def _exp_reduce(x):
    y = x * INV_LN2 + SHIFT
    kf = y - SHIFT
    k = _bits(y) - SHIFT_BITS
    r1 = x - kf * LN2_HI
    t = kf * LN2_LO
    r = r1 - t
    c = (r1 - r) - t
    p = _fma(r, E13, E12)
    p = _fma(r, p, E11)
    p = _fma(r, p, E10)
    p = _fma(r, p, E9)
    p = _fma(r, p, E8)
    p = _fma(r, p, E7)
    p = _fma(r, p, E6)
    p = _fma(r, p, E5)
    p = _fma(r, p, E4)
    p = _fma(r, p, E3)
    p = _fma(r, p, E2)
    # q = exp(r + c) - 1 - r up to O(c*r^2): the quadratic part plus c*(1 + r).
    q = _fma(r * r, p, _fma(c, r, c))
    return k, r, q


@njit(**_KERNEL_OPTIONS)
def _exp64(x):
    # Clamp (keeping nan): exp(710) overflows and exp(-746) underflows to 0,
    # so the clamped arguments give exactly the limit values.
    x = 710.0 if x > 710.0 else x
    x = -746.0 if x < -746.0 else x
    k, r, q = _exp_reduce(x)
    # exp(r) = 1 + r + q.  s = 1 + r with its exact error e (|r| < 1), so the
    # only full-weight rounding is the last addition: error <= 0.5 ulp + the
    # error of q (< 0.05 ulp).
    s = 1.0 + r
    e = (1.0 - s) + r
    p = s + (e + q)
    # 2^k = 2^k1 * 2^k2 with k1 = floor(k/2): both halves are normal doubles for
    # k in [-1080, 1025], the first product is exact and the second rounds once,
    # also when the result is subnormal or overflows.
    k1 = k >> 1
    k2 = k - k1
    return (p * _from_bits((k1 + 1023) << 52)) * _from_bits((k2 + 1023) << 52)


@njit(**_KERNEL_OPTIONS)
def _expm1_dd(x):
    """expm1(x) = (hi + lo) * f for x in [-40, 710]; hi + lo has a relative
    error below about 2^-54 (the rounding errors of q, which is <= 0.06*|hi|)."""
    k, r, q = _exp_reduce(x)
    # k = 1024 (x in [709.44, 710]) would need 2^1024: use 2^1023 and f = 2.
    big = k > 1023
    k = k - 1 if big else k
    f = 2.0 if big else 1.0
    u = _from_bits((k + 1023) << 52)
    # expm1(x) = u*(1 + r + q) - 1 = (u - 1) + u*r + u*q.  u - 1 is exact for
    # |k| <= 53 (and off by < 2^-53 relative otherwise, where it is negligible),
    # u*r is exact and |u - 1| >= |u*r| (|r| < 1/2), so the sum is captured
    # exactly by Fast2Sum; only the final hi + lo rounds at full weight.  The
    # error of lo (from q, <= 2^-56 * u) stays below 0.4 ulp of the result.
    um1 = u - 1.0
    ur = u * r
    hi = um1 + ur
    lo = ((um1 - hi) + ur) + u * q
    return hi, lo, f


@njit(**_KERNEL_OPTIONS)
def _expm1_64(x):
    xc = 710.0 if x > 710.0 else x
    xc = -40.0 if xc < -40.0 else xc    # expm1(x) rounds to -1 below -38
    hi, lo, f = _expm1_dd(xc)
    res = (hi + lo) * f
    # expm1(x) = x to within 0.5 ulp for |x| < 2^-54; this also keeps -0.0.
    return x if abs(x) < 2.0**-54 else res


# ---------------------------------------------------------------------------
# log and log1p.  x = 2^k * m with m in [sqrt(1/2), sqrt(2)), read from the
# bits: subtracting the bits of sqrt(1/2) makes the exponent field of the
# difference floor(log2(x / sqrt(1/2))) = k.  f = m - 1 is exact (Sterbenz).
# With s = f/(2 + f), log(m) = 2*atanh(s) = 2s + s*R(s^2) where
# R(z) = z*(2/3 + 2z/5 + ...), and since 2s = f - s*f,
#     log(m) = f - s*(f - R).
# f is exact, and s*(f - R) ~ f^2/2 is a correction whose relative error (from
# the division, ~1.5*2^-53) costs < 0.3 ulp.  |s| <= 0.1716, z <= 0.0295, and
# the series is cut after 2s^23/23: truncation < z^11/25 < 6e-19 relative.
# log(x) = k*LN2_HI + f + (k*LN2_LO - s*(f - R)); the first sum is done with
# Fast2Sum (|k*LN2_HI| >= 0.69 > |f| unless k = 0), so the final error is
# about 0.5 ulp plus the correction's error.

@njit(**_KERNEL_OPTIONS)
def _log_kernel(x, kadj, corr):
    """log(x) + corr for positive normal finite x; kadj is added to the exponent."""
    ix = _bits(x)
    k = (ix - SQRT_HALF_BITS) >> 52
    m = _from_bits(ix - (k << 52))
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = _fma(z, L23, L21)
    p = _fma(z, p, L19)
    p = _fma(z, p, L17)
    p = _fma(z, p, L15)
    p = _fma(z, p, L13)
    p = _fma(z, p, L11)
    p = _fma(z, p, L9)
    p = _fma(z, p, L7)
    p = _fma(z, p, L5)
    p = _fma(z, p, L3)
    R = z * p
    kf = np.float64(k + kadj)
    a = kf * LN2_HI
    hi = a + f
    lo = ((a - hi) + f) + ((kf * LN2_LO + corr) - s * (f - R))
    return hi + lo


@njit(**_KERNEL_OPTIONS)
def _log64(x):
    # Subnormals: scale by 2^54 first (selected, not branched).
    sub = x < MIN_NORMAL
    xn = x * TWO54 if sub else x
    kadj = -54 if sub else 0
    res = _log_kernel(xn, kadj, 0.0)
    res = res if x < INF else x         # +inf -> inf, nan -> nan
    res = -INF if x == 0.0 else res
    return NAN if x < 0.0 else res


@njit(**_KERNEL_OPTIONS)
def _log1p64(x):
    # u + e = 1 + x exactly (TwoSum), then log1p(x) = log(u) + e/u + O(2^-106).
    u = 1.0 + x
    bb = u - 1.0
    e = (1.0 - (u - bb)) + (x - bb)
    # u >= 2^-53 when x > -1, so u is normal; guard the other cases for the kernel.
    ok = u > 0.0
    un = u if ok else 1.0
    res = _log_kernel(un, 0, e / un)
    res = res if x < INF else x         # +inf -> inf, nan -> nan
    res = x if abs(x) < 2.0**-54 else res   # log1p(x) = x there; keeps -0.0
    res = -INF if x == -1.0 else res
    return NAN if x < -1.0 else res


# ---------------------------------------------------------------------------
# sin and cos.  x = k*pi/2 + r, k = round(x*2/pi), |r| <= pi/4 + tiny.  For
# |k| <= 2^20 the products k*PIO2_{1,2,3} are exact, x - k*PIO2_1 is exact, the
# next two subtractions are TwoSums (exact), and only k*PIO2_4 and the sum of
# the small error terms round, below the 2^-130 level; the remainder is returned
# as rh + rl.  Where r is tiny (x close to a multiple of pi/2) the
# subtractions cancel exactly (Sterbenz), so r keeps full relative accuracy.
# On |r| <= pi/4 (z = r^2 <= 0.617) the Taylor series are cut after r^19/19!
# (sin, truncation < 1.1e-19 relative) and r^18/18! (cos, < 3.3e-21).

@njit(**_KERNEL_OPTIONS)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(**_KERNEL_OPTIONS)
def _sin_quadrant(x, offset):
    """sin(x + offset*pi/2) for |x| <= TRIG_LIMIT; offset 0 gives sin, 1 cos."""
    y = x * TWO_OVER_PI + SHIFT
    kf = y - SHIFT
    k = _bits(y) - SHIFT_BITS + offset
    a1 = x - kf * PIO2_1
    a2, e2 = _two_sum(a1, -(kf * PIO2_2))
    a3, e3 = _two_sum(a2, -(kf * PIO2_3))
    rh, rl = _two_sum(a3, (e2 + e3) - kf * PIO2_4)
    z = rh * rh
    # sin(rh + rl) = rh + (rl*(1 - z/2) + rh*z*S(z)); the correction is at most
    # 0.11*|r| so its rounding errors cost < 0.05 ulp: total ~0.55 ulp.
    ps = _fma(z, S19, S17)
    ps = _fma(z, ps, S15)
    ps = _fma(z, ps, S13)
    ps = _fma(z, ps, S11)
    ps = _fma(z, ps, S9)
    ps = _fma(z, ps, S7)
    ps = _fma(z, ps, S5)
    ps = _fma(z, ps, S3)
    sn = rh + _fma(rl, _fma(-0.5, z, 1.0), rh * z * ps)
    # cos(rh + rl) = w + (((1 - w) - z/2) + z^2*C(z) - rh*rl), w = 1 - z/2 with
    # its rounding error recovered (Fast2Sum).  The rounding of z itself costs
    # up to 0.25 ulp, so the total stays below 0.8 ulp.
    pc = _fma(z, C18, C16)
    pc = _fma(z, pc, C14)
    pc = _fma(z, pc, C12)
    pc = _fma(z, pc, C10)
    pc = _fma(z, pc, C8)
    pc = _fma(z, pc, C6)
    pc = _fma(z, pc, C4)
    hz = 0.5 * z
    w = 1.0 - hz
    cs = w + ((((1.0 - w) - hz) + z * z * pc) - rh * rl)
    # Quadrant q = k mod 4: sin(r), cos(r), -sin(r), -cos(r).
    v = cs if (k & 1) != 0 else sn
    v = -v if (k & 2) != 0 else v
    return v if abs(x) <= TRIG_LIMIT else NAN   # also inf, nan -> nan


@njit(**_KERNEL_OPTIONS)
def _sin64(x):
    # sin(x) = x to within 0.5 ulp for |x| < 2^-27; this also keeps -0.0.
    res = _sin_quadrant(x, 0)
    return x if abs(x) < 2.0**-27 else res


@njit(**_KERNEL_OPTIONS)
def _cos64(x):
    return _sin_quadrant(x, 1)


# ---------------------------------------------------------------------------
# tanh(a) = E/(E + 2) with E = expm1(2a), a = |x| clamped to 20 (tanh(20)
# rounds to 1).  E is used as a double-double Eh + El (relative error below
# about 2^-54, which reaches tanh scaled by 2/(E + 2) <= 1: < 0.25 ulp) and
# the denominator D = Eh + El + 2 as d + dl + El (TwoSum).  The quotient
# q = Eh/d rounds, so it is corrected with the residual rho = E - q*D
# (accurate to ~2^-78 of E):
#     tanh(a) = q + rho/D,
# leaving only the final rounding at full weight: about 0.75 ulp in all.
# rho is formed without a fused multiply-add (Dekker's splitting): q is cut
# into qh (its 26 leading bits, by masking) + ql (27 bits) and d into dh (26
# leading bits) + the rest, so qh*dh and ql*dh are exact, Eh - qh*dh is exact
# because the two agree in their leading bits, and q*(d - dh + dl + El) is a
# term of relative size 2^-25 whose rounding does not matter.
# The sign of x is copied onto the result bitwise, so tanh(-0.0) = -0.0.

@njit(**_KERNEL_OPTIONS)
def _tanh64(x):
    a = abs(x)
    a = 20.0 if a > 20.0 else a
    hi, lo, _ = _expm1_dd(a + a)
    eh = hi + lo
    el = (hi - eh) + lo
    d, dl = _two_sum(eh, 2.0)
    q = eh / d
    dh = _from_bits(_bits(d) & HIGH26_MASK)
    dd = (d - dh) + (dl + el)         # D = eh + el + 2 = dh + dd
    qh = _from_bits(_bits(q) & HIGH26_MASK)
    ql = q - qh
    rho = (((eh - qh * dh) - ql * dh) - q * dd) + el
    t = q + rho / d
    return _from_bits(_bits(t) | (_bits(x) & SIGN_BIT))


# ---------------------------------------------------------------------------
# Public functions: NumPy in plain Python, the kernels above in Numba code.

def vexp(x):
    return np.exp(x)


def vlog(x):
    return np.log(x)


def vsin(x):
    return np.sin(x)


def vcos(x):
    return np.cos(x)


def vtanh(x):
    return np.tanh(x)


def vexpm1(x):
    return np.expm1(x)


def vlog1p(x):
    return np.log1p(x)


def _register(stub, kernel64):
    @overload(stub)
    def _ov(x):
        if isinstance(x, types.Float):
            if x.bitwidth == 64:
                def impl(x):
                    return kernel64(x)
            else:
                def impl(x):
                    return np.float32(kernel64(np.float64(x)))
            return impl


for _stub, _kernel in ((vexp, _exp64), (vlog, _log64), (vsin, _sin64), (vcos, _cos64),
                       (vtanh, _tanh64), (vexpm1, _expm1_64), (vlog1p, _log1p64)):
    _register(_stub, _kernel)
