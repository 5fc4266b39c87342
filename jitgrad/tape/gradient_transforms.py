"""Optimizers as composable pure functions on pytrees (the style of optax).

A :class:`GradientTransformation` is a pair of pure functions:

- ``init(params) -> state``: the state for a pytree of parameters;
- ``update(updates, state, params=None) -> (updates, state)``: turn a pytree
  of gradients into a pytree of updates (and the next state).

:func:`chain` composes them left to right; :func:`apply_updates` adds the
updates to the parameters.  Everything is ordinary array arithmetic on
pytrees of arrays (states are tuples and dicts of arrays), so a whole step
runs inside ``jitgrad.jit``::

    opt = chain(clip_by_global_norm(1.0), scale_by_adam(), scale_by_learning_rate(1e-3))
    state = opt.init(params)
    grads = jitgrad.grad(loss)(params, x, y)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)

The formulas, per leaf (``t`` counts updates from 1, ``count`` from 0):

- ``scale(s)``: ``u * s``; ``scale_by_learning_rate(lr)``: ``-lr(count) * u``;
- ``trace(decay, nesterov)``: ``m = u + decay * m``; the update is ``m``
  (``u + decay * m`` with Nesterov);
- ``scale_by_adam(b1, b2, eps, eps_root)``: ``m = b1 m + (1-b1) u``,
  ``v = b2 v + (1-b2) u**2``, ``u = m_hat / (sqrt(v_hat + eps_root) + eps)``
  with ``m_hat = m / (1 - b1**t)``, ``v_hat = v / (1 - b2**t)``;
- ``scale_by_rms(decay, eps)``: ``v = decay v + (1-decay) u**2``, ``u / sqrt(v + eps)``;
- ``scale_by_stddev(decay, eps)``: also ``mg = decay mg + (1-decay) u``,
  ``u / sqrt(v - mg**2 + eps)``;
- ``scale_by_rss(initial, eps)``: ``a = a + u**2``, ``u / sqrt(a + eps)``;
- ``add_decayed_weights(wd)``: ``u + wd * p``;
- ``clip(c)``: each entry to ``[-c, c]``; ``clip_by_global_norm(c)``: all
  leaves scaled by ``c / max(norm, c)``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..core import tree as tree_util
from .clipping import clip_by_global_norm_list, clip_by_value


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``init(params)`` and ``update(updates, state, params=None)``."""
    init: Callable
    update: Callable


def _leaves(tree):
    return tree_util.flatten(tree)


def _zeros(p):
    return np.zeros(np.shape(p), _dtype(p))


def _dtype(p):
    return p.dtype if hasattr(p, "dtype") else np.asarray(p).dtype


def _like(x, u):
    """A hyperparameter (number or traced value) in the dtype of update ``u``."""
    x = np.asarray(x) if not hasattr(x, "astype") else x
    return x.astype(_dtype(u))


def _map(f, *trees):
    """``f`` applied leaf by leaf to trees of one structure."""
    flat = [_leaves(t)[0] for t in trees]
    td = _leaves(trees[0])[1]
    return tree_util.unflatten(td, [f(*xs) for xs in zip(*flat)])


def _count(state):
    return state + 1


def chain(*transforms):
    """Apply ``transforms`` one after the other; the state is the tuple of theirs."""
    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)
    return GradientTransformation(init, update)


def _stateless(f):
    """A transformation without state from ``f(updates, params) -> updates``."""
    return GradientTransformation(lambda params: (), lambda u, s, p=None: (f(u, p), s))


def identity():
    """Updates unchanged."""
    return _stateless(lambda u, p: u)


def scale(step_size):
    """Every update multiplied by ``step_size``."""
    return _stateless(lambda u, p: _map(lambda x: x * _like(step_size, x), u))


def scale_by_learning_rate(learning_rate, flip_sign=True):
    """Updates times ``-learning_rate`` (``learning_rate`` may be a schedule of
    the update count, from 0)."""
    sign = -1.0 if flip_sign else 1.0
    if not callable(learning_rate):
        return scale(sign * learning_rate)

    def update(u, count, params=None):
        lr = learning_rate(count) * sign
        return _map(lambda x: x * _like(lr, x), u), _count(count)
    return GradientTransformation(lambda params: np.zeros((), np.int64), update)


