"""Public path of the gradient-checking helpers (``from jitgrad.testing import check_grads``)
and, when Hypothesis is installed, strategies for property-based tests
(``shapes``, ``float_dtypes``, ``arrays``, ``array_tuples``)."""
from .api.testing import check_grads, numerical_grad, numerical_jvp  # noqa: F401

_STRATEGIES = ("shapes", "float_dtypes", "arrays", "array_tuples", "DOMAINS")


def __getattr__(name):
    # the strategies need Hypothesis: imported on first use, not with jitgrad
    if name in _STRATEGIES:
        try:
            from .api import strategies
        except ImportError as exc:
            raise ImportError(f"jitgrad.testing.{name} needs Hypothesis ({exc}); install it "
                              "with:  pip install hypothesis") from exc
        return getattr(strategies, name)
    raise AttributeError(f"module 'jitgrad.testing' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_STRATEGIES])
