"""Random numbers that are traced, not frozen: explicit keys, as JAX's.

A *key* is a ``uint32`` array of shape ``(2,)``.  Every function here is a pure
function of its key: the same key gives the same numbers, in a transformed
function and outside one, in the interpreter and in compiled code (bit for
bit).  Pass a new key for new numbers (:func:`split`, :func:`fold_in`), or let
:func:`with_rng` / :func:`with_key` pass one on each call.

Draws are ``random_bits`` primitives of the IR (:mod:`jitgrad.lax.random`),
so inside ``jit``/``grad``/``vmap`` they are recomputed on every call from the
key argument, and ``vmap`` over keys draws independent numbers per key.  Their
derivative is zero with respect to the key; the parameters of ``normal``
(``loc``, ``scale``), ``uniform`` (``minval``, ``maxval``) and
``exponential`` (``scale``) enter by ordinary arithmetic, so reparameterised
gradients are exact.

:class:`Generator` wraps a key in NumPy's ``Generator`` interface
(``rng.normal(loc, scale, size)``, ...), for code written against NumPy.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from . import lax
from . import tree as _tree
from .core.trace import Tracer, is_tracing
from .numpy.random_guard import FrozenRandomError, constant_draws

__all__ = ["key", "PRNGKey", "split", "fold_in", "bits", "uniform", "normal", "bernoulli",
           "categorical", "randint", "permutation", "choice", "exponential", "gumbel",
           "Generator", "with_rng", "with_key", "constant_draws", "FrozenRandomError"]

_U32 = np.dtype(np.uint32)


# ---------------------------------------------------------------------------
# Keys


def key(seed):
    """A key from an integer seed (taken modulo 2**64): ``[seed >> 32, seed & 0xFFFFFFFF]``,
    JAX's raw key layout.  ``seed`` may be a traced integer."""
    if isinstance(seed, (bool, np.bool_)) or (
            not isinstance(seed, (int, np.integer, Tracer, np.ndarray))):
        raise TypeError(f"key(seed): seed must be an integer, got {type(seed).__name__}")
    if isinstance(seed, (int, np.integer)):
        s = int(seed) % 2 ** 64
        return np.array([s >> 32, s & 0xFFFFFFFF], np.uint32)
    seed = _integer_scalar(seed, "key(seed)")
    seed = seed.astype(np.int64) if seed.dtype != np.uint64 else seed
    return np.stack([(seed // 2 ** 32).astype(np.uint32), seed.astype(np.uint32)])


PRNGKey = key


def _integer_scalar(x, who):
    if isinstance(x, np.ndarray) and x.ndim == 0 and np.issubdtype(x.dtype, np.integer):
        return x
    if isinstance(x, Tracer) and x.shape == () and np.issubdtype(x.dtype, np.integer):
        return x
    raise TypeError(f"{who}: expected an integer scalar, got {getattr(x, 'dtype', type(x).__name__)}"
                    f"{list(getattr(x, 'shape', ()))}")


def _check_key(k, who):
    if isinstance(k, Generator):
        raise TypeError(f"{who}: got a jitgrad.random.Generator; call its methods "
                        f"(rng.normal(...)) or pass rng.key")
    if not isinstance(k, Tracer):
        k = np.asarray(k)
    if k.dtype != _U32 or tuple(k.shape) != (2,):
        raise TypeError(f"{who}: a key is a uint32 array of shape (2,) (jitgrad.random.key(seed)), got "
                        f"{k.dtype}{list(k.shape)}; for several keys, vmap over them")
    return k


def split(k, num=2):
    """``num`` new, independent keys from ``k``, as an array of shape ``(num, 2)``."""
    return lax.split(_check_key(k, "split"), _size(num, "split(num)"))


def fold_in(k, data):
    """A new key from ``k`` and an integer (Python, NumPy or traced) ``data``."""
    k = _check_key(k, "fold_in")
    if not isinstance(data, (int, np.integer)):
        data = _integer_scalar(data if isinstance(data, Tracer) else np.asarray(data), "fold_in(data)")
    return lax.fold_in(k, data)


def _size(n, who):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise TypeError(f"{who} must be a non-negative integer, got {n!r}")
    return int(n)


# ---------------------------------------------------------------------------
# Draws


def _shape(shape, *params):
    """The draw's shape: ``shape`` (an int or a tuple), or by default the
    broadcast shape of the parameters."""
    if shape is None:
        return np.broadcast_shapes(*(np.shape(p) for p in params)) if params else ()
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(_size(s, "a shape's entries") for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of non-negative ints, got {shape!r}") from None
    if params:
        np.broadcast_shapes(shape, *(np.shape(p) for p in params))   # raises if they disagree
    return shape


def _float_dtype(dtype, *params):
    """``dtype``, or by default the float dtype of the array parameters
    (Python numbers are weak, as in NumPy), else float64."""
    if dtype is None:
        kinds = [np.dtype(p.dtype) for p in params if hasattr(p, "dtype")]
        dtype = np.result_type(*kinds) if kinds else np.float64
        if not np.issubdtype(dtype, np.floating):
            dtype = np.float64
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"random floats are float32 or float64, got {dtype}")
    return dtype


def _draw(k, shape, out, who):
    return lax.draw(_check_key(k, who), shape, out)


def bits(k, shape=(), dtype=np.uint32):
    """Random bits: ``uint32`` or ``uint64`` integers, uniform over all values."""
    dtype = np.dtype(dtype)
    if dtype not in (np.uint32, np.uint64):
        raise TypeError(f"bits: dtype must be uint32 or uint64, got {dtype}")
    return _draw(k, _shape(shape), "bits32" if dtype == np.uint32 else "bits64", "bits")


def uniform(k, shape=None, dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)``: ``minval + (maxval - minval) * u``
    with ``u`` a multiple of 2**-52 (float64) or 2**-23 (float32) in [0, 1).
    Differentiable in ``minval`` and ``maxval``."""
    dtype = _float_dtype(dtype, minval, maxval)
    u = _draw(k, _shape(shape, minval, maxval), f"uniform{dtype.itemsize * 8}", "uniform")
    if _is_default(minval, 0.0) and _is_default(maxval, 1.0):
        return u
    return minval + (maxval - minval) * u


def normal(k, shape=None, dtype=None, loc=0.0, scale=1.0):
    """Normal floats with mean ``loc`` and standard deviation ``scale``:
    ``loc + scale * z``, ``z`` standard normal (by inversion of 52 random bits,
    so ``|z| < 8.3``).  Differentiable in ``loc`` and ``scale``."""
    dtype = _float_dtype(dtype, loc, scale)
    z = _draw(k, _shape(shape, loc, scale), f"normal{dtype.itemsize * 8}", "normal")
    if _is_default(loc, 0.0) and _is_default(scale, 1.0):
        return z
    return loc + scale * z


def exponential(k, shape=None, dtype=None, scale=1.0):
    """Exponential floats with mean ``scale``: ``-scale * log1p(-u)``.
    Differentiable in ``scale``."""
    dtype = _float_dtype(dtype, scale)
    u = _draw(k, _shape(shape, scale), f"uniform{dtype.itemsize * 8}", "exponential")
    e = -np.log1p(-u)
    return e if _is_default(scale, 1.0) else scale * e


def gumbel(k, shape=(), dtype=np.float64):
    """Standard Gumbel floats, ``-log(-log(u))`` (``-inf`` when ``u`` is 0)."""
    dtype = _float_dtype(dtype)
    u = _draw(k, _shape(shape), f"uniform{dtype.itemsize * 8}", "gumbel")
    with np.errstate(divide="ignore"):
        return -np.log(-np.log(u))


def _is_default(x, value):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == value


def bernoulli(k, p=0.5, shape=None):
    """Booleans that are True with probability ``p`` (``uniform < p``)."""
    dtype = _float_dtype(None, p)
    return _draw(k, _shape(shape, p), f"uniform{dtype.itemsize * 8}", "bernoulli") < p


def categorical(k, logits, axis=-1, shape=None):
    """Indices drawn with probabilities ``softmax(logits)`` along ``axis`` (by
    the Gumbel-max trick).  ``shape`` defaults to the shape of ``logits``
    without ``axis``; it must end with that shape (more leading axes draw more)."""
    _check_key(k, "categorical")
    lshape = np.shape(logits)
    if not lshape:
        raise ValueError("categorical: logits must have at least one axis")
    axis = axis + len(lshape) if axis < 0 else axis
    if not 0 <= axis < len(lshape):
        raise np.exceptions.AxisError(f"categorical: axis {axis} is out of bounds for logits of shape {lshape}")
    logits = np.moveaxis(logits, axis, -1)
    batch = tuple(logits.shape[:-1])
    shape = batch if shape is None else _shape(shape)
    if shape[len(shape) - len(batch):] != batch:
        raise ValueError(f"categorical: shape {shape} must end with the logits' batch shape {batch}")
    dtype = _float_dtype(None, logits)
    noise = gumbel(k, shape + (logits.shape[-1],), dtype)
    return np.argmax(logits + noise, axis=-1)


def randint(k, shape, minval, maxval, dtype=np.int64):
    """Integers in ``[minval, maxval)``, uniform up to a relative bias below
    2**-32 (64 random bits modulo the range's size).  ``minval`` and ``maxval``
    are integers (arrays broadcast with ``shape``); an empty range gives ``minval``."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"randint: dtype must be an integer type, got {dtype}")
    concrete = all(isinstance(v, (int, np.integer)) for v in (minval, maxval))
    if concrete and maxval <= minval:
        raise ValueError(f"randint: maxval ({maxval}) must be greater than minval ({minval})")
    b = _draw(k, _shape(shape, minval, maxval), "bits64", "randint")
    if concrete:
        return (b % np.uint64(int(maxval) - int(minval))).astype(dtype) + dtype.type(minval)
    lo, hi = (np.asarray(v, dtype) if not isinstance(v, Tracer) else v.astype(dtype)
              for v in (minval, maxval))
    span = np.maximum(hi - lo, 0).astype(np.uint64)
    return np.where(span == 0, lo, (b % np.maximum(span, 1)).astype(dtype) + lo)


def permutation(k, x, axis=0):
    """A random permutation of ``range(x)`` (an int), or of ``x`` along ``axis``
    (an array): the order that sorts 64 random bits per position."""
    n = _size(x, "permutation(x)") if isinstance(x, (int, np.integer)) else np.shape(x)[axis]
    order = np.argsort(_draw(k, (n,), "bits64", "permutation"), kind="stable") if n else np.zeros(0, np.int64)
    return order if isinstance(x, (int, np.integer)) else np.take(x, order, axis=axis)


def choice(k, a, shape=(), replace=True, p=None, axis=0):
    """Draws from ``range(a)`` (an int) or from ``a`` along ``axis``, with or
    without replacement, uniformly or with probabilities ``p``."""
    _check_key(k, "choice")
    n = _size(a, "choice(a)") if isinstance(a, (int, np.integer)) else np.shape(a)[axis]
    shape = _shape(shape)
    count = int(np.prod(shape, dtype=np.int64))
    if n == 0 and count:
        raise ValueError("choice: cannot take a non-empty sample from an empty population")
    if count == 0:
        idx = np.zeros(shape, np.int64)
        return idx if isinstance(a, (int, np.integer)) else np.take(a, idx, axis=axis)
    if p is not None and np.shape(p) != (n,):
        raise ValueError(f"choice: p must have shape ({n},), got {np.shape(p)}")
    if replace:
        idx = randint(k, shape, 0, n) if p is None else categorical(k, np.log(p), shape=shape)
    else:
        if count > n:
            raise ValueError(f"choice: cannot take {count} samples from {n} without replacement")
        if p is None:
            order = permutation(k, n)
        else:                                  # Gumbel top-k: the largest log p + noise, in order
            order = np.argsort(-(np.log(p) + gumbel(k, (n,), _float_dtype(None, p))), kind="stable")
        idx = np.reshape(order[:count], shape)
    return idx if isinstance(a, (int, np.integer)) else np.take(a, idx, axis=axis)


# ---------------------------------------------------------------------------
# NumPy's Generator interface over a key


class Generator:
    """A NumPy-style generator over a key, for code written against NumPy's
    ``Generator``: ``rng.normal(loc, scale, size)``, ``rng.uniform``,
    ``rng.random``, ``rng.standard_normal``, ``rng.integers``, ``rng.choice``,
    ``rng.permutation``, ``rng.exponential``.

    Each draw uses a new subkey, so successive draws differ; the generator is
    a pytree whose leaf is its key, so it can be an argument of a transformed
    function (its draws are then traced, from the key passed on that call).
    ``Generator(seed)`` or ``Generator(key)``; a generator over a stack of
    keys (shape ``(n, 2)``) can be passed to ``vmap``, and draws inside it
    from one key per batch element.
    """

    __slots__ = ("key", "_count")

    def __init__(self, seed_or_key=0, _count=None):
        if isinstance(seed_or_key, (int, np.integer)) and not isinstance(seed_or_key, (bool, np.bool_)):
            seed_or_key = key(seed_or_key)
        k = seed_or_key if isinstance(seed_or_key, Tracer) else np.asarray(seed_or_key)
        if k.dtype != _U32 or k.ndim < 1 or k.shape[-1] != 2:
            _check_key(k, "Generator")           # (raises the key error)
        self.key = k
        self._count = _count        # a counter still to be folded into the key (see with_rng)

    def next_key(self):
        """A fresh subkey (and the generator moves on)."""
        if self._count is not None:
            self.key, self._count = lax.fold_in(self.key, self._count), None
        self.key, sub = split(self.key)
        return sub

    def random(self, size=None, dtype=np.float64):
        return uniform(self.next_key(), _shape(size), dtype)

    def uniform(self, low=0.0, high=1.0, size=None):
        return uniform(self.next_key(), size, None, low, high)

    def standard_normal(self, size=None, dtype=np.float64):
        return normal(self.next_key(), _shape(size), dtype)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return normal(self.next_key(), size, None, loc, scale)

    def standard_exponential(self, size=None, dtype=np.float64):
        return exponential(self.next_key(), _shape(size), dtype)

    def exponential(self, scale=1.0, size=None):
        return exponential(self.next_key(), size, None, scale)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        if high is None:
            low, high = 0, low
        if endpoint:
            high = high + 1
        return randint(self.next_key(), _shape(size, low, high), low, high, dtype)

    def choice(self, a, size=None, replace=True, p=None, axis=0):
        return choice(self.next_key(), a, _shape(size), replace, p, axis)

    def permutation(self, x, axis=0):
        return permutation(self.next_key(), x, axis)

    def spawn(self, n=None):
        """One child generator (``n=None``) or a list of ``n``, independent of this one."""
        if n is None:
            return Generator(self.next_key())
        return [Generator(k) for k in split(self.next_key(), _size(n, "spawn(n)"))]

    def __repr__(self):
        return f"jitgrad.random.Generator(key={self.key!r})"


def _flatten_generator(g):
    return ([g.key] if g._count is None else [g.key, g._count]), g._count is not None


def _unflatten_generator(has_count, leaves):
    return Generator(leaves[0], leaves[1] if has_count else None)


_tree.register(Generator, _flatten_generator, _unflatten_generator)


# ---------------------------------------------------------------------------
# A fresh key per call


class _Stream:
    """Host-side source of per-call randomness: a base key and a call counter
    (folded into the key inside the call, so the host does no hashing)."""

    def __init__(self, seed):
        self.base = key(seed) if isinstance(seed, (int, np.integer)) else np.array(_check_key(seed, "seed"))
        self.count = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            if self.count == 2 ** 32:          # every counter used: move to a new base key
                self.base, self.count = np.asarray(split(self.base)[0]), 0
            n, self.count = self.count, self.count + 1
            return self.base, np.uint32(n)


def _threaded(fn, seed, make, name):
    if not callable(fn):
        raise TypeError(f"{name}: expected a function, got {type(fn).__name__}")
    stream = _Stream(seed)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if is_tracing():
            raise TypeError(
                f"{name}({getattr(fn, '__name__', 'f')}) was called inside a transformed function: its "
                f"fresh key would be drawn once, while tracing, and frozen. Apply {name} outside the "
                f"transforms, e.g. {name}(jitgrad.jit(jitgrad.grad(f))), not jitgrad.grad({name}(f)).")
        base, n = stream.next()
        return fn(*args, make(base, n), **kwargs)
    return wrapped


def with_rng(fn, seed=0):
    """``fn(*args, rng)`` -> ``f(*args)``: each call passes ``fn`` a fresh
    :class:`Generator` as its last positional argument.

    Write the objective as NumPy code taking an ``rng`` (it runs with
    ``np.random.default_rng()`` too), transform it, then apply ``with_rng``
    outermost: ``step = with_rng(jitgrad.jit(jitgrad.grad(elbo)), seed=0)``;
    ``step(params)`` then sees new noise on every call without retracing."""
    return _threaded(fn, seed, lambda base, n: Generator(base, n), "with_rng")


def with_key(fn, seed=0):
    """``fn(*args, key)`` -> ``f(*args)``: each call passes ``fn`` a fresh key
    (``fold_in(key(seed), call number)``) as its last positional argument."""
    return _threaded(fn, seed, lambda base, n: np.asarray(lax.fold_in(base, n)), "with_key")
