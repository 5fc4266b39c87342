"""TensorFlow's GradientTape: record operations, then ``gradient``, ``jacobian`` and
``batch_jacobian`` of what was recorded (see :mod:`jitgrad.tape.derivatives`).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core import tree as tree_util
from ..core.trace import Tracer
from .recording import active_sessions, Session
from .variables import Variable
from .derivatives import (_Plan, _check_sources, _check_targets, _cotangents, _results,
                          _seeds, _target_nodes, _unconnected_mode, _value, _warn_integer_targets,
                          _zeros, as_tensor)

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
    recording after the first :meth:`gradient` (or jacobian) call.  A tape
    records the operations of the thread that entered it only.
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
        active_sessions().append(self._s)
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
        active = active_sessions()
        if old in active:
            active[active.index(old)] = self._s

    def watched_variables(self):
        """The Variables this tape watches, in the order they were first watched
        (still answered after a non-persistent tape's gradient)."""
        return tuple({id(o): o for o in self._s.leaf_owners if isinstance(o, Variable)}.values())

    def _check_usable(self):
        if self._used:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of gradients "
                "(or jacobians); create it with GradientTape(persistent=True) to call gradient() "
                "more than once")

    def _recording(self):
        return self._s in active_sessions()

    def _consume(self):
        if not self.persistent:
            self._used = True
            if self._recording():
                _remove(self._s)
            self._s.release()

    def _exclude(self, what):
        """The session that must not record this derivative computation.

        As in TensorFlow, a non-persistent tape stops recording before it
        differentiates; a persistent one called inside its ``with`` block
        records the computation (that is how it gives higher derivatives),
        with a warning, since that is seldom meant and costs time and memory."""
        if self.persistent and self._recording():
            warnings.warn(
                f"GradientTape.{what} was called on a persistent tape inside its 'with' block: the "
                "derivative computation is recorded on the tape too.  Call it after the block "
                "unless you want higher-order derivatives from this tape.", RuntimeWarning,
                stacklevel=3)
            return None
        return self._s

    # -- differentiation
    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """Gradient of ``target`` with respect to ``sources``.

        ``target``: a Tensor (or a structure of them: their gradients add up);
        a non-scalar target is differentiated as the sum of its elements, or
        weighted by ``output_gradients`` (same structure as ``target``, each of
        its target's shape).  ``sources``: Variables or Tensors, in a nested
        structure; the result has the same structure.  The gradient with
        respect to an intermediate Tensor counts every path from it to the
        target; the gradient with respect to a Variable or watched Tensor
        counts every path from it, those through intermediate sources
        included (TensorFlow's rule).  A source the target does not depend on
        (or that the tape does not track) gets None, or zeros with
        ``unconnected_gradients="zero"``.  Results are :class:`~jitgrad.Tensor` s
        of the source's dtype (``.numpy()`` gives a fresh NumPy array, a NumPy
        scalar for 0-d sources; NumPy functions accept them as they are),
        whether or not an enclosing tape records this gradient computation.
        """
        self._check_usable()
        mode_u = _unconnected_mode(unconnected_gradients)
        s = self._s
        targets, _ = tree_util.flatten(target)
        srcs, stree = tree_util.flatten(sources)
        _check_targets(target, targets, "GradientTape.gradient")
        _check_sources(srcs, "GradientTape.gradient")
        _warn_integer_targets(targets, "GradientTape.gradient")
        if output_gradients is None:
            output_gradients = _seeds(s, targets)
        if output_gradients is None:
            mode, tnodes, cvals, cowners = "grad", _target_nodes(s, targets), [], []
        else:
            mode = "vjp"
            tnodes, cvals, cowners = _cotangents(s, targets, output_gradients)
        exclude = self._exclude("gradient")
        grads = _Plan(s, mode, tnodes, srcs).run(cvals, cowners, exclude)
        self._consume()
        return tree_util.unflatten(stree, _results(grads, srcs, mode_u))

    def jacobian(self, target, sources, unconnected_gradients="none",
                 parallel_iterations=None, experimental_use_pfor=True):
        """Jacobian of ``target`` with respect to each source: an array of shape
        ``target.shape + source.shape`` per source (one reverse pass per target
        element).  Computed eagerly; not recorded by enclosing tapes."""
        self._check_usable()
        mode_u = _unconnected_mode(unconnected_gradients)
        _check_targets(target, [target], "GradientTape.jacobian")
        srcs, stree = tree_util.flatten(sources)
        _check_sources(srcs, "GradientTape.jacobian")
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
        return tree_util.unflatten(stree, [as_tensor(r) for r in res])

    def batch_jacobian(self, target, source, unconnected_gradients="none",
                       parallel_iterations=None, experimental_use_pfor=True):
        """For ``target`` of shape ``(B, ...)`` whose example ``b`` depends only on
        example ``b`` of ``source`` (shape ``(B, ...)``): an array of shape
        ``(B,) + target.shape[1:] + source.shape[1:]``.  One reverse pass per
        element of one example (all examples at once)."""
        self._check_usable()
        mode_u = _unconnected_mode(unconnected_gradients)
        _check_targets(target, [target], "GradientTape.batch_jacobian")
        _check_sources([source], "GradientTape.batch_jacobian")
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
            return as_tensor(_zeros(shape, v.dtype)) if mode_u == "zero" else None
        # row j holds, for every example b, d target[b, j] / d source[b, ...]
        out = np.stack([np.reshape(r, (b, -1)) for r in rows], axis=1)
        return as_tensor(out.reshape(shape))

    def _vjp_rows(self, target, srcs, basis):
        """For each source, the list of its vector-Jacobian products with each
        cotangent in ``basis`` (None when unconnected)."""
        s = self._s
        tn = s.node_of(target)
        plan = _Plan(s, "vjp", [tn] if tn is not None else [], srcs)
        if plan.empty:
            return [None] * len(srcs)
        rows = [[] for _ in srcs]
        for ct in basis:
            for row, g in zip(rows, plan.run([ct], [ct], s, record=False)):
                if g is not None:      # (a traced value inside jit or jitgrad.function)
                    row.append(g if isinstance(g, Tracer) else np.asarray(g))
        return [row or None for row in rows]


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




def _remove(s):
    active = active_sessions()
    for i in range(len(active) - 1, -1, -1):
        if active[i] is s:
            del active[i]
            return


class _Paused:
    def __init__(self, tape):
        self.tape = tape

    def __enter__(self):
        s = self.tape._s
        active = active_sessions()
        self.was = s in active
        if self.was:
            self.index = active.index(s)
            del active[self.index]
        return self

    def __exit__(self, *exc):
        active = active_sessions()
        if self.was and self.tape._entered:
            active.insert(min(self.index, len(active)), self.tape._s)
        return False


