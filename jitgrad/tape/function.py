"""``jitgrad.function``: TensorFlow's ``tf.function``, with Variables as state.

A function decorated with :func:`function` is traced once per signature into
one IR, as ``jitgrad.jit`` does, and compiled.  Unlike ``jit``, it may read
and assign :class:`~jitgrad.Variable` s it closes over (or receives), record a
:class:`~jitgrad.GradientTape` and call an optimizer's ``apply_gradients``:
while it is traced, every Variable it reads becomes an extra input and every
Variable it assigns an extra output (see :mod:`jitgrad.tape.capture`).  Each
call passes the Variables' current values in and writes their new values
back, so a whole training step runs as one native function.

The signature of a call, as in TensorFlow: the structure of the arguments,
the shape and dtype of each array (NumPy arrays and Tensors), the identity
of each Variable passed in, and the value and type of each other Python
argument (numbers, strings, None): a new Python value traces again.

While a GradientTape (or ForwardAccumulator) records on the thread, the
function runs eagerly instead, so that the tape records its operations and
gradients flow through it.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from ..api.arguments import coerce
from ..backend.executable import Executable
from ..core import tree as tree_util
from ..core.ir import Aval
from ..core.trace import Tracer, is_tracing, new_trace
from ..transforms.passes import lower
from .capture import Capture
from .recording import active_sessions
from .variables import Tensor, Variable, _Base

trace_count = 0      # how many times a function was traced (for tests)


class _Entry:
    """One traced signature: the executable, the captured Variables (the
    inputs after the arguments), which of them it assigns (the outputs after
    the results), and how to rebuild the results' structure."""

    __slots__ = ("exe", "variables", "assigned", "n_out", "out_tree", "kinds")

    def __init__(self, exe, variables, assigned, n_out, out_tree, kinds):
        self.exe, self.variables, self.assigned = exe, variables, assigned
        self.n_out, self.out_tree, self.kinds = n_out, out_tree, kinds


def _split(args, kwargs):
    """The arguments' leaves: arrays (traced), and the rest (static, part of the
    key).  Returns (array leaves, their slots, treedef, static key)."""
    leaves, tree = tree_util.flatten((tuple(args), dict(kwargs)))
    arrays, slots, static = [], [], []
    for i, x in enumerate(leaves):
        if isinstance(x, Variable):
            static.append((i, "var", id(x)))
        elif isinstance(x, (Tensor, np.ndarray, np.generic, Tracer)):
            value = coerce(x, f"argument leaf {i}")
            arrays.append(value)
            slots.append(i)
        else:
            try:
                hash(x)
            except TypeError:
                raise TypeError(f"jitgrad.function: argument leaf {i} is a {type(x).__name__}, "
                                "which is neither an array nor a hashable Python value") from None
            static.append((i, type(x), x))
    key = (tree, tuple(static), tuple((a.shape, a.dtype) for a in arrays))
    return leaves, arrays, slots, tree, key


