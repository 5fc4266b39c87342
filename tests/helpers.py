"""Shared test helpers: random inputs per domain, finite differences, dot-product test.

Nothing here knows about jitgrad's internals: references are NumPy itself and
finite differences of NumPy code.
"""
from __future__ import annotations

import numpy as np

import jitgrad


# ---------------------------------------------------------------------------
# Random inputs per domain.  Every domain keeps a margin of at least 0.1 from
# the points where the function is not smooth, so finite differences with a
# step of 1e-3 never cross them.


def _u(rng, lo, hi, shape):
    return rng.uniform(lo, hi, size=shape)


def _signs(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


def sample(domain, shape, rng):
    """One float64 array of ``shape`` from ``domain``."""
    if domain == "any":
        return _u(rng, -2.0, 2.0, shape)
    if domain == "pos":                # x > 0, away from 0
        return _u(rng, 0.5, 2.0, shape)
    if domain == "unit":               # in (-1, 1), away from +-1
        return _u(rng, -0.85, 0.85, shape)
    if domain == "gt1":                # > 1, away from 1
        return _u(rng, 1.2, 3.0, shape)
    if domain == "nonzero":            # away from zero, both signs
        return _signs(rng, shape) * _u(rng, 0.3, 2.0, shape)
    if domain == "frac":               # away from integers and half-integers, both signs
        k = rng.integers(-3, 3, size=shape).astype(float)
        return k + _signs(rng, shape) * _u(rng, 0.1, 0.4, shape) + 0.5
    if domain == "distinct":           # pairwise distinct, spaced by >= 0.2 (no ties in max/min)
        n = int(np.prod(shape, dtype=int))
        vals = np.arange(n) * 0.3 - 0.15 * n + _u(rng, -0.05, 0.05, n)
        return rng.permutation(vals).reshape(shape)
    raise ValueError(domain)


def sample_args(domains, shapes, rng):
    return [sample(d, s, rng) for d, s in zip(domains, shapes)]


def apart(rng, shapes, gap=0.3):
    """Two arrays that differ everywhere by at least ``gap`` (no ties).  The
    second shape must broadcast to the first."""
    y = sample("any", shapes[1], rng)
    off = _signs(rng, shapes[0]) * _u(rng, gap, 1.0, shapes[0])
    return [np.broadcast_to(y, shapes[0]) + off, y]


# ---------------------------------------------------------------------------
# Finite differences


def wide(a):
    """``a`` in float64, or in complex128 if it is complex."""
    a = np.asarray(a)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def _as_list(args):
    return [wide(a) for a in args]


def fd_jvp(f, args, tangents, h=1e-3):
    """Directional derivative of f at args along tangents (4-point central
    stencil, error O(h^4)), computed with plain NumPy in float64.  Works on
    pytrees of outputs that are single arrays or tuples of arrays."""
    args = _as_list(args)
    tangents = _as_list(tangents)

    def at(s):
        out = f(*[a + s * t for a, t in zip(args, tangents)])
        return _flat_out(out)

    fp2, fp1, fm1, fm2 = at(2 * h), at(h), at(-h), at(-2 * h)
    res = [(-a + 8 * b - 8 * c + d) / (12 * h) for a, b, c, d in zip(fp2, fp1, fm1, fm2)]
    return res


def _flat_out(out):
    if isinstance(out, (tuple, list)):
        return [wide(o) for o in out]
    return [wide(out)]


def vdot(a, b):
    """Re(sum(a * b)): the pairing that jitgrad's (non-conjugating) transposes
    satisfy, the plain dot product for real arrays."""
    return float(np.real(np.sum(wide(a) * wide(b))))


def assert_close(actual, desired, rtol, atol, err_msg=""):
    """assert_allclose with the tolerance also scaled by the size of the reference."""
    desired, actual = wide(desired), wide(actual)
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol + rtol * 1e-2 * scale,
                               err_msg=err_msg)


def random_like(rng, a):
    """Standard normal values of ``a``'s shape and dtype (both parts random if complex)."""
    a = np.asarray(a)
    x = rng.standard_normal(a.shape)
    if a.dtype.kind == "c":
        x = x + 1j * rng.standard_normal(a.shape)
    return x.astype(a.dtype)


def dot_product_check(f, args, rng, rtol=None):
    """<u, J v> == <J^T u, v> with J v from jitgrad.jvp and J^T u from jitgrad.vjp.
    The default tolerance follows the lowest precision among inputs and output."""
    args = [np.asarray(a) for a in args]
    v = [random_like(rng, a) for a in args]
    out, jv = jitgrad.jvp(f, tuple(args), tuple(v))
    out2, vjp_fn = jitgrad.vjp(f, *args)
    u = random_like(rng, np.asarray(out))
    if np.ndim(out) == 0:
        u = np.asarray(out).dtype.type(u)
    ct = vjp_fn(u)
    if rtol is None:
        dts = [a.dtype for a in args] + [np.asarray(out).dtype]
        rtol = 2e-5 if any(d in (np.float32, np.complex64) for d in dts) else 1e-9
    assert isinstance(ct, tuple) and len(ct) == len(args)
    for c, a in zip(ct, args):
        assert np.shape(c) == np.shape(a), (np.shape(c), np.shape(a))
        assert np.asarray(c).dtype == a.dtype, (np.asarray(c).dtype, a.dtype)
    lhs = vdot(u, jv)
    rhs = sum(vdot(c, vi) for c, vi in zip(ct, v))
    np.testing.assert_allclose(lhs, rhs, rtol=rtol, atol=rtol * (abs(lhs) + 1e-12))
    np.testing.assert_allclose(np.asarray(out2), np.asarray(out), rtol=1e-12, atol=0)


def both_tiers(f, *args):
    """``f(*args)`` compiled and interpreted: (compiled, interpreted)."""
    with jitgrad.config(compile="never"):
        ref = f(*args)
    with jitgrad.config(compile="always"):
        got = f(*args)
    return got, ref


def leaves(t):
    return jitgrad.tree.flatten(t)[0]


def start_behind(threads, entered):
    """Start the first thread, wait until it is inside the held build
    (``entered`` is appended to there), then start the others, which miss
    the same signature while the build is held."""
    import time
    threads[0].start()
    while not entered:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
