"""One row per supported NumPy operation; generic tests run on every row.

Each row is a plain NumPy function.  The reference value is that same function
run by NumPy on NumPy arrays; derivatives are checked against finite
differences of it (4-point central stencil in float64) and by the dot-product
test between jitgrad.jvp and jitgrad.vjp.  Second order: forward-over-reverse
and reverse-over-reverse Hessian-vector products of a scalarised version
against finite differences of the gradient.

Everything runs on the NumPy interpreter (compile="never", set in conftest)
except ``test_compiled_matches_interpreter``, which compiles one function per
row (value and gradient together) and per dtype.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import jitgrad
from jitgrad.core.ir import typecheck
from helpers import apart, assert_close, dot_product_check, fd_jvp, random_like, sample, sample_args, vdot

F32, F64 = np.float32, np.float64


@dataclass
class Row:
    id: str
    fn: Callable
    shapes: tuple                      # one shape per argument
    domains: tuple = None              # one domain per argument (default "any")
    gen: Callable = None               # gen(rng, shapes) -> args (overrides domains)
    kind: str = "smooth"               # "smooth" | "zero" (derivative 0) | "nondiff" (non-float output)
    rtol: float = 1e-6                 # finite-difference comparison
    hess: bool = True                  # run the second-order tests
    in_dtype: type = F64
    f32: bool = True                   # run the float32 tests
    f32_rtol: float = 2e-5
    scalar: bool = False               # unary elementwise: also grad(grad) on a 0-d input
    lowp: bool = False                 # computes in float32 internally (looser rounding checks)
    compile_f32: bool = False          # also compile the float32 version
    known_bugs: dict = field(default_factory=dict)   # test name -> reason (non-strict xfail)

    @property
    def arity(self):
        return len(self.shapes)

    def args(self, rng, dtype=None):
        if self.gen is not None:
            xs = self.gen(rng, self.shapes)
        else:
            xs = sample_args(self.domains or ("any",) * self.arity, self.shapes, rng)
        if np.dtype(self.in_dtype).kind == "c":        # complex rows: the dtypes of gen
            return [np.asarray(x) for x in xs]
        dt = dtype or self.in_dtype
        return [np.asarray(x, dtype=dt) for x in xs]


def grad_all(g, n):
    return jitgrad.grad(g, argnums=tuple(range(n)))


ROWS: list[Row] = []
S = (3, 4)


def row(id, fn, shapes, domains=None, **kw):
    if isinstance(domains, str):
        domains = (domains,) * len(shapes)
    ROWS.append(Row(id, fn, tuple(shapes), domains, **kw))


def unary(name, domain="any", kind="smooth", **kw):
    f = getattr(np, name)
    row(name, lambda x: f(x), [S], domain, kind=kind, scalar=True, compile_f32=True, **kw)


def apart_gen(rng, shapes):
    return apart(rng, shapes)


def ratio_gen(rng, shapes):
    """x, y with y > 0 and x / y away from integers (floor_divide, remainder)."""
    y = sample("pos", shapes[1], rng)
    q = sample("frac", np.broadcast_shapes(*shapes), rng)
    return [q * y, y]


# --- unary elementwise (every entry of jitgrad.numpy._UFUNCS) ---------------
for name, dom in [("exp", "any"), ("exp2", "any"), ("expm1", "any"), ("log", "pos"),
                  ("log2", "pos"), ("log10", "pos"), ("log1p", "pos"), ("sqrt", "pos"),
                  ("cbrt", "nonzero"), ("square", "any"), ("reciprocal", "nonzero"),
                  ("sin", "any"), ("cos", "any"), ("tan", "unit"), ("arcsin", "unit"),
                  ("arccos", "unit"), ("arctan", "any"), ("sinh", "any"), ("cosh", "any"),
                  ("tanh", "any"), ("arcsinh", "any"), ("arccosh", "gt1"), ("arctanh", "unit"),
                  ("absolute", "nonzero"), ("fabs", "nonzero"), ("negative", "any"),
                  ("positive", "any"), ("deg2rad", "any"), ("rad2deg", "any")]:
    unary(name, dom)
for name in ["sign", "floor", "ceil", "rint", "trunc", "fix", "round", "around"]:
    unary(name, "frac", kind="zero")
row("round_decimals", lambda x: np.round(x, 1), [S], "any", kind="zero",
    gen=lambda rng, s: [np.round(sample("any", s[0], rng), 1) + rng.uniform(0.01, 0.04, s[0])])
for name in ["isnan", "isinf", "isfinite"]:
    row(name, getattr(np, name), [S], "any", kind="nondiff")
row("logical_not", lambda x: np.logical_not(x > 0), [S], "any", kind="nondiff")

# --- binary elementwise ------------------------------------------------------
for name, doms, shapes in [
        ("add", "any", [S, S]), ("subtract", "any", [S, S]), ("multiply", "any", [S, S]),
        ("divide", ("any", "nonzero"), [S, S]), ("true_divide", ("any", "nonzero"), [S, S]),
        ("power", ("pos", "any"), [S, S]), ("float_power", ("pos", "any"), [S, S]),
        ("arctan2", "nonzero", [S, S]), ("hypot", "nonzero", [S, S]),
        ("logaddexp", "any", [S, S]),
        # broadcasting
        ("add", "any", [(3, 1), (4,)]), ("multiply", "any", [S, (4,)]),
        ("divide", ("any", "nonzero"), [(3, 1), (1, 4)]), ("power", ("pos", "any"), [S, (3, 1)]),
        ("arctan2", "nonzero", [(4,), S]), ("hypot", "nonzero", [S, ()]),
        ("logaddexp", "any", [(3, 1), (4,)]), ("subtract", "any", [(), S])]:
    f = getattr(np, name)
    row(f"{name}{'' if shapes == [S, S] else '_bcast' + str(shapes)}",
        (lambda f: lambda x, y: f(x, y))(f), shapes, doms)
for name in ["maximum", "minimum"]:
    f = getattr(np, name)
    row(name, (lambda f: lambda x, y: f(x, y))(f), [S, S], gen=apart_gen)
    row(name + "_bcast", (lambda f: lambda x, y: f(x, y))(f), [S, (4,)], gen=apart_gen)
for name in ["less", "less_equal", "greater", "greater_equal", "equal", "not_equal"]:
    f = getattr(np, name)
    row(name, (lambda f: lambda x, y: f(x, y))(f), [S, S], gen=apart_gen, kind="nondiff")
    # the same comparison feeding float arithmetic: derivative exactly zero
    row(name + "_asfloat", (lambda f: lambda x, y: f(x, y) * 1.0)(f), [S, S], gen=apart_gen,
        kind="zero")
for name in ["logical_and", "logical_or", "logical_xor"]:
    f = getattr(np, name)
    row(name, (lambda f: lambda x, y: f(x > 0, y > 0))(f), [S, S], kind="nondiff")
row("floor_divide", lambda x, y: np.floor_divide(x, y), [S, S], gen=ratio_gen, kind="zero")
row("remainder", lambda x, y: np.remainder(x, y), [S, S], gen=ratio_gen)
row("op_floordiv", lambda x, y: x // y, [S, (4,)], gen=ratio_gen, kind="zero")
row("op_mod", lambda x, y: x % y, [S, (4,)], gen=ratio_gen)

# --- operators and Python scalars ---------------------------------------------
for id, fn, dom in [
        ("op_add_scalar", lambda x: x + 2.0, "any"), ("op_radd_int", lambda x: 1 + x, "any"),
        ("op_rsub", lambda x: 2.0 - x, "any"), ("op_mul_scalar", lambda x: x * 3, "any"),
        ("op_rtruediv", lambda x: 3.0 / x, "nonzero"), ("op_truediv_scalar", lambda x: x / 4.0, "any"),
        ("op_pow2", lambda x: x ** 2, "any"), ("op_pow3", lambda x: x ** 3, "any"),
        ("op_pow0", lambda x: x ** 0 * x, "any"), ("op_pow_m1", lambda x: x ** -1, "nonzero"),
        ("op_pow_m2", lambda x: x ** -2, "nonzero"), ("op_pow_half", lambda x: x ** 0.5, "pos"),
        ("op_pow_1p5", lambda x: x ** 1.5, "pos"), ("op_rpow", lambda x: 2.0 ** x, "any"),
        ("op_neg", lambda x: -x, "any"), ("op_pos", lambda x: +x, "any"),
        ("op_abs", lambda x: abs(x), "nonzero"),
        ("op_chain", lambda x: (np.sin(x) * 2 + 1) / (x * x + 1), "any")]:
    row(id, fn, [S], dom, scalar=True)
row("op_pow_xy", lambda x, y: x ** y, [S, S], ("pos", "any"))
row("op_pow_xy_0", lambda x, y: x ** y, [S, S], ("pos", "pos"))
row("op_matmul", lambda x, y: x @ y, [(3, 4), (4, 2)])
row("op_T", lambda x: x.T * 1.0, [(3, 4)])
row("const_array", lambda x: x * np.arange(12.0).reshape(3, 4) + np.ones(4), [S])

# --- reductions ------------------------------------------------------------------
R = (2, 3, 4)
for name, dom in [("sum", "any"), ("mean", "any"), ("max", "distinct"), ("min", "distinct"),
                  ("var", "any"), ("std", "any"), ("amax", "distinct"), ("amin", "distinct")]:
    f = getattr(np, name)
    for kw in [{}, {"axis": 0}, {"axis": 1}, {"axis": -1}, {"axis": (0, 2)}, {"axis": (-1, -3)},
               {"axis": 1, "keepdims": True}, {"axis": (0, 2), "keepdims": True},
               {"axis": None, "keepdims": True}]:
        row(f"{name}{kw}", (lambda f, kw: lambda x: f(x, **kw))(f, kw), [R], dom)
for kw in [{}, {"axis": 0}, {"axis": -1}, {"axis": (0, 1)}, {"axis": 1, "keepdims": True}]:
    row(f"prod{kw}", (lambda kw: lambda x: np.prod(x, **kw))(kw), [(3, 4)], "nonzero")
row("prod_with_one_zero", lambda x: np.prod(x * np.array([1.0, 0.0, 1.0, 1.0]), axis=-1),
    [S], "nonzero")
row("prod_with_zeros", lambda x: np.prod(x * np.array([0.0, 0.0, 1.0, 1.0]), axis=-1),
    [S], "nonzero")
row("var_ddof1", lambda x: np.var(x, axis=1, ddof=1), [S])
row("std_ddof1", lambda x: np.std(x, ddof=1), [S])
row("method_sum", lambda x: x.sum(axis=1), [R])
row("method_mean", lambda x: x.mean(axis=(0, 1), keepdims=True), [R])
row("method_max", lambda x: x.max(axis=-1), [R], "distinct")
row("method_min", lambda x: x.min(), [R], "distinct")
row("method_prod", lambda x: x.prod(axis=0), [S], "nonzero")
row("method_var_std", lambda x: x.var(axis=0) + x.std(axis=1).sum(), [S])
row("ufunc_add_reduce", lambda x: np.add.reduce(x, axis=1), [S])
row("ufunc_maximum_reduce", lambda x: np.maximum.reduce(x, axis=0), [S], "distinct")
row("linalg_norm", lambda x: np.linalg.norm(x), [S], "nonzero")
row("linalg_norm_axis", lambda x: np.linalg.norm(x, axis=1), [S], "nonzero")

# --- products ---------------------------------------------------------------------
for id, fn, shapes in [
        ("dot_1d_1d", np.dot, [(4,), (4,)]), ("dot_2d_1d", np.dot, [(3, 4), (4,)]),
        ("dot_1d_2d", np.dot, [(3,), (3, 4)]), ("dot_2d_2d", np.dot, [(3, 4), (4, 2)]),
        ("dot_3d_2d", np.dot, [(2, 3, 4), (4, 2)]), ("dot_2d_3d", np.dot, [(2, 3), (4, 3, 2)]),
        ("dot_scalar", np.dot, [(), (3, 4)]), ("method_dot", lambda x, y: x.dot(y), [(3, 4), (4,)]),
        ("matmul_1d_1d", np.matmul, [(4,), (4,)]), ("matmul_2d_1d", np.matmul, [(3, 4), (4,)]),
        ("matmul_1d_2d", np.matmul, [(3,), (3, 4)]), ("matmul_2d_2d", np.matmul, [(3, 4), (4, 2)]),
        ("matmul_3d_3d", np.matmul, [(2, 3, 4), (2, 4, 5)]),
        ("matmul_3d_2d", np.matmul, [(2, 3, 4), (4, 5)]),
        ("matmul_2d_3d", np.matmul, [(3, 4), (2, 4, 5)]),
        ("matmul_1d_3d", np.matmul, [(4,), (2, 4, 3)]),
        ("matmul_bcast_4d", np.matmul, [(2, 1, 3, 4), (3, 4, 2)]),
        ("matmul_bcast_size1", np.matmul, [(1, 3, 4), (2, 4, 2)]),
        ("outer", np.outer, [(3,), (4,)]), ("outer_2d", np.outer, [(2, 2), (3,)]),
        ("inner", np.inner, [(3, 4), (2, 4)]), ("vdot", np.vdot, [(3, 4), (3, 4)]),
        ("tensordot_1", lambda a, b: np.tensordot(a, b, axes=1), [(2, 3), (3, 4)]),
        ("tensordot_2", lambda a, b: np.tensordot(a, b), [(2, 3, 4), (3, 4, 2)]),
        ("tensordot_pairs", lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 2])),
         [(3, 2, 4), (2, 5, 3)])]:
    row(id, (lambda fn: lambda x, y: fn(x, y))(fn), shapes)

# --- structural ---------------------------------------------------------------------
for id, fn, shapes in [
        ("transpose", lambda x: np.transpose(x), [R]),
        ("transpose_axes", lambda x: np.transpose(x, (1, 0, 2)), [R]),
        ("transpose_neg_axes", lambda x: np.transpose(x, (-1, 0, 1)), [R]),
        ("method_transpose", lambda x: x.transpose(2, 0, 1), [R]),
        ("T", lambda x: x.T, [R]),
        ("swapaxes", lambda x: np.swapaxes(x, 0, 2), [R]),
        ("moveaxis", lambda x: np.moveaxis(x, 0, -1), [R]),
        ("reshape", lambda x: np.reshape(x, (4, 6)), [R]),
        ("reshape_m1", lambda x: x.reshape(-1), [R]),
        ("reshape_2_m1", lambda x: x.reshape(2, -1), [R]),
        ("reshape_to_0d", lambda x: x.reshape(()), [(1, 1)]),
        ("reshape_from_0d", lambda x: np.reshape(x, (1, 1, 1)), [()]),
        ("ravel", lambda x: np.ravel(x), [R]),
        ("flatten", lambda x: x.flatten(), [R]),
        ("broadcast_to_row", lambda x: np.broadcast_to(x, (3, 4)), [(4,)]),
        ("broadcast_to_size1", lambda x: np.broadcast_to(x, (2, 3, 4)), [(3, 1)]),
        ("broadcast_to_0d", lambda x: np.broadcast_to(x, (2, 3)), [()]),
        ("expand_dims_0", lambda x: np.expand_dims(x, 0), [S]),
        ("expand_dims_m1", lambda x: np.expand_dims(x, -1), [S]),
        ("expand_dims_tuple", lambda x: np.expand_dims(x, (0, 2)), [S]),
        ("squeeze", lambda x: np.squeeze(x), [(1, 3, 1, 4)]),
        ("squeeze_axis", lambda x: np.squeeze(x, axis=0), [(1, 3, 1, 4)]),
        ("squeeze_neg_axis", lambda x: x.squeeze(-2), [(1, 3, 1, 4)]),
        ("atleast_1d", lambda x: np.atleast_1d(x), [()]),
        ("concatenate_0", lambda x, y: np.concatenate([x, y]), [(2, 4), (3, 4)]),
        ("concatenate_1", lambda x, y: np.concatenate([x, y], axis=1), [(3, 2), (3, 4)]),
        ("concatenate_m1", lambda x, y, z: np.concatenate((x, y, z), axis=-1),
         [(2, 1), (2, 3), (2, 2)]),
        ("concatenate_none", lambda x, y: np.concatenate([x, y], axis=None), [(2, 3), (4,)]),
        ("concatenate_const", lambda x: np.concatenate([x, np.ones((1, 4))]), [S]),
        ("concatenate_same", lambda x: np.concatenate([x, x]), [S]),
        ("stack_0", lambda x, y: np.stack([x, y]), [S, S]),
        ("stack_1", lambda x, y: np.stack([x, y], axis=1), [S, S]),
        ("stack_m1", lambda x, y: np.stack([x, y], axis=-1), [S, S]),
        ("hstack", lambda x, y: np.hstack([x, y]), [(3, 2), (3, 4)]),
        ("vstack", lambda x, y: np.vstack([x, y]), [(4,), S]),
        ("copy", lambda x: np.copy(x) * 1.0, [S]),
        ("zeros_like_plus", lambda x: x + np.zeros_like(x) + np.ones_like(x) + np.full_like(x, 2.0), [S]),
        ("astype_same", lambda x: x.astype(np.float64) * 2.0, [S]),
        ("where_const_mask", lambda x, y: np.where(np.arange(12).reshape(3, 4) % 2 == 0, x, y), [S, S]),
        ("where_bcast", lambda x, y: np.where(np.array([True, False, True, False]), x, y), [(3, 1), S]),
        ("clip", lambda x: np.clip(x, -1.0, 1.0), [S]),
        ("clip_max_only", lambda x: np.clip(x, None, 0.0), [S]),
        ("clip_method", lambda x: x.clip(-1.0, 1.0), [S]),
        ("clip_arrays", lambda x: np.clip(x, -1.0, np.array([0.0, 1.0, 2.0, 3.0])), [S])]:
    row(id, fn, shapes, "frac" if id.startswith("clip") else None)
row("astype_f32", lambda x: x.astype(np.float32), [S], rtol=1e-3, lowp=True)
row("astype_f32_to_f64", lambda x: x.astype(np.float64), [S], in_dtype=F32, rtol=1e-3, f32=False,
    lowp=True)
row("astype_roundtrip", lambda x: np.sin(x.astype(np.float32)).astype(np.float64), [S],
    rtol=1e-3, f32=False, lowp=True)
row("astype_int", lambda x: x.astype(np.int64), [S], "frac", kind="nondiff")
row("where_traced", lambda x, y: np.where(x > 0, x, y * 2.0), [S, S], ("nonzero", "any"))
row("where_relu", lambda x: np.where(x > 0, x, 0.0), [S], "nonzero", scalar=True)
row("where_scalar_branches", lambda x: np.where(x > 0, 1.0, -1.0) * x, [S], "nonzero")
row("where_cond_float", lambda x, y: np.where(y, x, -x), [S, S], ("any", "nonzero"))

# --- indexing -------------------------------------------------------------------------
I = (4, 5)
for id, fn, shape in [
        ("idx_int", lambda x: x[1], I), ("idx_neg_int", lambda x: x[-1], I),
        ("idx_int_int", lambda x: x[2, 3], I), ("idx_neg_int_int", lambda x: x[-1, -2], I),
        ("idx_slice", lambda x: x[1:3], I), ("idx_slice_step", lambda x: x[::2, 1:], I),
        ("idx_neg_step", lambda x: x[::-1], I), ("idx_neg_step_both", lambda x: x[3:0:-2, ::-1], I),
        ("idx_neg_step_to_start", lambda x: x[2::-1, -1::-2], I),
        ("idx_col", lambda x: x[:, -1], I), ("idx_none", lambda x: x[None], I),
        ("idx_none_mid", lambda x: x[:, None, 1:3], I), ("idx_ellipsis", lambda x: x[..., 1], I),
        ("idx_ellipsis_none", lambda x: x[1, ..., None], I),
        ("idx_mixed", lambda x: x[-2:, -3], I), ("idx_out_of_range_stop", lambda x: x[1:100], I),
        ("idx_empty_tuple", lambda x: x[()] * 1.0, I),
        ("idx_3d", lambda x: x[0, ..., ::-1], (2, 3, 4)),
        ("idx_3d_mixed", lambda x: x[:, 1, None, -2:], (2, 3, 4)),
        ("idx_1d_scalar", lambda x: x[2], (5,)),
        ("idx_twice", lambda x: x[1:][::-1][0], I),
        ("idx_iter", lambda x: sum(r * (i + 1.0) for i, r in enumerate(x)), I)]:
    row(id, fn, [shape])

# running totals (the transpose runs from the other end)
for id, fn, shape in [
        ("cumsum_flat", lambda x: np.cumsum(x), I), ("cumsum_0", lambda x: np.cumsum(x, axis=0), I),
        ("cumsum_neg_axis", lambda x: np.cumsum(x * x, axis=-1), (2, 3, 4)),
        ("method_cumsum", lambda x: x.cumsum(1) * x, I),
        ("cumsum_twice", lambda x: np.cumsum(np.cumsum(x, 0)[::-1], 0), (6,)),
        ("cumprod", lambda x: np.cumprod(x, axis=1), I)]:
    row(id, fn, [shape])

# diagonals and differences (slices and pads of flattened axes)
for id, fn, shape in [
        ("diagonal", lambda x: np.diagonal(x), I), ("diagonal_offset", lambda x: np.diagonal(x, 2), I),
        ("diagonal_neg_offset", lambda x: np.diagonal(x, -1), I),
        ("diagonal_3d", lambda x: np.diagonal(x, 0, 2, 0), (3, 2, 4)),
        ("trace", lambda x: np.trace(x), I), ("method_trace", lambda x: x.trace(1) * x, I),
        ("diag_extract", lambda x: np.diag(x, -2), I),
        ("diag_build", lambda x: np.diag(x) @ np.diag(x ** 2, 1)[1:, :-1], (4,)),
        ("diff", lambda x: np.diff(x), I), ("diff_2_axis0", lambda x: np.diff(x, 2, axis=0), I)]:
    row(id, fn, [shape])

# einsum (lowered to dot_general, sums, diagonals and transposes)
for id, sub, shapes in [
        ("einsum_matmul", "ij,jk->ik", [(3, 4), (4, 2)]),
        ("einsum_implicit", "ij,jk", [(3, 4), (4, 2)]),
        ("einsum_transpose_sum", "ij->j", [(3, 4)]),
        ("einsum_trace", "ii", [(3, 3)]),
        ("einsum_diag_mul", "ii,i->i", [(3, 3), (3,)]),
        ("einsum_batch", "bij,bjk->bki", [(2, 3, 4), (2, 4, 2)]),
        ("einsum_three", "ij,jk,ki->", [(2, 3), (3, 4), (4, 2)]),
        ("einsum_outer", "i,j->ji", [(3,), (4,)]),
        ("einsum_ellipsis", "...j,jk->...k", [(2, 3, 4), (4, 2)]),
        ("einsum_bilinear", "i,ij,j", [(3,), (3, 4), (4,)])]:
    row(id, (lambda sub: lambda *xs: np.einsum(sub, *xs))(sub), shapes)

# sorting: values move with their positions (values at least 0.17 apart: no ties)


def distinct_gen(rng, shapes):
    n = int(np.prod(shapes[0]))
    return [((rng.permutation(n) - n / 2) * 0.37).reshape(shapes[0])
            + rng.uniform(-0.1, 0.1, shapes[0])]


for id, fn, shape in [
        ("sort", lambda x: np.sort(x), I), ("sort_axis0", lambda x: np.sort(x, axis=0) * x, I),
        ("sort_flat", lambda x: np.sort(x, axis=None)[::-1], I),
        ("sort_3d", lambda x: np.sort(x ** 2, axis=1), (2, 3, 4)),
        ("median", lambda x: np.median(x, axis=0), I)]:
    row(id, fn, [shape], gen=distinct_gen)
for id, fn in [("argsort", lambda x: np.argsort(x)), ("argsort_axis0", lambda x: np.argsort(x, 0)),
               ("argmax", lambda x: np.argmax(x)), ("argmax_axis1", lambda x: np.argmax(x, axis=1)),
               ("argmin_keepdims", lambda x: np.argmin(x, axis=0, keepdims=True)),
               ("method_argmax", lambda x: x.argmax(-1))]:
    row(id, fn, [I], gen=distinct_gen, kind="nondiff")

# linear algebra on well-conditioned matrices (last two axes; leading axes batch)


def matrices_gen(rng, shapes):
    out = []
    for sh in shapes:
        x = rng.uniform(-0.5, 0.5, sh)
        if len(sh) >= 2 and sh[-1] == sh[-2]:
            x = x + 2.0 * np.eye(sh[-1])
        out.append(x)
    return out


for id, fn, shapes in [
        ("inv", lambda a: np.linalg.inv(a), [(3, 3)]),
        ("inv_batched", lambda a: np.linalg.inv(a), [(2, 3, 3)]),
        ("solve_vector", lambda a, b: np.linalg.solve(a, b), [(3, 3), (3,)]),
        ("solve_matrix", lambda a, b: np.linalg.solve(a, b), [(3, 3), (3, 2)]),
        ("solve_batched", lambda a, b: np.linalg.solve(a, b), [(2, 3, 3), (2, 3, 2)]),
        ("solve_broadcast", lambda a, b: np.linalg.solve(a, b), [(3, 3), (2, 3, 1)]),
        ("det", lambda a: np.linalg.det(a), [(3, 3)]),
        ("det_batched", lambda a: np.linalg.det(a), [(2, 3, 3)]),
        # A.T is read elementwise and also materialised for solve
        ("linalg_mix", lambda a: np.sum(np.linalg.inv(a) * a.T) + np.linalg.solve(a.T, a[:, 0]),
         [(3, 3)])]:
    row(id, fn, shapes, gen=matrices_gen, f32_rtol=1e-4)

# advanced indexing with concrete indices (gather; its transpose scatter_add
# accumulates repeated indices)
for id, fn, shape in [
        ("adv_rows", lambda x: x[np.array([3, 0, 3, -1])], I),
        ("adv_list", lambda x: x[[1, 1, 2]] ** 2, I),
        ("adv_2d_index", lambda x: x[np.array([[0, 2], [2, 2]])], I),
        ("adv_pairs", lambda x: x[np.arange(4), np.array([4, 0, 2, 2])], I),
        ("adv_pairs_broadcast", lambda x: x[np.array([[0], [3]]), np.array([1, -1, 1])], I),
        ("adv_cols", lambda x: x[:, np.array([4, 1, 1])], I),
        ("adv_then_slice", lambda x: x[np.array([2, 0]), 1:4], I),
        ("adv_int_pair", lambda x: x[np.array([1, 3]), 2], I),
        ("adv_mask", lambda x: x[np.array([True, False, True, True])], I),
        ("adv_mask_2d", lambda x: x[np.arange(20).reshape(4, 5) % 3 == 0], I),
        ("adv_middle", lambda x: x[:, np.array([2, 0]), 1:], (2, 3, 4)),
        ("take_axis1", lambda x: np.take(x, np.array([[4, 0], [1, 1]]), axis=1), I),
        ("take_flat", lambda x: np.take(x, [7, 7, 19]), I)]:
    row(id, fn, [shape])

# Control flow (jitgrad.scan, fori_loop, while_loop, cond, switch, checkpoint):
# the reference runs them eagerly; tests/test_control.py compares them with
# the same functions unrolled.


def _rnn(W, xs, **kw):
    return jitgrad.scan(lambda h, x: (np.tanh(W @ h + x), np.sin(h)), np.ones(3) * 0.1, xs, **kw)[1]


# compiled with their derivatives in tests/test_control.py (the checkpoint
# policies are compiled here too)
CONTROL_ROWS = {"scan_rnn", "scan_rnn_reverse", "scan_rnn_binomial", "scan_rnn_reverse_binomial", "scan_carry_only",
                "fori_loop", "while_loop", "cond", "switch", "checkpoint"}
for id, fn, shapes, kw in [
        ("scan_rnn", _rnn, [(3, 3), (5, 3)], {}),
        ("scan_rnn_reverse", lambda W, xs: _rnn(W, xs, reverse=True), [(3, 3), (5, 3)], {}),
        ("scan_rnn_residuals", lambda W, xs: _rnn(W, xs, checkpoint="residuals"), [(3, 3), (5, 3)], {}),
        ("scan_rnn_every_2", lambda W, xs: _rnn(W, xs, checkpoint=2), [(3, 3), (5, 3)], {}),
        ("scan_rnn_binomial", lambda W, xs: _rnn(W, xs, checkpoint=jitgrad.binomial(2)), [(3, 3), (5, 3)], {}),
        ("scan_rnn_reverse_binomial", lambda W, xs: _rnn(W, xs, reverse=True, checkpoint=jitgrad.binomial(3)),
         [(3, 3), (5, 3)], {}),
        ("scan_carry_only", lambda x: jitgrad.scan(lambda c, _: (c * np.cos(c) + 0.5, None), x, None,
                                                    length=4)[0], [S], {}),
        ("fori_loop", lambda x: jitgrad.fori_loop(0, 4, lambda i, v: v * np.sin(v) + i, x), [S], {}),
        ("while_loop", lambda x: jitgrad.while_loop(lambda c: c[1] < 3, lambda c: (np.sin(c[0]) * 1.5 + c[0],
                                                                              c[1] + 1), (x, 0))[0],
         [S], {}),
        ("cond", lambda x: jitgrad.cond(np.sum(x) > 0, np.sin, lambda v: np.cos(v) * v, x), [S], {}),
        ("switch", lambda x, y: jitgrad.switch(2, [np.add, np.multiply, lambda a, b: a * np.exp(b)], x, y),
         [S, S], {}),
        ("checkpoint", lambda x: jitgrad.checkpoint(lambda v: np.sin(v) * np.exp(v))(x), [S], {})]:
    row(id, fn, shapes, **kw)

# --- complex numbers (inputs from gen; several functions per row) -------------------
C128 = np.complex128


def complex_gen(real_domain="any"):
    def gen(rng, shapes):
        return [sample(real_domain, s, rng) + 1j * sample("nonzero", s, rng) for s in shapes]
    return gen


def real_and_complex_gen(rng, shapes):
    return [sample("nonzero", shapes[0], rng), complex_gen()(rng, shapes[1:])[0]]


for id, fn, shapes, gen in [
        ("complex_chain", lambda z: np.exp(z) * np.sin(z) / (z * z + 2.0) + np.tanh(z) - 1j * np.cosh(z),
         [S], complex_gen()),
        ("complex_log_sqrt_pow", lambda z: np.log(z) + np.sqrt(z) + z ** 2.5 + z ** (0.5 + 1j) + 1 / z,
         [S], complex_gen("pos")),
        ("complex_parts", lambda z: np.real(z) * np.imag(z) + np.abs(z) + np.angle(z) + np.conj(z) * 1j,
         [S], complex_gen("nonzero")),
        ("complex_mixed_binary", lambda x, z: x * z + x / z + np.vdot(z, x) - z ** x, [S, S],
         real_and_complex_gen),
        ("complex_products", lambda a, b: a @ b + np.einsum("ij,jk->ik", a.conj(), b * 1j), [(3, 4), (4, 2)],
         complex_gen()),
        ("complex_reductions", lambda z: np.cumsum(z, 1) + np.sum(z, 0) * np.prod(z, 1)[:, None] + np.mean(z),
         [S], complex_gen()),
        ("fft_complex", lambda z: np.fft.fft2(z) + np.fft.ifft(z, norm="ortho"), [S], complex_gen()),
        ("rfft_irfft", lambda x: np.fft.irfft(np.fft.rfft(x, axis=0) * 1j, n=3, axis=0), [S], None)]:
    row(id, fn, shapes, gen=gen, in_dtype=C128 if gen is not None else F64, f32=False)
# tests/test_complex.py and tests/test_fft.py compile these functions (grouped): not again here
COMPILED_ELSEWHERE = {"complex_chain", "complex_log_sqrt_pow", "complex_parts", "complex_reductions",
                      "fft_complex", "rfft_irfft"}

# Tolerances tuned only for reasons that do not depend on jitgrad: conditioning.
COMPILE_F32 = {"op_chain", "op_pow_m2", "op_rpow", "op_pow_xy", "sum{'axis': (0, 2)}", "mean{}",
               "max{'axis': 1}", "min{}", "var{'axis': 0}", "std{}", "prod{'axis': -1}",
               "matmul_3d_2d", "dot_2d_1d", "outer", "where_traced", "clip", "idx_neg_step_both",
               "concatenate_0", "stack_1", "logaddexp", "arctan2", "hypot", "maximum",
               "remainder", "floor_divide", "transpose_axes", "broadcast_to_size1"}
for r in ROWS:
    if r.id in COMPILE_F32:
        r.compile_f32 = True
    if r.id.startswith(("prod", "method_prod")):
        r.f32_rtol = 1e-4
    if r.id in ("std_ddof1",) or r.id.startswith(("var", "std", "method_var")):
        r.f32_rtol = 1e-4




def rows_for(test, rows):
    out = []
    for r in rows:
        marks = [pytest.mark.xfail(reason=r.known_bugs[test], strict=False)] \
            if test in r.known_bugs else []
        out.append(pytest.param(r, id=r.id, marks=marks))
    return pytest.mark.parametrize("r", out)


IDS = [r.id for r in ROWS]
assert len(set(IDS)) == len(IDS), [i for i in IDS if IDS.count(i) > 1]
DIFF_ROWS = [r for r in ROWS if r.kind != "nondiff"]


# ---------------------------------------------------------------------------
# Helpers


def _re(x):
    """The real part of a complex value (complex rows are scalarised to real)."""
    return np.real(x) if np.iscomplexobj(x) else x


def scalarised(r, args, rng):
    """g(*args) = Re(sum(f(*args) * w)) for a fixed random w of the output's shape and dtype."""
    out = np.asarray(r.fn(*args))
    w = random_like(rng, out)

    def g(*a):
        return _re(np.sum(r.fn(*a) * w))
    return g, w


