"""Eager tensors and variables for the tape API, and how operations on them are recorded.

A :class:`Tensor` holds a value (a NumPy array or scalar; inside ``jitgrad.jit``
a tracer of the enclosing trace).  A :class:`Variable` is a mutable holder of
one.  Both support Python's operators and NumPy's ufunc / function protocols.

Every operation computes its value at once, with NumPy (eager execution).  For
every active tape (a :class:`Session`) that tracks at least one operand, the
operation is also *recorded*: the tape appends one event naming the
``jitgrad.numpy`` function to apply and its operands (node numbers of tracked
values, constant slots for untracked arrays (a copy of a user's NumPy array,
which may change in place later) and for the float scalars of elementwise
operations, literals for other Python scalars and 0-d NumPy values).  The
sessions recording are per thread.  The list of events is, at the same time,

- a program: replaying it on tracers of a fresh :class:`~jitgrad.core.trace.Trace`
  (the function applied to tracers while that trace is the current one)
  gives the typed IR of the recorded computation, with watched values and
  constants as its inputs; and
- a hashable key: two recordings with equal keys trace to the same IR.

So a gradient is built (replay, ``vjp_ir``, ``optimize``, an ``Executable``) the
first time a recording of one structure is differentiated, and each later
recording with the same structure (the next step of a training loop) costs one
dictionary look-up and one call.  Recording is cheap (no tracing per
operation); replay runs only on a cache miss.  See :mod:`jitgrad.tape.derivatives`.
"""
from __future__ import annotations

import itertools
import threading

import numpy as np

from .. import numpy as jnp
from .. import lax
from ..core import tree as tree_util
from ..core.trace import Tracer
from ..numpy.dispatch import FUNCTIONS, UFUNC_REDUCE, UFUNCS



class _ThreadState(threading.local):
    """The sessions recording on this thread (entered tapes and accumulators, not
    paused), outermost first.  Per thread: a tape never records operations that
    another thread runs."""

    def __init__(self):
        self.active = []


_state = _ThreadState()


def active_sessions():
    """This thread's list of recording sessions (the list itself, to update)."""
    return _state.active


_ARRAYS = (np.ndarray, np.generic, Tracer)

# The elementwise functions: a Python float or NumPy scalar operand of one of
# them is recorded as a runtime input (a 0-d constant slot), not as a literal
# of the recording's key, so a value that changes every step (a learning-rate
# schedule) reuses one cached derivative.
_ELEMENTWISE = frozenset(f for f in UFUNCS.values() if f is not jnp.matmul)
_PY_SCALARS = (bool, int, float)
_uncachable = itertools.count()


class _Ref:
    """A recorded operand that is node ``k`` of the session."""
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k


class _Const:
    """A recorded operand that is constant slot ``j`` of the session."""
    __slots__ = ("j",)

    def __init__(self, j):
        self.j = j


