"""Gradient clipping, on arrays or tracers (so it also runs inside ``jit``).

The formulas Keras's optimizers use for ``clipnorm``, ``global_clipnorm``
and ``clipvalue``: with ``n`` the L2 norm of the gradient (of all the
gradients together, for the global norm) and ``c`` the limit,
``g * c / max(n, c)`` (unchanged while ``n <= c``; a zero gradient stays
zero), and ``clip(g, -c, c)`` for values.
"""
from __future__ import annotations

import numpy as np


def _limit(c, g):
    return np.asarray(c, g.dtype)


def global_norm(grads):
    """The L2 norm of all the arrays in ``grads`` together."""
    return np.sqrt(sum(np.sum(g * g) for g in grads))


def clip_by_norm(g, clipnorm):
    """``g`` scaled down to L2 norm ``clipnorm`` if its norm is larger."""
    c = _limit(clipnorm, g)
    return g * (c / np.maximum(np.sqrt(np.sum(g * g)), c))


def clip_by_global_norm_list(grads, clipnorm):
    """The gradients scaled together so that their global norm is at most ``clipnorm``."""
    if not grads:
        return []
    n = global_norm(grads)
    return [g * (_limit(clipnorm, g) / np.maximum(n, _limit(clipnorm, g)).astype(g.dtype))
            for g in grads]


def clip_by_value(g, clipvalue):
    """Every entry of ``g`` clipped to ``[-clipvalue, clipvalue]``."""
    c = _limit(clipvalue, g)
    return np.minimum(np.maximum(g, -c), c)
