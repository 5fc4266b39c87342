"""NumPy's rounding, integer division and bitwise functions on traced arrays
(part of :mod:`jitgrad.numpy`, which re-exports them): ``floor``, ``ceil``,
``round``, ``trunc``, ``floor_divide``, ``remainder``, ``divmod`` and the
bitwise operations, which jitgrad supports on booleans only.
"""
from __future__ import annotations

import builtins

import numpy as _np

from .. import lax as P
from .base import (astype, _elementwise, _int8_for_bool, _is_exact, _no_out, _operand,
                   result_dtype, _unary_fn)
from .ufuncs import (divide, less, logical_and, logical_not, logical_or, logical_xor, multiply,
                     rint, where)


def _integral_identity(fn):
    """floor, ceil (and trunc, round): integers and booleans are returned as
    they are, in their own dtype (NumPy 2)."""
    def wrapped(x, /, *args, **kwargs):
        x = _operand(x)
        return fn(x, *args, **kwargs) if not _is_exact(x) else x
    wrapped.__name__ = fn.__name__
    return wrapped


floor = _integral_identity(_unary_fn(P.floor))
ceil = _integral_identity(_unary_fn(P.ceil))


def round(a, decimals=0, out=None):
    """Half to even (np.rint); integers stay integers."""
    a = _operand(a)
    if _is_exact(a) and result_dtype(a) != _np.bool_:
        if decimals >= 0:
            return a
        return astype(round(astype(a, _np.float64), decimals), result_dtype(a))
    if decimals != 0:
        scale = 10.0 ** decimals
        return divide(rint(multiply(a, scale)), scale)
    return rint(a)


around = round


def trunc(x, /, **kwargs):
    x = _operand(x)
    return x if _is_exact(x) else where(less(x, 0), ceil(x), floor(x))


fix = trunc


def _bitwise(logical, name):
    """&, |, ^ and ~: NumPy's bitwise operations, which on booleans are the
    logical ones; jitgrad has no bitwise operations on integers."""
    def fn(*xs, **kwargs):
        xs = [_operand(x) for x in xs]
        if builtins.any(result_dtype(x) != _np.bool_ for x in xs if not isinstance(x, bool)):
            raise NotImplementedError(
                f"jitgrad supports {name} only on booleans (where it is the logical operation); "
                "for integers, compute it outside the traced function")
        return logical(*xs, **kwargs)
    fn.__name__ = name
    return fn


bitwise_and = _bitwise(logical_and, "bitwise_and")
bitwise_or = _bitwise(logical_or, "bitwise_or")
bitwise_xor = _bitwise(logical_xor, "bitwise_xor")
invert = bitwise_not = _bitwise(logical_not, "invert")


def _divmod_part(op):
    """floor_divide and remainder: NumPy's divmod rule for floats and integers
    (booleans are divided as int8, as NumPy does)."""
    def fn(x, y, /, **kwargs):
        _no_out(kwargs)
        x, y = _operand(x), _operand(y)
        return _elementwise(op, x, y, dtype=_int8_for_bool(result_dtype(x, y)))
    fn.__name__ = op.__name__
    return fn


floor_divide = _divmod_part(P.floor_divide)
remainder = _divmod_part(P.remainder)
mod = remainder


def divmod(x, y, /, **kwargs):
    """(x // y, x % y), as np.divmod."""
    return floor_divide(x, y, **kwargs), remainder(x, y, **kwargs)
