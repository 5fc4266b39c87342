"""A stand-in for HIPS autograd that runs autograd's own tests on jitgrad.

``autograd.numpy`` is plain NumPy (and ``autograd.numpy.random``,
``autograd.numpy.linalg``, ``autograd.scipy.*`` the NumPy and SciPy modules of
the same names): the tests' functions are ordinary NumPy code, which jitgrad
traces.  The differential operators map onto jitgrad's transforms; those with
no jitgrad equivalent raise ``NotImplementedError`` so that a test using them
fails.  ``autograd.test_util.check_grads`` checks jitgrad's derivatives (see
that module).
"""
import importlib
import importlib.abc
import importlib.util
import sys

import numpy as np

import jitgrad


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``autograd.numpy[.x]`` and ``autograd.scipy[.x]`` as the real
    ``numpy[.x]`` and ``scipy[.x]`` modules (the same module objects)."""

    def find_spec(self, name, path=None, target=None):
        head, _, rest = name.partition(".")
        if head != "autograd" or not rest.startswith(("numpy", "scipy")):
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module(spec.name.partition(".")[2])

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Alias())


def _one(argnum):
    return tuple(argnum) if isinstance(argnum, list) else argnum


def _pick(cts, argnum):
    return tuple(cts[i] for i in argnum) if isinstance(argnum, tuple) else cts[argnum]


def grad(fun, argnum=0):
    """``autograd.grad``: the gradient of scalar ``fun`` (``jitgrad.grad``)."""
    return jitgrad.grad(fun, argnums=_one(argnum))


def value_and_grad(fun, argnum=0):
    return jitgrad.value_and_grad(fun, argnums=_one(argnum))


def jacobian(fun, argnum=0):
    """Output shape + input shape, as autograd's (``jitgrad.jacrev``)."""
    return jitgrad.jacrev(fun, argnums=_one(argnum))


def hessian(fun, argnum=0):
    return jitgrad.hessian(fun, argnums=_one(argnum))


def make_vjp(fun, argnum=0):
    """``make_vjp(fun, argnum)(*args) -> (vjp, ans)``."""
    argnum = _one(argnum)

    def at(*args, **kwargs):
        ans, vjp_fn = jitgrad.vjp(lambda *a: fun(*a, **kwargs), *args)
        return (lambda g: _pick(vjp_fn(g), argnum)), ans
    return at


def make_jvp(fun, argnum=0):
    """``make_jvp(fun, argnum)(*args)(v) -> (ans, jvp)``."""
    argnum = _one(argnum)

    def at(*args, **kwargs):
        nums = argnum if isinstance(argnum, tuple) else (argnum,)

        def push(v):
            vs = v if isinstance(argnum, tuple) else (v,)

            def of_picked(*picked):
                a = list(args)
                for i, p in zip(nums, picked):
                    a[i] = p
                return fun(*a, **kwargs)
            return jitgrad.jvp(of_picked, tuple(args[i] for i in nums), tuple(vs))
        return push
    return at


def elementwise_grad(fun, argnum=0):
    """The VJP with a cotangent of ones (the sum of the Jacobian's rows)."""
    def at(*args, **kwargs):
        vjp_fn, ans = make_vjp(fun, argnum)(*args, **kwargs)
        return vjp_fn(np.ones_like(ans))
    return at


deriv = elementwise_grad


def holomorphic_grad(fun, argnum=0):
    return jitgrad.grad(fun, argnums=_one(argnum), holomorphic=True)


def _missing(name):
    def raiser(*args, **kwargs):
        raise NotImplementedError(f"autograd.{name} has no jitgrad equivalent in this shim")
    raiser.__name__ = name
    return raiser


for _name in ("grad_named", "grad_and_aux", "hessian_tensor_product", "hessian_vector_product",
              "make_hvp", "make_ggnvp", "multigrad_dict", "tensor_jacobian_product",
              "vector_jacobian_product", "checkpoint"):
    globals()[_name] = _missing(_name)

from .extend import defjvp, defvjp, primitive  # noqa: E402,F401
