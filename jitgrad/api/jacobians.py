"""Jacobians, Hessians and friends, built from jvp/vjp and batching.

A Jacobian evaluates all its directions in one compiled call: the tangents
(``jacfwd``) or cotangents (``jacrev``) are the rows of an identity matrix,
carried along a batch axis by :func:`~jitgrad.transforms.vmap.vmap_ir`.
Layout follows JAX: for an output of shape ``o`` and an argument of shape
``s`` the block has shape ``o + s``.
"""
from __future__ import annotations

import math

import numpy as np

from ..lax import elementwise as P
from ..core import tree as tree_util
from .functions import Staged, diff_leaves, wrap, _staged_for, _aval, _name, jvp, grad, trace
from ..transforms.vmap import vmap_ir
from ..core.trace import eval_ir, new_trace
from ..transforms.autodiff import jvp_ir, vjp_ir


def _basis(n, shapes, dtype):
    """Split the rows of eye(n) into blocks shaped (n,) + shape."""
    eye = np.eye(n, dtype=dtype)
    out, off = [], 0
    for s in shapes:
        k = math.prod(s)
        out.append(np.ascontiguousarray(eye[:, off:off + k]).reshape((n,) + tuple(s)))
        off += k
    return out


def _to_block(y, n_lead_shape, trailing_shape):
    """y has shape (n,) + trailing: move the batch axis to the end, reshaped."""
    nd = len(trailing_shape)
    y = P.transpose(y, tuple(range(1, nd + 1)) + (0,))
    return P.reshape(y, tuple(trailing_shape) + tuple(n_lead_shape))


def _assemble(blocks_per_out, out_tree, arg_groups, single):
    """blocks_per_out[k][j]: block of output leaf k w.r.t. differentiated leaf j."""
    res = []
    for blocks in blocks_per_out:
        per_arg, j = [], 0
        for ps, td in arg_groups:
            per_arg.append(tree_util.unflatten(td, blocks[j:j + len(ps)]))
            j += len(ps)
        res.append(per_arg[0] if single else tuple(per_arg))
    return tree_util.unflatten(out_tree, res)


def jacfwd(f, argnums=0):
    """Jacobian of ``f`` by forward mode: one batched JVP over the input basis."""
    fname = _name(f)

    def build(leaves, in_tree, static):
        groups, single = diff_leaves(leaves, in_tree, argnums, fname, "jacfwd")
        which = [p for ps, _ in groups for p in ps]
        ir, out_tree = trace(f, leaves, in_tree)
        shapes = [_aval(leaves[p]).shape for p in which]
        n = sum(math.prod(s) for s in shapes)
        dtype = _aval(leaves[which[0]]).dtype
        j = jvp_ir(ir, which)
        k = len(leaves)
        jb = vmap_ir(j, [False] * k + [True] * len(which), n)
        with new_trace() as tr:
            primals = [tr.new_arg(_aval(x)) for x in leaves]
            outs = eval_ir(jb, primals + _basis(n, shapes, dtype))
            m = len(ir.outvars)
            blocks = []
            for o, t in zip(ir.outvars, outs[m:]):
                # t: (n,) + o.shape -> o.shape + (n,), then split n into the inputs
                y = _to_block(t, (n,), o.aval.shape)
                row, off = [], 0
                for s in shapes:
                    size = math.prod(s)
                    nd = len(o.aval.shape)
                    piece = P.slice_(y, (0,) * nd + (off,), o.aval.shape + (off + size,),
                                     (1,) * (nd + 1))
                    row.append(P.reshape(piece, o.aval.shape + tuple(s)))
                    off += size
                blocks.append(row)
            flat = [b for row in blocks for b in row]
            out_ir = tr.to_ir(flat)
        sizes = [len(r) for r in blocks]

        def finish(outs):
            rows, p = [], 0
            for s in sizes:
                rows.append(outs[p:p + s])
                p += s
            return _assemble(rows, out_tree, groups, single)
        return out_ir, finish

    staged = Staged(build, label=f"jacfwd_{fname}")
    return wrap(f, staged, lambda g: jacfwd(g, argnums))


