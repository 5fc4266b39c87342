"""Gradient checking for users' tests (property-based or not).

``check_grads(f, args, order=2)`` checks, recursively up to ``order``:

- forward mode: ``jvp(f)`` in a random direction against a central finite
  difference of ``f`` (a second-order accurate estimate);
- reverse mode: the dot-product test ``<u, J v> == <J^T u, v>`` for random
  ``u`` and ``v``, with ``J v`` from the finite difference (order 1) so that
  reverse mode is checked against numbers that do not come from jitgrad.

Order ``k > 1`` repeats the checks on the function ``x -> jvp(f)(x, v)`` (the
directional derivative), so every order is checked in both modes.

Complex arguments and outputs are checked as pairs of reals: directions have
random real and imaginary parts, and the dot-product test pairs values by
``<a, b> = Re(sum(a * b))``, which jitgrad's (non-conjugating) transposes
satisfy; a cotangent of ``x + iy`` holds ``d/dx - i d/dy``.
"""
from __future__ import annotations

import numpy as np

from ..core import tree as tree_util
from .functions import jvp, vjp

_DEFAULTS = {  # dtype -> (eps, atol, rtol)
    np.dtype(np.float64): (1e-5, 1e-6, 1e-5),
    np.dtype(np.float32): (2e-2, 2e-2, 2e-2),
}


def _flat(xs):
    leaves, td = tree_util.flatten(xs)
    return [np.asarray(x) for x in leaves], td


def _wide(x):
    """``x`` in float64, or complex128 if it is complex."""
    x = np.asarray(x)
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def _real_dtype(dtype):
    """The dtype of the parts of a complex dtype (itself for a real one)."""
    return np.empty((), dtype).real.dtype


def _axpy(a, xs, ys):
    return [x + a * y for x, y in zip(xs, ys)]


def _vdot(xs, ys):
    """Re(sum(x * y)) over the leaves: the real pairing of (complex) arrays."""
    return sum(float(np.real(np.sum(_wide(x) * _wide(y)))) for x, y in zip(xs, ys))


def numerical_jvp(f, args, tangents, eps):
    """Central finite difference of ``f`` at ``args`` in direction ``tangents``.

    A central difference errs by about eps**2 / 6 times the third derivative.
    The large steps that low precision needs (float32's default is 2e-2) make
    that error visible where the third derivative is large (log or sqrt near
    small arguments), so for steps of 1e-3 and more one Richardson step,
    (4 D(eps/2) - D(eps)) / 3, cancels it (what remains is of order eps**4)."""
    la, td = _flat(tuple(args))
    lt, _ = _flat(tuple(tangents))

    def central(h):
        hi, otd = _flat(f(*tree_util.unflatten(td, _axpy(h, la, lt))))
        lo, _ = _flat(f(*tree_util.unflatten(td, _axpy(-h, la, lt))))
        return [(a - b) / (2 * h) for a, b in zip(hi, lo)], otd

    d, otd = central(eps)
    if eps >= 1e-3:
        half, _ = central(eps / 2)
        d = [(4 * b - a) / 3 for a, b in zip(d, half)]
    return tree_util.unflatten(otd, d)


def numerical_grad(f, *args, eps=None):
    """Gradient of scalar ``f`` with respect to every argument by central
    differences, one coordinate at a time (for small inputs)."""
    la, td = _flat(tuple(args))
    grads = []
    for i, x in enumerate(la):
        e = eps or _DEFAULTS.get(_real_dtype(x.dtype), _DEFAULTS[np.dtype(np.float64)])[0]
        g = np.zeros(x.shape, np.complex128 if x.dtype.kind == "c" else np.float64)
        for idx in np.ndindex(x.shape):
            # d/dx, and for a complex entry - i d/dy (the convention of grad)
            for unit in ((1, -1j) if x.dtype.kind == "c" else (1,)):
                t = [np.zeros_like(y) for y in la]
                t[i][idx] = 1 if unit == 1 else 1j
                d = numerical_jvp(f, tree_util.unflatten(td, la), tree_util.unflatten(td, t), e)
                g[idx] += unit * float(np.real(d))
        grads.append(g.astype(x.dtype))
    out = tree_util.unflatten(td, grads)
    return out[0] if len(args) == 1 else out


def _random_like(xs, rng):
    def one(x):
        if x.dtype.kind == "c":
            return (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)).astype(x.dtype)
        if x.dtype.kind == "f":
            return rng.standard_normal(x.shape).astype(x.dtype)
        return np.zeros(x.shape, x.dtype)
    return [one(x) for x in xs]


def _mismatch(analytic, numeric, atol, rtol):
    """The first leaf where ``analytic`` and ``numeric`` differ beyond the
    tolerances, as (leaf index, entry index, analytic value, numeric value,
    max abs difference), or None."""
    for k, (x, y) in enumerate(zip(_flat(analytic)[0], _flat(numeric)[0])):
        x64, y64 = _wide(x), _wide(y)
        if not np.allclose(x64, y64, atol=atol, rtol=rtol, equal_nan=True):
            with np.errstate(invalid="ignore"):
                excess = np.abs(x64 - y64) - (atol + rtol * np.abs(y64))
            excess = np.where(np.isnan(excess), np.inf, excess)     # NaN on one side only
            entry = np.unravel_index(int(np.argmax(excess)), x64.shape) if x64.ndim else ()
            return k, entry, x64[entry], y64[entry], float(np.max(np.abs(x64 - y64)))
    return None


