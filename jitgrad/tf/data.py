"""``tf.data``: a small, eager ``Dataset`` for iterating over in-memory data.

Enough for the loops tutorials write (``from_tensor_slices``, ``zip``,
``batch``, ``map``, ``take``); elements are Tensors (structures of them), in
order.  There is no shuffling, prefetching or file reading.
"""
from __future__ import annotations

import numpy as np

from ..core import tree as tree_util
from ..tape.variables import Tensor, Variable
from .convert import tensor


class Dataset:
    """An iterable of elements, recomputed on each iteration."""

    def __init__(self, make):
        self._make = make            # () -> an iterator over the elements

    def __iter__(self):
        return iter(self._make())

    @staticmethod
    def from_tensor_slices(tensors, name=None):
        """One element per entry along the first axis of ``tensors``: a tensor,
        an array or a list, or a tuple or dict of them of one length (whose
        elements are tuples or dicts)."""
        if isinstance(tensors, tuple):
            keys, parts = None, [_values(x) for x in tensors]
        elif isinstance(tensors, dict):
            keys, parts = list(tensors), [_values(x) for x in tensors.values()]
        else:
            keys, parts = (), [_values(tensors)]
        lengths = {len(x) if np.ndim(x) else None for x in parts}
        if None in lengths or len(lengths) != 1:
            raise ValueError("from_tensor_slices: the components must have one length along "
                             f"their first axis, got shapes {[np.shape(x) for x in parts]}")
        n = lengths.pop()

        def make():
            for i in range(n):
                el = [tensor(x[i]) for x in parts]
                yield (el[0] if keys == () else tuple(el) if keys is None
                       else dict(zip(keys, el)))
        return Dataset(make)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset of one element, ``tensors``."""
        return Dataset(lambda: iter([tree_util.tree_map(tensor, tensors)]))

    @staticmethod
    def range(*args):
        """The int64 numbers of ``range(*args)``."""
        return Dataset(lambda: (tensor(np.int64(i)) for i in range(*args)))

    @staticmethod
    def zip(datasets, name=None):
        """Elements of several datasets side by side (a tuple of datasets gives tuples)."""
        return Dataset(lambda: zip(*datasets))

    def batch(self, batch_size, drop_remainder=False, name=None):
        """Consecutive elements stacked along a new first axis, ``batch_size`` at a time."""
        def make():
            buf = []
            for el in self:
                buf.append(el)
                if len(buf) == batch_size:
                    yield _stack(buf)
                    buf = []
            if buf and not drop_remainder:
                yield _stack(buf)
        return Dataset(make)

    def map(self, map_func, num_parallel_calls=None, name=None):
        """``map_func`` applied to each element (a tuple element is unpacked)."""
        return Dataset(lambda: (map_func(*el) if isinstance(el, tuple) else map_func(el)
                                for el in self))

    def take(self, count, name=None):
        """The first ``count`` elements (all of them for -1)."""
        def make():
            for i, el in enumerate(self):
                if 0 <= count <= i:
                    return
                yield el
        return Dataset(make)

    def enumerate(self, start=0, name=None):
        """``(index, element)`` pairs, the index an int64 Tensor."""
        return Dataset(lambda: ((tensor(np.int64(i)), el) for i, el in enumerate(self, start)))

    def as_numpy_iterator(self):
        """The elements as NumPy values."""
        return (tree_util.tree_map(lambda t: t.numpy(), el) for el in self)


def _values(x):
    """A component's data as a NumPy array, with TensorFlow's dtypes for Python values."""
    if isinstance(x, (Tensor, Variable)):
        return x.numpy()
    return tensor(x).numpy() if not isinstance(x, np.ndarray) else x


def _stack(elements):
    leaves = [tree_util.flatten(el) for el in elements]
    td = leaves[0][1]
    cols = zip(*[lv for lv, _ in leaves])
    return tree_util.unflatten(td, [tensor(np.stack([c.numpy() for c in col])) for col in cols])
