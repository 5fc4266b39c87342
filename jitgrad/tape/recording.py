"""What a tape records: the sessions active on each thread and their events.

Every operation on the eager values of :mod:`jitgrad.tape.variables` is
computed at once, with NumPy.  For every active tape (a :class:`Session`)
that tracks at least one operand, the operation is also *recorded*: the tape
appends one event naming the ``jitgrad.numpy`` function to apply and its
operands (node numbers of tracked values, constant slots for untracked
arrays (a copy of a user's NumPy array, which may change in place later) and
for the float scalars of elementwise operations, literals for other Python
scalars and 0-d NumPy values).  The sessions recording are per thread.  The
list of events is, at the same time,

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

This module does not know the value classes (Tensor, Variable): a session
asks each value about itself.  A value is an instance of :class:`TapeValue`,
holds its array (or tracer) in ``_value`` and answers

- ``_watch_in(session)``: become a leaf of ``session`` unless it is tracked;
- ``_tracked_by(session, auto_watch)``: whether ``session`` tracks it (a
  value that is watched on first use, as a trainable Variable, is watched
  now when ``auto_watch``);
- ``_encode_in(session)``: its (replay operand, hashable key) as an operand;
- ``_node_in(session)``: the node of its current value, or None;
- ``_nodes_in(session)``: all its nodes (a value has several when the
  session keeps one per read of it, as for a Variable).

Recorded outputs are values with a ``_refs`` attribute (``None`` or a dict
session -> node), which :meth:`Session.record` fills in.  Leaves of values
with one node per read go through :meth:`Session.var_node`.
"""
from __future__ import annotations

import itertools
import threading

import numpy as np

from .. import numpy as jnp
from ..core.trace import Tracer
from ..numpy.dispatch import UFUNCS


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


class TapeValue:
    """The values sessions record (Tensor and Variable): see the module docstring
    for the methods a subclass defines."""

    __slots__ = ()


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
        if not isinstance(obj, TapeValue):
            raise TypeError(
                f"GradientTape.watch expects jitgrad Variables or Tensors, got {type(obj).__name__}; "
                "wrap a NumPy array or Python number with jitgrad.constant(...) first, and use "
                "the returned tensor in the computation")
        obj._watch_in(self)

    def node_of(self, obj):
        """The node of ``obj``'s current value in this session, or None if it is not tracked."""
        return obj._node_in(self) if isinstance(obj, TapeValue) else None

    def nodes_of(self, obj):
        """Every node of ``obj``: one for a tracked Tensor, one per value read
        for a Variable (see :meth:`var_node`), none when it is not tracked."""
        return obj._nodes_in(self) if isinstance(obj, TapeValue) else []

    def tracks(self, a, auto_watch):
        """Whether operand ``a`` is tracked; a trainable Variable accessed while the
        session watches accessed variables is watched now (TensorFlow's rule)."""
        if isinstance(a, TapeValue):
            return a._tracked_by(self, auto_watch)
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
        if isinstance(a, TapeValue):
            return a._encode_in(self)
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
            if isinstance(a, TapeValue):
                e, k = a._encode_in(self)
            elif elementwise and _is_scalar(a):
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
        # The Variables are the owners in var_leaves (keyed by id: they are
        # alive, held by leaf_owners, so no other owner has one of their ids).
        self.leaf_owners = list({id(o): o for o in self.leaf_owners if id(o) in self.var_leaves}.values())
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


def _strip(a):
    """Replace Tensors and Variables by their values (inside lists and tuples too)."""
    if isinstance(a, TapeValue):
        return a._value
    t = type(a)
    if t is list or t is tuple:
        return t(_strip(x) for x in a)
    return a


def _check_real(value, what):
    """Tapes differentiate real values only: a complex one would get a silently
    wrong (zero or real-part-only) gradient."""
    if np.dtype(value.dtype).kind == "c":
        raise TypeError(
            f"a GradientTape cannot differentiate complex numbers ({what} is "
            f"{np.dtype(value.dtype).name}); carry the real and imaginary parts as separate "
            "float arrays")
