"""Optimizers with Keras's update formulas: the base class, SGD (with momentum /
Nesterov) and Adam; :mod:`jitgrad.tape.adaptive` has the others.

Two ways to use them:

- stateful, as ``tf.keras.optimizers``: ``opt.apply_gradients(zip(grads, variables))``
  updates :class:`~jitgrad.Variable` s in place.  The optimizer's state (its
  step count ``iterations``, its learning rate, the slots it keeps per
  variable) is held in Variables too, so inside :func:`jitgrad.function` a
  training step that calls ``apply_gradients`` compiles with all of it as state;
- functional, on arrays: ``state = opt.init(params)`` then
  ``params, state = opt.update(grads, state, params)``, where ``params`` and
  ``grads`` are pytrees of arrays.  The update is written with ordinary array
  arithmetic, so it also runs on tracers: inside ``jitgrad.jit`` a whole
  training step (forward, gradient, update) compiles into one function.

Every update is computed in the parameter's dtype (hyperparameters are cast to
it, as Keras does), so float32 parameters stay float32.  Before the update,
as in Keras: gradients are clipped (``clipnorm``: each gradient to that L2
norm; ``global_clipnorm``: all of them together; ``clipvalue``: each entry to
``[-clipvalue, clipvalue]``), then ``weight_decay`` shrinks each parameter,
``p -= p * weight_decay * lr`` (decoupled from the gradient).
"""
from __future__ import annotations

import numpy as np

from ..core import tree as tree_util
from ..core.trace import Tracer
from .clipping import clip_by_global_norm_list, clip_by_norm, clip_by_value
from .variables import Tensor, Variable


def _c(x, dtype):
    """A hyperparameter as a 0-d array of the parameter's dtype."""
    if isinstance(x, (Tensor, Variable)):
        x = x._value
    if isinstance(x, Tracer):
        return x if x.dtype == dtype else x.astype(dtype)
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


def _step_as(step, dtype):
    """The 1-based step number ``step + 1`` in ``dtype`` (bias corrections)."""
    t = step + 1
    return t.astype(dtype) if isinstance(t, (Tracer, np.ndarray, np.generic)) else _c(t, dtype)


