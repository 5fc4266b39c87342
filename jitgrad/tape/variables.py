"""Eager tensors and variables for the tape API.

A :class:`Tensor` holds a value (a NumPy array or scalar; inside ``jitgrad.jit``
a tracer of the enclosing trace).  A :class:`Variable` is a mutable holder of
one.  Both support Python's operators and NumPy's ufunc / function protocols.

Every operation computes its value at once, with NumPy (eager execution), and
is recorded on every active tape (a :class:`~jitgrad.tape.recording.Session`)
that tracks one of its operands; :mod:`jitgrad.tape.recording` describes what
a recording holds and how it is replayed and cached.  Operators and methods
return Tensors; NumPy's functions and ufuncs return Tensors when a tape
records them and plain NumPy values otherwise (as for TensorFlow's eager
tensors, so NumPy and SciPy code takes the values as they are).  Tensor and Variable
answer the sessions' questions about themselves (the protocol of
:class:`~jitgrad.tape.recording.TapeValue`): a Tensor is one node per session
that tracks it (``_refs``), a Variable one node per value read of it.
"""
from __future__ import annotations

import numpy as np

from .. import numpy as jnp
from .. import lax
from ..core import tree as tree_util
from ..core.trace import Tracer
from ..numpy.dispatch import FUNCTIONS, UFUNC_REDUCE, UFUNCS
from . import capture as _capture
from .recording import _check_real, _hkey, _Ref, _state, _strip, TapeValue

_ARRAYS = (np.ndarray, np.generic, Tracer)


# ---------------------------------------------------------------------------
# Operations


def _apply(np_fn, fn, args, kwargs, plain=False):
    """Compute ``np_fn(*values)`` now; record ``fn`` (the jitgrad.numpy function)
    on every active session that tracks an operand.  The result is a Tensor;
    with ``plain`` (NumPy's functions and ufuncs), the bare value when no
    session records the operation, as NumPy functions of TensorFlow's eager
    tensors give NumPy values (so SciPy and NumPy code take them as they are)."""
    vals = [a._value if isinstance(a, _Base) else _strip(a) for a in args]
    for v in vals:
        if isinstance(v, np.ndarray) and type(v) is not np.ndarray:
            _reject_subclass(v)
    out = np_fn(*vals, **kwargs)
    if not isinstance(out, _ARRAYS):
        return out                      # np.shape, np.ndim ...: not an array
    res = Tensor(out)
    active = _state.active
    recorded = False
    if active:
        for s in active:
            hit = False
            for a in args:
                if type(a) is Tensor:       # the common case, inlined
                    refs = a._refs
                    if refs is not None and s in refs:
                        hit = True
                elif isinstance(a, _Base):
                    if a._tracked_by(s, True):
                        hit = True
                elif s.tracks(a, True):     # lists and tuples of values
                    hit = True
            if hit:
                _check_real(out, f"the result of {getattr(fn, '__name__', 'an operation')}")
                s.record(fn, args, kwargs, (res,))
                recorded = True
    return out if plain and not recorded else res


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


class _Base(TapeValue):
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

    def __format__(self, spec):
        """Formats as the value does: ``f"{loss:.4f}"`` on a 0-d value."""
        return format(self.numpy(), spec) if spec else str(self)

    def __round__(self, ndigits=None):
        return round(self.numpy(), ndigits) if ndigits is not None else round(self.numpy())

    def get_shape(self):
        return self.shape

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
            return _apply(ufunc, fn, inputs, kwargs, plain=True)
        if method == "reduce" and name in UFUNC_REDUCE:
            return _apply(getattr(ufunc, "reduce"), UFUNC_REDUCE[name], inputs, kwargs, plain=True)
        return _untracked(getattr(ufunc, method), inputs, kwargs, f"numpy.{name}.{method}")

    def __array_function__(self, func, types, args, kwargs):
        fn = FUNCTIONS.get(func)
        if fn is None:
            return _untracked(func, args, kwargs, f"numpy.{func.__name__}")
        return _apply(func, fn, args, kwargs, plain=True)

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
    # bitwise, as NumPy's operators (on booleans: logical); jitgrad.numpy
    # computes them on booleans only, so an integer one cannot be differentiated
    __and__, __rand__ = _binop(np.bitwise_and, jnp.bitwise_and)
    __or__, __ror__ = _binop(np.bitwise_or, jnp.bitwise_or)
    __xor__, __rxor__ = _binop(np.bitwise_xor, jnp.bitwise_xor)

    def __neg__(self):
        return _apply(np.negative, jnp.negative, (self,), {})

    def __pos__(self):
        return self

    def __abs__(self):
        return _apply(np.absolute, jnp.absolute, (self,), {})

    def __invert__(self):
        return _apply(np.invert, jnp.invert, (self,), {})

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

    def __str__(self):
        v = self._value
        body = repr(v) if isinstance(v, Tracer) else str(np.asarray(v))
        sep = "\n" if "\n" in body else ""
        return f"jitgrad.Tensor({sep}{body}, shape={self.shape}, dtype={self.dtype.name})"

    # -- what a recording session asks (see jitgrad.tape.recording)
    def _watch_in(self, session):
        refs = self._refs
        if refs is None:
            self._refs = refs = {}
        if session not in refs:
            refs[session] = session.new_leaf(self._value, self)

    def _tracked_by(self, session, auto_watch):
        refs = self._refs
        return refs is not None and session in refs

    def _encode_in(self, session):
        refs = self._refs
        if refs is not None:
            k = refs.get(session)
            if k is not None:
                return _Ref(k), k
        v = self._value
        if isinstance(v, np.ndarray) or isinstance(v, np.generic) or isinstance(v, Tracer):
            return session.const(v, self)
        return v, _hkey(v)

    def _node_in(self, session):
        refs = self._refs
        return None if refs is None else refs.get(session)

    def _nodes_in(self, session):
        k = self._node_in(session)
        return [] if k is None else [k]


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


