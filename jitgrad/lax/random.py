"""random_bits: counter-based random numbers as an elementwise primitive.

``random_bits(k0, k1, c0, c1, out=...)`` is, element by element, the
Threefry-2x32 hash of the counter ``(c0, c1)`` under the key ``(k0, k1)`` (all
``uint32``), mapped to a number by ``out``:

==============  =======  ==============================================
``out``         dtype    value
==============  =======  ==============================================
``word0/1``     uint32   the first / second 32-bit word of the hash
``bits32``      uint32   the two words xor-ed
``bits64``      uint64   both words, ``word0 << 32 | word1``
``uniform32``   float32  a multiple of 2**-23 in [0, 1)
``uniform64``   float64  a multiple of 2**-52 in [0, 1)
``normal32``    float32  a standard normal (the float64 one, rounded)
``normal64``    float64  a standard normal, by inversion of 52 bits
==============  =======  ==============================================

The interpreter evaluates :mod:`jitgrad.core.rngmath` on arrays and the
generated loops call the same functions compiled for scalars
(:mod:`jitgrad.backend.randmath`), so both tiers draw the same bits.  A draw
is an integer function of its key: its derivative is zero (no tangent), and
reparameterised samples (``loc + scale * z``) get theirs from the ordinary
arithmetic around it.  Being elementwise, it fuses with that arithmetic,
vectorises, and batches over keys by the elementwise rule.

The ops below build on it: :func:`draw` (one number per element of a shape,
counted in row-major order), :func:`split` and :func:`fold_in` (new keys).
Keys are ``uint32`` arrays of shape ``(2,)``.
"""
from __future__ import annotations

import functools

import numpy as np

from ..core import rngmath
from ..core.trace import aval_of, bind
from .elementwise import _elementwise_shape, _new, convert
from .structural import broadcast_in_dim, concatenate, reshape, slice_

__all__ = ["random_bits_p", "random_bits", "draw", "split", "fold_in", "RANDOM_OUTS"]

_U32 = np.dtype(np.uint32)
RANDOM_OUTS = {"word0": _U32, "word1": _U32, "bits32": _U32, "bits64": np.dtype(np.uint64),
               "uniform32": np.dtype(np.float32), "uniform64": np.dtype(np.float64),
               "normal32": np.dtype(np.float32), "normal64": np.dtype(np.float64)}

random_bits_p = _new("random_bits", "elementwise")


def _random_bits_impl(k0, k1, c0, c1, out):
    words = np.broadcast_arrays(*(np.asarray(a).astype(np.uint64) for a in (k0, k1, c0, c1)))
    convert = (lambda b: b) if out == "bits64" else getattr(rngmath, out)
    if words[0].size <= _SCALAR_SIZE:
        # (NumPy scalars are about 10x faster than small arrays here: keys are 2 words)
        values = [convert(rngmath.threefry2x32(*w)) for w in zip(*(a.ravel() for a in words))]
        return np.array(values, RANDOM_OUTS[out]).reshape(words[0].shape)
    return np.asarray(convert(rngmath.threefry2x32(*words))).astype(RANDOM_OUTS[out])


_SCALAR_SIZE = 4


def _random_bits_shape(k0, k1, c0, c1, out):
    if out not in RANDOM_OUTS:
        raise ValueError(f"random_bits: out must be one of {sorted(RANDOM_OUTS)}, got {out!r}")
    for a in (k0, k1, c0, c1):
        if a.dtype != _U32:
            raise TypeError(f"random_bits: keys and counters must be uint32, got {a.dtype}")
    return _elementwise_shape(k0, k1, c0, c1, dtype=RANDOM_OUTS[out])


random_bits_p.impl = _random_bits_impl
random_bits_p.shape = _random_bits_shape
random_bits_p.jvp = lambda primals, tangents, out_value, out: None
random_bits_p.code = lambda args, lit, out: f"rng_{out}({', '.join(args)})"


def random_bits(k0, k1, c0, c1, out):
    return bind(random_bits_p, k0, k1, c0, c1, out=out)


# ---------------------------------------------------------------------------
# Keys and draws


def _key_words(key):
    """The two words of a key, as 0-d uint32 values."""
    av = aval_of(key)
    if av.shape != (2,) or av.dtype != _U32:
        raise TypeError(f"a random key is a uint32 array of shape (2,) (from jitgrad.random.key), "
                        f"got {av.dtype}{list(av.shape)}; to use several keys, vmap over them")
    return [reshape(slice_(key, (i,), (i + 1,), (1,)), ()) for i in (0, 1)]


@functools.lru_cache(maxsize=64)
def _counter(shape):
    """The row-major index of every element of ``shape``, as a read-only uint32
    array (one per shape, so repeated draws share one constant of the trace)."""
    n = int(np.prod(shape, dtype=np.int64))
    if n > 2 ** 32:
        raise ValueError(f"a single draw makes at most 2**32 numbers, asked for shape {shape}")
    c = np.arange(n, dtype=np.uint32).reshape(shape)
    c.flags.writeable = False
    return c


def draw(key, shape, out):
    """One number per element of ``shape`` from ``key``: element ``i`` (in
    row-major order) is ``out`` of the hash of counter ``(0, i)``."""
    shape = tuple(int(s) for s in shape)
    k0, k1 = _key_words(key)
    zero = np.uint32(0)
    if not shape:
        return random_bits(k0, k1, zero, zero, out)
    counter = _counter(shape)
    k0, k1 = (broadcast_in_dim(k, shape, ()) for k in (k0, k1))
    return random_bits(k0, k1, zero, counter, out)


def split(key, num):
    """``num`` new keys, shape ``(num, 2)``: key ``i`` is the hash of counter ``(0, i)``."""
    words = [reshape(draw(key, (num,), w), (num, 1)) for w in ("word0", "word1")]
    return concatenate(words, 1)


def fold_in(key, data):
    """A new key from ``key`` and an integer ``data`` (taken modulo 2**32): the
    hash of counter ``(0, data)``, the same as ``split(key, n)[data]``."""
    k0, k1 = _key_words(key)
    if isinstance(data, (int, np.integer)):
        data = np.uint32(int(data) % 2 ** 32)
    elif not np.issubdtype(aval_of(data).dtype, np.integer) or aval_of(data).shape != ():
        raise TypeError(f"fold_in: data must be an integer scalar, got {aval_of(data)}")
    else:
        data = convert(data, _U32)
    zero = np.uint32(0)
    return concatenate([reshape(random_bits(k0, k1, zero, data, w), (1,))
                        for w in ("word0", "word1")], 0)
