"""Scalar special functions for generated code (the compiled tier of scipy.special).

Numba compiles ``math.erf``, ``math.erfc`` and ``math.lgamma`` itself; the
functions here are the rest, written for float64 scalars (a float32 argument
is widened by the caller and the result rounded back):

    digamma(x), polygamma(n, x), erfinv(x), ndtri(p), log_ndtr(x), i0e(x), i1e(x)

The methods, each a standard one:

- ``digamma``: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then
  the asymptotic series ln x - 1/(2x) - sum B_2k / (2k x^2k) (eight terms,
  below 1e-16 relative at x = 10); below -1e3 the reflection
  psi(x) = psi(1 - x) - pi / tan(pi x).  Poles: -inf at 0, nan at the
  negative integers (as SciPy).
- ``polygamma``: (-1)^(n+1) n! zeta(n + 1, x), the Hurwitz zeta by direct
  summation up to x >= 20 + n and the Euler-Maclaurin formula from there.
- ``ndtri``: an initial guess (the tail asymptotics below p = 0.02, a
  closed-form approximation of erfinv in the middle), then Halley steps on
  ndtr(z) = p with ndtr computed from ``math.erfc`` (accurate in relative
  terms far into the lower tail); the upper half by symmetry (1 - p is exact).
- ``erfinv``: Halley steps on erf(y) = x for |x| <= 0.5, else from ndtri
  of (1 - |x|) / 2 (exact), so the tails keep their relative accuracy.
- ``log_ndtr``: log of ndtr above -20, log1p(-ndtr(-x)) above 0, and the
  asymptotic series of the Mills ratio below -20.
- ``i0e``, ``i1e``: the power series of I0, I1 times exp(-|x|) for |x| <= 30,
  the asymptotic expansion of exp(-x) I_nu(x) above (no overflow).
"""
import math

from numba import njit

__all__ = ["digamma", "polygamma", "erfinv", "ndtri", "log_ndtr", "i0e", "i1e"]

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# Bernoulli numbers B_2, B_4, ..., B_16
_B2K = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6, -3617.0 / 510)

_jit = njit(cache=True, nogil=True, error_model="numpy")


@_jit
def digamma(x):
    if x != x or x == math.inf:
        return x
    if x <= 0.0 and x == math.floor(x):
        return -math.inf if x == 0.0 else math.nan
    if x < -1e3:      # reflection: psi(x) = psi(1 - x) - pi / tan(pi x)
        r = x - math.floor(x)
        return digamma(1.0 - x) - math.pi / math.tan(math.pi * r)
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    x2 = 1.0 / (x * x)
    s = 0.0
    p = x2
    for k in range(8):
        s += _B2K[k] / (2 * (k + 1)) * p
        p *= x2
    return acc + math.log(x) - 0.5 / x - s


@_jit
def _hurwitz_zeta(s, a):
    """zeta(s, a) = sum_k (a + k)^-s for integer s >= 2."""
    acc = 0.0
    big = 20.0 + s
    while a < big:
        acc += a ** -s
        a += 1.0
    # Euler-Maclaurin: a^(1-s)/(s-1) + a^-s/2 + sum_j B_2j/(2j)! (s)_(2j-1) a^(-s-2j+1)
    tail = a ** (1.0 - s) / (s - 1.0) + 0.5 * a ** -s
    rising = s                       # (s)_(2j-1)
    fact = 2.0                       # (2j)!
    power = a ** (-s - 1.0)          # a^(-s-2j+1)
    for j in range(1, 9):
        tail += _B2K[j - 1] / fact * rising * power
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        fact *= (2 * j + 1) * (2 * j + 2)
        power /= a * a
    return acc + tail


@_jit
def polygamma(n, x):
    if n == 0:
        return digamma(x)
    if x != x:
        return x
    if x <= 0.0 and x == math.floor(x):
        return math.inf if n % 2 == 1 else -math.inf
    sign = 1.0 if n % 2 == 1 else -1.0
    return sign * math.gamma(n + 1.0) * _hurwitz_zeta(n + 1.0, x)


