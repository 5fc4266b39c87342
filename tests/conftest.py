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
