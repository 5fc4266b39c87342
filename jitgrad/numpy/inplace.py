"""Writing into traced arrays: ``out[key] = v``, ``out[key] += v``, ``x *= 2``,
and the views through which NumPy code writes (``r = a[0]; r[1] = 5``).

The IR is single-assignment, so a write is a *functional update*: it computes
the array's new value (the old one with the written positions replaced) and
gives the written tracer that new variable.  Whatever read the old value
before keeps reading it (so an old value that is still needed is copied where
it is overwritten, and nowhere else); whoever holds the tracer sees the new
one, as with NumPy.

What may be written:

- arrays created inside the traced function (``np.zeros(n)``, ``x.copy()``,
  ``np.array(...)``, the result of any operation), and views of them;
- not the function's arguments, nor arrays captured from an enclosing
  traced function, nor views of those: transformed functions never change
  their inputs, so these raise a ``TypeError`` that says to copy first.

Views follow NumPy exactly.  A traced array made by a view operation (basic
indexing, ``reshape``, ``transpose``, ...; :data:`VIEW_FUNCTIONS`) remembers
its *root* (the array that is not a view) and, as a NumPy array of positions
in the root, which elements it shows: that array is the same NumPy operation
applied to ``np.arange(root.size)`` (reshaped), so NumPy itself decides
whether the result is a view or a copy (``a.T.reshape(-1)`` copies) and
whether it is read-only (``broadcast_to``, ``diagonal``).  A write through a
view writes those positions of the root; a write into a root recomputes each
of its live views from it.

Positions: a key without traced values is applied by NumPy to that same
position array (so every indexing form NumPy accepts works, with NumPy's
errors); repeated positions keep the last value written, as NumPy does.  A
key with traced indices is applied by jitgrad's indexing (the forms
``x[idx]`` supports), and the update is a ``scatter`` whose later writes win.
Augmented assignment ``x[key] += v`` is Python's read, add, write: like
NumPy, a repeated index adds once, not once per repetition.
"""
from __future__ import annotations

import math
import weakref

import numpy as _np

from .. import lax as P
from ..core.trace import Tracer, escaped_tracer_error, state
from .base import _fresh, _holds_tracer, _operand, _owned, _shape, _to
from .indexing import getitem

# NumPy functions (and array methods) whose result may be a view of their first argument.
VIEW_FUNCTIONS = ("reshape", "ravel", "transpose", "swapaxes", "moveaxis", "squeeze",
                  "expand_dims", "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_to",
                  "diagonal", "flip", "fliplr", "flipud", "rot90", "split", "array_split",
                  "hsplit", "vsplit", "dsplit", "real", "imag")

_INPUT_ERROR = (
    "jitgrad: cannot write into a traced array ({aval}) that is {what}: transformed functions "
    "never change their inputs. Copy it first and write into the copy (x = x.copy(), or "
    "np.array(x)).")


# ---------------------------------------------------------------------------
# Views.  A root tracer's ``_views`` is a _Root; a candidate view's ``_view`` a
# _View.  Positions are computed only when something is written: tracing code
# that never writes pays for a closure and a weak reference per view operation.


class _Root:
    __slots__ = ("refs", "pos")

    def __init__(self):
        self.refs = []      # weak references to the candidate views, in the order made
        self.pos = None     # np.arange(size) in the root's shape, when first needed


class _View:
    __slots__ = ("root", "parent", "on_positions", "recompute", "pos")

    def __init__(self, root, parent, on_positions, recompute):
        self.root, self.parent = root, parent
        self.on_positions, self.recompute = on_positions, recompute
        self.pos = None


def _view_of(t):
    """The _View of ``t`` if NumPy would make it a view of its root, else None."""
    v = getattr(t, "_view", None)
    if v is None:
        return None
    if v.pos is None:
        try:
            pos = v.on_positions(_positions(v.parent))
        except Exception:      # (NumPy does not apply the operation to arrays)
            pos = False
        base = _positions(v.root).base
        v.pos = pos if isinstance(pos, _np.ndarray) and pos.base is base else False
    return v if v.pos is not False else None


def _positions(t):
    """Which elements of its root ``t`` shows (a root: all, in order)."""
    v = _view_of(t)
    if v is not None:
        return v.pos
    r = getattr(t, "_views", None)      # (t is a root, or a copy: a root of its own)
    if r is None:
        r = t._views = _Root()
    if r.pos is None:
        r.pos = _np.arange(t.size).reshape(t.shape)
    return r.pos


