"""The time-to-native section of ``perf/bench.py``.

For each workload, two fresh processes in the default "auto" mode with
``hot_seconds=0`` (``perf/native_latency.py`` does the measuring): one with an
empty ``JITGRAD_CACHE_DIR`` (``cold``), then one with the folder the first
filled (``warm``).  Each calls the gradient in a loop until native code answers
and reports:

- ``to_native_s``: wall clock from the first call to the end of the first call
  that native code answered (the issue's "time to native code");
- ``window_max_ms`` / ``window_median_ms``: the slowest and the median call
  answered by the interpreter while the compile ran.  How long a compile
  blocked the caller is the slowest call less the median one (the median is
  what the interpreter itself costs);
- ``first_native_ms``: the first natively answered call itself.

The targets: cold time to native under 1 s, no call blocked for more than
5 ms, and with a warm cache native code within 100 ms of the first call.
"""
from __future__ import annotations

import os

import native_latency

TO_NATIVE_COLD_S = 1.0
BLOCKED_MS = 5.0
TO_NATIVE_WARM_S = 0.1


def run_native(ws, tmp, log, notes):
    res = {}
    for w in ws:
        cache = os.path.join(tmp, f"cache-{w.key}-native")
        r = {}
        for which in ("cold", "warm"):
            try:
                r[which] = native_latency.run(w.key, cache, {})
            except Exception as e:          # a timeout or a crash of the child
                r[which] = {"error": [f"{type(e).__name__}: {e}"]}
            if "error" in r[which]:
                notes.append(f"time to native {w.key} {which}: {r[which]['error']}")
        log(f"[time to native] {w.key}: cold {_s(r['cold'].get('to_native_s'))}, "
            f"warm {_s(r['warm'].get('to_native_s'))}")
        res[w.key] = r
    return res


def _s(v):
    return "-" if v is None else f"{v:.3f} s"


def _ms(v):
    return "-" if v is None else f"{v:.1f} ms"


def blocked_ms(r):
    """The longest stretch a compile added to one of the caller's calls."""
    mx, med = r.get("window_max_ms"), r.get("window_median_ms")
    return None if mx is None or med is None else mx - med


def native_md(native, title, table):
    rows = []
    for key, r in native.items():
        c, w = r.get("cold", {}), r.get("warm", {})
        rows.append([title(key), _s(c.get("to_native_s")), str(c.get("calls", "-")),
                     _ms(c.get("window_median_ms")), _ms(c.get("window_max_ms")),
                     _ms(c.get("first_native_ms")), _s(w.get("to_native_s")),
                     _ms(w.get("first_native_ms")), _s(c.get("import_s"))])
    return ("\n### Time to native code in a fresh process (auto mode, hot_seconds=0; "
            "wall clock from the first call)\n\n" + table(
                ["workload", "cold: to native", "calls", "median call while compiling",
                 "slowest call while compiling", "first native call", "warm: to native",
                 "warm: first native call", "import jitgrad"], rows))


def native_targets(native, add):
    for key, r in native.items():
        c, w = r.get("cold", {}), r.get("warm", {})
        t = c.get("to_native_s")
        if t is not None:
            add(f"{key}: time to native code (auto, empty cache) < {TO_NATIVE_COLD_S:g} s",
                t < TO_NATIVE_COLD_S, _s(t))
        b = blocked_ms(c)
        if b is not None:
            add(f"{key}: no call blocked by the compile for more than {BLOCKED_MS:g} ms", b <= BLOCKED_MS,
                f"slowest {_ms(c['window_max_ms'])} against a median {_ms(c['window_median_ms'])}")
        t = w.get("to_native_s")
        if t is not None:
            add(f"{key}: time to native code (auto, warm cache) < {TO_NATIVE_WARM_S * 1e3:g} ms",
                t < TO_NATIVE_WARM_S, _s(t))
