"""Public path of the pytree utilities, with JAX's ``jax.tree`` spellings:
``jitgrad.tree.map``, ``leaves``, ``structure``, ``flatten``, ``unflatten``, ``register``."""
from .core.tree import TreeDef, flatten, leaves, register, structure, tree_map, unflatten  # noqa: F401

map = tree_map   # noqa: A001  (jax.tree.map)
