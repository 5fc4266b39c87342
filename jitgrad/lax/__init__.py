"""The primitive set: one block per primitive, holding every rule it has.

The modules, in the order they build on each other:

- ``structural``: broadcast_in_dim, transpose, slice, pad, reshape,
  concatenate, and reduce_sum (each other's transposes with broadcast_in_dim);
  filled arrays (``full``, ``zeros``) and the batching helpers;
- ``elementwise``: arithmetic, transcendental, comparison and logical
  primitives, select, convert, stop_gradient;
- ``complex``: real, imag, conj, complex, complex_abs, and the complex code
  of the holomorphic primitives;
- ``fft``: the discrete Fourier transform;
- ``reductions``: reduce_max, reduce_min, reduce_prod, dot_general, cumsum;
- ``gather``: gather, scatter_add (advanced indexing) and argsort;
- ``scatter``: scatter (assignment at traced positions, the last write winning);
- ``linalg``: inv, solve, det;
- ``decompositions``: cholesky, triangular_solve, eigh, svd, qr, slogdet, pinv;
- ``matfuncs``: expm and its Frechet derivative;
- ``special``: erf, erfc, lgamma, digamma, polygamma, erfinv, ndtri, log_ndtr, i0e, i1e;
- ``callback``: pure_callback (a Python function called on concrete arrays);
- ``random``: random_bits (counter-based random numbers), keys and draws;
- ``scans``: cumprod, tie_mean.

This package is the ops' namespace (``from .. import lax``; ``lax.add(x, y)``):
every public function and primitive defined in those modules, so that a new op
is visible here without editing this file.  The ops take operands that
already agree in shape (the NumPy layer inserts the broadcasts); a scalar
literal may stand beside any array.
"""
from ..core.primitive import Primitive
from . import callback, complex, elementwise, fft, gather, linalg, random, reductions, scans, scatter, special, structural
from . import decompositions, matfuncs


def _public(module):
    """The public functions and primitives of ``module`` that this package
    defines (not what it imports from elsewhere, such as NumPy or the core)."""
    return {name: value for name, value in vars(module).items()
            if not name.startswith("_")
            and (isinstance(value, Primitive)
                 or (callable(value) and getattr(value, "__module__", "").startswith(__name__ + ".")))}


for _module in (structural, elementwise, complex, fft, reductions, gather, scatter, linalg, special, callback, random,
                scans, decompositions, matfuncs):
    globals().update(_public(_module))
del _module
