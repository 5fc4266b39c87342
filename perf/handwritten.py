"""Hand-written Numba gradients: what an expert writes by hand.

Each function computes exactly what the matching workload in ``workloads.py``
differentiates, with plain ``@njit`` loops (fastmath off, no parallel), one
pass over the data where one pass suffices, and ``np.dot`` (BLAS) for the
matrix products.  They are the "speed of light" reference of the benchmark:
jitgrad's target is to stay within 1.2x of them.

No ``cache=True``: the benchmark compiles them in its own process (their
compile time is not measured).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


# 1. scalar: f(w1, w2) = 3*w1**2 + 2*w1*w2


@njit
def scalar_grad(w1, w2):
    return 6.0 * w1 + 2.0 * w2, 2.0 * w1


# 2 / 7. elementwise: f(w) = sum(sin(w) * exp(-w**2));  f'(w) = exp(-w^2) (cos w - 2 w sin w)
# Written without typed literals so float32 input stays float32 throughout.


@njit
def elementwise_grad(w):
    out = np.empty_like(w)
    for i in range(w.size):
        x = w[i]
        e = math.exp(-(x * x))
        out[i] = e * (math.cos(x) - (x + x) * math.sin(x))
    return out


# 3. Rosenbrock: f(x) = sum(100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2)


@njit
def rosenbrock_grad(x):
    n = x.size
    g = np.empty_like(x)
    carry = 0.0                      # 200 (x[i] - x[i-1]^2), from the previous term
    for i in range(n - 1):
        xi = x[i]
        t = x[i + 1] - xi * xi
        g[i] = carry - 400.0 * xi * t - 2.0 * (1.0 - xi)
        carry = 200.0 * t
    g[n - 1] = carry
    return g


# 4. logistic regression: f(w) = mean(log(1 + exp(-y * (X @ w)))) + lam/2 |w|^2


@njit
def logreg_grad(w, X, y, lam):
    n = X.shape[0]
    z = np.dot(X, w)
    s = np.empty(n)
    inv_n = 1.0 / n
    for i in range(n):
        m = -y[i] * z[i]                          # d/dm log(1 + e^m) = sigmoid(m)
        if m >= 0.0:
            sig = 1.0 / (1.0 + math.exp(-m))
        else:
            e = math.exp(m)
            sig = e / (1.0 + e)
        s[i] = -y[i] * sig * inv_n
    g = np.dot(s, X)
    for j in range(w.size):
        g[j] += lam * w[j]
    return g


# 5. two-layer tanh MLP, softmax cross-entropy (mean over the batch), one-hot labels


@njit
def mlp_grad(W1, b1, W2, b2, X, Y):
    B, H = X.shape[0], W1.shape[1]
    C = W2.shape[1]
    a = np.dot(X, W1)
    for i in range(B):
        for j in range(H):
            a[i, j] = math.tanh(a[i, j] + b1[j])
    logits = np.dot(a, W2)
    d = np.empty((B, C))                           # dLoss/dlogits
    inv_b = 1.0 / B
    for i in range(B):
        m = -np.inf
        for k in range(C):
            v = logits[i, k] + b2[k]
            logits[i, k] = v
            if v > m:
                m = v
        s = 0.0
        for k in range(C):
            e = math.exp(logits[i, k] - m)
            d[i, k] = e
            s += e
        ysum = 0.0
        for k in range(C):
            ysum += Y[i, k]
        for k in range(C):
            d[i, k] = (ysum * d[i, k] / s - Y[i, k]) * inv_b
    gW2 = np.dot(a.T, d)
    gb2 = np.zeros(C)
    for i in range(B):
        for k in range(C):
            gb2[k] += d[i, k]
    da = np.dot(d, W2.T)
    gb1 = np.zeros(H)
    for i in range(B):
        for j in range(H):
            t = a[i, j]
            v = da[i, j] * (1.0 - t * t)
            da[i, j] = v
            gb1[j] += v
    gW1 = np.dot(X.T, da)
    return gW1, gb1, gW2, gb2


# 6. JVP of the elementwise map g(x) = sin(x) * exp(-x**2): (g(x), g'(x) * t)


@njit
def elementwise_jvp(x, t):
    y = np.empty_like(x)
    dy = np.empty_like(x)
    for i in range(x.size):
        v = x[i]
        s = math.sin(v)
        e = math.exp(-(v * v))
        y[i] = s * e
        dy[i] = e * (math.cos(v) - (v + v) * s) * t[i]
    return y, dy
