"""Derivatives of a recording: replay it into an IR, transform, cache, run.

A tape is a :class:`~jitgrad.tape.recording.Session` that records the operations on
values it tracks (see :mod:`jitgrad.tape.recording`).  To differentiate, the
recording is replayed on tracers of a fresh trace; that gives an IR whose
inputs are, in order, the watched leaves, the constants the operations used,
and one zero perturbation per intermediate value asked for as a source (added
to that value, so its gradient is the perturbation's, while the gradients of
the leaves still flow through it), and whose outputs are the targets.
Reverse mode is then ``vjp_ir`` (jvp + transpose), forward mode ``jvp_ir``,
both followed by ``optimize`` and an ``Executable``.

The result is cached by the recording's key (the structure of every event,
shapes and dtypes of leaves and constants, integer literals) plus the targets
and sources, in a bounded least-recently-used table.  Constants, and the
float scalars of elementwise operations, are inputs, not baked in, so one
executable serves every step of a training loop whose data or learning rate
changes.  Results are fresh arrays: never an input, a constant or another
result.

Nesting.  When another session is recording and tracks some input of a
gradient computation, the computation is recorded on it too, as one event
whose replay evaluates the gradient IR on that session's tracers
(``eval_ir``): the returned gradient is then a Tensor that session tracks,
which is all higher-order derivatives need.

Inside ``jitgrad.jit`` (or any jitgrad trace) the values are tracers of that
trace; the gradient IR is then inlined with ``eval_ir`` instead of executed,
so a whole training step compiles into one function.
"""
from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

import numpy as np

from .. import numpy as jnp
from ..backend.executable import Executable
from ..core import trace as core
from ..core import tree as tree_util
from ..core.ir import Aval, Var
from ..core.trace import eval_ir, new_trace, Tracer
from ..transforms.autodiff import jvp_ir, vjp_ir
from ..transforms.passes import lower
from .recording import active_sessions, _Const, _Ref
from .variables import Tensor, Variable

# key -> _Entry, least recently used first.  Bounded: a loop whose recording
# changes structure every step must not grow memory without end.
_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 256
build_count = 0            # how many gradient/jvp IRs were built (for tests)


class UnconnectedGradients:
    """What a source that does not reach the target gets: ``NONE`` (None) or ``ZERO``."""
    NONE = "none"
    ZERO = "zero"


def _unconnected_mode(u):
    u = getattr(u, "value", u)
    u = str(u).lower()
    if u not in ("none", "zero"):
        raise ValueError(f"unconnected_gradients must be 'none' or 'zero', got {u!r}")
    return u


def _aval(v):
    return Aval(tuple(v.shape), np.dtype(v.dtype))


def _is_float(dtype):
    return np.issubdtype(np.dtype(dtype), np.floating)


def _zeros(shape, dtype):
    z = np.zeros(shape, dtype)
    return z[()] if z.ndim == 0 else z


# ---------------------------------------------------------------------------
# From a recording to an IR


def _replay(s, target_nodes, perturbed_nodes, perturbed_avals):
    """Trace the session's events into an IR.

    invars: leaves, constants, then one *perturbation* per node in
    ``perturbed_nodes`` (intermediate values asked for as sources); outvars:
    the targets.  A perturbed node's value is ``value + eps``, with ``eps`` an
    input the caller sets to -0.0 (``x + -0.0`` is ``x`` for every ``x``,
    -0.0 included, so the values are exact).  The gradient with respect to
    ``eps`` is then the gradient with respect to the intermediate value, along
    every path from it, while the gradient with respect to a leaf still flows
    through the value's producer: TensorFlow's semantics for mixed sources.
    """
    with new_trace() as tr:
        env = {}
        for node, v in zip(s.leaf_nodes, s.leaves):
            env[node] = tr.new_arg(_aval(v))
        consts = [tr.new_arg(_aval(c)) for c in s.consts]
        eps = {node: tr.new_arg(av) for node, av in zip(perturbed_nodes, perturbed_avals)}

        def sub(a):
            if type(a) is _Ref:
                return env[a.k]
            if type(a) is _Const:
                return consts[a.j]
            if type(a) is list or type(a) is tuple:
                return type(a)(sub(x) for x in a)
            return a

        for fn, enc, kwargs, first, n_out in s.ops:
            out = fn(*[sub(a) for a in enc], **kwargs)
            for k, o in enumerate(out if type(out) is list else [out], first):
                env[k] = jnp.add(o, eps[k]) if k in eps else o
        return tr.to_ir([env[n] for n in target_nodes])