class Optimizer:
    """Shared machinery; subclasses define ``_slots(p)`` (the state arrays of one
    parameter, from an array of its shape and dtype) and ``_update_one(g, p,
    slots, step)`` (the new parameter and slots; ``step`` counts from 0)."""

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("give at most one of clipnorm, clipvalue and global_clipnorm")
        for what, c in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                        ("global_clipnorm", global_clipnorm), ("weight_decay", weight_decay)):
            if c is not None and not (isinstance(c, (int, float, np.number)) and c >= 0):
                raise ValueError(f"{what} must be a non-negative number, got {c!r}")
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__
        # as Keras: the step count and a constant learning rate are Variables
        self.iterations = Variable(np.zeros((), np.int64), trainable=False, name="iteration")
        self._lr_var = None
        self._schedule = None
        self.learning_rate = learning_rate
        self._slot_of = {}           # id(Variable) -> its slot Variables
        self._vars = {}              # id(Variable) -> Variable (keeps ids valid)

    @property
    def learning_rate(self):
        """The learning rate: a float64 Variable, or the schedule's value at
        the current step.  Assign a number or a schedule to change it."""
        if self._schedule is not None:
            return Tensor(np.asarray(self._schedule(self.iterations._value)))
        return self._lr_var

    @learning_rate.setter
    def learning_rate(self, lr):
        if callable(lr) and not isinstance(lr, (Tensor, Variable)):
            self._schedule = lr      # a schedule: learning_rate(step)
            return
        self._schedule = None
        value = np.asarray(lr._value if isinstance(lr, (Tensor, Variable)) else lr, np.float64)
        if self._lr_var is None:
            self._lr_var = Variable(value, trainable=False, name="learning_rate")
        else:
            self._lr_var.assign(value)

    def _lr(self, step, dtype):
        if self._schedule is not None:
            return _c(self._schedule(step), dtype)
        return _c(self._lr_var, dtype)

    @property
    def variables(self):
        """The optimizer's state Variables: the step count, then every slot."""
        return [self.iterations] + [s for slots in self._slot_of.values() for s in slots]

    # -- one step, on arrays or tracers (shared by both ways of use)
    def _clip(self, grads):
        if self.clipnorm is not None:
            return [clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:
            return clip_by_global_norm_list(grads, self.global_clipnorm)
        if self.clipvalue is not None:
            return [clip_by_value(g, self.clipvalue) for g in grads]
        return grads

    def _step(self, grads, params, slots, step):
        """New parameters and slots from gradients (already in the parameters' dtypes)."""
        grads = self._clip(grads)
        new_p, new_s = [], []
        for g, p, sl in zip(grads, params, slots):
            if self.weight_decay:
                dt = p.dtype
                p = p - p * (_c(self.weight_decay, dt) * self._lr(step, dt))
            q, s = self._update_one(g, p, tuple(sl), step)
            new_p.append(q)
            new_s.append(s)
        return new_p, new_s

    # -- stateful (Variables)
    def apply_gradients(self, grads_and_vars):
        """Update each Variable from its gradient (pairs with a None gradient are
        skipped, as in Keras); then ``iterations`` grows by one.  Returns
        ``iterations``."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        for g, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"apply_gradients updates jitgrad Variables, got {type(v).__name__}; "
                                "use init/update for arrays")
        variables = [v for _, v in pairs]
        slot_vars = [self._slot_variables(v) for v in variables]
        params = [v._value for v in variables]
        grads = [_cast(g, p.dtype) for (g, _), p in zip(pairs, params)]
        step = self.iterations._value
        new_p, new_s = self._step(grads, params, [[s._value for s in sv] for sv in slot_vars], step)
        for v, q in zip(variables, new_p):
            v.assign(q)
        for sv, ss in zip(slot_vars, new_s):
            for var, value in zip(sv, ss):
                var.assign(value)
        self.iterations.assign_add(1)
        return self.iterations

    def _slot_variables(self, v):
        slots = self._slot_of.get(id(v))
        if slots is None:
            like = np.zeros(v.shape, v.dtype)     # concrete, even inside jitgrad.function
            slots = tuple(Variable(s, trainable=False, name=f"{self.name}_slot")
                          for s in self._slots(like))
            self._slot_of[id(v)] = slots
            self._vars[id(v)] = v
        return slots

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
        return {"step": np.zeros((), np.int64),
                "slots": [self._slots(np.zeros(np.shape(p), _dtype(p))) for p in leaves]}

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
        gl = [_cast(g, p.dtype) for g, p in zip(gl, pl)]
        new_p, new_s = self._step(gl, pl, state["slots"], step)
        return tree_util.unflatten(td, new_p), {"step": step + 1, "slots": new_s}


def _dtype(p):
    return p.dtype if hasattr(p, "dtype") else np.asarray(p).dtype


class SGD(Optimizer):
    """Gradient descent, Keras's formulas.  With ``momentum`` m and learning rate lr::

        velocity = m * velocity - lr * g
        p += velocity                      (plain momentum)
        p += m * velocity - lr * g         (nesterov=True)

    and ``p -= lr * g`` when ``momentum == 0``.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
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

    With ``amsgrad=True`` the denominator uses the largest ``v`` seen so far.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad = amsgrad

    def _slots(self, p):
        n = 3 if self.amsgrad else 2
        return tuple(_zeros_like(p) for _ in range(n))

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        m, v = slots[:2]
        lr = self._lr(step, dt)
        t = _step_as(step, dt)
        b1, b2 = _c(self.beta_1, dt), _c(self.beta_2, dt)
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - self.beta_1)
        v = v + (g * g - v) * (1 - self.beta_2)
        if self.amsgrad:                 # the largest second moment so far
            v_max = np.maximum(slots[2], v)
            return p - (m * alpha) / (np.sqrt(v_max) + self.epsilon), (m, v, v_max)
        return p - (m * alpha) / (np.sqrt(v) + self.epsilon), (m, v)
