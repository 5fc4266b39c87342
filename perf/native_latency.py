"""Time to native code and the caller's call latency while it compiles.

For each workload, in a fresh process with a fresh cache folder (``cold``) or
the folder a cold run filled (``warm``), in "auto" mode with ``hot_seconds=0``
(so the compile is queued at the second call): call the gradient in a loop and
record each call's wall time and which tier answered it, until native code
answers (or 120 s pass).  Reported per run:

- ``to_native_s``: wall time from the first call to the end of the first call
  that native code answered;
- ``window_max_ms`` / ``window_median_ms``: the slowest and the median call
  while the compile ran (calls answered by the interpreter after the first);
- ``first_native_ms``: the first natively answered call itself;
- ``import_s``: ``import jitgrad``;
- ``cpu_s`` / ``worker_cpu_s``: processor time of this process (from its
  start) and of the compile worker (start-up and compile) when native code
  answered: on a busy machine, the figures to compare.

Usage: python perf/native_latency.py [--root DIR] [workload ...] [setting=value ...]
(default: a few small workloads; ``--root`` measures the jitgrad checkout in DIR)
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT = ("scalar", "elem_1e3", "rosen_1e3", "logreg", "mlp")


def child(key, settings):
    t = time.perf_counter()
    import jitgrad
    import_s = time.perf_counter() - t
    sys.path.insert(0, HERE)
    import workloads as W
    w = W.BY_KEY[key]
    args = W.make_inputs(w)
    call = W.make_jitgrad(w, args)
    jitgrad.config.hot_seconds = 0.0
    for k, v in settings.items():
        setattr(jitgrad.config, k, v)
    from jitgrad.backend import compile as native
    times, native_at = [], None
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 120:
        exes = _executables(call)
        if exes:
            was_native = all(e.fn is not None for e in exes)
        else:
            # a transform called afresh each time (jvp(f, primals, tangents)) keeps its
            # executable out of the closure: native once this process has one
            was_native = native.counts["compiled"] + native.counts["loaded"] + native.counts["reused"] > 0
        s = time.perf_counter()
        call()
        times.append(time.perf_counter() - s)
        if was_native:
            native_at = len(times) - 1
            break
        time.sleep(0.0005)       # a program doing other work between calls
    cpu_s = time.process_time()
    window = times[1:native_at] if native_at else times[1:]
    return {"import_s": import_s,
            "to_native_s": (time.perf_counter() - t0) if native_at is not None else None,
            "calls": len(times), "first_ms": times[0] * 1e3,
            "window_max_ms": max(window) * 1e3 if window else None,
            "window_median_ms": statistics.median(window) * 1e3 if window else None,
            "first_native_ms": times[native_at] * 1e3 if native_at is not None else None,
            "cpu_s": cpu_s, "worker_cpu_s": _worker_cpu(), "counts": dict(native.counts)}


def _worker_cpu():
    """The compile worker's processor time so far (start-up and compiles), or None."""
    from jitgrad.backend import compile_worker
    pid = compile_worker.worker_pid()
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _executables(call):
    """The executables behind the workload's closure (its transformed function)."""
    g = None
    for cell in call.__closure__ or ():
        c = cell.cell_contents
        if hasattr(c, "_staged"):
            g = c
    return [e.exe for e in g._staged.cache.values()] if g is not None else []


def run(key, cache, settings, root=ROOT):
    env = dict(os.environ, JITGRAD_CACHE_DIR=cache,
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    p = subprocess.run([sys.executable, __file__, "--child", key, json.dumps(settings)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    if p.returncode:
        return {"error": p.stderr.strip().splitlines()[-1:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(keys, settings, root=ROOT):
    tmp = tempfile.mkdtemp(prefix="jg-latency-")
    for key in keys:
        cache = os.path.join(tmp, key)
        for which in ("cold", "warm"):
            r = run(key, cache, settings, root)
            if "error" in r:
                print(f"{key:10s} {which}: {r['error']}")
                continue
            f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"   # noqa: E731
            print(f"{key:10s} {which}: import {f(r['import_s'], 3)} s, to native "
                  f"{f(r['to_native_s'], 3)} s over {r['calls']} calls, first {f(r['first_ms'])} ms, "
                  f"while compiling max {f(r['window_max_ms'])} ms median "
                  f"{f(r['window_median_ms'], 2)} ms, first native {f(r['first_native_ms'])} ms, "
                  f"CPU {f(r['cpu_s'], 2)} s here, {f(r['worker_cpu_s'], 2)} s in the worker")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], json.loads(sys.argv[3]))))
    else:
        settings, keys, root, argv = {}, [], ROOT, sys.argv[1:]
        if argv[:1] == ["--root"]:
            root, argv = os.path.abspath(argv[1]), argv[2:]
        for a in argv:
            if "=" in a:
                k, v = a.split("=", 1)
                settings[k] = json.loads(v) if v[:1] in "[{0123456789tf" else v
            else:
                keys.append(a)
        main(keys or DEFAULT, settings, root)
