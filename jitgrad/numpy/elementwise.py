"""More of NumPy's elementwise functions, composed from the ufuncs: ``fmin``,
``fmax``, ``logaddexp2``, ``sinc``, ``nan_to_num`` and ``select``.
"""
from __future__ import annotations

import numpy as _np

from ..core.trace import Tracer
from .base import _PY_SCALARS, _is_exact, _operand, _shape, astype, result_dtype
from .shapes import broadcast_to
from .ufuncs import (_as_float, _larger_first, absolute, add, divide, equal, exp2, isinf, isnan, log1p,
                     logical_and, maximum, minimum, multiply, sin, subtract, where)

_LN2 = float(_np.log(2.0))


def _nan_aware(pick, name):
    """fmax and fmin: the other operand where one is NaN, else maximum/minimum."""
    def fn(x, y, /, **kwargs):
        x, y = _operand(x), _operand(y)
        if result_dtype(x, y).kind not in "fc":
            return pick(x, y, **kwargs)
        # each NaN replaced by the other operand first, so that neither the
        # value nor the derivative (in either mode) sees a NaN that is not chosen
        return pick(where(isnan(x), y, x), where(isnan(y), x, y))
    fn.__name__ = name
    return fn


fmax = _nan_aware(maximum, "fmax")
fmin = _nan_aware(minimum, "fmin")


def logaddexp2(x, y, /, **kwargs):
    """log2(2**x + 2**y) = hi + log1p(2**(lo - hi)) / ln 2, as logaddexp."""
    x, y = _as_float(x), _as_float(y)
    hi, lo = _larger_first(x, y)
    smooth = add(hi, divide(log1p(exp2(subtract(lo, hi))), _LN2))
    return where(logical_and(equal(x, y), isinf(x)), add(x, y), smooth)


# sin(t)/t = sum_k (-1)^k t^(2k) / (2k+1)!; below |t| = 1 the terms up to t^20
# leave an error under 1e-21, and the polynomial's derivatives are those of
# sinc at 0 (sinc''(0) = -pi^2/3), where sin(t)/t has none.
_SINC_TAYLOR = [(-1.0) ** k / float(_np.prod(_np.arange(1, 2 * k + 2, dtype=float)))
                for k in range(11)]


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0, with the right derivatives at 0 (every order)."""
    x = _operand(x)
    if isinstance(x, _PY_SCALARS) or _is_exact(x):
        x = astype(_np.asarray(x) if isinstance(x, _PY_SCALARS) else x, _np.float64)
    t = multiply(x, _np.pi)
    small = absolute(t) < 1.0
    t2 = multiply(t, t)
    series = _SINC_TAYLOR[-1]
    for c in reversed(_SINC_TAYLOR[:-1]):
        series = add(multiply(series, t2), c)
    safe = where(small, 1.0, t)          # (no 0/0 in the branch not taken)
    return where(small, series, divide(sin(safe), safe))


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN -> ``nan``, +inf -> ``posinf`` (default the largest float), -inf ->
    ``neginf`` (default the most negative); other values pass (with their derivatives)."""
    x = _operand(x)
    dt = result_dtype(x)
    if dt.kind not in "fc":
        return x
    info = _np.finfo(dt)
    pos = info.max if posinf is None else posinf
    neg = info.min if neginf is None else neginf
    y = where(isnan(x), _np.asarray(nan, dt), x)
    y = where(equal(x, _np.inf), _np.asarray(pos, dt), y)
    return where(equal(x, -_np.inf), _np.asarray(neg, dt), y)


def select(condlist, choicelist, default=0):
    """The choice of the first true condition, elementwise (``default`` where none is)."""
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ValueError("select with an empty condition list is not possible")
    conds = [_operand(c) for c in condlist]
    choices = [_operand(c) for c in choicelist]
    for i, c in enumerate(conds):
        if result_dtype(c) != _np.bool_ or isinstance(c, _PY_SCALARS) and type(c) is not bool:
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    # NumPy makes every choice an array (a Python scalar among them is not
    # weak), then promotes with the default (which is, if a Python scalar)
    dt = _np.result_type(*[_np.asarray(c).dtype if isinstance(c, _PY_SCALARS) else result_dtype(c)
                           for c in choices])
    default = _operand(default)
    dt = _np.result_type(dt, default if isinstance(default, _PY_SCALARS) else result_dtype(default))
    shape = _np.broadcast_shapes(*[_shape(c) for c in conds], *[_shape(c) for c in choices])

    def as_dt(v):
        return _np.asarray(v, dt) if not isinstance(v, Tracer) else astype(v, dt)
    out = as_dt(default)
    for c, v in zip(reversed(conds), reversed(choices)):     # the first true condition wins
        out = where(c, as_dt(v), out)
    if _shape(out) != shape:
        out = broadcast_to(out, shape)
    return out
