"""Counter-based random numbers as plain arithmetic, written once for both tiers.

A draw is a pure function of a key and a counter: the Threefry-2x32 hash
(Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; 20
rounds, the variant JAX uses) maps a 64-bit key ``(k0, k1)`` and a 64-bit
counter ``(c0, c1)`` to 64 random bits, and the functions below turn those bits
into keys, integers, uniform and normal floats.

The same Python functions run two ways: on NumPy arrays (the interpreter's
reference rules in :mod:`jitgrad.lax.random`) and, compiled by Numba, on scalars
inside the generated loops (:mod:`jitgrad.backend.randmath`).  They use only
operations whose results are exact or correctly rounded in both (integer
adds, shifts and bitwise operations on ``uint64``; float ``+ - * /`` and
``sqrt``; conversion of integers below 2**53 to float64) and :func:`select`,
and never a library ``log`` or ``exp``, so the two tiers draw bit-identical
numbers.  32-bit words are held in ``uint64`` and masked.

Every input is ``uint64`` (NumPy arrays or Numba scalars); constants are
``np.uint64`` so that Numba keeps the arithmetic unsigned.
"""
import numpy as np

U = np.uint64
MASK32 = U(0xFFFFFFFF)
_PARITY = U(0x1BD11BDA)          # Threefish's key-schedule constant
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_SHIFTS = tuple(tuple((U(r), U(32 - r)) for r in rs) for rs in _ROTATIONS)
_S32, _S12, _S9 = U(32), U(12), U(9)


def select(cond, a, b):
    """``a`` where ``cond`` else ``b`` (Numba code gets a scalar ``a if cond else b``)."""
    return np.where(cond, a, b)


# ---------------------------------------------------------------------------
# Threefry-2x32: 20 rounds of add, rotate, xor on two 32-bit words, with the
# key injected every 4 rounds.

def threefry2x32(k0, k1, c0, c1):
    """The hash of counter ``(c0, c1)`` under key ``(k0, k1)``, as one 64-bit
    integer ``w0 << 32 | w1`` of the two output words."""
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = (c0 + ks[0]) & MASK32
    x1 = (c1 + ks[1]) & MASK32
    for block in range(5):
        for r, rc in _SHIFTS[block % 2]:
            x0 = (x0 + x1) & MASK32
            x1 = ((x1 << r) | (x1 >> rc)) & MASK32
            x1 = x1 ^ x0
        s = block + 1
        x0 = (x0 + ks[s % 3]) & MASK32
        x1 = (x1 + ks[(s + 1) % 3] + U(s)) & MASK32
    return (x0 << _S32) | x1


# ---------------------------------------------------------------------------
# Bits to numbers.  ``bits`` is the 64-bit output of threefry2x32.

def word0(bits):
    return bits >> _S32


def word1(bits):
    return bits & MASK32


def bits32(bits):
    """32 random bits: the two words xor-ed."""
    return (bits >> _S32) ^ (bits & MASK32)


def uniform64(bits):
    """A float64 in [0, 1): the top 52 bits as a fraction (a multiple of 2**-52)."""
    return np.float64(bits >> _S12) * 2.0 ** -52


def uniform32(bits):
    """A float32 in [0, 1): 23 of the 32 bits as a fraction (exact in float32)."""
    return np.float32(np.float64(bits32(bits) >> _S9) * 2.0 ** -23)


# The standard normal by inversion of its distribution function, from 52 bits:
# u = (m + 1/2) / 2**52 for the 52-bit integer m, strictly inside (0, 1) and
# symmetric (m and 2**52 - 1 - m give z and -z).  The quantile is Wichura's
# rational approximation (Algorithm AS 241, PPND16, Applied Statistics 37, 1988),
# relative error about 1e-16: one rational function of (u - 1/2)^2 in the
# centre and two of r = sqrt(-log q) in the tails, q = min(u, 1 - u).  The
# coefficients are the published ones, lowest degree first.
_AS241_CENTRE = (
    (3.3871328727963666080, 1.3314166789178437745e2, 1.9715909503065514427e3,
     1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
     3.3430575583588128105e4, 2.5090809287301226727e3),
    (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
     2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
     5.2264952788528545610e3))
_AS241_NEAR = (
    (1.42343711074968357734, 4.63033784615654529590, 5.76949722146069140550,
     3.64784832476320460504, 1.27045825245236838258, 2.41780725177450611770e-1,
     2.27238449892691845833e-2, 7.74545014278341407640e-4),
    (1.0, 2.05319162663775882187, 1.67638483018380384940, 6.89767334985100004550e-1,
     1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
     1.05075007164441684324e-9))
_AS241_FAR = (
    (6.65790464350110377720, 5.46378491116411436990, 1.78482653991729133580,
     2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
     2.71155556874348757815e-5, 2.01033439929228813265e-7),
    (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
     7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
     2.04426310338993978564e-15))
_AS241 = (_AS241_CENTRE, _AS241_NEAR, _AS241_FAR)

# log f = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (f - 1)/(f + 1); for f in
# [sqrt(1/2), sqrt(2)], s^2 <= 0.0295 and 12 terms leave less than 1e-19.
_ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(12))
_LN2 = 0.6931471805599453
_SQRT2 = 1.4142135623730951
_HALF_RANGE = U(1 << 51)
_TOP = U((1 << 52) - 1)
_BIT_STEPS = tuple((U(s), float(s)) for s in (32, 16, 8, 4, 2, 1))
_ONE, _TWO, _FIFTY_TWO = U(1), U(2), U(52)


def rational(coef, x):
    """p(x) / q(x) for coefficient tuples ``coef = (p, q)`` of degree 7, by Horner."""
    (p, q) = coef
    num, den = p[7], q[7]
    for i in range(6, -1, -1):
        num = num * x + p[i]
        den = den * x + q[i]
    return num / den


def normal64(bits):
    """A standard normal float64 from the top 52 of the 64 bits."""
    m = bits >> _S12
    # centre: p = u - 1/2 = (2m + 1 - 2**52) / 2**53, exact (an odd integer below 2**53)
    p = (np.float64(m * _TWO + _ONE) - 2.0 ** 52) * 2.0 ** -53
    centre = p * rational(_AS241[0], 0.180625 - p * p)
    # tails: q = n / 2**53 with n = 2 min(m, 2**52 - 1 - m) + 1 odd, and
    # -log q = 53 log 2 - log n, with n = f 2**e, f in [1, 2), found exactly
    j = select(m < _HALF_RANGE, m, _TOP - m)
    n = j * _TWO + _ONE
    rest, e = n, 0.0
    for step, fstep in _BIT_STEPS:           # e = the index of n's highest bit
        high = rest >> step
        big = high != U(0)
        rest = select(big, high, rest)
        e = select(big, e + fstep, e)
    f = np.float64(n << (_FIFTY_TWO - U(e))) * 2.0 ** -52
    up = f > _SQRT2
    f = select(up, f * 0.5, f)
    e = select(up, e + 1.0, e)
    s = (f - 1.0) / (f + 1.0)
    s2 = s * s
    series = _ATANH_SERIES[11]
    for k in range(10, -1, -1):
        series = series * s2 + _ATANH_SERIES[k]
    r = np.sqrt((53.0 - e) * _LN2 - 2.0 * s * series)
    tail = select(r <= 5.0, rational(_AS241[1], r - 1.6), rational(_AS241[2], r - 5.0))
    tail = select(m < _HALF_RANGE, -tail, tail)
    return select(np.abs(p) <= 0.425, centre, tail)


def normal32(bits):
    """A standard normal float32: the float64 draw rounded once."""
    return np.float32(normal64(bits))
