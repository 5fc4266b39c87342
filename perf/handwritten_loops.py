"""Hand-written Numba gradients of the loop workloads (``perf/loops.py``).

What an expert writes by hand: a forward loop that keeps what the backward
pass needs, then one backward loop over the steps, with preallocated work
arrays, explicit index loops (the vectors are small: BLAS calls on 32-element
vectors cost more than they compute) and no allocation inside the loops.
``@njit`` with fastmath off, serial.  The formulas are exactly those of
``loops_workloads.py``.

No ``cache=True``: the benchmark compiles them in its own process, and their
compile time is reported as their first call.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


# ---------------------------------------------------------------------------
# RK4 on the Lorenz-96 system: dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F
# (indices mod N); loss = sum(x_T ** 2); gradient w.r.t. x_0 and F.


@njit
def _l96(x, F, out):
    n = x.size
    for i in range(n):
        out[i] = (x[(i + 1) % n] - x[i - 2]) * x[i - 1] - x[i] + F


@njit
def _l96_vjp(x, v, out):
    """out += J(x)^T v for the Lorenz-96 right-hand side; returns sum(v) (dF).

    f_i depends on x_{i+1} (factor x_{i-1}), x_{i-2} (-x_{i-1}), x_{i-1}
    (x_{i+1} - x_{i-2}) and x_i (-1)."""
    n = x.size
    s = 0.0
    for j in range(n):
        out[j] += (v[j - 1] * x[j - 2] - v[(j + 2) % n] * x[(j + 1) % n]
                   + v[(j + 1) % n] * (x[(j + 2) % n] - x[j - 1]) - v[j])
        s += v[j]
    return s


@njit
def rk4_l96_grad(x0, F, h, T):
    n = x0.size
    xs = np.empty((T + 1, n))            # the state entering each step
    xs[0] = x0
    k1, k2, k3, k4, y = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for t in range(T):
        x = xs[t]
        _l96(x, F, k1)
        for i in range(n):
            y[i] = x[i] + 0.5 * h * k1[i]
        _l96(y, F, k2)
        for i in range(n):
            y[i] = x[i] + 0.5 * h * k2[i]
        _l96(y, F, k3)
        for i in range(n):
            y[i] = x[i] + h * k3[i]
        _l96(y, F, k4)
        xn = xs[t + 1]
        for i in range(n):
            xn[i] = x[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
    xb = 2.0 * xs[T]                     # d loss / d x_T
    Fb = 0.0
    y2, y3, y4 = np.empty(n), np.empty(n), np.empty(n)
    a, kb, yb = np.empty(n), np.empty(n), np.empty(n)
    for t in range(T - 1, -1, -1):
        x = xs[t]                        # recompute the stages from the stored state
        _l96(x, F, k1)
        for i in range(n):
            y2[i] = x[i] + 0.5 * h * k1[i]
        _l96(y2, F, k2)
        for i in range(n):
            y3[i] = x[i] + 0.5 * h * k2[i]
        _l96(y3, F, k3)
        for i in range(n):
            y4[i] = x[i] + h * k3[i]
        # a = d/dx_{t+1}; x_{t+1} = x + h/6 (k1 + 2 k2 + 2 k3 + k4), y4 = x + h k3,
        # y3 = x + h/2 k2, y2 = x + h/2 k1: back through k4, y4, k3, ... into xb = d/dx_t
        for i in range(n):
            a[i] = xb[i]
            kb[i] = h / 6.0 * a[i]
            yb[i] = 0.0
        Fb += _l96_vjp(y4, kb, yb)                    # yb = d/dy4
        for i in range(n):
            xb[i] += yb[i]
            kb[i] = h / 3.0 * a[i] + h * yb[i]        # d/dk3
            yb[i] = 0.0
        Fb += _l96_vjp(y3, kb, yb)                    # yb = d/dy3
        for i in range(n):
            xb[i] += yb[i]
            kb[i] = h / 3.0 * a[i] + 0.5 * h * yb[i]  # d/dk2
            yb[i] = 0.0
        Fb += _l96_vjp(y2, kb, yb)                    # yb = d/dy2
        for i in range(n):
            xb[i] += yb[i]
            kb[i] = h / 6.0 * a[i] + 0.5 * h * yb[i]  # d/dk1
            yb[i] = 0.0
        Fb += _l96_vjp(x, kb, yb)                     # yb = d/dx through k1
        for i in range(n):
            xb[i] += yb[i]
    return xb, Fb


# ---------------------------------------------------------------------------
# tanh RNN: h_{t+1} = tanh(Wx x_t + Wh h_t + b), h_0 = 0; loss = sum(h_T ** 2);
# gradient w.r.t. Wx, Wh, b.


@njit
def rnn_grad(Wx, Wh, b, xs):
    T, n_in = xs.shape
    H = b.size
    hs = np.zeros((T + 1, H))            # the hidden state entering each step
    for t in range(T):
        h, x, hn = hs[t], xs[t], hs[t + 1]
        for i in range(H):
            s = b[i]
            for j in range(n_in):
                s += Wx[i, j] * x[j]
            for j in range(H):
                s += Wh[i, j] * h[j]
            hn[i] = math.tanh(s)
    gWx, gWh, gb = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    hb = 2.0 * hs[T]
    ab = np.empty(H)
    for t in range(T - 1, -1, -1):
        h, x, hn = hs[t], xs[t], hs[t + 1]
        for i in range(H):
            ab[i] = hb[i] * (1.0 - hn[i] * hn[i])   # d/d(pre-activation)
            gb[i] += ab[i]
            for j in range(n_in):
                gWx[i, j] += ab[i] * x[j]
            for j in range(H):
                gWh[i, j] += ab[i] * h[j]
        for j in range(H):
            s = 0.0
            for i in range(H):
                s += Wh[i, j] * ab[i]
            hb[j] = s
    return gWx, gWh, gb


# ---------------------------------------------------------------------------
# 1-d heat equation, explicit Euler, fixed ends: interior cells
# u_i += r (u_{i-1} - 2 u_i + u_{i+1}); loss = sum(u_T ** 2); gradient w.r.t. u_0.
# The step is linear, so the backward loop needs no stored state: it applies
# the transposed step T times to 2 u_T.


@njit
def _heat_step(u, r, out):
    n = u.size
    out[0] = u[0]
    out[n - 1] = u[n - 1]
    for i in range(1, n - 1):
        out[i] = u[i] + r * (u[i - 1] - 2.0 * u[i] + u[i + 1])


@njit
def _heat_step_t(v, r, out):
    """out = S^T v for the step S above."""
    n = v.size
    for j in range(n):
        out[j] = 0.0
    out[0] = v[0]
    out[n - 1] = v[n - 1]
    for i in range(1, n - 1):
        out[i] += (1.0 - 2.0 * r) * v[i]
        out[i - 1] += r * v[i]
        out[i + 1] += r * v[i]


@njit
def heat_grad(u0, r, T):
    u, w = u0.copy(), np.empty_like(u0)
    for t in range(T):
        _heat_step(u, r, w)
        u, w = w, u
    v = 2.0 * u
    for t in range(T):
        _heat_step_t(v, r, w)
        v, w = w, v
    return v


# ---------------------------------------------------------------------------
# GradBench's LSTM (perf/gradbench_evals.py: diagonal weights, l layers of
# width b): the forward loop keeps each step's states; the backward loop
# recomputes each cell from them and runs it backwards.
# Cell: g = [v, h, v, h] * w + bias; f, i, o = sigmoid(g_0..2); z = tanh(g_3);
# c' = c f + i z; h' = o tanh(c').  loss = -sum_t <gold_t, pred_t - log(sum
# exp(pred_t) + 2)> / (T b), pred_t = h_top * extra_1 + extra_2.


@njit
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit
def lstm_grad(main, extra, state, seq):
    L2, b = state.shape
    L = L2 // 2
    T = seq.shape[0] - 1
    states = np.empty((T + 1, L2, b))
    states[0] = state
    v = np.empty(b)
    for t in range(T):
        for j in range(b):
            v[j] = seq[t, j] * extra[0, j]
        for i in range(L):
            w, bias = main[2 * i], main[2 * i + 1]
            for j in range(b):
                h, c = states[t, 2 * i, j], states[t, 2 * i + 1, j]
                f = _sigmoid(v[j] * w[j] + bias[j])
                ig = _sigmoid(h * w[b + j] + bias[b + j])
                o = _sigmoid(v[j] * w[2 * b + j] + bias[2 * b + j])
                z = math.tanh(h * w[3 * b + j] + bias[3 * b + j])
                c2 = c * f + ig * z
                states[t + 1, 2 * i + 1, j] = c2
                states[t + 1, 2 * i, j] = o * math.tanh(c2)
                v[j] = states[t + 1, 2 * i, j]
    d_main, d_extra = np.zeros_like(main), np.zeros_like(extra)
    dh, dc = np.zeros((L, b)), np.zeros((L, b))       # from the step after
    ins = np.empty((L + 1, b))                          # each layer's input at step t
    pred, dv = np.empty(b), np.empty(b)
    scale = -1.0 / (T * b)
    for t in range(T - 1, -1, -1):
        for j in range(b):
            ins[0, j] = seq[t, j] * extra[0, j]
        for i in range(L):
            for j in range(b):
                ins[i + 1, j] = states[t + 1, 2 * i, j]
        s, gsum = 0.0, 0.0
        for j in range(b):
            pred[j] = ins[L, j] * extra[1, j] + extra[2, j]
            s += math.exp(pred[j])
            gsum += seq[t + 1, j] * scale
        for j in range(b):
            dpred = seq[t + 1, j] * scale - gsum * math.exp(pred[j]) / (s + 2.0)
            d_extra[1, j] += dpred * ins[L, j]
            d_extra[2, j] += dpred
            dv[j] = dpred * extra[1, j]
        for i in range(L - 1, -1, -1):
            w, bias = main[2 * i], main[2 * i + 1]
            dw, dbias = d_main[2 * i], d_main[2 * i + 1]
            for j in range(b):
                x, h, c = ins[i, j], states[t, 2 * i, j], states[t, 2 * i + 1, j]
                f = _sigmoid(x * w[j] + bias[j])
                ig = _sigmoid(h * w[b + j] + bias[b + j])
                o = _sigmoid(x * w[2 * b + j] + bias[2 * b + j])
                z = math.tanh(h * w[3 * b + j] + bias[3 * b + j])
                tc = math.tanh(c * f + ig * z)
                dhj = dv[j] + dh[i, j]
                dcj = dhj * o * (1.0 - tc * tc) + dc[i, j]
                gf = dcj * c * f * (1.0 - f)
                gi = dcj * z * ig * (1.0 - ig)
                go = dhj * tc * o * (1.0 - o)
                gz = dcj * ig * (1.0 - z * z)
                dw[j] += gf * x
                dw[b + j] += gi * h
                dw[2 * b + j] += go * x
                dw[3 * b + j] += gz * h
                dbias[j] += gf
                dbias[b + j] += gi
                dbias[2 * b + j] += go
                dbias[3 * b + j] += gz
                dc[i, j] = dcj * f
                dh[i, j] = gi * w[b + j] + gz * w[3 * b + j]
                dv[j] = gf * w[j] + go * w[2 * b + j]
        for j in range(b):
            d_extra[0, j] += dv[j] * seq[t, j]
    return d_main, d_extra
