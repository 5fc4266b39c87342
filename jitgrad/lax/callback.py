"""pure_callback: calling a Python function on concrete arrays from traced code.

``pure_callback(fn, result_shape_dtypes, *args)`` records one equation per
result leaf (an equation has one output); each runs ``fn`` on the arguments'
values and takes its leaf, so ``fn`` may run once per leaf, and, as with any
pure function, fewer times or not at all when its results are not needed.
The interpreter calls ``fn`` directly; generated code calls it from a Numba
``objmode`` block through :mod:`jitgrad.core.callbacks` (holding the GIL
while it runs).

The callback has no derivative: differentiating through it raises, naming
the way out (``custom_jvp``/``custom_vjp`` around a function that calls it).
Under ``vmap`` it follows ``vmap_method``: ``"sequential"`` (the default)
calls ``fn`` once per batch element and stacks the results;
``"expand_dims"`` calls it once, with a leading batch axis on the batched
arguments and a size-1 one on the others; ``"broadcast_all"`` broadcasts
every argument to the batch.
"""
from __future__ import annotations

import numpy as np

from ..core import callbacks
from ..core import tree as tree_util
from ..core.ir import Aval
from ..core.primitive import Primitive
from ..core.trace import bind

__all__ = ["pure_callback_p", "pure_callback", "ShapeDtypeStruct"]

VMAP_METHODS = ("sequential", "expand_dims", "broadcast_all")


class ShapeDtypeStruct:
    """A declared result: ``shape`` and ``dtype`` (any object with both will do)."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __repr__(self):
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype})"


class _Host:
    """The user's function with its declared results; hashed by identity (it
    is an equation parameter).  ``batch`` describes the vmaps around it: a
    tuple of (batched flags, size, method), outermost first.  Only the
    innermost vmap may call the function with a batch axis; the ones around
    it call it once per element."""

    def __init__(self, fn, base, out_tree, vmap_method, batch=()):
        self.fn, self.base, self.out_tree = fn, tuple(base), out_tree
        self.vmap_method, self.batch = vmap_method, tuple(batch)
        self.name = getattr(fn, "__name__", type(fn).__name__)
        lead = tuple(size for _, size, _ in self.batch)
        self.avals = tuple(Aval(lead + tuple(a.shape), a.dtype) for a in self.base)

    def __repr__(self):        # (in the IR's printout and the generated source's comments)
        return self.name

    def call(self, args):
        """All result leaves on concrete ``args``, checked against the declaration."""
        return self._call(args, self.batch)

    def _call(self, args, batch):
        if not batch:
            return self._checked(self.fn(*args), ())
        (batched, size, method), inner = batch[0], batch[1:]
        if method == "sequential" or inner:
            rows = [self._call([a[i] if b else a for a, b in zip(args, batched)], inner)
                    for i in range(size)]
            return [np.stack([r[k] for r in rows]) for k in range(len(self.base))]
        if method == "expand_dims":
            args = [a if b else np.expand_dims(a, 0) for a, b in zip(args, batched)]
        else:
            args = [a if b else np.broadcast_to(a, (size,) + a.shape) for a, b in zip(args, batched)]
        return self._checked(self.fn(*args), (size,))

    def _checked(self, out, lead):
        leaves, tree = tree_util.flatten(out)
        if tree != self.out_tree:
            raise TypeError(f"pure_callback: {self.name} returned a structure {tree}, but "
                            f"result_shape_dtypes declared {self.out_tree}")
        res = []
        for i, (x, av) in enumerate(zip(leaves, self.base)):
            x, want = np.asarray(x), lead + tuple(av.shape)
            if x.shape != want or x.dtype != av.dtype:
                raise TypeError(f"pure_callback: result {i} of {self.name} has shape {x.shape} and "
                                f"dtype {x.dtype}, but {want} {np.dtype(av.dtype)} was declared")
            res.append(x)
        return res

    def batched(self, batched, size):
        return _Host(self.fn, self.base, self.out_tree, self.vmap_method,
                     ((tuple(batched), size, self.vmap_method),) + self.batch)


pure_callback_p = Primitive("pure_callback", "opaque")


def _jvp(primals, tangents, out, host, index):
    if all(t is None for t in tangents):
        return None
    raise TypeError(f"jitgrad cannot differentiate through pure_callback({host.name}): the "
                    "callback is opaque. Give the function that calls it a derivative with "
                    "jitgrad.custom_jvp or jitgrad.custom_vjp.")


def _code(out, ins, in_avals, out_aval, lit, host, index):
    key = callbacks.register(host)
    dt = np.dtype(out_aval.dtype)
    name = "boolean" if dt == np.bool_ else dt.name
    typ = name if out_aval.shape == () else \
        f"{name}[{', '.join([':'] * (len(out_aval.shape) - 1) + ['::1'])}]"
    args = "".join(f"{a}, " for a in ins)
    return [f"with objmode({out}='{typ}'):   # pure_callback({host.name})",
            f"    {out} = _jg_callback({key}, {index}, ({args}))"]


def _batch(args, batched, size, host, index):
    return bind(pure_callback_p, *args, host=host.batched(batched, size), index=index)


pure_callback_p.impl = lambda *args, host, index: host.call([np.asarray(a) for a in args])[index]
pure_callback_p.shape = lambda *avals, host, index: host.avals[index]
pure_callback_p.jvp = _jvp
pure_callback_p.code = _code
pure_callback_p.batch = _batch


def pure_callback(callback, result_shape_dtypes, *args, vmap_method="sequential"):
    """Call ``callback(*args)`` on the arguments' values, also inside
    transformed functions; it must return arrays of the declared shapes and
    dtypes (``result_shape_dtypes``: a pytree of objects with ``.shape`` and
    ``.dtype``, such as :class:`ShapeDtypeStruct` or arrays).

    The callback should be pure: it may be called more than once, or not at
    all when its result is unused.  It has no derivative of its own (wrap the
    function that calls it in ``custom_jvp``/``custom_vjp``).  ``vmap_method``
    says how ``vmap`` calls it: ``"sequential"``, ``"expand_dims"`` or
    ``"broadcast_all"`` (see the module's docstring).
    """
    if not callable(callback):
        raise TypeError(f"pure_callback: the callback must be callable, got {type(callback).__name__}")
    if vmap_method not in VMAP_METHODS:
        raise ValueError(f"pure_callback: vmap_method must be one of {VMAP_METHODS}, got "
                         f"{vmap_method!r}")
    leaves, out_tree = tree_util.flatten(result_shape_dtypes)
    avals = []
    for s in leaves:
        if not _declares(s):
            raise TypeError("pure_callback: result_shape_dtypes must hold objects with .shape "
                            f"and .dtype (jitgrad.ShapeDtypeStruct), got {type(s).__name__}")
        avals.append(Aval(tuple(s.shape), np.dtype(s.dtype)))
    host = _Host(callback, avals, out_tree, vmap_method)
    args = [np.asarray(a) if not hasattr(a, "aval") else a for a in args]
    outs = [bind(pure_callback_p, *args, host=host, index=i) for i in range(len(avals))]
    return tree_util.unflatten(out_tree, outs)


def _declares(x):
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (tuple, list, dict))
