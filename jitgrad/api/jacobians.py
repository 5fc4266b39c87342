"""Jacobians, Hessians and friends, built from jvp/vjp and batching.

A Jacobian evaluates all its directions in one compiled call: the tangents
(``jacfwd``) or cotangents (``jacrev``) are the rows of an identity matrix,
carried along a batch axis by :func:`~jitgrad.transforms.vmap.vmap_ir`.
Layout follows JAX: for an output of shape ``o`` and an argument of shape
``s`` the block has shape ``o + s``.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import lax as P
from ..core import tree as tree_util
from .arguments import static_outside
from .functions import Staged, diff_leaves, snapshot, _staged_for, _aval, _name, jvp, grad, trace
from .transformed import transformed
from .arguments import check_argnums, check_callable, check_output
from ..transforms.vmap import vmap_eval, vmap_ir
from ..core.trace import aval_of, eval_ir, new_trace
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


def jacfwd(f, argnums=0, holomorphic=False):
    """Jacobian of ``f`` by forward mode: one batched JVP over the input basis.

    The inputs must be real (as JAX's), unless ``holomorphic=True``: then
    inputs and outputs are complex and the result holds ``f'(z)``."""
    check_callable(f, "jacfwd")
    argnums = check_argnums(argnums, "jacfwd")
    fname = _name(f)

    def build(leaves, in_tree, static):
        groups, single = diff_leaves(leaves, in_tree, argnums, fname, "jacfwd", static,
                                     holomorphic, real=True)
        which = [p for ps, _ in groups for p in ps]
        ir, out_tree = trace(f, leaves, in_tree, static)
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

    return transformed(jacfwd, f, {"argnums": argnums, "holomorphic": holomorphic},
                       lambda: Staged(build, label=f"jacfwd_{fname}", auto_static=static_outside(argnums)),
                       lambda g, _: jacfwd(g, argnums, holomorphic))


def jacrev(f, argnums=0, holomorphic=False):
    """Jacobian of ``f`` by reverse mode: one batched VJP over the output basis.

    The outputs must be real (as JAX's; a complex input ``x + iy`` then gets
    ``df/dx - i df/dy``), unless ``holomorphic=True``: then inputs and
    outputs are complex and the result holds ``f'(z)``."""
    check_callable(f, "jacrev")
    argnums = check_argnums(argnums, "jacrev")
    fname = _name(f)

    def build(leaves, in_tree, static):
        groups, single = diff_leaves(leaves, in_tree, argnums, fname, "jacrev", static, holomorphic)
        which = [p for ps, _ in groups for p in ps]
        ir, out_tree = trace(f, leaves, in_tree, static)
        for k, o in enumerate(ir.outvars):
            check_output(o.aval.dtype, f"output {k}", fname, "jacrev", holomorphic)
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

    return transformed(jacrev, f, {"argnums": argnums, "holomorphic": holomorphic},
                       lambda: Staged(build, label=f"jacrev_{fname}", auto_static=static_outside(argnums)),
                       lambda g, _: jacrev(g, argnums, holomorphic))


def hessian(f, argnums=0, holomorphic=False):
    """Hessian of scalar ``f``: forward mode over reverse mode (``holomorphic``:
    of a complex ``f`` of complex inputs, ``f''(z)``)."""
    check_callable(f, "hessian")
    return jacfwd(jacrev(f, argnums, holomorphic), argnums, holomorphic)


def hvp(f, primals, tangents):
    """Hessian-vector product of scalar ``f``: a JVP of the gradient (forward over
    reverse).  With one primal the result is an array, else a tuple."""
    check_callable(f, "hvp")
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("hvp: primals and tangents must be tuples (or lists) of arguments, "
                        "for example hvp(f, (x,), (v,))")
    primals, tangents = tuple(primals), tuple(tangents)
    argnums = 0 if len(primals) == 1 else tuple(range(len(primals)))
    g = _staged_for(("hvp_grad", argnums), f, lambda fn: grad(fn, argnums=argnums))
    return jvp(g, primals, tangents)[1]


def linearize(f, *primals):
    """Return ``(f(*primals), f_jvp)`` with ``f_jvp(*tangents)`` the JVP at ``primals``.

    ``f_jvp`` is compiled once; each call re-runs the forward pass fused with
    the tangent computation (cheaper than storing residuals for elementwise code).
    """
    check_callable(f, "linearize")
    primals = snapshot(primals)     # f_jvp linearizes at these values, whatever the caller mutates
    out = jvp(f, primals, tuple(np.zeros_like(np.asarray(p, dtype=float)) if not hasattr(p, "dtype")
                                else np.zeros_like(p) for p in primals))[0]
    # a partial of a module-level function: f_jvp pickles as f and the primals
    return out, functools.partial(_jvp_at, f, primals)


def _jvp_at(f, primals, *tangents):
    """linearize's f_jvp: the JVP of ``f`` at ``primals``."""
    return jvp(f, primals, tangents)[1]


def vmap(f, in_axes=0, out_axes=0):
    """Map ``f`` over an axis of its arguments, as one batched (and compiled) call.

    ``in_axes`` is an int or None, or a tuple with one entry per positional
    argument (None: not mapped).  An int or None entry applies to every array
    of its argument; a tuple, list or dict entry gives the axes of the parts of
    a structured argument, as in JAX.
    ``out_axes`` says where the mapped axis goes in each output, with the same
    conventions nested like the output: an int, or None for an output that
    does not depend on the mapped arguments (returned once, unbatched; a
    ``ValueError`` if it does depend on them).
    """
    check_callable(f, "vmap")
    fname = _name(f)
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")

    def build(leaves, in_tree, static):
        args = tree_util.unflatten(in_tree, leaves)
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(axes)} entries but {fname} was called with "
                             f"{len(args)} arguments")
        flags, inner, mapped = [], [], []
        for i, (a, spec) in enumerate(zip(args, axes)):
            leaves_i = tree_util.flatten(a)[0]
            for leaf, ax in zip(leaves_i, _axes_per_leaf(spec, a, f"in_axes entry {i}")):
                av = _aval(leaf)
                if ax is None:
                    flags.append(False)
                    inner.append(leaf)
                    continue
                if not -av.ndim <= ax < av.ndim:
                    raise ValueError(
                        f"vmap: in_axes={ax} is out of range for argument {i} of {fname}, which "
                        f"has shape {av.shape}" + (
                            " (a 0-d array has no axis to map: use in_axes=None for it)"
                            if av.ndim == 0 else f" (valid axes: {-av.ndim}..{av.ndim - 1})"))
                ax %= av.ndim
                mapped.append((i, av.shape, ax))
                flags.append((True, ax))
                inner.append(np.zeros(av.shape[:ax] + av.shape[ax + 1:], av.dtype))
        if not mapped:
            raise ValueError(f"vmap: in_axes={in_axes!r} maps none of the arguments of {fname}")
        sizes = {shape[ax] for _, shape, ax in mapped}
        if len(sizes) != 1:
            listing = "; ".join(f"argument {i} has shape {shape}, mapped along axis {ax}"
                                for i, shape, ax in mapped)
            raise ValueError(f"vmap: the mapped axes must all have one size, got {sorted(sizes)}: "
                             f"{listing}")
        size = sizes.pop()
        ir, out_tree = trace(f, inner, in_tree)
        dests = _out_axes(out_axes, out_tree, ir, fname)
        with new_trace() as tr:
            xs = [tr.new_arg(_aval(x)) for x in leaves]
            moved = [P.transpose(x, (fl[1],) + tuple(i for i in range(_aval(x).ndim) if i != fl[1]))
                     if fl else x for x, fl in zip(xs, flags)]
            ys, batched = vmap_eval(ir, moved, [bool(fl) for fl in flags], size)
            outs = []
            for k, (y, b, d) in enumerate(zip(ys, batched, dests)):
                if d is None:
                    if b:
                        raise ValueError(
                            f"vmap: out_axes is None for output {k} of {fname}, but that output "
                            "depends on the mapped arguments; give it an axis (for example 0)")
                    outs.append(y)
                else:
                    outs.append(_move_axis_from_front(y if b else P.with_batch_axis(y, size), d))
            out_ir = tr.to_ir(outs)
        return out_ir, lambda outs: tree_util.unflatten(out_tree, outs)

    return transformed(vmap, f, {"in_axes": in_axes, "out_axes": out_axes},
                       lambda: Staged(build, label=f"vmap_{fname}"))


