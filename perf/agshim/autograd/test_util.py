"""``autograd.test_util`` on jitgrad: ``check_grads`` and ``combo_check``.

autograd's ``check_grads(f, argnum=0, modes, order=2)(*args)`` checks, with
respect to the arguments ``argnum`` names, forward mode (JVP against a finite
difference) and reverse mode (the dot-product test), then recursively, to
``order``, the same checks of the JVP function ``(x, v) -> J(x) v`` and of the
VJP function ``(x, u) -> J(x)^T u``.  This one has the same recursion, with
``jitgrad.testing.check_grads`` (first order, both modes) as the check of each
function, so it checks at least what autograd's does: every mode and every
order, forward over forward, reverse over forward, forward over reverse and
reverse over reverse.

Complex arguments and outputs are checked as real maps: each complex leaf
becomes two real ones (real and imaginary parts), so the check sees exactly
the R-linear derivative whatever convention jitgrad's complex cotangents use.

Arguments of integer or bool dtype have no tangent space (jitgrad's check
would use zero directions and could not fail): they raise ``TypeError``.

With ``AGSHIM_RECORD`` set (by perf/autograd_shim.py) a failing check is
recorded (as real or complex) and the test goes on, so that a test's real
and complex cases are counted separately; the pytest plugin fails the test
at its end with the first failure.
"""
import itertools
import os

import numpy as np

import jitgrad
from jitgrad import tree as jtree
from jitgrad.testing import check_grads as _jitgrad_check

# autograd's finite difference: (f(x + v EPS/2) - f(x - v EPS/2)) / EPS with EPS = 1e-6,
# i.e. jitgrad's central difference with step 5e-7 (a larger step can straddle a
# kink of max/min/sort between two nearly tied entries of the test data)
EPS = 5e-7
RECORDS = []        # per test: {"complex": bool, "error": str or None}
_seed = itertools.count()


def _leaves(x):
    return [np.asarray(v) for v in jtree.flatten(x)[0]]


def _is_complex(x):
    return any(np.iscomplexobj(v) for v in _leaves(x))


def _random_like(x, rng):
    leaves, td = jtree.flatten(x)

    def one(v):
        v = np.asarray(v)
        r = rng.standard_normal(v.shape)
        if np.iscomplexobj(v):
            r = r + 1j * rng.standard_normal(v.shape)
        return r.astype(v.dtype)
    return jtree.unflatten(td, [one(v) for v in leaves])


def _as_real(f, x, y):
    """``f`` as a function of real leaves with real outputs: every complex
    argument leaf split into (real, imag), every complex output leaf too."""
    leaves, td = jtree.flatten(x)
    cplx = [np.iscomplexobj(v) for v in leaves]
    out_cplx = [np.iscomplexobj(v) for v in jtree.flatten(y)[0]]
    args = []
    for v, c in zip(leaves, cplx):
        args += [np.real(np.asarray(v)).copy(), np.imag(np.asarray(v)).copy()] if c else [v]

    def g(*rs):
        it = iter(rs)
        back = [next(it) + 1j * next(it) if c else next(it) for c in cplx]
        outs = jtree.flatten(f(jtree.unflatten(td, back)))[0]
        res = []
        for o, c in zip(outs, out_cplx):
            res += [np.real(o), np.imag(o)] if c else [o]
        return tuple(res)
    return g, tuple(args)


def _check_unary(f, x, modes, order, path="f"):
    """autograd's recursion with jitgrad's first-order check of each function;
    a failure names the function checked (``vjp(jvp(f))``: the derivatives of
    the VJP function of f's JVP function)."""
    for v in _leaves(x):
        if not np.issubdtype(v.dtype, np.inexact):
            raise TypeError(f"check_grads: an argument of dtype {v.dtype} has no tangent space")
    y = f(x)
    if _is_complex(x) or _is_complex(y):
        g, args = _as_real(f, x, y)
    else:
        g, args = (lambda *a: f(a[0])), (x,)
    try:
        _jitgrad_check(g, args, order=1, modes=tuple(modes), eps=EPS, seed=next(_seed))
    except AssertionError as exc:
        raise AssertionError(f"checking {path}: {exc}") from None
    if order > 1:
        rng = np.random.default_rng(next(_seed))
        if "fwd" in modes:
            def jvp_f(xv):
                return jitgrad.jvp(f, (xv[0],), (xv[1],))[1]
            _check_unary(jvp_f, (x, _random_like(x, rng)), modes, order - 1, f"jvp({path})")
        if "rev" in modes:
            def vjp_f(xu):
                return jitgrad.vjp(f, xu[0])[1](xu[1])[0]
            _check_unary(vjp_f, (x, _random_like(y, rng)), modes, order - 1, f"vjp({path})")


def check_grads(fun, argnum=0, modes=("fwd", "rev"), order=2):
    """``check_grads(fun, argnum, modes, order)(*args, **kwargs)``, as autograd's."""
    assert all(m in ("fwd", "rev") for m in modes), modes
    argnum = tuple(argnum) if isinstance(argnum, list) else argnum

    def at(*args, **kwargs):
        def unary(x):
            a = list(args)
            if isinstance(argnum, tuple):
                for i, xi in zip(argnum, x):
                    a[i] = xi
            else:
                a[argnum] = x
            return fun(*a, **kwargs)
        x = tuple(args[i] for i in argnum) if isinstance(argnum, tuple) else args[argnum]
        if not os.environ.get("AGSHIM_RECORD"):
            return _check_unary(unary, x, modes, order)
        complex_case = _is_complex(x) or _safe_complex_out(unary, x)
        try:
            _check_unary(unary, x, modes, order)
            RECORDS.append({"complex": complex_case, "error": None})
        except Exception as exc:  # recorded; the plugin fails the test at its end
            RECORDS.append({"complex": complex_case, "error": exc})
    return at


def _safe_complex_out(f, x):
    try:
        return _is_complex(f(x))
    except Exception:
        return False


def combo_check(fun, *args, **kwargs):
    """Checks every combination of the given argument and keyword values."""
    def check(*arg_lists, **kwarg_lists):
        pairs = [[(k, v) for v in vs] for k, vs in kwarg_lists.items()]
        for a in itertools.product(*arg_lists):
            for kw in itertools.product(*pairs):
                check_grads(fun, *args, **kwargs)(*a, **dict(kw))
    return check
