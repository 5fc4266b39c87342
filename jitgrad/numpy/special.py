"""scipy.special on traced arrays, and the few NumPy functions SciPy's own code
calls on them (``result_type``, ``real``, ``imag``).

SciPy's special functions are NumPy ufuncs, so a traced argument sends them
to the tracer's ``__array_ufunc__``, which finds the implementation here by
the ufunc's name (:data:`UFUNCS`; see :mod:`jitgrad.numpy.dispatch`).
``logsumexp``, ``softmax`` and ``log_softmax`` are Python functions written
with NumPy: SciPy's own code runs on the tracers (it calls ``np.asarray``,
writes into arrays it made and asks for the array namespace, all of which
traced arrays answer).

The functions with a primitive of their own are erf, erfc, gammaln, digamma,
polygamma, erfinv, ndtri, log_ndtr, i0e, i1e (:mod:`jitgrad.lax.special`);
the rest are compositions, written to stay accurate and to keep finite
derivatives where the function is finite:

- ``expit`` as 1/(1 + e^-x) for x >= 0 and e^x/(1 + e^x) below, so neither
  the value nor the derivative overflows (and ``log_expit`` likewise);
- ``xlogy``/``xlog1py`` take log(y) of 1 (or log1p of 0) where x = 0 and the
  logarithm is not finite, so they are 0 there with finite derivatives, and
  d/dx = log(y) where that is finite;
- ``ndtr`` = erfc(-x/sqrt 2)/2, accurate in the lower tail.
"""
from __future__ import annotations

import math

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer, aval_of
from .base import _operand, _unary_fn, result_dtype
from .ufuncs import (absolute, add, divide, equal, exp, greater, greater_equal, isnan, log,
                     log1p, logical_and, logical_not, logical_or, multiply, negative, subtract,
                     where)

# ---------------------------------------------------------------------------
# Primitives


erf, erfc = _unary_fn(P.erf), _unary_fn(P.erfc)
gammaln = _unary_fn(P.lgamma, name="gammaln")
digamma = psi = _unary_fn(P.digamma, name="digamma")
erfinv, ndtri, log_ndtr = _unary_fn(P.erfinv), _unary_fn(P.ndtri), _unary_fn(P.log_ndtr)
i0e, i1e = _unary_fn(P.i0e), _unary_fn(P.i1e)


def _float(x):
    x = _operand(x)
    dt = result_dtype(x)
    return x if dt.kind == "f" else P.convert(_np.asarray(x) if not isinstance(x, Tracer) else x,
                                              _np.result_type(dt, _np.float64))


def polygamma(n, x, /, **kwargs):
    """polygamma(n, x) for a concrete integer order n >= 0."""
    if isinstance(n, Tracer) or _np.ndim(n) != 0:
        raise NotImplementedError("jitgrad supports scipy.special.polygamma(n, x) with one "
                                  "concrete integer order n; call it once per order")
    if int(n) != n or n < 0:
        raise ValueError("polygamma: the order n must be a non-negative integer")
    return P.polygamma(int(n), _float(x))


def zeta(s, q=None, /, **kwargs):
    """The Hurwitz zeta function zeta(s, q) for a concrete integer s >= 2 (what
    SciPy's polygamma calls): (-1)^s polygamma(s - 1, q) / (s - 1)!."""
    if q is None or isinstance(s, Tracer) or _np.ndim(s) != 0 or int(s) != s or s < 2:
        raise NotImplementedError("jitgrad supports scipy.special.zeta(s, q) only for one "
                                  "concrete integer s >= 2 and traced q")
    s = int(s)
    return multiply(P.polygamma(s - 1, _float(q)), (-1) ** s / math.factorial(s - 1))


def erfcinv(y, /, **kwargs):
    # erfc(z) = y  <=>  z = -ndtri(y / 2) / sqrt(2)   (y / 2 is exact)
    return multiply(ndtri(multiply(_float(y), 0.5)), -1 / math.sqrt(2.0))


def i0(x, /, **kwargs):
    x = _float(x)
    return multiply(i0e(x), exp(absolute(x)))


