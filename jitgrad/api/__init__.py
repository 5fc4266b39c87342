"""The user's transforms: jit, grad, jvp, vjp, vmap, Jacobians, inspection and testing helpers."""
