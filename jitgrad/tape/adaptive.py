"""More Keras optimizers: AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam.

Each is written as Keras 3 computes it (its ``update_step``), per parameter,
in the parameter's dtype; ``step`` counts from 0 and ``t = step + 1``.  They
share the base class of :mod:`jitgrad.tape.optimizers`: ``apply_gradients``
on Variables, ``init``/``update`` on arrays (inside ``jit`` too), clipping and
weight decay.
"""
from __future__ import annotations

import numpy as np

from .optimizers import Adam, Optimizer, _c, _step_as, _zeros_like


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before each Adam
    step, ``p -= p * weight_decay * lr`` (the decay does not pass through the
    moments).  Keras's default ``weight_decay`` is 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """Divide the gradient by a running root mean square of it::

        v = rho * v + (1 - rho) * g**2
        mg = rho * mg + (1 - rho) * g                  (centered only)
        d = v - mg**2 + eps   (centered)   or   v + eps
        step = lr * g / sqrt(d)
        m = momentum * m + step; p -= m      (momentum > 0)   or   p -= step
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _slots(self, p):
        n = 1 + (self.momentum > 0) + bool(self.centered)
        return tuple(_zeros_like(p) for _ in range(n))

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        lr, rho = self._lr(step, dt), _c(self.rho, dt)
        slots = list(slots)
        v = rho * slots[0] + (1 - rho) * g * g
        new = [v]
        d = v
        if self.centered:
            mg = rho * slots[-1] + (1 - rho) * g
            d = v - mg * mg
        inc = lr * g / np.sqrt(d + _c(self.epsilon, dt))
        if self.momentum > 0:
            m = _c(self.momentum, dt) * slots[1] + inc
            new.append(m)
            p = p - m
        else:
            p = p - inc
        if self.centered:
            new.append(mg)
        return p, tuple(new)


class Adagrad(Optimizer):
    """Per-entry rates from the sum of squared gradients::

        a += g**2;  p -= lr * g / sqrt(a + eps)     (a starts at initial_accumulator_value)
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _slots(self, p):
        return (np.full(np.shape(p), self.initial_accumulator_value, p.dtype),)

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        a = slots[0] + g * g
        return p - self._lr(step, dt) * g / np.sqrt(a + _c(self.epsilon, dt)), (a,)


class Adadelta(Optimizer):
    """Zeiler's Adadelta, with rms(x) = sqrt(x + eps)::

        ag = rho * ag + (1 - rho) * g**2
        d = rms(ad) / rms(ag) * g
        ad = rho * ad + (1 - rho) * d**2
        p -= lr * d
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _slots(self, p):
        return (_zeros_like(p), _zeros_like(p))

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        rho, eps = _c(self.rho, dt), _c(self.epsilon, dt)
        ag, ad = slots
        ag = rho * ag + (1 - rho) * g * g
        d = np.sqrt(ad + eps) / np.sqrt(ag + eps) * g
        ad = rho * ad + (1 - rho) * d * d
        return p - self._lr(step, dt) * d, (ag, ad)


class Adamax(Optimizer):
    """Adam with the infinity norm::

        m += (g - m) * (1 - beta_1);  u = max(beta_2 * u, |g|)
        p -= lr * m / ((1 - beta_1**t) * (u + eps))
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _slots(self, p):
        return (_zeros_like(p), _zeros_like(p))

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        m, u = slots
        t = _step_as(step, dt)
        b1 = _c(self.beta_1, dt)
        m = m + (g - m) * (1 - b1)
        u = np.maximum(_c(self.beta_2, dt) * u, np.absolute(g))
        return p - self._lr(step, dt) * m / ((1 - b1 ** t) * (u + _c(self.epsilon, dt))), (m, u)


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat), as Keras computes it: with
    ``mu_t = beta_1 * (1 - 0.96**t / 2)`` and ``P_t = mu_1 * ... * mu_t``::

        m += (g - m) * (1 - beta_1);  v += (g**2 - v) * (1 - beta_2)
        m_hat = mu_{t+1} * m / (1 - P_t * mu_{t+1}) + (1 - mu_t) * g / (1 - P_t)
        v_hat = v / (1 - beta_2**t)
        p -= lr * m_hat / (sqrt(v_hat) + eps)

    (``P_t`` is kept as a slot, one per parameter.)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _slots(self, p):
        return (_zeros_like(p), _zeros_like(p), np.ones((), p.dtype))

    def _update_one(self, g, p, slots, step):
        dt = p.dtype
        m, v, prod = slots
        t = _step_as(step, dt)
        b1, b2, decay = _c(self.beta_1, dt), _c(self.beta_2, dt), _c(0.96, dt)
        mu_t = b1 * (1 - 0.5 * decay ** t)
        mu_next = b1 * (1 - 0.5 * decay ** (t + 1))
        prod = prod * mu_t
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = mu_next * m / (1 - prod * mu_next) + (1 - mu_t) * g / (1 - prod)
        v_hat = v / (1 - b2 ** t)
        return p - self._lr(step, dt) * m_hat / (np.sqrt(v_hat) + _c(self.epsilon, dt)), (m, v, prod)