def i1(x, /, **kwargs):
    x = _float(x)
    return multiply(i1e(x), exp(absolute(x)))


# ---------------------------------------------------------------------------
# Compositions


def expit(x, /, **kwargs):
    x = _float(x)
    pos = greater_equal(x, 0)
    e = exp(where(pos, negative(x), x))          # <= 1: never overflows
    return where(pos, divide(1.0, add(e, 1.0)), divide(e, add(e, 1.0)))


def log_expit(x, /, **kwargs):
    x = _float(x)
    pos = greater_equal(x, 0)
    e = exp(where(pos, negative(x), x))
    return where(pos, negative(log1p(e)), subtract(x, log1p(e)))


def logit(p, /, **kwargs):
    p = _float(p)
    return subtract(log(p), log1p(negative(p)))


def ndtr(x, /, **kwargs):
    return multiply(erfc(multiply(_float(x), -1 / math.sqrt(2.0))), 0.5)


def _x_log(x, y, log_fn, neutral, finite_domain):
    x, y = _float(x), _float(y)
    # where x == 0 and log(y) is not finite (and y is not NaN), log of the neutral value
    swap = logical_and(equal(x, 0), logical_and(logical_not(finite_domain(y)),
                                                logical_not(isnan(y))))
    return multiply(x, log_fn(where(swap, neutral, y)))


def xlogy(x, y, /, **kwargs):
    return _x_log(x, y, log, 1.0, lambda y: logical_and(greater(y, 0), _finite(y)))


def xlog1py(x, y, /, **kwargs):
    return _x_log(x, y, log1p, 0.0, lambda y: logical_and(greater(y, -1), _finite(y)))


def _finite(y):
    return P.lt(absolute(y), _np.inf)


def betaln(a, b, /, **kwargs):
    a, b = _float(a), _float(b)
    return subtract(add(gammaln(a), gammaln(b)), gammaln(add(a, b)))


def entr(x, /, **kwargs):
    """-x log x for x > 0, 0 at 0, -inf below."""
    x = _float(x)
    pos = greater(x, 0)
    inner = negative(multiply(x, log(where(pos, x, 1.0))))
    return where(pos, inner, where(equal(x, 0), 0.0, -_np.inf))


def rel_entr(x, y, /, **kwargs):
    """x log(x / y) for x, y > 0; 0 for x = 0, y >= 0; inf otherwise."""
    x, y = _float(x), _float(y)
    both = logical_and(greater(x, 0), greater(y, 0))
    inner = multiply(x, log(divide(where(both, x, 1.0), where(both, y, 1.0))))
    edge = where(logical_and(equal(x, 0), greater_equal(y, 0)), 0.0, _np.inf)
    nan = logical_or(isnan(x), isnan(y))
    return where(nan, add(x, y), where(both, inner, edge))


def kl_div(x, y, /, **kwargs):
    """x log(x / y) - x + y for x, y > 0; y for x = 0, y >= 0; inf otherwise."""
    x, y = _float(x), _float(y)
    both = logical_and(greater(x, 0), greater(y, 0))
    r = rel_entr(x, y)
    return where(logical_or(both, logical_and(equal(x, 0), greater_equal(y, 0))),
                 add(subtract(r, x), y), r)


UFUNCS = {name: globals()[name] for name in (
    "erf", "erfc", "gammaln", "digamma", "psi", "polygamma", "zeta", "erfinv", "erfcinv", "ndtri",
    "log_ndtr", "i0", "i1", "i0e", "i1e", "expit", "log_expit", "logit", "ndtr", "xlogy",
    "xlog1py", "betaln", "entr", "rel_entr", "kl_div")}
UFUNCS["_zeta"] = zeta         # (scipy.special.zeta(s, q) calls this ufunc)


# ---------------------------------------------------------------------------
# What SciPy's Python code calls on traced arrays


def result_type(*arrays_and_dtypes):
    return _np.result_type(*[aval_of(a).dtype if isinstance(a, Tracer) else a
                             for a in arrays_and_dtypes])