class Session:
    """What one tape records.

    Nodes are numbered in recording order: every watched value (a *leaf*) is
    one node, every output of a recorded operation is one node.  ``leaves``
    keeps the value of each leaf as it was when it was watched; ``consts``
    keeps the untracked arrays the operations used.  Intermediate values are
    not kept: replaying the events recomputes them.
    """

    __slots__ = ("keys", "ops", "leaves", "leaf_nodes", "leaf_owners", "consts",
                 "const_owners", "const_ids", "var_nodes", "var_leaves", "n", "watch_accessed")

    def __init__(self, watch_accessed=True):
        self.keys = []          # hashable description of every event, in order
        self.ops = []           # (fn, encoded args, kwargs, first node, number of outputs)
        self.leaves = []        # value of each leaf
        self.leaf_nodes = []    # node number of each leaf
        self.leaf_owners = []   # the Variable or Tensor watched
        self.consts = []        # untracked arrays used by recorded operations
        self.const_owners = []  # the Tensor/Variable each constant came from (or None)
        self.const_ids = {}     # id(value) -> (constant slot, value)
        self.var_nodes = {}     # id(Variable) -> (node of its current value, that value)
        self.var_leaves = {}    # id(Variable) -> every node it has had (one per value read)
        self.n = 0
        self.watch_accessed = watch_accessed

    def new_leaf(self, value, owner):
        _check_real(value, "watching it")
        k = self.n
        self.n += 1
        self.leaves.append(value)
        self.leaf_nodes.append(k)
        self.leaf_owners.append(owner)
        self.keys.append(("L", tuple(value.shape), value.dtype))
        return k

    def var_node(self, var, watch):
        """The node of Variable ``var``'s current value, or None if it is not watched.

        A Variable assigned since it was last read gets a new leaf holding its
        new value (the old leaf keeps the value the earlier operations used);
        its gradient is the sum over all its leaves, as TensorFlow sums over
        the reads of a variable.  ``watch``: make it a leaf if it is not one."""
        nv = self.var_nodes.get(id(var))
        if nv is not None and nv[1] is var._value:
            return nv[0]
        if nv is None and not watch:
            return None
        k = self.new_leaf(var._value, var)
        self.var_nodes[id(var)] = (k, var._value)
        self.var_leaves.setdefault(id(var), []).append(k)
        return k

    def watch(self, obj):
        """Make ``obj`` (a Variable or Tensor) a leaf, unless it is already tracked."""
        if isinstance(obj, Variable):
            self.var_node(obj, True)
        elif isinstance(obj, Tensor):
            refs = obj._refs
            if refs is None:
                obj._refs = refs = {}
            if self not in refs:
                refs[self] = self.new_leaf(obj._value, obj)
        else:
            raise TypeError(
                f"GradientTape.watch expects jitgrad Variables or Tensors, got {type(obj).__name__}; "
                "wrap a NumPy array or Python number with jitgrad.constant(...) first, and use "
                "the returned tensor in the computation")

    def node_of(self, obj):
        """The node of ``obj`` in this session, or None if it is not tracked."""
        if isinstance(obj, Tensor):
            refs = obj._refs
            return None if refs is None else refs.get(self)
        if isinstance(obj, Variable):
            nv = self.var_nodes.get(id(obj))
            return None if nv is None else nv[0]
        return None

    def nodes_of(self, obj):
        """Every node of ``obj``: one for a tracked Tensor, one per value read
        for a Variable (see :meth:`var_node`), none when it is not tracked."""
        if isinstance(obj, Variable):
            return list(self.var_leaves.get(id(obj), ()))
        n = self.node_of(obj)
        return [] if n is None else [n]

    def tracks(self, a, auto_watch):
        """Whether operand ``a`` is tracked; a trainable Variable accessed while the
        session watches accessed variables is watched now (TensorFlow's rule)."""
        if isinstance(a, Tensor):
            return a._refs is not None and self in a._refs
        if isinstance(a, Variable):
            if id(a) in self.var_nodes:
                return True
            if auto_watch and self.watch_accessed and a.trainable:
                self.var_node(a, True)
                return True
            return False
        if type(a) is list or type(a) is tuple:
            hit = False
            for x in a:
                if self.tracks(x, auto_watch):   # no short-cut: every variable gets watched
                    hit = True
            return hit
        return False

    # -- encoding operands

    def const(self, value, owner, snapshot=False):
        """The constant slot of ``value``.  ``snapshot``: keep a copy (a NumPy array
        of the user's, which may be updated in place before the gradient is
        taken; the operations used the value it had then), unless it is a
        read-only array that owns its data (large data sets can be frozen
        with ``x.flags.writeable = False`` to save the copy)."""
        slot = self.const_ids.get(id(value))
        if slot is None:
            j = len(self.consts)
            if snapshot and (value.flags.writeable or value.base is not None):
                self.consts.append(value.copy())
            else:
                self.consts.append(value)
            self.const_owners.append(owner)
            self.const_ids[id(value)] = (j, value)   # holding value keeps its id unique
            self.keys.append(("C", tuple(value.shape), np.dtype(value.dtype)))
        else:
            j = slot[0]
        return _Const(j), ("c", j)

    def encode(self, a):
        """(replay operand, hashable key) for one operand."""
        if isinstance(a, Tensor):
            refs = a._refs
            if refs is not None:
                k = refs.get(self)
                if k is not None:
                    return _Ref(k), k
            v = a._value
            if isinstance(v, np.ndarray) or isinstance(v, np.generic) or isinstance(v, Tracer):
                return self.const(v, a)
            return v, _hkey(v)
        if isinstance(a, Variable):
            k = self.var_node(a, False)
            if k is not None:
                return _Ref(k), k
            return self.const(a._value, a)
        t = type(a)
        if t is float or t is int or t is bool:
            return a, (t, a)
        if t is np.ndarray:
            if a.ndim == 0:
                return a.copy(), ("l", a.dtype, a.item())
            return self.const(a, None, snapshot=True)
        if isinstance(a, np.generic):
            return a, ("l", a.dtype, a.item())
        if isinstance(a, Tracer):
            return self.const(a, None)
        if t is list or t is tuple:
            pairs = [self.encode(x) for x in a]
            return t(p[0] for p in pairs), (t, tuple(p[1] for p in pairs))
        return a, _hkey(a)

    def record(self, fn, args, kwargs, outs, fnkey=None):
        """Append one operation ``outs = fn(*args, **kwargs)``; mark ``outs`` tracked."""
        enc = []
        keys = []
        elementwise = fn in _ELEMENTWISE
        for a in args:
            if elementwise and _is_scalar(a):
                e, k = self.const(_scalar_input(a, args), None)
            else:
                e, k = self.encode(a)
            enc.append(e)
            keys.append(k)
        kw = tuple(sorted((name, _hkey(v)) for name, v in kwargs.items())) if kwargs else None
        first = self.n
        self.n += len(outs)
        self.keys.append((fn if fnkey is None else fnkey, tuple(keys), kw))
        self.ops.append((fn, enc, kwargs, first, len(outs)))
        for i, o in enumerate(outs):
            if o._refs is None:
                o._refs = {}
            o._refs[self] = first + i

    def release(self):
        """Drop everything recorded (a non-persistent tape after its gradient),
        except which Variables were watched (``watched_variables`` still answers)."""
        self.leaf_owners = list({id(o): o for o in self.leaf_owners if isinstance(o, Variable)}.values())
        self.keys, self.ops, self.leaves, self.leaf_nodes = [], [], [], []
        self.consts, self.const_owners = [], []
        self.const_ids, self.var_nodes, self.var_leaves = {}, {}, {}


