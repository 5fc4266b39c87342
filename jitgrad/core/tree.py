"""Pytrees: nested tuples, lists, namedtuples, dicts and None holding arrays at the leaves.

``flatten(x) -> (leaves, treedef)`` and ``unflatten(treedef, leaves)``.
Custom containers join with :func:`register`.  A ``treedef`` is hashable, so it
is part of the cache key of a compiled function.
"""
from __future__ import annotations

from dataclasses import dataclass

_REGISTRY = {}


def register(cls, flatten_fn, unflatten_fn):
    """Register a container type.

    ``flatten_fn(obj) -> (children, aux)`` with ``children`` a list or tuple
    and ``aux`` hashable, and ``unflatten_fn(aux, children) -> obj``.
    """
    if not isinstance(cls, type):
        raise TypeError(f"tree.register: the first argument must be a class, got {cls!r}")
    if not (callable(flatten_fn) and callable(unflatten_fn)):
        raise TypeError(f"tree.register({cls.__name__}, ...): flatten_fn and unflatten_fn must be functions")
    _REGISTRY[cls] = (flatten_fn, unflatten_fn)


register(tuple, lambda t: (list(t), None), lambda aux, c: tuple(c))
register(list, lambda t: (list(t), None), lambda aux, c: list(c))
register(dict, lambda d: ([d[k] for k in sorted(d)], tuple(sorted(d))),
         lambda keys, c: dict(zip(keys, c)))
register(type(None), lambda n: ([], None), lambda aux, c: None)


def _entry(cls):
    """The (flatten, unflatten) pair of a container type, or None for a leaf.
    A namedtuple class is a container of its fields (as in JAX), registered
    when first met."""
    entry = _REGISTRY.get(cls)
    if entry is None and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        entry = _REGISTRY[cls] = (lambda t: (list(t), None), lambda aux, c: cls(*c))
    return entry


@dataclass(frozen=True)
class TreeDef:
    kind: object            # a registered type, or None for a leaf
    aux: object
    children: tuple

    @property
    def num_leaves(self):
        return 1 if self.kind is None else sum(c.num_leaves for c in self.children)

    def __str__(self):
        if self.kind is None:
            return "*"
        if self.kind is dict:       # the keys tell two dicts apart
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.aux, self.children)) + "}"
        return f"{self.kind.__name__}({', '.join(map(str, self.children))})"


LEAF = TreeDef(None, None, ())


def flatten(x, is_leaf=None):
    """``(leaves, treedef)`` of the pytree ``x``; ``is_leaf(node)`` true makes
    ``node`` a leaf even when it is a container."""
    leaves = []
    return leaves, _flatten(x, leaves, is_leaf)


def _flatten(x, leaves, is_leaf=None):
    entry = _entry(type(x))
    if entry is None or (is_leaf is not None and is_leaf(x)):
        leaves.append(x)
        return LEAF
    out = entry[0](x)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (list, tuple))):
        raise TypeError(f"the flatten function registered for {type(x).__name__} must return a pair "
                        f"(children as a list or tuple, aux data), got {out!r}")
    children, aux = out
    try:
        hash(aux)
    except TypeError:
        raise TypeError(f"the flatten function registered for {type(x).__name__} returned aux data of "
                        f"type {type(aux).__name__}, which is not hashable (it is part of cache keys)") from None
    return TreeDef(type(x), aux, tuple(_flatten(c, leaves, is_leaf) for c in children))


def unflatten(treedef, leaves):
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(td, it):
    if td.kind is None:
        return next(it)
    return _REGISTRY[td.kind][1](td.aux, [_unflatten(c, it) for c in td.children])


def leaves(x, is_leaf=None):
    """The leaves of the pytree ``x``, in flattening order."""
    return flatten(x, is_leaf)[0]


def structure(x, is_leaf=None):
    """The treedef of the pytree ``x``."""
    return flatten(x, is_leaf)[1]


def tree_map(f, x, *rest, is_leaf=None):
    """``f`` applied leaf by leaf to ``x`` and the pytrees ``rest``, which must
    have ``x``'s structure; the result has that structure too (as ``jax.tree.map``)."""
    lv, td = flatten(x, is_leaf)
    others = []
    for i, r in enumerate(rest):
        rl, rtd = flatten(r, is_leaf)
        if rtd != td:
            raise ValueError(f"tree.map: argument {i + 2} has structure {rtd}, but the first "
                             f"has {td}; they must match")
        others.append(rl)
    return unflatten(td, [f(*xs) for xs in zip(lv, *others)])