@_jit
def _ndtr(z):
    return 0.5 * math.erfc(-z / _SQRT2)


@_jit
def _erfinv_guess(x):
    """A closed-form approximation of erfinv (relative error about 2e-3)."""
    a = 0.147
    ln = math.log((1.0 - x) * (1.0 + x))
    t = 2.0 / (math.pi * a) + 0.5 * ln
    y = math.sqrt(math.sqrt(t * t - ln / a) - t)
    return y if x >= 0 else -y


@_jit
def _ndtri_lower(p):
    """ndtri for 0 < p <= 0.5."""
    if p < 0.02:
        t = -2.0 * math.log(p)
        z = -math.sqrt(t - math.log(t) - math.log(2.0 * math.pi))
    else:
        z = _SQRT2 * _erfinv_guess(2.0 * p - 1.0)
    for _ in range(5):     # Halley: f = ndtr(z) - p, f' = phi(z), f'' = -z phi(z)
        phi = math.exp(-0.5 * z * z) / _SQRT_2PI
        if phi == 0.0:
            break
        step = (_ndtr(z) - p) / phi
        z -= step / (1.0 + 0.5 * z * step)
    return z


@_jit
def ndtri(p):
    if p != p or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p <= 0.5:
        return _ndtri_lower(p)
    return -_ndtri_lower(1.0 - p)


@_jit
def erfinv(x):
    if x != x or x < -1.0 or x > 1.0:
        return math.nan
    if x == 1.0:
        return math.inf
    if x == -1.0:
        return -math.inf
    ax = abs(x)
    if ax > 0.5:        # (1 - |x|) / 2 is exact here
        y = -_ndtri_lower(0.5 * (1.0 - ax)) / _SQRT2
    else:
        y = ax * (0.5 * math.sqrt(math.pi)) * (1.0 + math.pi * ax * ax / 12.0)
        for _ in range(4):     # Halley: f = erf(y) - x, f'' = -2 y f'
            d = 2.0 / math.sqrt(math.pi) * math.exp(-y * y)
            step = (math.erf(y) - ax) / d
            y -= step / (1.0 + y * step)
    return y if x >= 0 else -y


@_jit
def log_ndtr(x):
    if x != x:
        return x
    if x > 0.0:
        return math.log1p(-_ndtr(-x))
    if x > -20.0:
        return math.log(_ndtr(x))
    # log ndtr(x) = -x^2/2 - log(-x) - log sqrt(2 pi) + log(sum_k (-1)^k (2k-1)!! / x^2k)
    x2 = 1.0 / (x * x)
    s, term = 1.0, 1.0
    for k in range(1, 13):
        term *= -(2 * k - 1) * x2
        s += term
    return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log(s)


@_jit
def _bessel_ie(nu, x):
    """exp(-|x|) I_nu(|x|) for nu = 0 or 1."""
    ax = abs(x)
    if ax <= 30.0:
        q = 0.25 * ax * ax
        term = 1.0 if nu == 0 else 0.5 * ax
        s = term
        k = 1
        while term > 1e-17 * s:
            term *= q / (k * (k + nu))
            s += term
            k += 1
        return s * math.exp(-ax)
    # exp(-x) I_nu(x) ~ 1/sqrt(2 pi x) sum_k (-1)^k prod_{j<=k} (4 nu^2 - (2j-1)^2) / (k! (8x)^k)
    mu = 4.0 * nu * nu
    s, term = 1.0, 1.0
    for k in range(1, 25):
        term *= -(mu - (2 * k - 1) ** 2) / (k * 8.0 * ax)
        s += term
    return s / math.sqrt(2.0 * math.pi * ax)


@_jit
def i0e(x):
    if x != x:
        return x
    if abs(x) == math.inf:
        return 0.0
    return _bessel_ie(0, x)


@_jit
def i1e(x):
    if x != x:
        return x
    if abs(x) == math.inf:
        return 0.0
    r = _bessel_ie(1, x)
    return r if x >= 0 else -r
