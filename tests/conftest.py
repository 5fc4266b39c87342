import gc
import os
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import jitgrad  # noqa: E402

# Tests run on the NumPy interpreter unless they ask for compiled code with
# ``with jitgrad.config(compile="always")``; the interpreter runs the same IR.
jitgrad.config.compile = "never"


@pytest.fixture
def rng(request):
    # a fixed seed per test, so failures reproduce
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture
def frozen_heap():
    """The objects made before the test moved out of the collector's reach
    (gc.freeze), so that the test's gc.collect and gc.get_objects see only the
    objects made since: late in a test session the heap holds millions, and a
    full collection takes seconds.  (An object the test made and that survives
    is still seen; a weak reference still tells whether its object lives.)"""
    gc.freeze()
    yield
    gc.unfreeze()