def _check_axes_spec(spec, name):
    """``in_axes`` and ``out_axes``: an int or None, or a tuple, list or dict of
    them nested like the arguments or outputs (JAX's pytree prefixes)."""
    if isinstance(spec, (tuple, list, dict)):
        for ax in (spec.values() if isinstance(spec, dict) else spec):
            _check_axes_spec(ax, name)
    elif not _is_axis(spec):
        what = "arguments" if name == "in_axes" else "outputs"
        raise TypeError(f"vmap: {name} must be an int, None, or a tuple, list or dict of them "
                        f"(nested like the {what}), got {spec!r}")


def _is_axis(ax):
    return (isinstance(ax, int) and not isinstance(ax, bool)) or ax is None


def _axes_per_leaf(spec, arg, what):
    """The axis of each leaf of ``arg``: an int or None applies to every leaf
    below it, a tuple, list or dict must match ``arg``'s structure there."""
    if spec is None or isinstance(spec, int):
        return [spec] * len(tree_util.flatten(arg)[0])
    if isinstance(spec, dict) and isinstance(arg, dict):
        if set(spec) != set(arg):
            raise ValueError(f"vmap: {what} has keys {sorted(spec)} but the argument has {sorted(arg)}")
        return [ax for k in sorted(arg) for ax in _axes_per_leaf(spec[k], arg[k], f"{what}[{k!r}]")]
    if isinstance(spec, (tuple, list)) and isinstance(arg, (tuple, list)) and len(spec) == len(arg):
        return [ax for j, (sp, x) in enumerate(zip(spec, arg))
                for ax in _axes_per_leaf(sp, x, f"{what}[{j}]")]
    raise ValueError(f"vmap: {what} is {spec!r}, which does not match the structure of the argument "
                     f"({type(arg).__name__}); give one int or None for the whole argument, or a "
                     "tuple, list or dict shaped like it")


