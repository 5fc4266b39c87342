"""jitgrad.config: which tier runs a signature, when to compile, where the disk cache is.

``config.compile`` chooses:

- ``"auto"`` (default): interpret a cold signature, compile it in the background
  once it is called again and has spent ``hot_seconds`` in the interpreter, or
  at once when its arrays are large;
- ``"always"``: compile on the first call and wait for it (benchmarks, tests of
  the compiled code);
- ``"never"``: always interpret.

``config.compile_worker`` (default True; ``JITGRAD_COMPILE_WORKER=0`` in the
environment turns it off) runs the background compiles of "auto" mode in a
helper process, which leaves this process's GIL free; off, they run on a
thread of this process.

Settings are checked when they are set; ``with config(...)`` changes them for
the current thread (and context) only.
"""
from __future__ import annotations

import contextvars
import numbers
import os

COMPILE_MODES = ("auto", "always", "never")


def _check_setting(name, value, where=None):
    """``value`` checked (and normalised) for the setting ``name``; ``where``
    names its source in the message (default ``config.<name>``)."""
    where = where or f"jitgrad.config.{name}"
    if name == "compile":
        if not isinstance(value, str) or value not in COMPILE_MODES:
            raise ValueError(f"{where} must be one of {', '.join(map(repr, COMPILE_MODES))}, "
                             f"got {value!r}")
        return value
    if name in ("hot_calls", "big_elements"):
        least = 1 if name == "hot_calls" else 0
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
            raise ValueError(f"{where} must be an integer >= {least}, got {value!r}")
        return int(value)
    if name == "hot_seconds":
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
            raise ValueError(f"{where} must be a number of seconds >= 0, got {value!r}")
        return float(value)
    if name == "compile_worker":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
        return value
    if name == "cache_dir":
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ValueError(f"{where} must be a folder path (str or os.PathLike), got {value!r}")
        return os.fspath(value)
    raise AttributeError(f"jitgrad.config has no setting {name!r}; the settings are "
                         f"{', '.join(_Config.SETTINGS)}")


class _Config:
    """jitgrad's settings.  Assignment (``jitgrad.config.compile = "never"``)
    sets a setting for every thread; ``with jitgrad.config(...)`` overrides
    settings for the code in the block, on this thread only (as JAX's
    configuration context managers), so that threads never undo each other's
    overrides.  Every value is checked (see ``_check_setting``)."""

    SETTINGS = ("compile", "hot_calls", "hot_seconds", "big_elements", "cache_dir",
                "compile_worker")

    def __init__(self):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_overrides", contextvars.ContextVar("jitgrad.config", default={}))
        self._values["compile"] = _check_setting(
            "compile", os.environ.get("JITGRAD_COMPILE", "auto"),
            "the environment variable JITGRAD_COMPILE")
        # compile a signature called at least this many times ...
        self.hot_calls = 2
        # ... once the interpreter has spent this long on it (cheap functions
        # called a few times, as in property-based tests, never compile) ...
        self.hot_seconds = 0.01
        self.big_elements = 200_000   # ... or at once when its arrays are this large
        # background compiles run in a worker process (see compile_worker),
        # unless JITGRAD_COMPILE_WORKER=0
        worker = os.environ.get("JITGRAD_COMPILE_WORKER", "1").strip().lower()
        if worker not in ("0", "1", "false", "true", "no", "yes", "off", "on", ""):
            raise ValueError("the environment variable JITGRAD_COMPILE_WORKER must be 0 or 1, "
                             f"got {worker!r}")
        self.compile_worker = worker not in ("0", "false", "no", "off")
        # (an empty JITGRAD_CACHE_DIR means the default, not the current folder)
        self.cache_dir = os.environ.get("JITGRAD_CACHE_DIR") or os.path.join(
            os.path.expanduser("~"), ".cache", "jitgrad")

    def __getattr__(self, name):      # only for names that are not attributes: the settings
        if name not in _Config.SETTINGS:
            raise AttributeError(f"jitgrad.config has no setting {name!r}; the settings are "
                                 f"{', '.join(_Config.SETTINGS)}")
        overrides = self._overrides.get()
        return overrides[name] if name in overrides else self._values[name]

    def __setattr__(self, name, value):
        self._values[name] = _check_setting(name, value)

    def __call__(self, **kw):
        """Override settings in a block, on this thread:
        ``with jitgrad.config(compile="always"): ...``."""
        return _Override(self, {k: _check_setting(k, v) for k, v in kw.items()})


class _Override:
    def __init__(self, cfg, kw):
        self.cfg, self.kw, self.tokens = cfg, kw, []

    def __enter__(self):
        self.tokens.append(self.cfg._overrides.set({**self.cfg._overrides.get(), **self.kw}))
        return self.cfg

    def __exit__(self, *exc):
        self.cfg._overrides.reset(self.tokens.pop())


config = _Config()
# source key -> Native, shared by equal IRs.  (Kept: Numba does not free the
# machine code of a function it compiled, about a megabyte each.)
def _debug_level():
    try:
        return int(os.environ.get("JITGRAD_DEBUG", "0"))
    except ValueError:
        return 0