def _reach(ir, outvars):
    """Variables the given outputs depend on (walking the equations backwards)."""
    live = {v for v in outvars if isinstance(v, Var)}
    for e in reversed(ir.eqns):
        if any(v in live for v in e.outputs):
            live.update(a for a in e.inputs if isinstance(a, Var))
    return live


class _Entry:
    """One cached derivative computation: its IR, executable, and which of the
    requested sources it produces (the connected ones)."""

    __slots__ = ("key", "ir", "exe", "connected", "out_connected")

    def __init__(self, key, ir, connected, out_connected=None):
        self.key = key
        self.ir = ir
        self.exe = Executable(ir, "tape_" + key[0]) if ir is not None else None
        self.connected = connected          # per requested source: bool
        self.out_connected = out_connected  # jvp: per target: bool
        # arrays the executable may return as they are: its constants

    def inline(self, *args):
        """Evaluate on tracers (replay of a nested recording)."""
        return list(eval_ir(self.ir, list(args)))


def _cached(key):
    e = _CACHE.get(key)
    if e is not None:
        try:
            _CACHE.move_to_end(key)
        except KeyError:                 # evicted by another thread meanwhile
            pass
    return e


def _store(key, e):
    with _CACHE_LOCK:
        _CACHE[key] = e
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)


def _entry(mode, s, target_nodes, src_nodes, perturbed_avals):
    """Build (or fetch) the derivative of the session's recording.

    ``mode``: 'grad' (reverse, cotangent 1 per target), 'vjp' (reverse,
    cotangents are inputs) or 'jvp' (forward, tangents of ``src_nodes`` are
    inputs).  ``src_nodes`` that are not leaves are perturbed (see
    :func:`_replay`), in their order, with the given avals.
    """
    key = (mode, tuple(s.keys), tuple(target_nodes), tuple(src_nodes))
    e = _cached(key)
    if e is not None:
        return e
    global build_count
    build_count += 1
    n_leaf, n_const = len(s.leaves), len(s.consts)
    leaf_pos = {n: i for i, n in enumerate(s.leaf_nodes)}
    perturbed = [n for n in src_nodes if n not in leaf_pos]
    ir = _replay(s, target_nodes, perturbed, perturbed_avals)
    pos = [leaf_pos[n] if n in leaf_pos else n_leaf + n_const + perturbed.index(n)
           for n in src_nodes]
    live = _reach(ir, ir.outvars)
    connected = [ir.invars[p] in live and _is_float(ir.invars[p].aval.dtype) for p in pos]
    which = [p for p, c in zip(pos, connected) if c]
    n_out = len(ir.outvars)
    if mode == "jvp":
        sel = {ir.invars[p] for p in which}
        out_conn = [bool(_reach(ir, [v]) & sel) for v in ir.outvars]
        if not which:
            e = _Entry(key, None, connected, out_conn)
        else:
            d = jvp_ir(ir, which)
            d.outvars = d.outvars[n_out:]
            e = _Entry(key, lower(d), connected, out_conn)
    elif not which:
        e = _Entry(key, None, connected)
    else:
        d = vjp_ir(ir, which, seed_ones=(mode == "grad"))
        d.outvars = d.outvars[n_out:]
        e = _Entry(key, lower(d), connected)
    _store(key, e)
    return e


