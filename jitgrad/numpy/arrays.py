"""NumPy's array manipulation beyond reshaping: flipping, rolling, rotating,
repeating and tiling, splitting, more joins (``column_stack``, ``dstack``,
``append``), ``atleast_2d``/``3d``, ``rollaxis``, ``triu``/``tril``, ``kron``,
``meshgrid``, ``linspace`` (traced endpoints), ``pad`` and the constructors
(``eye``, ``identity``, ``tri``, ``full``, ``diagflat``).

Every one is a composition of slices, reshapes, broadcasts, concatenations and
gathers with concrete indices, so it fuses and its derivative is the transpose
of that data movement.  Sizes, counts and shifts must be concrete (they decide
the result's shape).
"""
from __future__ import annotations

import builtins
import operator

import numpy as _np

from ..core.trace import Tracer
from .base import (_PY_SCALARS, _axis_index, _axis_tuple, _float_dtype, _operand, _shape, astype,
                   result_dtype)
from .indexing import diag, getitem, take
from .rounding import floor
from .shapes import (_shape_argument, broadcast_to, concatenate, moveaxis, ravel, reshape,
                     transpose)
from .ufuncs import add, multiply, where

# ---------------------------------------------------------------------------
# Flipping, rolling, rotating


def _slice_along(a, axis, s):
    return getitem(a, tuple(s if d == axis else slice(None) for d in range(len(_shape(a)))))


def flip(m, axis=None):
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    m = _operand(m)
    nd = len(_shape(m))
    axes = range(nd) if axis is None else _axis_tuple(axis, nd)
    key = tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(nd))
    return getitem(m, key) if nd else m


def fliplr(m):
    m = _operand(m)
    if len(_shape(m)) < 2:
        raise ValueError("Input must be >= 2-d.")
    return flip(m, 1)


def flipud(m):
    m = _operand(m)
    if len(_shape(m)) < 1:
        raise ValueError("Input must be >= 1-d.")
    return flip(m, 0)


def roll(a, shift, axis=None):
    """Elements shifted along ``axis`` (the flattened array when None), wrapping around."""
    a = _operand(a)
    if isinstance(shift, Tracer):
        raise NotImplementedError("jitgrad's np.roll needs a concrete shift (it decides where "
                                  "each element goes)")
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), _shape(a))
    nd = len(_shape(a))
    shifts = {}
    for s, ax in _np.broadcast(shift, axis):
        ax = _axis_index(ax, nd)
        shifts[ax] = shifts.get(ax, 0) + int(s)
    for ax, s in shifts.items():
        n = _shape(a)[ax]
        s = s % n if n else 0
        if s:
            a = concatenate([_slice_along(a, ax, slice(n - s, None)),
                             _slice_along(a, ax, slice(None, n - s))], axis=ax)
    return a


