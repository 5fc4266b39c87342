"""Variables as the state of a function being traced by ``jitgrad.function``.

While ``jitgrad.function`` traces a Python function, a :class:`Capture` is
open on the thread.  The first time the traced function reads a Variable
whose value is concrete (an array, not a tracer of this trace), the Variable
becomes one more input of the trace: a tracer of its shape and dtype stands
for its value for the rest of the trace, so every read and every
``assign`` inside the function works on traced values.  When the trace ends,
each captured Variable gets its concrete value back, and the values it was
assigned become extra outputs; the compiled function is then called with the
Variables' current values and writes the new values back after each call.

Variables created while a function is traced for the first time (the slots
an optimizer makes on its first ``apply_gradients``) are real Variables that
outlive the trace, as in TensorFlow: they must start from a concrete value.
"""
from __future__ import annotations

import threading

import numpy as np

from ..core.ir import Aval
from ..core.trace import Tracer

# How many captures are open on all threads (a cheap first test on the hot
# path of every Variable read, before the per-thread look-up).
open_count = 0
_lock = threading.Lock()


class _CaptureState(threading.local):
    def __init__(self):
        self.stack = []      # the open captures of this thread, innermost last


_state = _CaptureState()


class Capture:
    """The Variables one trace of a function reads, in order of first read.

    ``first``: this is the function's first trace, so it may create Variables.
    """

    def __init__(self, trace, first, fname):
        self.trace = trace
        self.first = first
        self.fname = fname
        self.variables = []     # captured Variables
        self.saved = []         # the concrete value each had before the trace
        self.inputs = []        # the tracer standing for each one's value

    def read(self, var):
        """``var``'s value inside the trace, capturing it on its first read."""
        value = var._val
        if isinstance(value, Tracer) and value._trace is self.trace:
            return value
        tracer = self.trace.new_arg(Aval(tuple(np.shape(value)), np.dtype(value.dtype)))
        self.variables.append(var)
        self.saved.append(value)
        self.inputs.append(tracer)
        var._val = tracer
        return tracer

    def __enter__(self):
        global open_count
        with _lock:
            open_count += 1
        _state.stack.append(self)
        return self

    def __exit__(self, *exc):
        """Give every captured Variable its concrete value back."""
        global open_count
        _state.stack.remove(self)
        with _lock:
            open_count -= 1
        self.finals = [var._val for var in self.variables]
        for var, value in zip(self.variables, self.saved):
            var._val = value
        return False


def current():
    """The innermost open capture of this thread, or None."""
    if not open_count:
        return None
    stack = _state.stack
    return stack[-1] if stack else None