def _run(entry, values, owners, exclude, record=True):
    """Run a derivative entry on ``values``; with ``record``, record it on every
    active session (but ``exclude``) that tracks one of ``owners`` (the
    objects the values came from, one per value)."""
    if core.is_tracing() or any(isinstance(v, Tracer) for v in values):
        outs = list(eval_ir(entry.ir, values))       # inside a jitgrad trace: inline
    else:
        outs = entry.exe(values)   # fresh arrays (see Executable)
    if not record:
        return outs
    others = [s for s in active_sessions() if s is not exclude]
    if not others:
        return outs
    tensors = None
    for s in others:
        if any(s.tracks(o, False) for o in owners):
            if tensors is None:
                tensors = [Tensor(o) for o in outs]
            s.record(entry.inline, owners, {}, tensors, fnkey=("derivative", entry.key))
    return outs if tensors is None else tensors


def _check_targets(target, targets, what):
    if target is None:
        raise TypeError(f"{what}: target is None; give the Tensor to differentiate")
    for i, t in enumerate(targets):
        if not isinstance(t, (Tensor, Variable)):
            raise TypeError(
                f"{what}: target {i} is a {type(t).__name__}, not a jitgrad Tensor or Variable, so "
                "it does not depend on anything the tape recorded; compute it inside the tape's "
                "'with' block from Variables or watched Tensors with NumPy's functions (np.sum), "
                "operators and tensor methods, not from values taken out with .numpy() (the "
                "jitgrad.numpy functions work on traced arrays, not on tensors)")


def _check_sources(srcs, what):
    for i, x in enumerate(srcs):
        if not isinstance(x, (Tensor, Variable)):
            raise TypeError(
                f"{what}: source {i} is a {type(x).__name__}; sources must be jitgrad Variables "
                "or Tensors (wrap a NumPy array or Python number with jitgrad.constant, call "
                "tape.watch on the result and compute with that tensor)")
        if not _is_float(x.dtype):
            warnings.warn(f"{what}: source {i} has dtype {x.dtype.name}; only floating-point "
                          "values have gradients, so its gradient is None (zeros with "
                          "unconnected_gradients='zero')", RuntimeWarning, stacklevel=3)


def _warn_integer_targets(targets, what):
    for i, t in enumerate(targets):
        if not _is_float(t.dtype):
            warnings.warn(f"{what}: target {i} has dtype {t.dtype.name}; only floating-point "
                          "values have gradients, so nothing flows back from it",
                          RuntimeWarning, stacklevel=3)


def _target_nodes(s, targets):
    """The distinct nodes of the tracked targets (untracked ones have no gradient)."""
    return list(dict.fromkeys(n for n in map(s.node_of, targets) if n is not None))


def _seeds(s, targets):
    """None when every tracked target appears once (cotangent 1 for each, mode
    'grad'); else ones for every target, so that a repeated target counts as
    often as it appears."""
    nodes = [n for n in map(s.node_of, targets) if n is not None]
    if len(set(nodes)) == len(nodes):
        return None
    return [np.ones(_value(t).shape, _value(t).dtype) for t in targets]


def _cotangents(s, targets, output_gradients):
    """Validated ``output_gradients``: the distinct target nodes, their cotangents
    (of the target's dtype) and the objects they came from; the cotangents of
    a target that appears more than once add up."""
    cts = tree_util.flatten(output_gradients)[0]
    if len(cts) != len(targets):
        raise ValueError(f"output_gradients has {len(cts)} arrays for {len(targets)} targets: "
                         "give one per target, in the structure of target")
    owner, like = {}, {}
    for i, (t, c) in enumerate(zip(targets, cts)):
        tv = _value(t)
        if not isinstance(c, (Tensor, Variable, Tracer, np.ndarray, np.generic, float, int)):
            raise TypeError(f"output_gradients[{i}] is a {type(c).__name__}; give an array of "
                            "the target's shape")
        if tuple(np.shape(_value(c))) != tuple(tv.shape):
            raise ValueError(f"output_gradients[{i}] has shape {tuple(np.shape(_value(c)))} but "
                             f"target {i} has shape {tuple(tv.shape)}: each output gradient must "
                             "have the shape of its target")
        n = s.node_of(t)
        if n is not None:
            owner[n] = c if n not in owner else owner[n] + c
            like[n] = tv
    return list(owner), [_cast_like(_value(c), like[n]) for n, c in owner.items()], list(owner.values())


