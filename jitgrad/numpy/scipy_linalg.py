"""scipy.linalg on traced arrays.

SciPy's linear algebra is Python code around compiled LAPACK calls, so a
traced array cannot run through it.  While a trace is open on any thread (and
SciPy has been imported), SciPy's public functions are redirected, as
:mod:`jitgrad.numpy.intercept` does for ``np.array``: a call with a traced
argument on a tracing thread is answered from jitgrad (:data:`FUNCTIONS`),
or raises NotImplementedError naming ``scipy.linalg.<name>``; any other call
runs SciPy's function unchanged.  The supported functions are redirected in
the function objects themselves (see below), so names bound before the trace
(``from scipy.linalg import cho_solve``) work as well as ``scipy.linalg.X``.

Supported: ``solve_triangular`` (lower, trans, unit_diagonal), ``cholesky``
(upper by default, as SciPy), ``cho_factor``/``cho_solve``, ``expm``,
``det``, ``inv``, ``solve`` (assume_a, lower, transposed), ``eigh``,
``eigvalsh``, ``svd``, ``svdvals``, ``qr`` (modes 'full', 'economic', 'r'),
``pinv``, ``norm``.  ``check_finite`` is not applied to traced values.
Each reads what SciPy reads (``lower`` picks the triangle).
"""
from __future__ import annotations

import sys
import types as _types

import numpy as _np

from .. import lax as P
from ..core.trace import state, while_tracing
from .base import _holds_tracer, _operand, _shape
from .linear_algebra import _broadcast_lead, _matrices, _square, _symmetric_from, linalg
from .shapes import reshape, swapaxes
from .ufuncs import add, multiply


def _rhs(b):
    """b as a stack of matrices, and whether it was a vector."""
    b = _operand(b)
    vector = len(_shape(b)) == 1
    return (reshape(b, _shape(b) + (1,)) if vector else b), vector


def _back(x, vector):
    return reshape(x, _shape(x)[:-1]) if vector else x


def _trans(trans):
    if trans in (0, "N"):
        return False
    if trans in (1, "T", 2, "C"):
        return True
    raise ValueError("Invalid trans argument")


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    b, vector = _rhs(b)
    a, b = _matrices(a, "solve_triangular", b)
    if _shape(a)[-1] != _shape(a)[-2]:
        raise ValueError("expected square matrix")
    if _shape(a)[-1] != _shape(b)[-2]:
        raise ValueError(f"shapes of a {_shape(a)} and b {_shape(b)} are incompatible")
    x = P.triangular_solve(*_broadcast_lead(a, b), lower=lower, transpose_a=_trans(trans),
                           unit_diagonal=unit_diagonal)
    return _back(x, vector)


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    a = _square(a, "cholesky")
    L = P.cholesky(_symmetric_from(a, lower))
    return L if lower else swapaxes(L, -1, -2)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """(c, lower): the factor in one triangle of c and, as SciPy's, a's own
    entries in the other (which cho_solve does not read)."""
    c = cholesky(a, lower)
    n = _shape(c)[-1]
    other = _np.triu(_np.ones((n, n)), 1) if lower else _np.tril(_np.ones((n, n)), -1)
    return add(c, multiply(_matrices(a, "cho_factor"), other.astype(_np.result_type(c)))), lower


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    b, vector = _rhs(b)
    c, b = _broadcast_lead(*_matrices(c, "cho_solve", b))
    # A = L L^T: x = L^-T L^-1 b;  A = U^T U: x = U^-1 U^-T b
    y = P.triangular_solve(c, b, lower=lower, transpose_a=not lower)
    return _back(P.triangular_solve(c, y, lower=lower, transpose_a=lower), vector)


def expm(A):
    return P.expm(_square(A, "expm"))


def det(a, overwrite_a=False, check_finite=True):
    return linalg.det(a)


def inv(a, overwrite_a=False, check_finite=True):
    return linalg.inv(a)


_SYMMETRIC = ("sym", "her", "pos", "symmetric", "hermitian", "positive definite")


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
          assume_a=None, transposed=False):
    b, vector = _rhs(b)
    a, b = _matrices(a, "solve", b)
    if assume_a in ("lower triangular", "upper triangular"):
        x = P.triangular_solve(*_broadcast_lead(a, b), lower=assume_a.startswith("lower"),
                               transpose_a=transposed)
        return _back(x, vector)
    if assume_a in _SYMMETRIC:
        a = _symmetric_from(a, lower)
    elif transposed:
        a = swapaxes(a, -1, -2)
    return _back(linalg.solve(a, b), vector)


def _no_generalized(b, who, **subsets):
    if b is not None or any(v is not None for v in subsets.values()):
        raise NotImplementedError(f"jitgrad supports scipy.linalg.{who} of one matrix (no b, "
                                  "subset_by_index or subset_by_value)")