def trace(decay, nesterov=False):
    """Momentum: ``m = u + decay * m``; the update is ``m`` (Nesterov: ``u + decay * m``)."""
    def update(u, m, params=None):
        m = _map(lambda x, mx: x + _like(decay, x) * mx, u, m)
        if nesterov:
            return _map(lambda x, mx: x + _like(decay, x) * mx, u, m), m
        return m, m
    return GradientTransformation(lambda params: _map(_zeros, params), update)


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    """Adam's scaling, with bias-corrected moments (see the module docstring)."""
    def init(params):
        return {"count": np.zeros((), np.int64), "mu": _map(_zeros, params),
                "nu": _map(_zeros, params)}

    def update(u, state, params=None):
        mu = _map(lambda g, m: _like(b1, g) * m + _like(1 - b1, g) * g, u, state["mu"])
        nu = _map(lambda g, v: _like(b2, g) * v + _like(1 - b2, g) * g * g, u, state["nu"])
        count = _count(state["count"])

        def one(m, v):
            t = count.astype(_dtype(m))
            m_hat = m / (1 - _like(b1, m) ** t)
            v_hat = v / (1 - _like(b2, m) ** t)
            return m_hat / (np.sqrt(v_hat + _like(eps_root, m)) + _like(eps, m))
        return _map(one, mu, nu), {"count": count, "mu": mu, "nu": nu}
    return GradientTransformation(init, update)


def scale_by_rms(decay=0.9, eps=1e-8):
    """Divide by the running root mean square: ``u / sqrt(v + eps)``."""
    def update(u, nu, params=None):
        nu = _map(lambda g, v: _like(decay, g) * v + _like(1 - decay, g) * g * g, u, nu)
        return _map(lambda g, v: g / np.sqrt(v + _like(eps, g)), u, nu), nu
    return GradientTransformation(lambda params: _map(_zeros, params), update)


def scale_by_stddev(decay=0.9, eps=1e-8):
    """Divide by the running standard deviation: ``u / sqrt(v - mg**2 + eps)``."""
    def update(u, state, params=None):
        mg = _map(lambda g, m: _like(decay, g) * m + _like(1 - decay, g) * g, u, state[0])
        nu = _map(lambda g, v: _like(decay, g) * v + _like(1 - decay, g) * g * g, u, state[1])
        out = _map(lambda g, m, v: g / np.sqrt(v - m * m + _like(eps, g)), u, mg, nu)
        return out, (mg, nu)
    return GradientTransformation(lambda params: (_map(_zeros, params), _map(_zeros, params)),
                                  update)


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7):
    """Adagrad's scaling: ``a = a + u**2``, ``u / sqrt(a + eps)``."""
    def init(params):
        return _map(lambda p: np.full(np.shape(p), initial_accumulator_value, _dtype(p)), params)

    def update(u, acc, params=None):
        acc = _map(lambda g, a: a + g * g, u, acc)
        return _map(lambda g, a: g / np.sqrt(a + _like(eps, g)), u, acc), acc
    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay):
    """``u + weight_decay * p`` (needs ``params``)."""
    def f(u, params):
        if params is None:
            raise ValueError("add_decayed_weights needs the parameters: call update(grads, state, params)")
        return _map(lambda x, p: x + _like(weight_decay, x) * p, u, params)
    return _stateless(f)


def clip(max_delta):
    """Every entry clipped to ``[-max_delta, max_delta]``."""
    return _stateless(lambda u, p: _map(lambda x: clip_by_value(x, max_delta), u))


def clip_by_global_norm(max_norm):
    """All updates scaled together to a global L2 norm of at most ``max_norm``."""
    def f(u, p):
        leaves, td = _leaves(u)
        return tree_util.unflatten(td, clip_by_global_norm_list(leaves, max_norm))
    return _stateless(f)


# -- common optimizers, as chains


def sgd(learning_rate, momentum=None, nesterov=False):
    """``p -= lr * u`` (with momentum: ``trace(momentum, nesterov)`` first)."""
    parts = [trace(momentum, nesterov)] if momentum else []
    return chain(*parts, scale_by_learning_rate(learning_rate))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    """Adam: ``scale_by_adam`` then ``-learning_rate``."""
    return chain(scale_by_adam(b1, b2, eps, eps_root), scale_by_learning_rate(learning_rate))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4):
    """AdamW: Adam's scaling, plus ``weight_decay * p``, then ``-learning_rate``."""
    return chain(scale_by_adam(b1, b2, eps), add_decayed_weights(weight_decay),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, centered=False, momentum=None, nesterov=False):
    """RMSprop: ``scale_by_rms`` (``scale_by_stddev`` when centered), ``-learning_rate``,
    then momentum if given."""
    parts = [scale_by_stddev(decay, eps) if centered else scale_by_rms(decay, eps),
             scale_by_learning_rate(learning_rate)]
    if momentum:
        parts.append(trace(momentum, nesterov))
    return chain(*parts)


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """Adagrad: ``scale_by_rss`` then ``-learning_rate``."""
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))


def apply_updates(params, updates):
    """``params + updates``, leaf by leaf, in each parameter's dtype."""
    return _map(lambda p, u: p + _like(u, p), params, updates)
