"""Public path of the pytree utilities (``jitgrad.tree.flatten``, ``jitgrad.tree.register``)."""
from .core.tree import TreeDef, flatten, register, tree_map, unflatten  # noqa: F401