def _is_scalar(a):
    """A Python float or a NumPy scalar (0-d array): a runtime input of an
    elementwise operation (Python ints and bools stay literals)."""
    t = type(a)
    return t is float or (t is np.ndarray and a.ndim == 0) or isinstance(a, np.generic)


def _scalar_input(a, args):
    """The 0-d array that scalar operand ``a`` of an elementwise operation on
    ``args`` stands for.  A Python float takes the dtype NumPy gives it next
    to the array operands (it is weakly typed: float32 beside a float32
    array), a NumPy scalar keeps its own."""
    if type(a) is not float:
        return np.array(a)
    dtypes = [np.dtype(_strip(x).dtype) for x in args
              if not isinstance(x, _PY_SCALARS) and hasattr(_strip(x), "dtype")]
    return np.array(a, np.result_type(*dtypes, a))


def _hkey(x):
    """A hashable key for a static argument (axis, slices, shapes, dtypes ...)."""
    t = type(x)
    if t is int or t is float or t is bool or t is str or x is None:
        return (t, x)
    if t is slice:
        return ("slice", _hkey(x.start), _hkey(x.stop), _hkey(x.step))
    if t is tuple or t is list:
        return (t, tuple(_hkey(i) for i in x))
    if x is Ellipsis:
        return "..."
    if isinstance(x, np.generic) or (t is np.ndarray and x.ndim == 0):
        return ("l", x.dtype, x.item())
    try:
        hash(x)
        return x
    except TypeError:
        return ("uncachable", next(_uncachable))


# ---------------------------------------------------------------------------
# Operations


def _strip(a):
    """Replace Tensors and Variables by their values (inside lists and tuples too)."""
    if isinstance(a, _Base):
        return a._value
    t = type(a)
    if t is list or t is tuple:
        return t(_strip(x) for x in a)
    return a


def _apply(np_fn, fn, args, kwargs):
    """Compute ``np_fn(*values)`` now; record ``fn`` (the jitgrad.numpy function)
    on every active session that tracks an operand."""
    vals = [a._value if isinstance(a, _Base) else _strip(a) for a in args]
    for v in vals:
        if isinstance(v, np.ndarray) and type(v) is not np.ndarray:
            _reject_subclass(v)
    out = np_fn(*vals, **kwargs)
    if not isinstance(out, _ARRAYS):
        return out                      # np.shape, np.ndim ...: not an array
    res = Tensor(out)
    active = _state.active
    if active:
        for s in active:
            hit = False
            for a in args:
                if type(a) is Tensor:       # the common case, inlined
                    refs = a._refs
                    if refs is not None and s in refs:
                        hit = True
                elif s.tracks(a, True):
                    hit = True
            if hit:
                _check_real(out, f"the result of {getattr(fn, '__name__', 'an operation')}")
                s.record(fn, args, kwargs, (res,))
    return res


