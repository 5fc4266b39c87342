"""Objects found by their qualified name, as pickle finds functions."""
from __future__ import annotations

import sys


def by_qualified_name(obj):
    """What ``obj``'s module holds under ``obj.__qualname__`` (None when
    nothing, or for a name inside a function): the object pickle would find
    for ``obj``.  A decorated module-level function (a transform, a custom
    rule) is found as itself, the function it wraps is not."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    name = getattr(obj, "__qualname__", None)
    if module is None or not isinstance(name, str) or "<locals>" in name:
        return None
    found = module
    for part in name.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    return found