def rot90(m, k=1, axes=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``axes`` (as NumPy)."""
    m = _operand(m)
    axes = tuple(axes)
    nd = len(_shape(m))
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or builtins.abs(axes[0] - axes[1]) == nd:
        raise ValueError("Axes must be different.")
    if axes[0] >= nd or axes[0] < -nd or axes[1] >= nd or axes[1] < -nd:
        raise ValueError(f"Axes={axes} out of range for array of ndim={nd}.")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    perm = list(range(nd))
    a0, a1 = axes[0] % nd, axes[1] % nd
    perm[a0], perm[a1] = perm[a1], perm[a0]
    return transpose(flip(m, axes[1]), perm) if k == 1 else flip(transpose(m, perm), axes[1])


def rollaxis(a, axis, start=0):
    a = _operand(a)
    n = len(_shape(a))
    axis = _axis_index(axis, n)
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise _np.exceptions.AxisError(
            f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in")
    if axis < start:
        start -= 1
    if axis == start:
        return a
    perm = [d for d in range(n) if d != axis]
    perm.insert(start, axis)
    return transpose(a, perm)


# ---------------------------------------------------------------------------
# Repeating and tiling


def repeat(a, repeats, axis=None):
    """Each element repeated ``repeats`` times (an integer, or one count per element)."""
    a = _operand(a)
    if isinstance(repeats, Tracer):
        raise NotImplementedError("jitgrad's np.repeat needs concrete repeats (they decide the "
                                  "result's shape)")
    if axis is None:
        a, axis = ravel(a), 0
    nd = len(_shape(a))
    axis = _axis_index(axis, nd)
    n = _shape(a)[axis]
    reps = _np.asarray(repeats)
    if reps.ndim == 0 or reps.shape == (1,):
        r = int(reps.reshape(()))
        if r < 0:
            raise ValueError("repeats may not contain negative values.")
        # a view: a new axis after ``axis``, broadcast to r, merged into it
        shape = _shape(a)
        wide = reshape(a, shape[:axis + 1] + (1,) + shape[axis + 1:])
        wide = broadcast_to(wide, shape[:axis + 1] + (r,) + shape[axis + 1:])
        return reshape(wide, shape[:axis] + (n * r,) + shape[axis + 1:])
    # (NumPy's own checks and messages for the counts)
    idx = _np.repeat(_np.arange(n), reps)
    return take(a, idx, axis=axis)


def tile(A, reps):
    """``A`` repeated ``reps`` times along each axis (as NumPy: leading axes are added)."""
    A = _operand(A)
    reps = tuple(int(r) for r in _np.atleast_1d(reps)) if not isinstance(reps, Tracer) else reps
    if isinstance(reps, Tracer):
        raise NotImplementedError("jitgrad's np.tile needs concrete reps")
    shape = _shape(A)
    d = builtins.max(len(shape), len(reps))
    shape = (1,) * (d - len(shape)) + shape
    reps = (1,) * (d - len(reps)) + reps
    if isinstance(A, _PY_SCALARS) or not isinstance(A, Tracer) and _np.ndim(A) == 0:
        A = _np.asarray(A)
    # (r_0, s_0, r_1, s_1, ...) by broadcasting, then merged pairwise
    inter = tuple(x for s in shape for x in (1, s))
    wide = broadcast_to(reshape(A, inter), tuple(x for r, s in zip(reps, shape) for x in (r, s)))
    return reshape(wide, tuple(r * s for r, s in zip(reps, shape)))


# ---------------------------------------------------------------------------
# Splitting


def array_split(ary, indices_or_sections, axis=0):
    """Sub-arrays along ``axis``: ``n`` sections (the first ones one longer when
    they cannot be equal) or the pieces between the given indices."""
    ary = _operand(ary)
    nd = len(_shape(ary))
    axis = _axis_index(axis, nd)
    total = _shape(ary)[axis]
    if isinstance(indices_or_sections, Tracer):
        raise NotImplementedError("jitgrad's split needs concrete sections or indices")
    if _np.ndim(indices_or_sections) == 0:
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.")
        each, extras = divmod(total, sections)
        sizes = [0] + extras * [each + 1] + (sections - extras) * [each]
        bounds = _np.cumsum(sizes).tolist()
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [total]
    return [_slice_along(ary, axis, slice(bounds[i], bounds[i + 1]))
            for i in range(len(bounds) - 1)]


def split(ary, indices_or_sections, axis=0):
    ary = _operand(ary)
    if _np.ndim(indices_or_sections) == 0 and not isinstance(indices_or_sections, Tracer):
        n = _shape(ary)[_axis_index(axis, len(_shape(ary)))]
        if int(indices_or_sections) == 0 or n % int(indices_or_sections):
            raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    ary = _operand(ary)
    if len(_shape(ary)) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, 1 if len(_shape(ary)) > 1 else 0)


def vsplit(ary, indices_or_sections):
    ary = _operand(ary)
    if len(_shape(ary)) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, 0)


def dsplit(ary, indices_or_sections):
    ary = _operand(ary)
    if len(_shape(ary)) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, 2)


# ---------------------------------------------------------------------------
# Joining and promoting dimensions


def _one_or_tuple(fn, arys):
    out = tuple(fn(_operand(a)) for a in arys)
    return out[0] if len(out) == 1 else out


def _as_array(a):
    return _np.asarray(a) if isinstance(a, _PY_SCALARS) else a


def atleast_2d(*arys):
    def one(a):
        s = _shape(a)
        return reshape(_as_array(a), (1,) * (2 - len(s)) + s) if len(s) < 2 else a
    return _one_or_tuple(one, arys)


def atleast_3d(*arys):
    def one(a):
        s = _shape(a)
        new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s))
        return reshape(_as_array(a), new) if new else a
    return _one_or_tuple(one, arys)


def column_stack(tup):
    cols = []
    for a in tup:
        a = _operand(a)
        cols.append(reshape(_as_array(a), (-1, 1)) if len(_shape(a)) < 2 else a)
    return concatenate(cols, axis=1)


def dstack(tup):
    arrs = atleast_3d(*tup)
    return concatenate(arrs if isinstance(arrs, tuple) else (arrs,), axis=2)


def append(arr, values, axis=None):
    if axis is None:
        return concatenate([ravel(_as_array(_operand(arr))), ravel(_as_array(_operand(values)))], 0)
    return concatenate([arr, values], axis=axis)


# ---------------------------------------------------------------------------
# Triangles, Kronecker products, grids


def tri(N, M=None, k=0, dtype=float, **kwargs):
    """A concrete lower-triangular array of ones (as np.tri)."""
    return _np.tri(N, M, k, dtype)


def eye(N, M=None, k=0, dtype=float, order="C", **kwargs):
    """A concrete identity-like array (as np.eye); multiply it by a traced scale."""
    return _np.eye(N, M, k, dtype, order)


def identity(n, dtype=None, **kwargs):
    return _np.identity(n, dtype)


def full(shape, fill_value, dtype=None, order="C", **kwargs):
    """An array of ``shape`` filled with ``fill_value``, which may be traced
    (then its derivative is the sum of the output's)."""
    fill = _operand(fill_value)
    shape = _shape_argument(shape)
    dt = _np.dtype(dtype) if dtype is not None else (
        _np.asarray(fill).dtype if isinstance(fill, _PY_SCALARS) else result_dtype(fill))
    return broadcast_to(astype(_as_array(fill), dt), shape)


def tril(m, k=0):
    """The lower triangle (on and below the k-th diagonal) of the last two axes."""
    m = _operand(m)
    s = _shape(m)
    mask = _np.tri(*s[-2:], k=k, dtype=bool) if len(s) >= 2 else _np.tri(s[0], s[0], k, bool)
    return where(mask, m, _np.zeros(1, result_dtype(m)))


def triu(m, k=0):
    """The upper triangle (on and above the k-th diagonal) of the last two axes."""
    m = _operand(m)
    s = _shape(m)
    mask = _np.tri(*s[-2:], k=k - 1, dtype=bool) if len(s) >= 2 else _np.tri(s[0], s[0], k - 1, bool)
    return where(mask, _np.zeros(1, result_dtype(m)), m)


def diagflat(v, k=0):
    return diag(ravel(_as_array(_operand(v))), k)


def kron(a, b):
    """Kronecker product: blocks a[i, j] * b, by broadcasting interleaved axes."""
    a, b = _operand(a), _operand(b)
    sa, sb = _shape(a), _shape(b)
    if not sa or not sb:
        return multiply(a, b)
    d = builtins.max(len(sa), len(sb))
    sa, sb = (1,) * (d - len(sa)) + sa, (1,) * (d - len(sb)) + sb
    wide = multiply(reshape(a, tuple(x for s in sa for x in (s, 1))),
                    reshape(b, tuple(x for s in sb for x in (1, s))))
    return reshape(wide, tuple(x * y for x, y in zip(sa, sb)))


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate arrays from coordinate vectors (a tuple, as NumPy 2)."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    out = []
    for i, x in enumerate(xi):
        shape = [1] * nd
        shape[i] = -1
        if indexing == "xy" and nd > 1 and i < 2:
            shape[0], shape[1] = (1, -1) if i == 0 else (-1, 1)
        out.append(reshape(ravel(_as_array(_operand(x))), shape))
    if not sparse and out:
        full_shape = _np.broadcast_shapes(*[_shape(o) for o in out])
        out = [broadcast_to(o, full_shape) for o in out]
    return tuple(out)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, **kwargs):
    """``num`` evenly spaced values from ``start`` to ``stop``; the endpoints may be traced."""
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    start, stop = _operand(start), _operand(stop)
    div = num - 1 if endpoint else num
    dt = _float_dtype(result_dtype(start, stop, 0.0))
    start, stop = astype(_as_array(start), dt), astype(_as_array(stop), dt)
    delta = add(stop, multiply(start, -1))
    bshape = _np.broadcast_shapes(_shape(start), _shape(stop))
    steps = _np.arange(num, dtype=dt).reshape((-1,) + (1,) * len(bshape))
    step = multiply(delta, 1.0 / div) if div > 0 else _np.nan
    y = add(multiply(steps, step if div > 0 else delta), start)
    if endpoint and num > 1:      # the last value is stop exactly, as in NumPy
        last = reshape(broadcast_to(stop, bshape), (1,) + bshape)
        y = concatenate([getitem(y, (slice(None, -1),)), last], axis=0)
    if axis != 0:
        y = moveaxis(y, 0, axis)
    if dtype is not None:
        want = _np.dtype(dtype)
        if want.kind in "iu":
            y = floor(y)
        y = astype(y, want)
    return (y, step) if retstep else y


# ---------------------------------------------------------------------------
# Padding


def _pad_pairs(pad_width, nd):
    pw = _np.asarray(pad_width)
    if pw.size and pw.dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    pw = _np.broadcast_to(pw.astype(_np.int64), (nd, 2))
    if (pw < 0).any():
        raise ValueError("index can't contain negative values")
    return [tuple(int(x) for x in p) for p in pw]


def _value_pairs(values, nd):
    """(before, after) constant per axis, as NumPy reads ``constant_values``."""
    if isinstance(values, Tracer):
        if values.aval.shape != ():
            raise NotImplementedError("jitgrad's np.pad takes a traced constant_values only as a scalar")
        return [(values, values)] * nd
    v = _np.asarray(values)
    if v.size == 1:
        return [(v.ravel()[0],) * 2] * nd
    if v.size == 2 and v.shape != (2, 1):
        return [tuple(v.ravel())] * nd
    b = _np.broadcast_to(v, (nd, 2))
    return [(b[i, 0], b[i, 1]) for i in range(nd)]


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(array, pad_width, mode="constant", **kwargs):
    """Pad with a constant (``constant_values``, may be traced) or by reading
    the array's own elements (``edge``, ``reflect``, ``symmetric``, ``wrap``)."""
    a = _as_array(_operand(array))
    shape = _shape(a)
    nd = len(shape)
    if callable(mode) or mode not in _PAD_MODES:
        if callable(mode) or mode in ("linear_ramp", "maximum", "mean", "median", "minimum", "empty"):
            raise NotImplementedError(f"jitgrad's np.pad supports the modes {', '.join(_PAD_MODES)}")
        raise ValueError(f"mode '{mode}' is not supported")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"},
               "symmetric": {"reflect_type"}}.get(mode, set())
    extra = set(kwargs) - allowed
    if extra:
        raise ValueError(f"unsupported keyword arguments for mode '{mode}': {extra}")
    if kwargs.get("reflect_type", "even") != "even":
        raise NotImplementedError("jitgrad's np.pad supports reflect_type='even' only")
    pairs = _pad_pairs(pad_width, nd)
    dt = result_dtype(a)
    if mode == "constant":
        values = _value_pairs(kwargs.get("constant_values", 0), nd)
        for ax, ((before, after), (vb, va)) in enumerate(zip(pairs, values)):
            if before == after == 0:
                continue
            parts = []
            for n, v in ((before, vb), (None, None), (after, va)):
                if n is None:
                    parts.append(a)
                elif n:
                    s = list(_shape(a))
                    s[ax] = n
                    parts.append(broadcast_to(astype(_as_array(_operand(v)), dt), tuple(s)))
            a = concatenate(parts, axis=ax)
        return a
    for ax, (before, after) in enumerate(pairs):
        if before == after == 0:
            continue
        if shape[ax] == 0:
            raise ValueError(f"can't extend empty axis {ax} using modes other than 'constant' "
                             "or 'empty'")
        # the source of every padded position is what np.pad does to the positions
        idx = _np.pad(_np.arange(shape[ax]), (before, after), mode=mode)
        a = take(a, idx, axis=ax)
    return a
