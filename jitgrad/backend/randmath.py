"""The random-number kernels of the generated loops: :mod:`jitgrad.core.rngmath`
compiled by Numba for scalars.

The generated module calls ``rng_<out>(k0, k1, c0, c1)`` for the ``random_bits``
primitive of :mod:`jitgrad.lax.random`: the Threefry-2x32 hash of the counter
followed by the map ``rngmath.<out>`` from its bits to a number.  The
arithmetic is ``rngmath``'s own (the interpreter runs the same functions on
arrays), so both tiers give the same bits.  Like the vecmath kernels these are
compiled without fast-math and inlined by LLVM (``forceinline``): a caller
compiled with ``fastmath={"reassoc"}`` does not change their rounding, and the
loop around them vectorises.
"""
import numpy as np
from numba import njit
from numba.extending import overload

from ..core import rngmath

_OPTIONS = dict(fastmath=False, error_model="numpy", forceinline=True, cache=True)


@overload(rngmath.select)
def _select(cond, a, b):
    return lambda cond, a, b: a if cond else b


def _register(fn):
    """Compile the plain-Python ``fn`` for the Numba code that calls it."""
    jitted = njit(**_OPTIONS)(fn)
    if fn is rngmath.threefry2x32:
        overload(fn)(lambda k0, k1, c0, c1: lambda k0, k1, c0, c1: jitted(k0, k1, c0, c1))
    elif fn is rngmath.rational:
        overload(fn)(lambda coef, x: lambda coef, x: jitted(coef, x))
    else:
        overload(fn)(lambda bits: lambda bits: jitted(bits))


for _fn in (rngmath.threefry2x32, rngmath.rational, rngmath.word0, rngmath.word1, rngmath.bits32,
            rngmath.uniform32, rngmath.uniform64, rngmath.normal64, rngmath.normal32):
    _register(_fn)


@njit(**_OPTIONS)
def rng_bits64(k0, k1, c0, c1):
    return rngmath.threefry2x32(np.uint64(k0), np.uint64(k1), np.uint64(c0), np.uint64(c1))


@njit(**_OPTIONS)
def rng_word0(k0, k1, c0, c1):
    return rngmath.word0(rng_bits64(k0, k1, c0, c1))


@njit(**_OPTIONS)
def rng_word1(k0, k1, c0, c1):
    return rngmath.word1(rng_bits64(k0, k1, c0, c1))


@njit(**_OPTIONS)
def rng_bits32(k0, k1, c0, c1):
    return rngmath.bits32(rng_bits64(k0, k1, c0, c1))


@njit(**_OPTIONS)
def rng_uniform32(k0, k1, c0, c1):
    return rngmath.uniform32(rng_bits64(k0, k1, c0, c1))


@njit(**_OPTIONS)
def rng_uniform64(k0, k1, c0, c1):
    return rngmath.uniform64(rng_bits64(k0, k1, c0, c1))


@njit(**_OPTIONS)
def rng_normal32(k0, k1, c0, c1):
    return rngmath.normal32(rng_bits64(k0, k1, c0, c1))


@njit(**_OPTIONS)
def rng_normal64(k0, k1, c0, c1):
    return rngmath.normal64(rng_bits64(k0, k1, c0, c1))