def tangents(args, rng):
    return [random_like(rng, a) for a in args]


def check_value(got, ref, rtol, atol=1e-12):
    ref_arr = np.asarray(ref)
    assert np.asarray(got).dtype == ref_arr.dtype, (np.asarray(got).dtype, ref_arr.dtype)
    assert np.shape(got) == ref_arr.shape, (np.shape(got), ref_arr.shape)
    if ref_arr.ndim == 0:
        assert isinstance(got, np.generic), f"0-d result should be a NumPy scalar, got {type(got)}"
    else:
        assert isinstance(got, np.ndarray), type(got)
    if ref_arr.dtype.kind in "fc":
        assert_close(got, ref_arr, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(got, ref_arr)


# ---------------------------------------------------------------------------
# (a) value vs NumPy, (b) shape rules


@rows_for("test_value", ROWS)
def test_value(r, rng):
    args = r.args(rng)
    ref = r.fn(*args)
    got = jitgrad.jit(r.fn)(*args)
    check_value(got, ref, rtol=1e-12, atol=1e-13)


@rows_for("test_shape_rules", ROWS)
def test_shape_rules(r, rng):
    args = r.args(rng)
    ref = np.asarray(r.fn(*args))
    ir = jitgrad.make_ir(r.fn)(*args)
    assert typecheck(ir)
    (out,) = ir.out_avals
    assert out.shape == ref.shape and np.dtype(out.dtype) == ref.dtype, (str(out), ref.shape, ref.dtype)
    # the IR evaluates to the same value in the reference interpreter
    (val,) = jitgrad.core.trace.eval_ir(ir, args)
    check_value(np.asarray(val)[()] if np.ndim(val) == 0 else np.asarray(val), ref, rtol=1e-12,
                atol=1e-13)
    if r.kind != "nondiff":
        g, _ = scalarised(r, args, rng)
        gir = jitgrad.make_ir(grad_all(g, r.arity))(*args)
        assert typecheck(gir)
        assert [a.shape for a in gir.out_avals] == [a.shape for a in args]
        assert [np.dtype(a.dtype) for a in gir.out_avals] == [a.dtype for a in args]


# ---------------------------------------------------------------------------
# (c) JVP vs finite differences, (d) dot-product test


@rows_for("test_jvp_vs_finite_differences", DIFF_ROWS)
def test_jvp_vs_finite_differences(r, rng):
    args = r.args(rng)
    v = tangents(args, rng)
    out, t = jitgrad.jvp(r.fn, tuple(args), tuple(v))
    check_value(out, r.fn(*args), rtol=1e-12, atol=1e-13)
    ref_out = np.asarray(r.fn(*args))
    assert np.shape(t) == ref_out.shape and np.asarray(t).dtype == ref_out.dtype
    (fd,) = fd_jvp(r.fn, args, v)
    if r.kind == "zero":
        assert np.all(np.asarray(t) == 0), t
        assert np.max(np.abs(fd)) < 1e-9, "test domain crosses a discontinuity"
    else:
        assert_close(t, fd, rtol=r.rtol, atol=1e-8)


@rows_for("test_vjp_dot_product", DIFF_ROWS)
def test_vjp_dot_product(r, rng):
    args = r.args(rng)
    dot_product_check(r.fn, args, rng, rtol=2e-5 if r.lowp else None)


@rows_for("test_vjp_vs_finite_differences", DIFF_ROWS)
def test_vjp_vs_finite_differences(r, rng):
    """Each input's cotangent against finite differences of <u, f> along a random v."""
    args = r.args(rng)
    out, vjp_fn = jitgrad.vjp(r.fn, *args)
    u = random_like(rng, out)
    cts = vjp_fn(u[()] if u.ndim == 0 else u)
    for i in range(r.arity):
        v = [np.zeros_like(a) for a in args]
        v[i] = random_like(rng, args[i])
        (fd,) = fd_jvp(lambda *a: np.real(np.sum(np.asarray(r.fn(*a)) * u)), args, v)
        if r.kind == "zero":
            assert np.all(np.asarray(cts[i]) == 0)
        else:
            assert_close(vdot(cts[i], v[i]), fd, rtol=r.rtol, atol=1e-8)


# ---------------------------------------------------------------------------
# (e) second order


@rows_for("test_second_order", DIFF_ROWS)
def test_second_order(r, rng):
    if not r.hess:
        pytest.skip("no second-order test for this row")
    args = r.args(rng)
    n = r.arity
    g, _ = scalarised(r, args, rng)
    grad_g = grad_all(g, n)
    v = tangents(args, rng)
    fd = fd_jvp(lambda *a: grad_g(*a), args, v)
    # forward over reverse
    grads, hv = jitgrad.jvp(grad_g, tuple(args), tuple(v))
    assert len(hv) == n
    # reverse over reverse
    hv_rr = jitgrad.grad(lambda *a: sum(_re(np.sum(gi * vi)) for gi, vi in zip(grad_g(*a), v)),
                         argnums=tuple(range(n)))(*args)
    # forward over forward: d/ds <v, grad g(x + s v)> via jvp of jvp
    vv = jitgrad.jvp(lambda *a: jitgrad.jvp(g, a, tuple(v))[1], tuple(args), tuple(v))[1]
    for i in range(n):
        assert np.shape(hv[i]) == np.shape(args[i]) and hv_rr[i].dtype == args[i].dtype
        if r.kind == "zero":
            assert np.all(hv[i] == 0) and np.all(hv_rr[i] == 0)
        else:
            assert_close(hv[i], fd[i], rtol=r.rtol * 10, atol=1e-7)
            assert_close(hv_rr[i], fd[i], rtol=r.rtol * 10, atol=1e-7)
    assert_close(vv, sum(vdot(f, vi) for f, vi in zip(fd, v)), rtol=r.rtol * 10, atol=1e-7)


SCALAR_ROWS = [r for r in ROWS if r.scalar]


@rows_for("test_grad_of_grad_scalar", SCALAR_ROWS)
def test_grad_of_grad_scalar(r, rng):
    """Unary elementwise rows on a 0-d input: grad, grad(grad), grad(grad(grad))."""
    (x,) = r.args(rng)
    x0 = np.float64(x.ravel()[0])
    f = r.fn
    d1 = jitgrad.grad(f)
    d2 = jitgrad.grad(d1)
    d3 = jitgrad.grad(d2)
    one = [np.ones(())]
    (fd1,) = fd_jvp(f, [x0], one)
    (fd2,) = fd_jvp(d1, [x0], one)
    (fd3,) = fd_jvp(d2, [x0], one)
    for got, fd in ((d1(x0), fd1), (d2(x0), fd2), (d3(x0), fd3)):
        assert isinstance(got, np.float64), type(got)
        if r.kind == "zero":
            assert got == 0
        else:
            assert_close(got, fd, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# (f) compiled vs interpreter (one compile per row and dtype), (g) float32


def _value_and_grads(r, args, rng):
    if r.kind == "nondiff":
        return jitgrad.jit(r.fn)
    g, _ = scalarised(r, args, rng)
    grad_g = grad_all(g, r.arity)
    return jitgrad.jit(lambda *a: (r.fn(*a), grad_g(*a)))


def _compiled_params():
    out = []
    for r in ROWS:
        if r.id in CONTROL_ROWS or r.id in COMPILED_ELSEWHERE:
            continue
        for dtype, name in ((F64, "f64"), (F32, "f32")):
            if dtype == F32 and not (r.f32 and r.compile_f32):
                continue     # float32 is compiled for a subset of rows only (compile time)
            test = "test_compiled_matches_interpreter"
            marks = [pytest.mark.xfail(reason=r.known_bugs[test], strict=False)] \
                if test in r.known_bugs else []
            out.append(pytest.param(r, dtype, id=f"{r.id}-{name}", marks=marks))
    return pytest.mark.parametrize("r, dtype", out)


@_compiled_params()
def test_compiled_matches_interpreter(r, dtype, rng):
    args = r.args(rng, dtype=dtype)
    f = _value_and_grads(r, args, rng)
    with jitgrad.config(compile="never"):
        ref = f(*args)
    with jitgrad.config(compile="always"):
        with _no_warnings():
            got = f(*args)
    assert f._staged.cache, "nothing was cached"
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None, f"not compiled: {entry.exe.error!r}"
    ref_l, got_l = jitgrad.tree.flatten(ref)[0], jitgrad.tree.flatten(got)[0]
    assert len(ref_l) == len(got_l)
    tol = 1e-10 if dtype == F64 and not r.lowp else 5e-6
    for a, b in zip(got_l, ref_l):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert np.shape(a) == np.shape(b)
        assert isinstance(a, np.generic) == isinstance(b, np.generic)
        if np.asarray(b).dtype.kind in "fc":
            assert_close(a, b, rtol=tol, atol=tol * 1e-2)
        else:
            np.testing.assert_array_equal(a, b)


class _no_warnings:
    """Fail on the 'could not compile' RuntimeWarning (it would hide a codegen bug)."""

    def __enter__(self):
        import warnings
        self.cm = warnings.catch_warnings()
        self.cm.__enter__()
        warnings.simplefilter("error", RuntimeWarning)

    def __exit__(self, *exc):
        self.cm.__exit__(*exc)


@rows_for("test_float32", ROWS)
def test_float32(r, rng):
    if not r.f32:
        pytest.skip("row has a fixed input dtype")
    args64 = r.args(rng, dtype=F64)
    args32 = [a.astype(F32) for a in args64]
    ref32 = r.fn(*args32)            # NumPy's own float32 result (dtype rules included)
    got = jitgrad.jit(r.fn)(*args32)
    check_value(got, ref32, rtol=r.f32_rtol, atol=1e-6)
    if r.kind == "nondiff":
        return
    g64, w = scalarised(r, args64, rng)
    w32 = w.astype(np.asarray(ref32).dtype)
    grads32 = grad_all(lambda *a: np.sum(r.fn(*a) * w32), r.arity)(*args32)
    grads64 = grad_all(g64, r.arity)(*args64)
    for a, g32, g64_ in zip(args32, grads32, grads64):
        assert g32.dtype == F32, g32.dtype
        assert g32.shape == a.shape
        assert_close(g32, g64_, rtol=max(r.f32_rtol, 1e-4), atol=1e-5)