def jacrev(f, argnums=0):
    """Jacobian of ``f`` by reverse mode: one batched VJP over the output basis."""
    fname = _name(f)

    def build(leaves, in_tree, static):
        groups, single = diff_leaves(leaves, in_tree, argnums, fname, "jacrev")
        which = [p for ps, _ in groups for p in ps]
        ir, out_tree = trace(f, leaves, in_tree)
        for v in ir.outvars:      # an integer output has no cotangent (it gave zeros)
            if not np.issubdtype(v.aval.dtype, np.floating):
                raise TypeError(f"jacrev requires floating-point outputs, but {fname} returned "
                                f"dtype {v.aval.dtype}; convert it (.astype(float)) or use jacfwd")
        out_shapes = [v.aval.shape for v in ir.outvars]
        m = sum(math.prod(s) for s in out_shapes)
        dtype = ir.outvars[0].aval.dtype
        v = vjp_ir(ir, which)
        k, n_out = len(leaves), len(ir.outvars)
        vb = vmap_ir(v, [False] * k + [True] * n_out, m)
        with new_trace() as tr:
            primals = [tr.new_arg(_aval(x)) for x in leaves]
            outs = eval_ir(vb, primals + _basis(m, out_shapes, dtype))
            grads = outs[n_out:]
            blocks = []
            off = 0
            for o in out_shapes:
                size = math.prod(o)
                row = []
                for g, p in zip(grads, which):
                    s = _aval(leaves[p]).shape
                    piece = P.slice_(g, (off,) + (0,) * len(s), (off + size,) + tuple(s),
                                     (1,) * (len(s) + 1))
                    row.append(P.reshape(piece, tuple(o) + tuple(s)))
                blocks.append(row)
                off += size
            out_ir = tr.to_ir([b for row in blocks for b in row])
        n_args = len(which)

        def finish(outs):
            rows = [outs[i * n_args:(i + 1) * n_args] for i in range(len(out_shapes))]
            return _assemble(rows, out_tree, groups, single)
        return out_ir, finish

    staged = Staged(build, label=f"jacrev_{fname}")
    return wrap(f, staged, lambda g: jacrev(g, argnums))


def hessian(f, argnums=0):
    """Hessian of scalar ``f``: forward mode over reverse mode."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f, primals, tangents):
    """Hessian-vector product of scalar ``f``: a JVP of the gradient (forward over
    reverse).  With one primal the result is an array, else a tuple."""
    primals, tangents = tuple(primals), tuple(tangents)
    argnums = 0 if len(primals) == 1 else tuple(range(len(primals)))
    g = _staged_for(("hvp_grad", argnums), f, lambda: grad(f, argnums=argnums))
    return jvp(g, primals, tangents)[1]


def linearize(f, *primals):
    """Return ``(f(*primals), f_jvp)`` with ``f_jvp(*tangents)`` the JVP at ``primals``.

    ``f_jvp`` is compiled once; each call re-runs the forward pass fused with
    the tangent computation (cheaper than storing residuals for elementwise code).
    """
    out = jvp(f, primals, tuple(np.zeros_like(np.asarray(p, dtype=float)) if not hasattr(p, "dtype")
                                else np.zeros_like(p) for p in primals))[0]

    def f_jvp(*tangents):
        return jvp(f, primals, tangents)[1]
    return out, f_jvp


def vmap(f, in_axes=0):
    """Map ``f`` over an axis of its arguments, as one batched (and compiled) call.

    ``in_axes`` is an int or None, or a tuple with one per positional argument
    (None: not mapped).  Every output carries the mapped axis first
    (JAX's ``out_axes=0``).
    """
    fname = _name(f)

    def build(leaves, in_tree, static):
        args = tree_util.unflatten(in_tree, leaves)
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(axes)} entries but {fname} was called with "
                             f"{len(args)} arguments")
        flags, inner, sizes = [], [], set()
        for a, ax in zip(args, axes):
            for leaf in tree_util.flatten(a)[0]:
                av = _aval(leaf)
                if ax is None:
                    flags.append(False)
                    inner.append(leaf)
                    continue
                ax %= max(av.ndim, 1)
                sizes.add(av.shape[ax])
                flags.append((True, ax))
                inner.append(np.zeros(av.shape[:ax] + av.shape[ax + 1:], av.dtype))
        if len(sizes) != 1:
            raise ValueError(f"vmap: the mapped axes must all have one size, got {sorted(sizes)}")
        size = sizes.pop()
        ir, out_tree = trace(f, inner, in_tree)
        bir = vmap_ir(ir, [bool(fl) for fl in flags], size)
        with new_trace() as tr:
            xs = [tr.new_arg(_aval(x)) for x in leaves]
            moved = [P.transpose(x, (fl[1],) + tuple(i for i in range(_aval(x).ndim) if i != fl[1]))
                     if fl else x for x, fl in zip(xs, flags)]
            out_ir = tr.to_ir(eval_ir(bir, moved))
        return out_ir, lambda outs: tree_util.unflatten(out_tree, outs)

    return wrap(f, Staged(build, label=f"vmap_{fname}"))
