"""Optimizers with Keras's update formulas: SGD (with momentum / Nesterov) and Adam.

Two ways to use them:

- stateful, as ``tf.keras.optimizers``: ``opt.apply_gradients(zip(grads, variables))``
  updates :class:`~jitgrad.Variable` s in place (slots are kept per variable);
- functional, on arrays: ``state = opt.init(params)`` then
  ``params, state = opt.update(grads, state, params)``, where ``params`` and
  ``grads`` are pytrees of arrays.  The update is written with ordinary array
  arithmetic, so it also runs on tracers: inside ``jitgrad.jit`` a whole
  training step (forward, gradient, update) compiles into one function.

Every update is computed in the parameter's dtype (hyperparameters are cast to
it, as Keras does), so float32 parameters stay float32.
"""
from __future__ import annotations

import numpy as np

from ..core import tree as tree_util
from ..core.trace import Tracer
from .variables import Tensor, Variable


def _c(x, dtype):
    """A hyperparameter as a 0-d array of the parameter's dtype."""
    return np.asarray(x, dtype)


def _cast(g, dtype):
    g = g._value if isinstance(g, (Tensor, Variable)) else g
    if isinstance(g, Tracer):
        return g if g.dtype == dtype else g.astype(dtype)
    return np.asarray(g, dtype)


def _zeros_like(p):
    if isinstance(p, Tracer):
        return np.zeros_like(p)
    return np.zeros(np.shape(p), np.asarray(p).dtype)


class Optimizer:
    """Shared machinery; subclasses define ``_slots(p)`` and ``_update_one``."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.iterations = 0          # number of apply_gradients calls so far
        self._slot_of = {}           # id(Variable) -> slots
        self._vars = {}              # id(Variable) -> Variable (keeps ids valid)

    def _lr(self, step, dtype):
        lr = self.learning_rate
        if callable(lr):             # a schedule: learning_rate(step)
            lr = lr(step)
        return _c(lr, dtype) if not isinstance(lr, Tracer) else lr.astype(dtype)

    @property
    def variables(self):
        """The optimizer's state, as Keras's ``optimizer.variables``: the step
        count, then the slots (momenta, moments) of each Variable it has
        updated, in the order it first updated them."""
        return [np.asarray(self.iterations, np.int64)] + [
            s for key in self._vars for s in self._slot_of[key]]

    # -- stateful (Variables)
    def apply_gradients(self, grads_and_vars):
        """Update each Variable from its gradient (pairs with a None gradient are
        skipped, as in Keras); then ``iterations`` grows by one."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        for g, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"apply_gradients updates jitgrad Variables, got {type(v).__name__}; "
                                "use init/update for arrays")
            slots = self._slot_of.get(id(v))
            if slots is None:
                slots = self._slots(v._value)
                self._vars[id(v)] = v
            p = v._value
            new_p, slots = self._update_one(_cast(g, p.dtype), p, slots, self.iterations)
            v._set(new_p if isinstance(new_p, Tracer) else np.asarray(new_p, p.dtype))
            self._slot_of[id(v)] = slots
        self.iterations += 1
        return self.iterations

    def minimize(self, loss, var_list, tape=None):
        """``loss``: a zero-argument callable (evaluated under a new tape), or a
        Tensor recorded by ``tape``.  Applies the gradients to ``var_list``."""
        from .tape import GradientTape
        if callable(loss):
            with GradientTape() as tape:
                loss = loss()
        elif tape is None:
            raise ValueError("minimize: pass the tape that recorded the loss (or a callable loss)")
        grads = tape.gradient(loss, list(var_list))
        return self.apply_gradients(zip(grads, var_list))

    # -- functional (arrays)
    def init(self, params):
        """Optimizer state for a pytree of parameter arrays."""
        leaves = tree_util.flatten(params)[0]
        return {"step": np.zeros((), np.int64), "slots": [self._slots(p) for p in leaves]}

    def update(self, grads, state, params):
        """One step: returns ``(new_params, new_state)``; ``grads`` has the
        structure of ``params`` (use ``unconnected_gradients="zero"`` on the tape
        rather than None gradients)."""
        pl, td = tree_util.flatten(params)
        gl = tree_util.flatten(grads)[0]
        if len(gl) != len(pl):
            raise ValueError(f"update: {len(gl)} gradients for {len(pl)} parameters (None gradients? "
                             "ask the tape for unconnected_gradients='zero')")
        step = state["step"]
        new_p, new_s = [], []
        for g, p, sl in zip(gl, pl, state["slots"]):
            dt = p.dtype
            q, s = self._update_one(_cast(g, dt), p, tuple(sl), step)
            new_p.append(q)
            new_s.append(s)
        return tree_util.unflatten(td, new_p), {"step": step + 1, "slots": new_s}


class SGD(Optimizer):
    """Gradient descent, Keras's formulas.  With ``momentum`` m and learning rate lr::

        velocity = m * velocity - lr * g
        p += velocity                      (plain momentum)
        p += m * velocity - lr * g         (nesterov=True)

    and ``p -= lr * g`` when ``momentum == 0``.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        if not 0 <= momentum <= 1:
            raise ValueError("momentum must be in [0, 1]")
        self.momentum = momentum
        self.nesterov = nesterov

    def _slots(self, p):
        return (_zeros_like(p),) if self.momentum != 0 else ()

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        lr = self._lr(step, dt)
        if self.momentum == 0:
            return p - g * lr, slots
        (v,) = slots
        m = _c(self.momentum, dt)
        v = -g * lr + v * m
        if self.nesterov:
            return p + (-g * lr + v * m), (v,)
        return p + v, (v,)


class Adam(Optimizer):
    """Adam (Kingma & Ba), Keras's formulation.  At step t = 1, 2, ...::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)      (bias corrections)
        m += (g - m) * (1 - beta_1)                              (first moment)
        v += (g*g - v) * (1 - beta_2)                            (second moment)
        p -= alpha * m / (sqrt(v) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _slots(self, p):
        return (_zeros_like(p), _zeros_like(p))

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        m, v = slots
        lr = self._lr(step, dt)
        t = step + 1
        t = t.astype(dt) if isinstance(t, (Tracer, np.ndarray, np.generic)) else _c(t, dt)
        b1, b2 = _c(self.beta_1, dt), _c(self.beta_2, dt)
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - self.beta_1)
        v = v + (g * g - v) * (1 - self.beta_2)
        return p - (m * alpha) / (np.sqrt(v) + self.epsilon), (m, v)
