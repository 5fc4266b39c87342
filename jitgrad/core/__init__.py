"""The IR, primitives, per-thread trace state, tracers and pytrees: what every stage builds on."""
