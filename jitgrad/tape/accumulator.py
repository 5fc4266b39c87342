"""TensorFlow's ForwardAccumulator: forward-mode derivatives of the operations
recorded while it is active (see :mod:`jitgrad.tape.derivatives`).
"""
from __future__ import annotations

import numpy as np

from ..core import tree as tree_util
from ..core.trace import Tracer
from .recording import active_sessions, Session
from .variables import Tensor, Variable
from .derivatives import _cast_like, _entry, _results, _run, _unconnected_mode, _value
from .tape import _remove

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
                tv = np.array(_cast_like(tv, pv, "ForwardAccumulator tangents"))  # a copy
            if tuple(np.shape(tv)) != tuple(pv.shape):
                raise ValueError(f"tangent shape {tuple(np.shape(tv))} does not match primal "
                                 f"shape {tuple(pv.shape)}")
            self._tangents.append(tv)
        self._s = Session(watch_accessed=False)
        for p in self._primals:
            self._s.watch(p)

    def __enter__(self):
        active_sessions().append(self._s)
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
            e = _entry("jvp", s, known, src_u, [])
            if e.ir is not None:
                which_t = [tang[n] for n, c in zip(src_u, e.connected) if c]
                values = s.leaves + s.consts + which_t
                owners = s.leaf_owners + [o if o is not None else c for o, c in
                                          zip(s.const_owners, s.consts)] + which_t
                res = _run(e, values, owners, s)
                for n, r, c in zip(known, res, e.out_connected):
                    if c:
                        out[n] = r
        return tree_util.unflatten(ttree, _results([out.get(n) for n in tnodes], targets, mode_u))
