"""Row reductions: a reduction over the inner axes of a loop nest, accumulated
in a scalar local.

A reduction that keeps the leading ``k`` axes of its loop nest and reduces the
others (``x.sum(axis=1)`` over an ``(n, m)`` loop, ``x.min(axis=-1)``) has
one output element per iteration of the outer ``k`` loops.  Updated in the
output array at every element (``out[i0] = min(out[i0], x)``), each update is
a load and a store that LLVM cannot keep in a register (it cannot prove that
the output does not alias the arrays the loop stores), and the loop does not
vectorise.  Instead the nest opens a scalar accumulator before the inner loops
and stores it once when they end::

    for i0 in range(n):
        out_acc = np.inf
        for i1 in range(m):
            ...
            out_acc = _nanmin(out_acc, x_)
        out[i0] = out_acc

The output is then written exactly once per element, so it needs no initial
fill.  A float32 sum accumulates in float64, as a total does, and is rounded
once by the store.
"""
from __future__ import annotations

import numpy as np

INDENT = "    "


def row_depth(e, ndim):
    """``k`` when reduction ``e`` over a loop nest of ``ndim`` axes keeps
    exactly its leading ``k`` axes (``0 < k < ndim``); else None."""
    axes = sorted(e.params["axes"])
    k = ndim - len(axes)
    return k if 0 < k < ndim and axes == list(range(k, ndim)) else None


def accumulator(name):
    """The scalar local accumulating output ``name`` of a row reduction."""
    return f"{name}_acc"


class Rows:
    """The row reductions of one loop nest: the lines that open their
    accumulators and store them, by the depth of the loop they belong to."""

    def __init__(self, reductions, idx, names, initial):
        self.open, self.store = {}, {}          # depth -> lines
        self.depth = {}                         # reduction output -> depth
        for e in reductions:
            k = row_depth(e, len(idx))
            if k is None:
                continue
            out = e.outputs[0]
            self.depth[out] = k
            acc = accumulator(names[out])
            widen = e.prim.name == "reduce_sum" and np.dtype(out.aval.dtype) == np.float32
            init = "0.0" if widen else initial(e.prim.code[0], out.aval.dtype)
            self.open.setdefault(k, []).append(f"{acc} = {init}")
            self.store.setdefault(k, []).append(f"{names[out]}[{', '.join(idx[:k])}] = {acc}")

    def __contains__(self, out):
        return out in self.depth

    def nest(self, headers, body):
        """The loop nest: ``headers[d]`` is the ``for`` line of axis ``d``;
        each accumulator opens after its depth's header and is stored after
        the loops inside it end."""
        lines, indent = [], ""
        for d, header in enumerate(headers):
            lines.append(indent + header)
            indent += INDENT
            lines += [indent + line for line in self.open.get(d + 1, ())]
        lines += [indent + line for line in body]
        for d in range(len(headers) - 1, 0, -1):
            lines += [INDENT * d + line for line in self.store.get(d, ())]
        return lines
