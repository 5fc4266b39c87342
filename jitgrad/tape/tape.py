"""TensorFlow's tape API: GradientTape and ForwardAccumulator.

A tape is a :class:`~jitgrad.variables.Session` that records the operations on
values it tracks (see :mod:`jitgrad.variables`).  To differentiate, the
recording is replayed on tracers of a fresh trace; that gives an IR whose
inputs are, in order, the watched leaves, the constants the operations used,
and the intermediate values asked for as sources (their producing equations
are skipped, so they become free inputs), and whose outputs are the targets.
Reverse mode is then ``vjp_ir`` (jvp + transpose), forward mode ``jvp_ir``,
both followed by ``optimize`` and an ``Executable``.

The result is cached by the recording's key (the structure of every event,
shapes and dtypes of leaves and constants, literal values) plus the targets
and sources.  Constants are inputs, not baked in, so one executable serves
every step of a training loop whose data changes.

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

import numpy as np

from ..core import trace as core
from ..core import tree as tree_util
from ..core.trace import Tracer, eval_ir, new_trace
from ..core.ir import Aval, Var
from ..transforms.passes import lower
from ..backend.executable import Executable
from ..transforms.autodiff import jvp_ir, vjp_ir
from .variables import Session, Tensor, Variable, _active, _Const, _Ref

_CACHE: dict = {}          # key -> _Entry
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


def _replay(s, target_nodes, free_nodes, free_avals):
    """Trace the session's events into an IR.

    invars: leaves, constants, then one per node in ``free_nodes`` (an
    intermediate value treated as an independent input); outvars: the targets.
    """
    with new_trace() as tr:
        env = {}
        for node, v in zip(s.leaf_nodes, s.leaves):
            env[node] = tr.new_arg(_aval(v))
        consts = [tr.new_arg(_aval(c)) for c in s.consts]
        free = set(free_nodes)
        for node, av in zip(free_nodes, free_avals):
            env[node] = tr.new_arg(av)

        def sub(a):
            if type(a) is _Ref:
                return env[a.k]
            if type(a) is _Const:
                return consts[a.j]
            if type(a) is list or type(a) is tuple:
                return type(a)(sub(x) for x in a)
            return a

        for fn, enc, kwargs, first, n_out in s.ops:
            if n_out == 1 and first in free:
                continue
            out = fn(*[sub(a) for a in enc], **kwargs)
            if type(out) is list:
                for i, o in enumerate(out):
                    env.setdefault(first + i, o)
            else:
                env.setdefault(first, out)
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

    def inline(self, *args):
        """Evaluate on tracers (replay of a nested recording)."""
        return list(eval_ir(self.ir, list(args)))


def _entry(mode, s, target_nodes, src_nodes, free_avals, n_free):
    """Build (or fetch) the derivative of the session's recording.

    ``mode``: 'grad' (reverse, cotangent 1 per target), 'vjp' (reverse,
    cotangents are inputs) or 'jvp' (forward, tangents of ``src_nodes`` are inputs).
    """
    key = (mode, tuple(s.keys), tuple(target_nodes), tuple(src_nodes))
    e = _CACHE.get(key)
    if e is not None:
        return e
    global build_count
    build_count += 1
    free_nodes = src_nodes[len(src_nodes) - n_free:]
    ir = _replay(s, target_nodes, free_nodes, free_avals)
    n_leaf, n_const = len(s.leaves), len(s.consts)
    leaf_pos = {n: i for i, n in enumerate(s.leaf_nodes)}
    pos = [leaf_pos[n] if n in leaf_pos else n_leaf + n_const + free_nodes.index(n)
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
    _CACHE[key] = e
    return e


def _run(entry, values, owners, exclude):
    """Run a derivative entry on ``values``; record it on every other active session
    that tracks one of ``owners`` (the objects the values came from)."""
    if core.is_tracing() or any(isinstance(v, Tracer) for v in values):
        outs = list(eval_ir(entry.ir, values))       # inside a jitgrad trace: inline
    else:
        outs = entry.exe(values)
    others = [s for s in _active if s is not exclude]
    if not others:
        return outs
    tensors = None
    for s in others:
        if any(s.tracks(o, False) for o in owners):
            if tensors is None:
                tensors = [Tensor(o) for o in outs]
            s.record(entry.inline, owners, {}, tensors, fnkey=("derivative", entry.key))
    return outs if tensors is None else tensors


def _target_nodes(s, targets):
    nodes = []
    for t in targets:
        n = s.node_of(t)
        if n is not None and n not in nodes:
            nodes.append(n)
    return nodes


def _split_sources(s, sources):
    """Node per source (None: not tracked); unique nodes, leaves first, then the
    intermediate ones (which become free inputs) with their avals."""
    leaf_set = set(s.leaf_nodes)
    nodes = [s.node_of(x) for x in sources]
    leaf_nodes, free_nodes, free_objs = [], [], []
    for n, x in zip(nodes, sources):
        if n is None:
            continue
        if n in leaf_set:
            if n not in leaf_nodes:
                leaf_nodes.append(n)
        elif n not in free_nodes:
            free_nodes.append(n)
            free_objs.append(x)
    return nodes, leaf_nodes + free_nodes, free_objs


def _value(x):
    return x._value if isinstance(x, (Tensor, Variable)) else x


# ---------------------------------------------------------------------------


class GradientTape:
    """Record operations for reverse-mode differentiation, as ``tf.GradientTape``.

    ::

        w = jitgrad.Variable(5.0)
        with jitgrad.GradientTape() as tape:
            loss = w * w
        tape.gradient(loss, w)        # 10.0 (float32)

    Trainable Variables used inside the ``with`` block are watched
    automatically (unless ``watch_accessed_variables=False``); other values
    only after :meth:`watch`.  A tape that is not ``persistent`` releases its
    recording after the first :meth:`gradient` (or jacobian) call.
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._s = Session(watch_accessed_variables)
        self._used = False
        self._entered = False

    # -- recording
    def __enter__(self):
        self._check_usable()
        if self._entered:
            raise RuntimeError("this GradientTape is already recording")
        self._entered = True
        _active.append(self._s)
        return self

    def __exit__(self, *exc):
        self._entered = False
        _remove(self._s)
        return False

    def watch(self, tensor):
        """Track ``tensor`` (a Tensor, a Variable, or a nested structure of them)."""
        self._check_usable()
        for x in tree_util.flatten(tensor)[0]:
            self._s.watch(x)

    def stop_recording(self):
        """Context manager: operations inside it are not recorded by this tape."""
        return _Paused(self)

    def reset(self):
        """Forget everything recorded so far (the tape keeps recording if active)."""
        old = self._s
        self._s = Session(self.watch_accessed_variables)
        self._used = False
        if old in _active:
            _active[_active.index(old)] = self._s

    def watched_variables(self):
        """The Variables this tape watches, in the order they were first watched."""
        return tuple(o for o in self._s.leaf_owners if isinstance(o, Variable))

    def _check_usable(self):
        if self._used:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of gradients "
                "(or jacobians); create it with GradientTape(persistent=True) to call gradient() "
                "more than once")

    def _consume(self):
        if not self.persistent:
            self._used = True
            if self._s in _active:
                _remove(self._s)
            self._s.release()

    # -- differentiation
    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """Gradient of ``target`` with respect to ``sources``.

        ``target``: a Tensor (or a structure of them: their gradients add up);
        a non-scalar target is differentiated as the sum of its elements, or
        weighted by ``output_gradients`` (same structure as ``target``).
        ``sources``: a Variable or Tensor, or a nested structure of them; the
        result has the same structure.  A source the target does not depend on
        (or that the tape does not track) gets None, or zeros with
        ``unconnected_gradients="zero"``.  Results are NumPy arrays (NumPy
        scalars for 0-d sources) of the source's dtype, or Tensors when an
        enclosing tape records this gradient computation.
        """
        self._check_usable()
        mode_u = _unconnected_mode(unconnected_gradients)
        s = self._s
        targets, ttree = tree_util.flatten(target)
        srcs, stree = tree_util.flatten(sources)
        for x in srcs:
            if not isinstance(x, (Tensor, Variable)):
                raise TypeError(f"gradient sources must be Variables or Tensors, got {type(x).__name__}")
        tnodes = _target_nodes(s, targets)
        nodes, src_nodes, free_objs = _split_sources(s, srcs)
        cts = None
        if output_gradients is not None:
            cts = tree_util.flatten(output_gradients)[0]
            if len(cts) != len(targets):
                raise ValueError("output_gradients must have the structure of target")
            pairs = [(t, c) for t, c in zip(targets, cts) if s.node_of(t) is not None]
            seen, tnodes, cts = set(), [], []
            for t, c in pairs:          # one cotangent per distinct target node
                n = s.node_of(t)
                if n in seen:
                    raise ValueError("the same target appears twice with output_gradients")
                seen.add(n)
                tnodes.append(n)
                cts.append(c)
        grads = {}
        if tnodes and src_nodes:
            mode = "grad" if cts is None else "vjp"
            e = _entry(mode, s, tnodes, src_nodes, [_aval(_value(x)) for x in free_objs],
                       len(free_objs))
            if e.ir is not None:
                values = s.leaves + s.consts + [_value(x) for x in free_objs]
                owners = s.leaf_owners + [o if o is not None else c for o, c in
                                          zip(s.const_owners, s.consts)] + free_objs
                if cts is not None:
                    tvals = [_value(t) for t in targets if s.node_of(t) is not None]
                    cvals = [_cast_like(_value(c), tv) for c, tv in zip(cts, tvals)]
                    values = values + cvals
                    owners = owners + list(cts)
                outs = _run(e, values, owners, s)
                it = iter(outs)
                for n, c in zip(src_nodes, e.connected):
                    if c:
                        grads[n] = next(it)
        self._consume()
        res = []
        for n, x in zip(nodes, srcs):
            g = grads.get(n) if n is not None else None
            if g is None and mode_u == "zero":
                v = _value(x)
                g = _zeros(tuple(v.shape), v.dtype)
            res.append(g)
        return tree_util.unflatten(stree, res)

    def jacobian(self, target, sources, unconnected_gradients="none",
                 parallel_iterations=None, experimental_use_pfor=True):
        """Jacobian of ``target`` with respect to each source: an array of shape
        ``target.shape + source.shape`` per source (one reverse pass per target
        element).  Computed eagerly; not recorded by enclosing tapes."""
        self._check_usable()
        mode_u = _unconnected_mode(unconnected_gradients)
        srcs, stree = tree_util.flatten(sources)
        tshape, tdtype = tuple(_value(target).shape), np.dtype(_value(target).dtype)
        rows = self._vjp_rows(target, srcs, _basis(tshape, tdtype, None))
        res = []
        for x, r in zip(srcs, rows):
            v = _value(x)
            shape = tshape + tuple(v.shape)
            if r is None:
                res.append(_zeros(shape, v.dtype) if mode_u == "zero" else None)
            else:
                res.append(np.stack(r).reshape(shape) if r else np.zeros(shape, v.dtype))
        self._consume()
        return tree_util.unflatten(stree, res)

    def batch_jacobian(self, target, source, unconnected_gradients="none",
                       parallel_iterations=None, experimental_use_pfor=True):
        """For ``target`` of shape ``(B, ...)`` whose example ``b`` depends only on
        example ``b`` of ``source`` (shape ``(B, ...)``): an array of shape
        ``(B,) + target.shape[1:] + source.shape[1:]``.  One reverse pass per
        element of one example (all examples at once)."""
        self._check_usable()
        mode_u = _unconnected_mode(unconnected_gradients)
        tshape, tdtype = tuple(_value(target).shape), np.dtype(_value(target).dtype)
        v = _value(source)
        sshape = tuple(v.shape)
        if not tshape or not sshape or tshape[0] != sshape[0]:
            raise ValueError("batch_jacobian: target and source must share their first (batch) dimension")
        rows = self._vjp_rows(target, [source], _basis(tshape, tdtype, tshape[0]))[0]
        b = tshape[0]
        shape = (b,) + tshape[1:] + sshape[1:]
        self._consume()
        if rows is None:
            return _zeros(shape, v.dtype) if mode_u == "zero" else None
        # row j holds, for every example b, d target[b, j] / d source[b, ...]
        out = np.stack([np.asarray(r).reshape(b, -1) for r in rows], axis=1)
        return out.reshape(shape)

    def _vjp_rows(self, target, srcs, basis):
        """For each source, the list of its vector-Jacobian products with each
        cotangent in ``basis`` (None when unconnected)."""
        s = self._s
        for x in srcs:
            if not isinstance(x, (Tensor, Variable)):
                raise TypeError(f"jacobian sources must be Variables or Tensors, got {type(x).__name__}")
        tn = s.node_of(target)
        nodes, src_nodes, free_objs = _split_sources(s, srcs)
        if tn is None or not src_nodes:
            return [None] * len(srcs)
        e = _entry("vjp", s, [tn], src_nodes, [_aval(_value(x)) for x in free_objs], len(free_objs))
        if e.ir is None:
            return [None] * len(srcs)
        values = s.leaves + s.consts + [_value(x) for x in free_objs]
        per_node = {n: [] for n, c in zip(src_nodes, e.connected) if c}
        for ct in basis:
            outs = _run(e, values + [ct], [], s)
            for n, g in zip(per_node, outs):
                per_node[n].append(np.asarray(g))
        return [per_node.get(n) if n is not None else None for n in nodes]


