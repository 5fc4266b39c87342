"""Learning-rate schedules, as ``tf.keras.optimizers.schedules``.

A schedule is called with the step number (0 at the first update: an
optimizer passes its ``iterations``) and returns the learning rate.  The step
may be a Python int, a NumPy integer or a traced integer (inside ``jit`` or
``jitgrad.function``), so the formulas are written with NumPy functions
(no Python ``if`` on the step).  Rates are computed in float64; an optimizer
casts them to each parameter's dtype.
"""
from __future__ import annotations

import numpy as np

from .variables import Tensor, Variable


def _step(step):
    """The step as a float64 value (array, scalar or tracer)."""
    if isinstance(step, (Tensor, Variable)):
        step = step._value
    if hasattr(step, "astype"):
        return step.astype(np.float64)
    return np.float64(step)


class LearningRateSchedule:
    """Base class: subclasses define ``__call__(step)``."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(vars(self))


class _RateDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments and
    the progress ``step / decay_steps`` (rounded down with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        if decay_steps <= 0:
            raise ValueError(f"{type(self).__name__}: decay_steps must be positive")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps, self.decay_rate, self.staircase = decay_steps, decay_rate, staircase

    def _progress(self, step):
        p = _step(step) / np.float64(self.decay_steps)
        return np.floor(p) if self.staircase else p


class ExponentialDecay(_RateDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with
    ``staircase``, the exponent is rounded down to an integer."""

    def __call__(self, step):
        return np.float64(self.initial_learning_rate) * np.power(np.float64(self.decay_rate),
                                                                 self._progress(step))


class InverseTimeDecay(_RateDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; with
    ``staircase``, ``step / decay_steps`` is rounded down."""

    def __call__(self, step):
        return np.float64(self.initial_learning_rate) / (1 + np.float64(self.decay_rate) * self._progress(step))


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha`` times it over
    ``decay_steps``, constant after::

        s = min(step, decay_steps) / decay_steps
        lr = initial * ((1 - alpha) * (1 + cos(pi * s)) / 2 + alpha)

    With ``warmup_steps`` and ``warmup_target``, the rate first grows linearly
    from ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``,
    and the cosine decay then starts from ``warmup_target``.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name=None,
                 warmup_target=None, warmup_steps=0):
        if decay_steps <= 0:
            raise ValueError("CosineDecay: decay_steps must be positive")
        self.initial_learning_rate, self.decay_steps, self.alpha = initial_learning_rate, decay_steps, alpha
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def _decayed(self, start, s):
        s = np.minimum(s, np.float64(self.decay_steps)) / np.float64(self.decay_steps)
        a = np.float64(self.alpha)
        return start * ((1 - a) * 0.5 * (1 + np.cos(np.pi * s)) + a)

    def __call__(self, step):
        t = _step(step)
        init = np.float64(self.initial_learning_rate)
        if self.warmup_target is None:
            return self._decayed(init, t)
        w = np.float64(self.warmup_steps)
        target = np.float64(self.warmup_target)
        decayed = self._decayed(target, np.maximum(t - w, 0.0))
        if not self.warmup_steps:
            return decayed
        warm = init + (target - init) * (np.minimum(t, w) / w)
        return np.where(t < w, warm, decayed)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``step <= boundaries[1]``, ..., ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, name=None):
        if len(values) != len(boundaries) + 1:
            raise ValueError("PiecewiseConstantDecay: give one more value than boundaries "
                             f"(got {len(boundaries)} boundaries and {len(values)} values)")
        if list(boundaries) != sorted(boundaries):
            raise ValueError("PiecewiseConstantDecay: the boundaries must increase")
        self.boundaries, self.values = list(boundaries), list(values)

    def __call__(self, step):
        t = _step(step)
        out = np.float64(self.values[-1]) + 0 * t
        for b, v in zip(reversed(self.boundaries), reversed(self.values[:-1])):
            out = np.where(t <= np.float64(b), np.float64(v), out)
        return out