class _Plan:
    """A reverse-mode derivative of a session's recording, ready to run: the
    entry, its input values (leaves, constants, perturbations) and their owners,
    and for each requested source its nodes (a Variable assigned during the
    recording has several; their gradients add up)."""

    def __init__(self, s, mode, tnodes, srcs):
        self.per_src = [s.nodes_of(x) for x in srcs]
        leaves = set(s.leaf_nodes)
        objs = {}
        for ns, x in zip(self.per_src, srcs):
            for n in ns:
                objs.setdefault(n, x)
        # intermediate sources that are not floating point have no gradient
        self.src_nodes = [n for n in objs if n in leaves or _is_float(_value(objs[n]).dtype)]
        avals = [_aval(_value(objs[n])) for n in self.src_nodes if n not in leaves]
        self.entry = None
        if tnodes and self.src_nodes:
            self.entry = _entry(mode, s, tnodes, self.src_nodes, avals)
        eps = [np.full(av.shape, -0.0, av.dtype) for av in avals]
        self.values = s.leaves + s.consts + eps
        self.owners = s.leaf_owners + [o if o is not None else c for o, c in
                                       zip(s.const_owners, s.consts)] + eps

    @property
    def empty(self):
        return self.entry is None or self.entry.ir is None

    def run(self, extra_values, extra_owners, exclude, record=True):
        """Per source: its gradient (None when unconnected).  ``extra_values``:
        the cotangents (mode 'vjp'), which came from ``extra_owners``; see
        :func:`_run` for ``exclude`` and ``record``."""
        if self.empty:
            return [None] * len(self.per_src)
        e = self.entry
        outs = iter(_run(e, self.values + extra_values, self.owners + extra_owners, exclude,
                         record))
        by_node = {n: next(outs) for n, c in zip(self.src_nodes, e.connected) if c}
        res = []
        for ns in self.per_src:
            gs = [by_node[n] for n in ns if n in by_node]
            g = None
            for x in gs:
                g = x if g is None else g + x
            res.append(g)
        return res


def _value(x):
    return x._value if isinstance(x, (Tensor, Variable)) else x


def _cast_like(c, like, what="output_gradients"):
    """``c`` in the dtype of ``like``; a complex ``c`` is refused (casting would
    drop its imaginary part)."""
    if isinstance(c, Tracer) or isinstance(like, Tracer):
        return c
    if np.iscomplexobj(c):
        raise TypeError(f"{what} must be real: a complex value was given for a "
                        f"{np.dtype(like.dtype).name} value, whose imaginary part would be dropped")
    return np.asarray(c, np.dtype(like.dtype))


def _results(values, objs, mode_u):
    """The derivatives handed back, one per requested object: zeros of its
    shape for an unconnected one under ``unconnected_gradients="zero"`` (else
    None), and a separate array for each repetition of the same one."""
    res, seen = [], set()
    for r, obj in zip(values, objs):
        if r is None and mode_u == "zero":
            v = _value(obj)
            r = _zeros(tuple(np.shape(v)), np.asarray(v).dtype)
        elif isinstance(r, np.ndarray):
            if id(r) in seen:           # the same object listed twice: two arrays
                r = r.copy()
            seen.add(id(r))
        res.append(as_tensor(r))
    return res


def as_tensor(r):
    """A derivative as the tape API hands it back: a :class:`Tensor` (as
    TensorFlow's), whether or not an enclosing tape records it; None stays None."""
    return r if r is None or isinstance(r, Tensor) else Tensor(r)