def _check_real(value, what):
    """Tapes differentiate real values only: a complex one would get a silently
    wrong (zero or real-part-only) gradient."""
    if np.dtype(value.dtype).kind == "c":
        raise TypeError(
            f"a GradientTape cannot differentiate complex numbers ({what} is "
            f"{np.dtype(value.dtype).name}); carry the real and imaginary parts as separate "
            "float arrays")


def stop_gradient(x):
    """The identity, whose derivative is zero: gradients do not flow through it.

    On traced arrays (inside ``jit``, ``grad`` ...) and on the Tensors and
    Variables a GradientTape records (``tf.stop_gradient``) alike; ``x`` may
    be a nested structure (lists, tuples, dicts) of them."""
    leaves, tree = tree_util.flatten(x)
    return tree_util.unflatten(tree, [_stop_gradient(a) for a in leaves])


def _stop_gradient(x):
    if isinstance(x, _Base):
        return _apply(lax.stop_gradient, lax.stop_gradient, (x,), {})
    return lax.stop_gradient(x)


def _reject_subclass(v):
    """An ndarray subclass (a masked array, np.matrix) would be computed with its
    own rules now and differentiated as a plain array: refuse it."""
    raise TypeError(
        f"jitgrad tensors compute with plain NumPy arrays, got a {type(v).__module__}."
        f"{type(v).__name__}, whose own rules (a mask, matrix products) jitgrad would not "
        "differentiate; pass np.asarray(x) (np.ma.filled(x, value) for a masked array)")


def _any_tracked(args):
    return any(s.tracks(a, True) for s in _state.active for a in args)


def _untracked(np_fn, args, kwargs, what):
    """A NumPy function jitgrad cannot record: fine on untracked values."""
    if _state.active and _any_tracked(args):
        raise NotImplementedError(
            f"{what} is not supported on values a GradientTape is recording (jitgrad cannot "
            "differentiate it); see jitgrad.numpy for the supported functions")
    return np_fn(*[_strip(a) for a in args], **{k: _strip(v) for k, v in kwargs.items()})


def _binop(ufunc, fn):
    def op(self, other):
        return _apply(ufunc, fn, (self, other), {})

    def rop(self, other):
        return _apply(ufunc, fn, (other, self), {})
    return op, rop


def _masks_to_indices(key):
    """Boolean masks in an index become the integer indices of their True
    entries, taken from their values now: a mask decides the result's shape
    and carries no gradient, so it is not recorded."""
    key = key if isinstance(key, tuple) else (key,)
    out = []
    for k in key:
        v = _strip(k) if isinstance(k, _Base) else k
        if isinstance(v, (list, np.ndarray)) and np.asarray(v).dtype == np.bool_:
            out.extend(np.nonzero(np.asarray(v)))
        else:
            out.append(k)
    return tuple(out)


def _getitem(x, key):
    return x[key]