def record_view(parent, result, on_positions, recompute):
    """Note that ``result`` was computed from ``parent`` by a NumPy operation
    that may return a view: NumPy's ``on_positions(positions)`` decides (when a
    write needs to know) and ``recompute()`` computes the result again from the
    parent's current value.  Results that are not tracers of the parent's
    trace, or are the parent itself, are left alone."""
    if not isinstance(parent, Tracer) or not isinstance(result, Tracer) or result is parent \
            or result._trace is not parent._trace:
        return result
    root = parent if getattr(parent, "_view", None) is None or _view_of(parent) is None \
        else parent._view.root
    if getattr(root, "_views", None) is None:
        root._views = _Root()
    result._view = _View(root, parent, on_positions, recompute)
    refs = root._views.refs
    refs.append(weakref.ref(result))
    if len(refs) >= 64 and len(refs) & (len(refs) - 1) == 0:     # now and then, drop the dead
        refs[:] = [r for r in refs if r() is not None]
    return result


def _refresh(root):
    """Recompute the live views of ``root`` (in the order they were made: a
    view of a view after its parent) from its new value."""
    live = []
    for ref in root._views.refs:
        v = ref()
        if v is not None and _view_of(v) is not None:
            v._var = _operand(v._view.recompute())._var
            live.append(ref)
    root._views.refs = live


# ---------------------------------------------------------------------------
# Writing


def _check_writable(root):
    trace = root._trace
    if not trace.alive:
        raise escaped_tracer_error()
    if not state.stack or state.stack[-1] is not trace:
        raise TypeError(_INPUT_ERROR.format(
            aval=root.aval, what="captured from an enclosing transformed function"))
    if root._var in trace.invars and id(root) not in _owned(trace):
        raise TypeError(_INPUT_ERROR.format(
            aval=root.aval, what="an argument of the transformed function (or a view of one)"))


def writable(t):
    """Whether writing into ``t`` is allowed (see the module's docstring)."""
    view = _view_of(t)
    if view is not None:
        if not view.pos.flags.writeable:
            return False
        t = view.root
    try:
        _check_writable(t)
    except TypeError:
        return False
    return True


def _assign(t, value):
    """Give ``t`` the whole new value ``value`` (same shape; cast to its dtype)."""
    value = _operand(value)
    if _shape(value) != t.shape:
        raise ValueError(f"could not broadcast input array from shape {_shape(value)} into "
                         f"shape {t.shape}")
    view = _view_of(t)
    if view is not None:
        root, pos = view.root, view.pos
        if not pos.flags.writeable:
            raise ValueError("assignment destination is read-only")
        flat = pos.reshape(-1)
        _check_writable(root)
        return _assign(root, _write_positions(root, flat, P.reshape(_to(value, t.dtype, t.shape),
                                                                    (flat.size,))))
    _check_writable(t)
    value = _to(value, t.dtype, t.shape)
    t._var = _fresh(value)._var if not isinstance(value, Tracer) or value._trace is not t._trace \
        else value._var
    if getattr(t, "_views", None) is not None:
        _refresh(t)


def _write_positions(x, flat, values):
    """``x`` with flat positions ``flat`` (concrete, unique) set to ``values`` (m,)."""
    n = x.size
    mask = _np.zeros(n, bool)
    mask[flat] = True
    placed = P.scatter_add(values, flat.astype(_np.int64), n)
    return P.reshape(P.select(mask, placed, P.reshape(x, (n,))), x.shape)


def _last_writes(flat):
    """Which of the flat positions are written last (NumPy keeps the last value
    at a repeated index): the indices into ``flat`` of each position's last
    occurrence, in order."""
    _, first_from_end = _np.unique(flat[::-1], return_index=True)
    return _np.sort(flat.size - 1 - first_from_end)


def setitem(x, key, value):
    """``x[key] = value``: ``x`` takes the updated value (see the module's docstring)."""
    if not isinstance(x, Tracer):
        raise TypeError("setitem: not a traced array")
    writable(x) or _explain(x)
    value = _operand(value)
    mask = _traced_mask(x, key)
    if mask is not None:
        new = _masked_update(x, mask, value)
    elif _key_holds_tracer(key):
        new = _traced_key_update(x, key, value)
    else:
        pos = _np.asarray(_positions_of_key(x, key))
        value = _broadcast_value(value, pos.shape, x.dtype)
        flat = pos.reshape(-1)
        if flat.size == 0:
            return
        vals = P.reshape(value, (flat.size,)) if _shape(value) != (flat.size,) else value
        if _np.unique(flat).size < flat.size:
            keep = _last_writes(flat)
            flat, vals = flat[keep], P.gather(vals, keep.astype(_np.int64))
        new = _write_positions(x, flat, vals)
    _assign(x, new)


