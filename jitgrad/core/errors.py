"""Exceptions and warnings raised by jitgrad, each meant to be read by a user."""


class JitgradError(Exception):
    """Base class of jitgrad's own errors."""


class TracerBoolError(JitgradError, TypeError):
    """A Python-level use (if, while, float(), np.asarray) of a value that is only traced."""


class PerformanceWarning(UserWarning):
    """Correct results, but slow: an unrolled loop too large to compile quickly."""
