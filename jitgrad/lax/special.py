"""Special functions as elementwise primitives (what scipy.special needs beyond
compositions): erf, erfc, lgamma, digamma, polygamma, erfinv, ndtri, log_ndtr,
i0e, i1e.

Each is a primitive because composing it from the others would be
inaccurate or slow; the rest of scipy.special (expit, xlogy, ndtr, betaln,
logsumexp, ...) is composed in :mod:`jitgrad.numpy.special`.  ``impl`` is
SciPy's function (imported when first used: SciPy takes a while to import);
``code`` calls ``math.erf``/``math.erfc``/``math.lgamma`` or the kernels of
:mod:`jitgrad.backend.specialmath` (``sm.<name>`` in generated code), in
float64, rounding a float32 result once.  Derivatives:

    erf' = 2/sqrt(pi) exp(-x^2)        erfc' = -erf'
    lgamma' = digamma                  digamma' = polygamma(1, .)
    polygamma(n)' = polygamma(n + 1)   erfinv' = sqrt(pi)/2 exp(erfinv^2)
    ndtri' = sqrt(2 pi) exp(ndtri^2 / 2)
    log_ndtr' = phi(x) / ndtr(x) = exp(-x^2/2 - log sqrt(2 pi) - log_ndtr(x))
    i0e' = i1e - sign(x) i0e           i1e' = i0e - sign(x) i1e - i1e / x  (1/2 at 0)
"""
from __future__ import annotations

import math

import numpy as np

from ..core.trace import bind
from .elementwise import (_chain, _elementwise_shape, _new, _unary, add, div, eq, exp, mul, neg,
                          select, sign, sub)

__all__ = ["erf_p", "erfc_p", "lgamma_p", "digamma_p", "polygamma_p", "erfinv_p", "ndtri_p",
           "log_ndtr_p", "i0e_p", "i1e_p", "erf", "erfc", "lgamma", "digamma", "polygamma",
           "erfinv", "ndtri", "log_ndtr", "i0e", "i1e"]


def _scipy(name):
    def impl(*args):
        import scipy.special
        return getattr(scipy.special, name)(*args)
    return impl


def _kernel(call):
    """Code for a float64 kernel: a float32 operand is widened and the result
    rounded back once (``lit`` tells the dtype by how it writes a literal)."""
    def code(args, lit, **params):
        expr = call.format(*[f"np.float64({a})" for a in args], **params)
        return expr if lit(0.0) == "0.0" else f"np.float32({expr})"
    return code


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _erf_deriv(x, y):
    return mul(exp(neg(mul(x, x))), _TWO_OVER_SQRT_PI)


erf_p = _unary("erf", _scipy("erf"), _kernel("math.erf({0})"), _chain(_erf_deriv))
erfc_p = _unary("erfc", _scipy("erfc"), _kernel("math.erfc({0})"),
                _chain(lambda x, y: neg(_erf_deriv(x, y))))
lgamma_p = _unary("lgamma", _scipy("gammaln"), _kernel("math.lgamma({0})"),
                  _chain(lambda x, y: digamma(x)))
digamma_p = _unary("digamma", _scipy("digamma"), _kernel("sm.digamma({0})"),
                   _chain(lambda x, y: polygamma(1, x)))
erfinv_p = _unary("erfinv", _scipy("erfinv"), _kernel("sm.erfinv({0})"),
                  _chain(lambda x, y: mul(exp(mul(y, y)), _SQRT_PI_OVER_2)))
ndtri_p = _unary("ndtri", _scipy("ndtri"), _kernel("sm.ndtri({0})"),
                 _chain(lambda x, y: mul(exp(mul(mul(y, y), 0.5)), _SQRT_2PI)))
log_ndtr_p = _unary("log_ndtr", _scipy("log_ndtr"), _kernel("sm.log_ndtr({0})"),
                    _chain(lambda x, y: exp(sub(neg(add(mul(mul(x, x), 0.5), _LOG_SQRT_2PI)), y))))
i0e_p = _unary("i0e", _scipy("i0e"), _kernel("sm.i0e({0})"),
               _chain(lambda x, y: sub(i1e(x), mul(sign(x), y))))


def _i1e_deriv(x, y):
    at0 = eq(x, 0.0)
    safe = select(at0, 1.0, x)
    return select(at0, 0.5, sub(sub(i0e(x), mul(sign(x), y)), div(y, safe)))


i1e_p = _unary("i1e", _scipy("i1e"), _kernel("sm.i1e({0})"), _chain(_i1e_deriv))

# polygamma(n, x), n >= 1 a parameter (n = 0 is digamma)
polygamma_p = _new("polygamma", "elementwise")
polygamma_p.impl = lambda x, n: np.asarray(_scipy("polygamma")(n, x)).astype(np.asarray(x).dtype)
polygamma_p.shape = lambda x, n: _elementwise_shape(x)
polygamma_p.jvp = lambda p, t, out, n: None if t[0] is None else mul(t[0], polygamma(n + 1, p[0]))
polygamma_p.code = _kernel("sm.polygamma({n}, {0})")


def erf(x):
    return bind(erf_p, x)


def erfc(x):
    return bind(erfc_p, x)


def lgamma(x):
    return bind(lgamma_p, x)


def digamma(x):
    return bind(digamma_p, x)


def polygamma(n, x):
    n = int(n)
    return digamma(x) if n == 0 else bind(polygamma_p, x, n=n)


def erfinv(x):
    return bind(erfinv_p, x)


def ndtri(x):
    return bind(ndtri_p, x)


def log_ndtr(x):
    return bind(log_ndtr_p, x)


def i0e(x):
    return bind(i0e_p, x)


def i1e(x):
    return bind(i1e_p, x)