class _Base:
    """Operators, NumPy protocols and array methods shared by Tensor and Variable."""

    __slots__ = ()
    __array_priority__ = 2000

    # -- the value
    shape = property(lambda self: tuple(self._value.shape))
    dtype = property(lambda self: np.dtype(self._value.dtype))
    ndim = property(lambda self: len(self._value.shape))
    size = property(lambda self: int(np.prod(self._value.shape, dtype=np.int64)))

    def numpy(self):
        """The value as a NumPy array (a NumPy scalar for 0-d values)."""
        v = self._value
        return v[()] if isinstance(v, np.ndarray) and v.ndim == 0 else v

    def __jitgrad_value__(self):
        return self._value

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._value, dtype)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __index__(self):
        return int(np.asarray(self._value).__index__())

    def __bool__(self):
        return bool(self._value)

    def __complex__(self):
        return complex(self._value)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        return id(self)

    def item(self):
        return np.asarray(self._value).item()

    def tolist(self):
        return np.asarray(self._value).tolist()

    # -- NumPy's protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if kwargs.get("out") is not None:
            raise TypeError("jitgrad tensors are immutable: out= is not supported")
        if method == "__call__":
            fn = UFUNCS.get(name)
            if fn is None or kwargs:
                return _untracked(ufunc, inputs, kwargs, f"numpy.{name}")
            return _apply(ufunc, fn, inputs, kwargs)
        if method == "reduce" and name in UFUNC_REDUCE:
            return _apply(getattr(ufunc, "reduce"), UFUNC_REDUCE[name], inputs, kwargs)
        return _untracked(getattr(ufunc, method), inputs, kwargs, f"numpy.{name}.{method}")

    def __array_function__(self, func, types, args, kwargs):
        fn = FUNCTIONS.get(func)
        if fn is None:
            return _untracked(func, args, kwargs, f"numpy.{func.__name__}")
        return _apply(func, fn, args, kwargs)

    # -- operators
    __add__, __radd__ = _binop(np.add, jnp.add)
    __sub__, __rsub__ = _binop(np.subtract, jnp.subtract)
    __mul__, __rmul__ = _binop(np.multiply, jnp.multiply)
    __truediv__, __rtruediv__ = _binop(np.true_divide, jnp.divide)
    __floordiv__, __rfloordiv__ = _binop(np.floor_divide, jnp.floor_divide)
    __mod__, __rmod__ = _binop(np.remainder, jnp.remainder)
    __pow__, __rpow__ = _binop(np.power, jnp.power)
    __matmul__, __rmatmul__ = _binop(np.matmul, jnp.matmul)
    __lt__ = _binop(np.less, jnp.less)[0]
    __le__ = _binop(np.less_equal, jnp.less_equal)[0]
    __gt__ = _binop(np.greater, jnp.greater)[0]
    __ge__ = _binop(np.greater_equal, jnp.greater_equal)[0]
    __eq__ = _binop(np.equal, jnp.equal)[0]
    __ne__ = _binop(np.not_equal, jnp.not_equal)[0]
    __and__, __rand__ = _binop(np.logical_and, jnp.logical_and)
    __or__, __ror__ = _binop(np.logical_or, jnp.logical_or)

    def __neg__(self):
        return _apply(np.negative, jnp.negative, (self,), {})

    def __pos__(self):
        return self

    def __abs__(self):
        return _apply(np.absolute, jnp.absolute, (self,), {})

    def __invert__(self):
        return _apply(np.logical_not, jnp.logical_not, (self,), {})

    def __getitem__(self, key):
        return _apply(_getitem, jnp.getitem, (self, _masks_to_indices(key)), {})

    # -- array methods (recorded like the NumPy functions they stand for)
    def sum(self, axis=None, keepdims=False):
        return _apply(np.sum, jnp.sum, (self,), {"axis": axis, "keepdims": keepdims})

    def mean(self, axis=None, keepdims=False):
        return _apply(np.mean, jnp.mean, (self,), {"axis": axis, "keepdims": keepdims})

    def max(self, axis=None, keepdims=False):
        return _apply(np.max, jnp.max, (self,), {"axis": axis, "keepdims": keepdims})

    def min(self, axis=None, keepdims=False):
        return _apply(np.min, jnp.min, (self,), {"axis": axis, "keepdims": keepdims})

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 else shape
        return _apply(np.reshape, jnp.reshape, (self, shape), {})

    def transpose(self, *axes):
        axes = (axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes) or None
        return _apply(np.transpose, jnp.transpose, (self, axes), {})

    T = property(lambda self: _apply(np.transpose, jnp.transpose, (self,), {}))

    def ravel(self):
        return _apply(np.ravel, jnp.ravel, (self,), {})

    flatten = ravel

    def astype(self, dtype):
        return _apply(_astype, jnp.astype, (self, np.dtype(dtype)), {})

    def dot(self, other):
        return _apply(np.dot, jnp.dot, (self, other), {})


def _astype(x, dtype):
    if isinstance(x, Tracer):
        return jnp.astype(x, dtype)
    return np.asarray(x).astype(dtype)


class Tensor(_Base):
    """An immutable array value, as ``tf.Tensor``: what operations on Variables and
    Tensors return.  ``numpy()`` gives its value.  Build one with
    :func:`constant`."""

    __slots__ = ("_value", "_refs")

    def __init__(self, value):
        self._value = value
        self._refs = None     # Session -> node, for the sessions that track this value

    def __repr__(self):
        return f"<jitgrad.Tensor: shape={self.shape}, dtype={self.dtype.name}, numpy={_fmt(self._value)}>"