def eigh(a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
         type=1, check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    _no_generalized(b, "eigh", index=subset_by_index, value=subset_by_value)
    w, v = linalg.eigh(a, "L" if lower else "U")
    return w if eigvals_only else (w, v)


def eigvalsh(a, b=None, *, lower=True, overwrite_a=False, overwrite_b=False, type=1,
             check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    _no_generalized(b, "eigvalsh", index=subset_by_index, value=subset_by_value)
    return linalg.eigh(a, "L" if lower else "U")[0]


def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True,
        lapack_driver="gesdd"):
    out = linalg.svd(a, full_matrices, compute_uv)
    return tuple(out) if compute_uv else out


def svdvals(a, overwrite_a=False, check_finite=True):
    return linalg.svd(a, compute_uv=False)


def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    if pivoting or mode not in ("full", "economic", "r"):
        raise NotImplementedError("jitgrad supports scipy.linalg.qr without pivoting, in modes "
                                  "'full', 'economic' and 'r'")
    if mode == "r":
        return (linalg.qr(a, "complete")[1],)
    return tuple(linalg.qr(a, "complete" if mode == "full" else "reduced"))


def pinv(a, *, atol=None, rtol=None, return_rank=False, check_finite=True):
    a = _matrices(a, "pinv")
    if atol not in (None, 0):
        raise NotImplementedError("jitgrad supports scipy.linalg.pinv with a relative cutoff (rtol)")
    if rtol is None:
        rtol = max(_shape(a)[-2:]) * _np.finfo(_np.result_type(a)).eps
    out = linalg.pinv(a, rtol=rtol)
    return (out, linalg.matrix_rank(a, rtol=rtol)) if return_rank else out


def norm(a, ord=None, axis=None, keepdims=False, check_finite=True):
    return linalg.norm(a, ord, axis, keepdims)


FUNCTIONS = {name: globals()[name] for name in (
    "solve_triangular", "cholesky", "cho_factor", "cho_solve", "expm", "det", "inv", "solve",
    "eigh", "eigvalsh", "svd", "svdvals", "qr", "pinv", "norm")}


# ---------------------------------------------------------------------------
# Answering SciPy's functions while tracing
#
# Each public function is redirected in the function object itself, so that a
# name bound before the trace (``from scipy.linalg import expm``) is answered
# too: SciPy's batching decorator keeps the decorated function in a closure
# cell, which gets a dispatcher; an undecorated function gets the code of a
# trampoline that calls the dispatcher (a function that is neither is
# replaced as a module attribute).  All of it is undone when the last trace
# closes.


def _traced_call(args, kwargs):
    return bool(state.stack) and (_holds_tracer(args) or _holds_tracer(list(kwargs.values())))


def _unsupported(name):
    def answer(*args, **kwargs):
        raise NotImplementedError(
            f"jitgrad does not support scipy.linalg.{name} on traced arrays (supported: "
            f"{', '.join(sorted(FUNCTIONS))})")
    return answer


def _dispatcher(name, original):
    answer = FUNCTIONS.get(name) or _unsupported(name)

    def dispatch(*args, **kwargs):
        return answer(*args, **kwargs) if _traced_call(args, kwargs) else original(*args, **kwargs)
    dispatch.__name__ = dispatch.__qualname__ = name
    dispatch.__doc__, dispatch.__wrapped__ = original.__doc__, original
    return dispatch


def _trampoline(*args, **kwargs):
    # (this code runs as SciPy's function, with its module's globals: it names nothing of ours)
    import sys
    from jitgrad.numpy.scipy_linalg import DISPATCH
    return DISPATCH[sys._getframe().f_code](*args, **kwargs)


DISPATCH = {}        # trampoline code -> dispatcher
_undo = []           # functions restoring what _install changed
_plans = {}          # id(scipy.linalg) -> [(apply, undo)], made at the first trace


def _redirection(name, fn, module):
    """(apply, undo) sending calls of SciPy's ``fn`` to a dispatcher."""
    code = fn.__code__
    cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
    if "f" in cells and callable(cells["f"].cell_contents):         # SciPy's batching wrapper
        cell, inner = cells["f"], cells["f"].cell_contents
        dispatch = _dispatcher(name, inner)
        return (lambda: setattr(cell, "cell_contents", dispatch),
                lambda: setattr(cell, "cell_contents", inner))
    if code.co_freevars:                     # another closure: the module attribute only
        wrapper = _dispatcher(name, fn)
        return (lambda: setattr(module, name, wrapper),
                lambda: getattr(module, name, None) is wrapper and setattr(module, name, fn))
    original = _types.FunctionType(code, fn.__globals__, name, fn.__defaults__)
    original.__kwdefaults__ = fn.__kwdefaults__
    trampoline = _trampoline.__code__.replace(co_name=name, co_qualname=name)
    DISPATCH[trampoline] = _dispatcher(name, original)
    return lambda: setattr(fn, "__code__", trampoline), lambda: setattr(fn, "__code__", code)


def _plan(module):
    plan, seen = [], set()                   # (a function exported under two names: once)
    for name in getattr(module, "__all__", ()):
        fn = getattr(module, name, None)
        if isinstance(fn, _types.FunctionType) and id(fn) not in seen:
            seen.add(id(fn))
            plan.append(_redirection(name, fn, module))
    return plan


def _install():
    module = sys.modules.get("scipy.linalg")
    if module is None or _undo:
        return
    if id(module) not in _plans:
        _plans[id(module)] = _plan(module)
    for apply, undo in _plans[id(module)]:
        apply()
        _undo.append(undo)


def _uninstall():
    while _undo:
        _undo.pop()()


while_tracing(_install, _uninstall)
