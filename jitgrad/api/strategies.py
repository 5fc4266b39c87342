"""Hypothesis strategies for property-based tests of differentiable code:
shapes, float dtypes, and arrays whose values lie in a function's domain.

Imported by ``jitgrad.testing`` when one of these names is first used, so that
jitgrad itself does not need Hypothesis.  Values are bounded and finite, and
the float32 ones are exactly representable, so that finite differences are
meaningful::

    from hypothesis import given
    from jitgrad.testing import arrays, check_grads

    @given(arrays(domain="positive"))
    def test_log(x):
        check_grads(np.log, (x,))
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

# name -> (low, high, smallest magnitude): where a function's derivatives are tame
DOMAINS = {
    "any": (-2.0, 2.0, 0.0),
    "positive": (0.25, 2.0, 0.0),
    "nonzero": (-2.0, 2.0, 0.25),
    "unit": (-0.9, 0.9, 0.0),          # inside (-1, 1): arcsin, arctanh
}


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes: tuples of ``min_dims`` to ``max_dims`` sides, each from
    ``min_side`` to ``max_side`` (``min_side=0`` allows empty arrays)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def float_dtypes():
    """float64 or float32 (the dtypes jitgrad differentiates in both tiers)."""
    return st.sampled_from(FLOAT_DTYPES)


def _check_domain(domain):
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(map(repr, DOMAINS))}, got {domain!r}")


def _elements(dtype, domain):
    low, high, gap = DOMAINS[domain]
    width = 32 if np.dtype(dtype) == np.float32 else 64
    values = st.floats(low, high, width=width, allow_nan=False, allow_infinity=False)
    return values.filter(lambda v: abs(v) >= gap) if gap else values


def arrays(dtype=None, shape=None, domain="any"):
    """Float arrays of ``dtype`` (default: either float dtype) and ``shape``
    (a tuple, or a strategy; default :func:`shapes`) with values in ``domain``:
    ``"any"`` [-2, 2], ``"positive"`` [0.25, 2], ``"nonzero"`` ``0.25 <= |x| <= 2``,
    ``"unit"`` [-0.9, 0.9]."""
    _check_domain(domain)
    dtypes = float_dtypes() if dtype is None else st.just(np.dtype(dtype))
    shape_st = shapes() if shape is None else (shape if isinstance(shape, st.SearchStrategy)
                                              else st.just(tuple(shape)))
    return st.tuples(dtypes, shape_st).flatmap(
        lambda ds: hnp.arrays(ds[0], ds[1], elements=_elements(ds[0], domain)))


def array_tuples(n, dtype=None, shape=None, domain="any"):
    """Tuples of ``n`` arrays with one shape and dtype between them (the
    arguments of an elementwise function of ``n`` inputs)."""
    _check_domain(domain)
    dtypes = float_dtypes() if dtype is None else st.just(np.dtype(dtype))
    shape_st = shapes() if shape is None else (shape if isinstance(shape, st.SearchStrategy)
                                              else st.just(tuple(shape)))
    return st.tuples(dtypes, shape_st).flatmap(lambda ds: st.tuples(
        *[hnp.arrays(ds[0], ds[1], elements=_elements(ds[0], domain)) for _ in range(n)]))