def _out_axes(out_axes, out_tree, ir, fname):
    """The destination of the mapped axis for each output leaf (None: not
    batched), checked."""
    per_leaf = _axes_per_out_leaf(out_axes, out_tree, f"out_axes={out_axes!r}", fname)
    dests = []
    for k, (d, v) in enumerate(zip(per_leaf, ir.outvars)):
        if d is None:
            dests.append(None)
            continue
        nd = v.aval.ndim + 1              # the output with its mapped axis
        if not -nd <= d < nd:
            raise ValueError(f"vmap: out_axes={d} is out of range for output {k} of {fname}, which "
                             f"has shape {v.aval.shape} before mapping (valid axes: {-nd}..{nd - 1})")
        dests.append(d % nd)
    return dests


def _axes_per_out_leaf(spec, td, what, fname):
    """As :func:`_axes_per_leaf`, against the output's treedef ``td``."""
    if spec is None or isinstance(spec, int):
        return [spec] * td.num_leaves
    if isinstance(spec, dict) and td.kind is dict and set(spec) == set(td.aux):
        return [ax for k, child in zip(td.aux, td.children)
                for ax in _axes_per_out_leaf(spec[k], child, f"{what}[{k!r}]", fname)]
    if (isinstance(spec, (tuple, list)) and td.kind in (tuple, list)
            and len(spec) == len(td.children)):
        return [ax for j, (sp, child) in enumerate(zip(spec, td.children))
                for ax in _axes_per_out_leaf(sp, child, f"{what}[{j}]", fname)]
    n = len(spec)
    size = (f"has {n} entr{'y' if n == 1 else 'ies'}" if isinstance(spec, (tuple, list))
            else f"is a dict with keys {sorted(spec)}")
    raise ValueError(f"vmap: {what} {size} but {fname} returns {td}; give one int or None for "
                     "the whole output, or a tuple, list or dict shaped like it")


def _move_axis_from_front(y, dest):
    nd = aval_of(y).ndim
    if dest == 0:
        return y
    rest = list(range(1, nd))
    return P.transpose(y, tuple(rest[:dest] + [0] + rest[dest:]))