class Variable(_Base):
    """A mutable array, as ``tf.Variable``.

    ``Variable(5.0)`` is float32 (TensorFlow's rule for Python floats); a NumPy
    array keeps its dtype.  Operations on a Variable read its current value;
    a trainable Variable used inside a :class:`~jitgrad.GradientTape` is watched
    automatically.  ``assign``, ``assign_add`` and ``assign_sub`` replace the
    value (keeping dtype and shape); they are not recorded by tapes.  Inside
    :func:`jitgrad.function` a Variable is state of the compiled function
    (see :mod:`jitgrad.tape.capture`).
    """

    __slots__ = ("_val", "trainable", "_name", "__weakref__")

    def __init__(self, initial_value, dtype=None, trainable=True, name=None, shape=None):
        value = _convert(initial_value, dtype)
        cap = _capture.current()
        if cap is not None:
            _check_created_in(cap, value)
        if shape is not None and tuple(shape) != tuple(value.shape):
            raise ValueError(f"Variable: the initial value has shape {tuple(value.shape)}, "
                             f"not the shape {tuple(shape)} given")
        self._val = value
        self.trainable = bool(trainable)
        self._name = str(name) if name is not None else "Variable"

    # The value.  Read through this property: inside a function that
    # jitgrad.function traces, the first read makes the Variable an input.
    @property
    def _value(self):
        if _capture.open_count:
            cap = _capture.current()
            if cap is not None:
                return cap.read(self)
        return self._val

    @_value.setter
    def _value(self, value):
        self._val = value

    @property
    def name(self):
        """The name, with TensorFlow's ``:0`` suffix (``Variable(1.0, name="w").name == "w:0"``)."""
        return f"{self._name}:0"

    def __repr__(self):
        return (f"<jitgrad.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}, "
                f"numpy={_fmt(self._value)}>")

    # -- what a recording session asks (see jitgrad.tape.recording): one
    # node per value read (Session.var_node)
    def _watch_in(self, session):
        session.var_node(self, True)

    def _tracked_by(self, session, auto_watch):
        if id(self) in session.var_nodes:
            return True
        if auto_watch and session.watch_accessed and self.trainable:
            session.var_node(self, True)
            return True
        return False

    def _encode_in(self, session):
        k = session.var_node(self, False)
        if k is not None:
            return _Ref(k), k
        return session.const(self._value, self)

    def _node_in(self, session):
        nv = session.var_nodes.get(id(self))
        return None if nv is None else nv[0]

    def _nodes_in(self, session):
        return list(session.var_leaves.get(id(self), ()))

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

    def assign(self, value, use_locking=False, name=None, read_value=True):
        """Replace the value (cast to the variable's dtype; the shape must match).
        Returns the Variable, as TensorFlow does (None with ``read_value=False``)."""
        self._set(self._new_value(value))
        return self if read_value else None

    def _set(self, new):
        if isinstance(new, Tracer) and not isinstance(self._value, Tracer):
            raise TypeError(
                f"a traced value (inside jitgrad.jit or grad) was assigned to Variable '{self.name}', "
                "which was created outside the traced function: the update would escape the trace. "
                "Compile the function with jitgrad.function instead (it makes the Variables it "
                "reads and assigns state of the compiled function), or, inside jitgrad.jit, pass "
                "parameters in as arrays and return the new values (the optimizers' init/update "
                "functions do this)")
        self._value = new

    def assign_add(self, delta, use_locking=False, name=None, read_value=True):
        """``self += delta``, computed in the variable's dtype."""
        return self.assign(self._value + self._in_dtype(delta), read_value=read_value)

    def assign_sub(self, delta, use_locking=False, name=None, read_value=True):
        """``self -= delta``, computed in the variable's dtype."""
        return self.assign(self._value - self._in_dtype(delta), read_value=read_value)


def _check_created_in(cap, value):
    """A Variable created while ``jitgrad.function`` traces: a real Variable that
    outlives the trace, so only on the function's first trace (TensorFlow's
    rule) and from a value that does not depend on the arguments."""
    if isinstance(value, Tracer):
        raise ValueError(
            f"a Variable created inside jitgrad.function ({cap.fname}) must start from a value "
            "that does not depend on the function's arguments or on other Variables; create it "
            "outside the function (or from constants), and assign the computed value to it")
    if not cap.first:
        raise ValueError(
            f"{cap.fname} created a Variable when jitgrad.function traced it again (for a new "
            "signature): as in TensorFlow, a function may create Variables on its first trace "
            "only; create them outside the function and pass them in or close over them")


def _copy(x):
    """A read of a Variable: its own array, not the Variable's."""
    return x if isinstance(x, Tracer) else np.array(x)