def _basis(shape, dtype, batch):
    """One-hot cotangents: every element of ``shape`` (``batch`` None), or every
    element of one example, set for all examples at once."""
    if batch is None:
        n = int(np.prod(shape, dtype=np.int64))
        for i in range(n):
            ct = np.zeros(n, dtype)
            ct[i] = 1
            yield ct.reshape(shape)
    else:
        n = int(np.prod(shape[1:], dtype=np.int64))
        for i in range(n):
            ct = np.zeros((batch, n), dtype)
            ct[:, i] = 1
            yield ct.reshape(shape)


def _cast_like(c, like):
    if isinstance(c, Tracer) or isinstance(like, Tracer):
        return c
    return np.asarray(c, np.dtype(like.dtype))


def _remove(s):
    for i in range(len(_active) - 1, -1, -1):
        if _active[i] is s:
            del _active[i]
            return


class _Paused:
    def __init__(self, tape):
        self.tape = tape

    def __enter__(self):
        s = self.tape._s
        self.was = s in _active
        if self.was:
            self.index = _active.index(s)
            del _active[self.index]
        return self

    def __exit__(self, *exc):
        if self.was and self.tape._entered:
            _active.insert(min(self.index, len(_active)), self.tape._s)
        return False


# ---------------------------------------------------------------------------