def _where(what, k, n, entry):
    """"output 1 entry (0, 2)": the leaf is named when there are several."""
    place = f"{what} {k}" if n > 1 else what
    return place + (f" entry {tuple(int(i) for i in entry)}" if entry else "")


def _report(mode, level, place, a, n, diff, atol, rtol, detail):
    raise AssertionError(
        f"check_grads: {mode} failed at derivative order {level}, {place}:\n"
        f"  analytic: {a}\n  numeric:  {n}\n"
        f"  max abs difference {diff} (atol={atol}, rtol={rtol}); {detail}")


def _reverse_culprit(f, args, u, ct, eps, atol, rtol):
    """After a failed dot-product test: the argument entry whose reverse-mode
    derivative of ``<u, f>`` disagrees most with a finite difference (for
    arguments of at most 256 entries), as a ``_mismatch`` tuple, or None."""
    la, td = _flat(tuple(args))
    cts = _flat(ct)[0]
    ul = _flat(u)[0]
    for k, (x, c) in enumerate(zip(la, cts)):
        if not np.issubdtype(x.dtype, np.inexact) or x.size > 256:
            continue
        numeric = np.zeros(x.shape, np.complex128 if x.dtype.kind == "c" else np.float64)
        for idx in np.ndindex(x.shape):
            for unit in ((1, -1j) if x.dtype.kind == "c" else (1,)):     # d/dx - i d/dy
                t = [np.zeros_like(y) for y in la]
                t[k][idx] = 1 if unit == 1 else 1j
                d = numerical_jvp(f, tree_util.unflatten(td, la), tree_util.unflatten(td, t), eps)
                numeric[idx] += unit * _vdot(ul, _flat(d)[0])
        found = _mismatch([c], [numeric], atol, rtol)
        if found is not None:
            return (k,) + found[1:]
    return None


def check_grads(f, args, order=2, modes=("fwd", "rev"), atol=None, rtol=None, eps=None, seed=0):
    """Check jitgrad's derivatives of ``f`` at ``args`` against finite differences.

    ``args`` is a tuple of arguments.  Tolerances and the finite-difference
    step default by dtype (float64: eps 1e-5, atol 1e-6, rtol 1e-5).  A
    failure raises AssertionError naming the mode (forward: JVP, reverse: VJP),
    the derivative order, and the output entry (forward) or argument entry
    (reverse) that is wrong, with both values and the direction used.
    """
    _check(f, tuple(args), order, modes, atol, rtol, eps, seed, 1)


def _check(f, args, order, modes, atol, rtol, eps, seed, level):
    la, td = _flat(args)
    dtype = min((_real_dtype(x.dtype) for x in la if np.issubdtype(x.dtype, np.inexact)),
                key=lambda d: d.itemsize, default=np.dtype(np.float64))
    d_eps, d_atol, d_rtol = _DEFAULTS.get(dtype, _DEFAULTS[np.dtype(np.float64)])
    eps, atol, rtol = eps or d_eps, atol or d_atol, rtol or d_rtol
    rng = np.random.default_rng(seed)
    v = tree_util.unflatten(td, _random_like(la, rng))
    detail = f"direction {v}"
    numeric = numerical_jvp(f, args, v, eps)
    if "fwd" in modes:
        _, analytic = jvp(f, args, v)
        found = _mismatch(analytic, numeric, atol, rtol)
        if found is not None:
            k, entry, a, n, diff = found
            _report("forward mode (JVP)", level, _where("output", k, len(_flat(numeric)[0]), entry),
                    a, n, diff, atol, rtol, detail)
    if "rev" in modes:
        out, vjp_fn = vjp(f, *args)
        lo, otd = _flat(out)
        u = tree_util.unflatten(otd, _random_like(lo, rng))
        ct = vjp_fn(u)
        lhs = _vdot(_flat(u)[0], _flat(numeric)[0])
        rhs = _vdot(_flat(ct)[0], _flat(v)[0])
        if _mismatch([rhs], [lhs], atol, rtol) is not None:
            culprit = _reverse_culprit(f, args, u, ct, eps, atol, rtol)
            detail = f"{detail}, cotangent {u}"
            if culprit is None:
                _report("reverse mode (VJP, dot-product test <u, J v> = <J^T u, v>)", level,
                        "the dot product", rhs, lhs, abs(rhs - lhs), atol, rtol, detail)
            k, entry, a, n, diff = culprit
            _report("reverse mode (VJP)", level, _where("argument", k, len(la), entry) +
                    " of the cotangent J^T u", a, n, diff, atol, rtol, detail)
    if order > 1:
        def directional(*xs):
            return jvp(f, xs, v)[1]
        _check(directional, args, order - 1, modes, atol, rtol, eps, seed + 1, level + 1)
