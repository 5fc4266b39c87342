"""The TensorFlow-style tape: Tensors, Variables, GradientTape and optimizers."""