class ForwardAccumulator:
    """Forward-mode differentiation, as ``tf.autodiff.ForwardAccumulator``.

    ::

        with jitgrad.ForwardAccumulator(primals=x, tangents=t) as acc:
            y = f(x)
        acc.jvp(y)       # J_f(x) @ t

    ``primals`` are Variables or Tensors (a structure of them) and ``tangents``
    arrays of the same structure, shapes and dtypes.  Only operations on the
    primals (and values computed from them) are tracked.
    """

    def __init__(self, primals, tangents):
        self._primals, ptree = tree_util.flatten(primals)
        tl, ttree = tree_util.flatten(tangents)
        if ptree != ttree:
            raise ValueError("ForwardAccumulator: primals and tangents must have the same structure")
        self._tangents = []
        for p, t in zip(self._primals, tl):
            if not isinstance(p, (Tensor, Variable)):
                raise TypeError("ForwardAccumulator primals must be Variables or Tensors "
                                "(wrap arrays with jitgrad.constant)")
            pv, tv = _value(p), _value(t)
            if not isinstance(tv, Tracer):
                tv = np.asarray(tv, np.dtype(pv.dtype))
            if tuple(np.shape(tv)) != tuple(pv.shape):
                raise ValueError(f"tangent shape {tuple(np.shape(tv))} does not match primal "
                                 f"shape {tuple(pv.shape)}")
            self._tangents.append(tv)
        self._s = Session(watch_accessed=False)
        for p in self._primals:
            self._s.watch(p)

    def __enter__(self):
        _active.append(self._s)
        return self

    def __exit__(self, *exc):
        _remove(self._s)
        return False

    def jvp(self, primals, unconnected_gradients="none"):
        """The Jacobian-vector product of ``primals`` (a Tensor or a structure of
        them, computed inside the ``with`` block) along the tangents."""
        mode_u = _unconnected_mode(unconnected_gradients)
        s = self._s
        targets, ttree = tree_util.flatten(primals)
        tnodes = [s.node_of(t) for t in targets]
        known = [n for n in dict.fromkeys(tnodes) if n is not None]
        src_nodes = [s.node_of(p) for p in self._primals]
        tang = dict(zip(src_nodes, self._tangents))
        src_u = list(dict.fromkeys(src_nodes))
        out = {}
        if known:
            e = _entry("jvp", s, known, src_u, [], 0)
            if e.ir is not None:
                which_t = [tang[n] for n, c in zip(src_u, e.connected) if c]
                values = s.leaves + s.consts + which_t
                owners = s.leaf_owners + [o if o is not None else c for o, c in
                                          zip(s.const_owners, s.consts)] + which_t
                res = _run(e, values, owners, s)
                for n, r, c in zip(known, res, e.out_connected):
                    if c:
                        out[n] = r
        res = []
        for n, t in zip(tnodes, targets):
            r = out.get(n)
            if r is None and mode_u == "zero":
                v = _value(t)
                r = _zeros(tuple(np.shape(v)), np.asarray(v).dtype)
            res.append(r)
        return tree_util.unflatten(ttree, res)
