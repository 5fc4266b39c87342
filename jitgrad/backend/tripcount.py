"""A loop's trip count hidden from LLVM, so that a short loop vectorises.

LLVM's loop vectoriser leaves a loop whose trip count is a known constant
below 16 scalar when vectorising it needs run-time checks, and a loop over
NumPy arrays in Numba always needs them (two arrays may overlap).  Generated
loops have literal extents, so every loop over 14 elements (an LSTM's width)
runs scalar, and the branch-free kernels of ``vecmath``, which are meant to
run on SIMD lanes, run one element at a time, where they are slower than the
C library's (measured: a 14-element loop of three sigmoids and two tanh,
74 ns an element scalar, 40 ns with its count hidden, 57 ns with libm).

``n(14)`` (``_trip(14)`` in generated code) is 14 to the program but an unknown integer to LLVM's optimiser
(an empty inline-assembly statement passes it through), so the loop gets a
vectorised body and a scalar remainder like any loop of unknown length.
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


__all__ = ["n"]


@intrinsic
def n(typingctx, count):
    """``count``, opaque to the optimiser."""
    if isinstance(count, types.Integer):
        def codegen(context, builder, sig, args):
            value = context.cast(builder, args[0], sig.args[0], types.intp)
            asm = ir.InlineAsm(ir.FunctionType(value.type, [value.type]), "", "=r,0")
            return builder.call(asm, [value])
        return types.intp(count), codegen