class Function:
    """A Python function compiled per signature with Variables as state
    (see :func:`function`)."""

    def __init__(self, f):
        self.python_function = f
        self._cache = {}
        self._fast = {}          # the same entries, for calls with array arguments only
        self._traced_once = False
        self._lock = threading.RLock()
        functools.update_wrapper(self, f)

    def __get__(self, obj, objtype=None):
        """A method: bound to ``obj``, which becomes a static argument."""
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        if is_tracing() or active_sessions():
            # inside another trace (jit, grad, or an enclosing function): inline;
            # while a tape records, run eagerly, so that the tape sees every operation
            return self.python_function(*args, **kwargs)
        # the hot path: NumPy arrays as the only (positional) arguments, or none
        fkey = None
        if not kwargs and all(type(a) is np.ndarray for a in args):
            fkey = tuple((a.shape, a.dtype) for a in args)
            e = self._fast.get(fkey)
            if e is not None:
                return self._run(e, list(args))
        leaves, arrays, slots, tree, key = _split(args, kwargs)
        e = self._cache.get(key)
        if e is None:
            with self._lock:     # two threads' first calls: one trace (and one first trace)
                e = self._cache.get(key)
                if e is None:
                    e = self._cache[key] = self._trace(leaves, arrays, slots, tree)
        if fkey is not None and all(a is x for a, x in zip(args, arrays)):
            self._fast[fkey] = e          # (not for arrays that coerce converted)
        return self._run(e, arrays)

    def _run(self, e, arrays):
        """Call entry ``e``: the arrays and the Variables' values in, the
        results out, the assigned Variables' new values written back."""
        state = [v._val for v in e.variables]
        outs = e.exe.call(arrays + state)
        for v, new in zip(e.assigned, outs[e.n_out:]):
            v._val = np.asarray(new)      # fresh (a 0-d result is a NumPy scalar)
        results = [Tensor(o) if k else o for o, k in zip(outs[:e.n_out], e.kinds)]
        return tree_util.unflatten(e.out_tree, results)

    def _trace(self, leaves, arrays, slots, tree):
        global trace_count
        trace_count += 1
        f = self.python_function
        fname = getattr(f, "__name__", repr(f))
        with new_trace() as tr:
            tracers = [tr.new_arg(Aval(tuple(a.shape), np.dtype(a.dtype))) for a in arrays]
            filled = list(leaves)
            for i, t in zip(slots, tracers):
                filled[i] = Tensor(t) if isinstance(leaves[i], Tensor) else t
            args, kwargs = tree_util.unflatten(tree, filled)
            with Capture(tr, not self._traced_once, fname) as cap:
                out = f(*args, **kwargs)
                out_leaves, out_tree = tree_util.flatten(out)
                values, kinds = [], []
                for o in out_leaves:
                    kinds.append(isinstance(o, (_Base, Tracer, np.ndarray, np.generic)))
                    values.append(_output(o, fname))
            assigned = [(v, final) for v, final, inp in zip(cap.variables, cap.finals, cap.inputs)
                        if final is not inp]
            ir = tr.to_ir(values + [final for _, final in assigned])
        self._traced_once = True
        exe = Executable(lower(ir), fname)
        return _Entry(exe, cap.variables, [v for v, _ in assigned], len(values), out_tree, kinds)

    def experimental_get_tracing_count(self):
        """How many signatures were traced (TensorFlow's name)."""
        return len(self._cache)


def _output(o, fname):
    if isinstance(o, _Base):
        return o._value
    if isinstance(o, (Tracer, np.ndarray, np.generic, bool, int, float)):
        return o
    raise TypeError(f"jitgrad.function: {fname} returned a {type(o).__name__}; a compiled "
                    "function returns Tensors, arrays, numbers, or structures of them")


def function(func=None, *, input_signature=None, jit_compile=None, reduce_retracing=False,
             autograph=True, experimental_compile=None):
    """Compile ``func`` into one native function per signature, as ``tf.function``.

    ``func`` may read and ``assign`` Variables, record a GradientTape and call
    an optimizer's ``apply_gradients``: the Variables it reads are state of
    the compiled function, read before each call and written back after it.
    Array arguments (NumPy arrays, Tensors) are traced by shape and dtype;
    other Python arguments are part of the signature (a new value traces
    again).  Results are Tensors.  Python side effects (``print``, appending
    to a list, ``if`` on a traced value) happen while tracing only, as in
    TensorFlow; Python control flow on traced values raises the tracer's
    error.  ``input_signature`` is not supported; ``jit_compile`` and the
    other TensorFlow options are accepted and ignored.

    Variables may be created on the first trace only (an optimizer's slots on
    its first ``apply_gradients``), from values that do not depend on the
    arguments.
    """
    if input_signature is not None:
        raise NotImplementedError("jitgrad.function: input_signature is not supported; each new "
                                  "shape or dtype of the array arguments traces again")
    if func is None:
        return function
    if not callable(func):
        raise TypeError(f"jitgrad.function expects a callable, got {type(func).__name__}")
    return Function(func)