def _traced_mask(x, key):
    """The key if it is one traced boolean mask over x's leading axes."""
    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if isinstance(k, Tracer) and k.dtype == _np.bool_:
        if k.shape != x.shape[:k.ndim]:
            raise IndexError(f"boolean index of shape {k.shape} does not match the array's "
                             f"shape {x.shape}")
        return k
    return None


def _masked_update(x, mask, value):
    """``x[mask] = value`` with a traced mask: ``np.where(mask, value, x)``.
    The number of True entries is not known while tracing, so ``value`` must
    be one value (or one row, for a mask over fewer axes than x has)."""
    row = x.shape[mask.ndim:]
    vs = _shape(value)
    if math.prod(vs) != 1 and tuple(vs[len(vs) - len(row):]) != tuple(row) or len(vs) > len(row):
        raise NotImplementedError(
            "jitgrad supports x[mask] = v with a traced mask only for one value v (or one row): "
            "how many entries the mask selects is not known while tracing. Write "
            "x = np.where(mask, v_full, x) with v_full of x's shape.")
    if math.prod(vs) == 1:
        value = P.reshape(value, ()) if isinstance(value, Tracer) else _np.asarray(value).reshape(())
    m = P.broadcast_in_dim(mask, x.shape, tuple(range(mask.ndim)))
    return P.select(m, _to(value, x.dtype, x.shape), x)


def _explain(x):
    view = _view_of(x)
    if view is not None:
        if not view.pos.flags.writeable:
            raise ValueError("assignment destination is read-only (a broadcast or diagonal "
                             "view, as in NumPy): copy it first")
        _check_writable(view.root)
    _check_writable(x)


def _positions_of_key(x, key):
    """The positions ``x[key]`` reads, by NumPy's own indexing of an arange."""
    return _np.arange(x.size).reshape(x.shape)[key]


def _key_holds_tracer(key):
    parts = key if isinstance(key, tuple) else (key,)
    return any(_holds_tracer(k) for k in parts)


def _broadcast_value(value, shape, dtype):
    vs = _shape(value)
    try:
        if _np.broadcast_shapes(vs, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"could not broadcast input array from shape {vs} into shape "
                         f"{tuple(shape)}") from None
    v = _to(value, dtype, tuple(shape))
    return P.full(shape, v, dtype) if not isinstance(v, Tracer) and _np.ndim(v) == 0 else v


def _traced_key_update(x, key, value):
    """A key with traced indices: positions computed in the IR (by jitgrad's
    indexing of a constant arange), written by ``scatter`` (later writes win)."""
    pos = getitem(_np.arange(x.size).reshape(x.shape), key)
    shape = _shape(pos)
    value = _broadcast_value(value, shape, x.dtype)
    m = int(_np.prod(shape))
    if m == 0:
        return x
    flat = P.reshape(pos, (m,))
    return P.reshape(P.scatter(P.reshape(x, (x.size,)), flat, P.reshape(value, (m,))), x.shape)


def augmented(fn, name):
    """``x op= y`` on a traced array: in place (NumPy's result, cast back into
    ``x``'s dtype under NumPy's same-kind rule) when ``x`` may be written,
    so that other names for it and its views see the change; otherwise (an
    argument, a view of one, a captured array) the name is rebound to the
    result, and the argument itself is never changed."""
    def op(self, other):
        result = fn(self, other)
        if not writable(self):
            return result
        rt = _np.dtype(result.dtype) if isinstance(result, Tracer) else _np.asarray(result).dtype
        if not _np.can_cast(rt, self.dtype, "same_kind"):
            raise TypeError(f"Cannot cast ufunc '{name}' output from {rt!r} to {self.dtype!r} "
                            "with casting rule 'same_kind'")
        if _shape(result) != self.shape:
            raise ValueError(f"non-broadcastable output operand with shape {self.shape} doesn't "
                             f"match the broadcast shape {_shape(result)}")
        _assign(self, result)
        return self
    op.__name__ = f"__i{name}__"
    return op