def _fmt(v):
    if isinstance(v, Tracer):
        return repr(v)
    if isinstance(v, np.ndarray) and v.ndim > 0:
        return repr(v)
    return str(np.asarray(v)[()])


def _convert(value, dtype=None):
    """TensorFlow's conversion rule: Python floats become float32 and Python ints
    int32; NumPy arrays and scalars keep their dtype."""
    value = _strip(value)
    if isinstance(value, Tracer):
        return value if dtype is None else jnp.astype(value, dtype)
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        _reject_subclass(value)
    if dtype is not None:
        return np.array(value, dtype=dtype)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.array(value)
    arr = np.array(value)
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype == np.int64:
        return arr.astype(np.int32)
    if arr.dtype == object:
        raise TypeError(f"cannot convert a value of type {type(value).__name__} to a jitgrad tensor")
    return arr


def constant(value, dtype=None):
    """An immutable tensor, as ``tf.constant``: Python floats (and lists of them)
    become float32, Python ints int32; NumPy values keep their dtype unless
    ``dtype`` is given.  A tape tracks a constant only after ``tape.watch``."""
    return Tensor(_convert(value, dtype))


_var_names = itertools.count()


class Variable(_Base):
    """A mutable array, as ``tf.Variable``.

    ``Variable(5.0)`` is float32 (TensorFlow's rule for Python floats); a NumPy
    array keeps its dtype.  Operations on a Variable read its current value;
    a trainable Variable used inside a :class:`~jitgrad.GradientTape` is watched
    automatically.  ``assign``, ``assign_add`` and ``assign_sub`` replace the
    value (keeping dtype and shape); they are not recorded by tapes.
    """

    __slots__ = ("_value", "trainable", "name", "__weakref__")

    def __init__(self, initial_value, dtype=None, trainable=True, name=None):
        self._value = _convert(initial_value, dtype)
        self.trainable = bool(trainable)
        self.name = name if name is not None else "Variable"

    def __repr__(self):
        return (f"<jitgrad.Variable '{self.name}:0' shape={self.shape} dtype={self.dtype.name}, "
                f"numpy={_fmt(self._value)}>")

    def numpy(self):
        """A copy of the current value (a NumPy scalar for 0-d variables)."""
        v = self._value
        if isinstance(v, Tracer):
            return v
        return v[()] if v.ndim == 0 else v.copy()

    def __array__(self, dtype=None, copy=None):
        """A copy of the current value, as ``numpy()``: updating it in place
        leaves the Variable (and the tapes that read it) alone; change a
        Variable with ``assign``."""
        if copy is False:
            raise ValueError(f"Variable '{self.name}' cannot share its value without a copy; "
                             "use np.asarray(v) or v.numpy(), and v.assign(...) to change it")
        return np.array(self._value, dtype)

    def value(self):
        """The current value as a Tensor (a recorded read)."""
        return _apply(_copy, jnp.copy, (self,), {})

    read_value = value

    def _in_dtype(self, value):
        value = _strip(value)
        if isinstance(value, Tracer) or isinstance(self._value, Tracer):
            return jnp.astype(value, self._value.dtype)
        return np.array(value, dtype=self._value.dtype)

    def _new_value(self, value):
        new = self._in_dtype(value)
        if tuple(new.shape) != tuple(self._value.shape):
            raise ValueError(f"cannot assign a value of shape {tuple(new.shape)} to variable "
                             f"'{self.name}' of shape {self.shape}")
        return new

    def assign(self, value):
        """Replace the value (cast to the variable's dtype; the shape must match)."""
        self._set(self._new_value(value))
        return self

    def _set(self, new):
        if isinstance(new, Tracer) and not isinstance(self._value, Tracer):
            raise TypeError(
                f"a traced value (inside jitgrad.jit or grad) was assigned to Variable '{self.name}', "
                "which was created outside the traced function: the update would escape the trace. "
                "Inside jitgrad.jit, pass parameters in as arrays and return the new values (the "
                "optimizers' init/update functions do this), or create the Variables inside")
        self._value = new

    def assign_add(self, delta):
        """``self += delta``, computed in the variable's dtype."""
        return self.assign(self._value + self._in_dtype(delta))

    def assign_sub(self, delta):
        """``self -= delta``, computed in the variable's dtype."""
        return self.assign(self._value - self._in_dtype(delta))


def _copy(x):
    """A read of a Variable: its own array, not the Variable's."""
    return x if isinstance(x, Tracer) else np.array(x)
