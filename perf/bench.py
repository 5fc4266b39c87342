"""jitgrad benchmark suite: jitgrad vs JAX vs PyTorch vs hand-written Numba vs NumPy.

    python perf/bench.py            # full run (~10 minutes on 2 cores)
    python perf/bench.py --quick    # ~1-2 minutes, fewer repeats and subprocess tests

Measures, on the same inputs (see workloads.py):

* steady-state time per call (median of interleaved repeats, after warm-up) of
  jitgrad ``grad`` (compile="always"), ``jax.jit(jax.grad(f))`` (x64), PyTorch
  eager autograd, the hand-written Numba gradient, NumPy evaluating ``f``, and
  the compiled forward passes ``jitgrad.jit(f)`` and ``jax.jit(f)``;
* first-call latency in fresh processes: jitgrad with an empty cache dir
  (compile="auto" and "always"), jitgrad with the warm disk cache, and JAX;
* peak memory (RSS high-water mark above the steady baseline) of one gradient call;
* the wall clock of a whole ``python -c`` script, jitgrad vs JAX;
* a hypothesis-like loop: one gradient on 50 random shapes.

Writes perf/results/latest.json, perf/results/latest.md and perf/results/ratios.png.
A peer that is not installed (JAX, PyTorch, matplotlib) is skipped with a note.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PERF_DIR)
RESULTS = os.path.join(PERF_DIR, "results")
sys.path.insert(0, PERF_DIR)


def _threads_from_argv(argv):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


def pin_threads(n):
    """Give every peer ``n`` threads (0: leave the libraries' defaults).  Must run
    before NumPy, Numba, JAX or torch are imported; children inherit it."""
    if n <= 0:
        return
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()
    # Not every library honours those variables (XLA's CPU client still ran
    # its matrix products on two threads here), so also restrict the process,
    # and the children it starts, to n CPUs: every peer gets the same cores.
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > n:
            os.sched_setaffinity(0, cpus[:n])


THREADS = _threads_from_argv(sys.argv)
pin_threads(THREADS)

import numpy as np  # noqa: E402

import workloads as W  # noqa: E402
from bench_native import native_md, native_targets, run_native  # noqa: E402

# tools measured at steady state, in table order
STEADY = ["jitgrad", "jax", "hand", "torch", "numpy_f", "jitgrad_f", "jax_f"]
LABEL = {"jitgrad": "jitgrad grad", "jax": "JAX jit(grad)", "hand": "Numba by hand",
         "torch": "torch eager", "numpy_f": "NumPy f", "jitgrad_f": "jitgrad jit(f)",
         "jax_f": "JAX jit(f)"}


# ---------------------------------------------------------------------------
# Small helpers


def have(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


def fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs" if s < 1e-4 else f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"
    return f"{s:.2f} s"


def fmt_r(r):
    return "-" if r is None else f"{r:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_mb(b):
    return "-" if b is None else f"{b / 2**20:.1f} MB"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Steady state


def calibrate(call, min_block):
    """Number of calls per timed block so that a block lasts about ``min_block`` s."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        dt = time.perf_counter() - t0
        if dt >= min_block or n >= 1_000_000:
            return n, dt / n
        n = min(1_000_000, max(2 * n, int(n * min_block / max(dt, 1e-9) * 1.1)))


def steady_state(calls, repeats, min_block, max_seconds):
    """Interleaved timing: each repeat times one block of every tool in turn, so
    that the machine's noise (other processes on the shared cores) hits all tools
    alike.  Returns tool -> stats."""
    per = {}
    for name, call in calls.items():
        n, first = calibrate(call, min_block)
        per[name] = {"n": n, "times": []}
    start = time.perf_counter()
    for r in range(repeats):
        for name, call in calls.items():
            n = per[name]["n"]
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            per[name]["times"].append((time.perf_counter() - t0) / n)
        if r >= 2 and time.perf_counter() - start > max_seconds:
            break
    out = {}
    for name, p in per.items():
        ts = p["times"]
        out[name] = {"median": statistics.median(ts), "min": min(ts), "max": max(ts),
                     "repeats": len(ts), "calls_per_repeat": p["n"]}
    return out


def check(ref, got, dtype):
    """Max relative error of ``got`` against ``ref`` (leafwise, scaled by max |ref|)."""
    a, b = W.leaves(W.to_numpy(ref)), W.leaves(W.to_numpy(got))
    if len(a) != len(b):
        return float("inf")
    err = 0.0
    for x, y in zip(a, b):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            return float("inf")
        scale = max(np.max(np.abs(x)) if x.size else 0.0, 1e-300)
        err = max(err, float(np.max(np.abs(x - y)) / scale) if x.size else 0.0)
    return err


def run_steady(ws, args_ns, notes):
    import jitgrad
    jitgrad.config.compile = "always"
    has_jax, has_torch = have("jax"), have("torch")
    if has_jax:
        import jax
        jax.config.update("jax_enable_x64", True)
    results = {}
    for w in ws:
        log(f"[steady] {w.key}")
        args = W.make_inputs(w)
        calls, compile_s, errs = {}, {}, {}
        makers = {
            "jitgrad": lambda: W.make_jitgrad(w, args),
            "jax": (lambda: W.make_jax(w, W.jax_args(w, args))) if has_jax else None,
            "hand": lambda: W.make_hand(w, args),
            "torch": (lambda: W.make_torch(w, args)) if has_torch else None,
            "numpy_f": lambda: W.make_numpy_forward(w, args),
            "jitgrad_f": lambda: W.make_jitgrad(w, args, forward=True),
            "jax_f": (lambda: W.make_jax(w, W.jax_args(w, args), forward=True)) if has_jax else None,
        }
        outs = {}
        for name in STEADY:
            mk = makers[name]
            if mk is None:
                continue
            try:
                call = mk()
                t0 = time.perf_counter()
                outs[name] = call()          # first call: compiles (in this warm process)
                compile_s[name] = time.perf_counter() - t0
                calls[name] = call
            except Exception as exc:          # a peer failing a workload is a result, not a crash
                errs[name] = f"{type(exc).__name__}: {exc}"
                log(f"  {name} failed: {errs[name]}")
        ref = outs.get("hand")
        tol = 1e-4 if w.dtype == "float32" else 1e-9
        accuracy = {}
        if ref is not None:
            for name in ("jitgrad", "jax", "torch"):
                if name in outs:
                    e = check(ref, outs[name], w.dtype)
                    accuracy[name] = e
                    if not e <= tol:
                        notes.append(f"{w.key}: {name} differs from the hand-written gradient "
                                     f"(max rel err {e:.2e})")
        stats = steady_state(calls, args_ns.repeats, args_ns.min_block, args_ns.max_seconds)
        results[w.key] = {"title": w.title, "stats": stats, "first_call_in_process": compile_s,
                          "errors": errs, "max_rel_err_vs_hand": accuracy}
        med = {k: v["median"] for k, v in stats.items()}
        log("  " + "  ".join(f"{k}={fmt_t(v)}" for k, v in med.items()))
        del calls, outs
        gc.collect()
    return results


# ---------------------------------------------------------------------------
# Children: first call, memory, hypothesis loop (run in fresh processes)


def _hwm_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def child_first(spec):
    tool, key, mode = spec["tool"], spec["workload"], spec.get("mode")
    w = W.BY_KEY[key]
    t = time.perf_counter()
    if tool == "jitgrad":
        import jitgrad
        import_s = time.perf_counter() - t
        jitgrad.config.compile = mode
        args = W.make_inputs(w)
        t0 = time.perf_counter()
        call = W.make_jitgrad(w, args)
        call()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        call()
        second = time.perf_counter() - t0
        t0 = time.perf_counter()
        jitgrad.wait_for_compiles()     # a background compile left running, if any
        wait = time.perf_counter() - t0
        return {"import_s": import_s, "first_s": first, "second_s": second,
                "bg_compile_wait_s": wait}
    if tool == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy  # noqa: F401
        import_s = time.perf_counter() - t
        args = W.jax_args(w, W.make_inputs(w))   # also initialises the CPU backend
        t0 = time.perf_counter()
        call = W.make_jax(w, args)
        call()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        call()
        second = time.perf_counter() - t0
        return {"import_s": import_s, "first_s": first, "second_s": second}
    raise ValueError(tool)


def child_mem(spec):
    tool, key = spec["tool"], spec["workload"]
    w = W.BY_KEY[key]
    args = W.make_inputs(w)
    if tool == "jitgrad":
        import jitgrad
        jitgrad.config.compile = "always"
        call = W.make_jitgrad(w, args)
    elif tool == "jitgrad_f":
        import jitgrad
        jitgrad.config.compile = "always"
        call = W.make_jitgrad(w, args, forward=True)
    elif tool == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
        call = W.make_jax(w, W.jax_args(w, args))
    elif tool == "torch":
        call = W.make_torch(w, args)
    elif tool == "hand":
        call = W.make_hand(w, args)
    elif tool == "numpy_f":
        call = W.make_numpy_forward(w, args)
    else:
        raise ValueError(tool)
    call()
    call()                               # warm: compiled, allocator pools primed
    gc.collect()
    rss0 = _status("VmRSS")
    if _hwm_reset() and rss0 is not None:
        r = call()
        peak = _status("VmHWM")
        method = "VmHWM after clear_refs"
    else:                                # fallback: ru_maxrss (only sees growth past the old peak)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        r = call()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        rss0 = base
        method = "ru_maxrss delta (lower bound)"
    out_bytes = sum(a.nbytes for a in W.leaves(W.to_numpy(r)))
    in_bytes = sum(a.nbytes for a in W.leaves(args))
    return {"peak_delta_bytes": peak - rss0, "output_bytes": out_bytes, "input_bytes": in_bytes,
            "method": method}


def hypo_shapes(n=50, seed=0):
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(n):
        nd = int(rng.integers(1, 4))
        shapes.append(tuple(int(d) for d in rng.integers(1, 17, nd)))
    return shapes


def child_hypo(spec):
    tool = spec["tool"]
    shapes = hypo_shapes()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(s) for s in shapes]
    t = time.perf_counter()
    if tool == "jitgrad":
        import jitgrad
        import_s = time.perf_counter() - t
        jitgrad.config.compile = spec.get("mode", "auto")
        g = jitgrad.grad(W.elementwise_np)
        call = g
    else:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import_s = time.perf_counter() - t
        xs = [jax.device_put(x) for x in xs]
        gj = jax.grad(W._elementwise_generic(jnp))
        if tool == "jax":
            gj = jax.jit(gj)
        call = lambda x: jax.block_until_ready(gj(x))
    per = []
    t0 = time.perf_counter()
    for x in xs:
        t1 = time.perf_counter()
        call(x)
        per.append(time.perf_counter() - t1)
    total = time.perf_counter() - t0
    return {"import_s": import_s, "total_s": total, "max_call_s": max(per),
            "median_call_s": statistics.median(per), "n_shapes": len(shapes),
            "n_distinct_shapes": len(set(shapes))}


def run_child(spec, env_extra=None, timeout=900):
    env = dict(os.environ)
    env.update(env_extra or {})
    env.setdefault("PYTHONHASHSEED", "0")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                       capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    wall = time.perf_counter() - t0
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        err = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {p.returncode}: {err}", "process_wall_s": wall}
    out = json.loads(lines[-1])
    out["process_wall_s"] = wall
    return out


def child_main(spec_json):
    spec = json.loads(spec_json)
    fn = {"first": child_first, "mem": child_mem, "hypo": child_hypo}[spec["kind"]]
    out = fn(spec)
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------
# Orchestration of the subprocess measurements


def run_first_calls(ws, tmp, notes):
    has_jax = have("jax")
    res = {}
    for w in ws:
        log(f"[first call] {w.key}")
        r = {}
        cold_auto = os.path.join(tmp, f"cache-{w.key}-auto")
        cold_always = os.path.join(tmp, f"cache-{w.key}-always")
        spec = {"kind": "first", "tool": "jitgrad", "workload": w.key}
        env_auto = {"JITGRAD_CACHE_DIR": cold_auto}
        env_always = {"JITGRAD_CACHE_DIR": cold_always}
        r["jitgrad_auto_cold"] = run_child({**spec, "mode": "auto"}, env_auto)
        r["jitgrad_always_cold"] = run_child({**spec, "mode": "always"}, env_always)
        r["jitgrad_always_warm"] = run_child({**spec, "mode": "always"}, env_always)
        r["jitgrad_auto_warm"] = run_child({**spec, "mode": "auto"}, env_always)
        if has_jax:
            r["jax_cold"] = run_child({"kind": "first", "tool": "jax", "workload": w.key})
        for k, v in r.items():
            if "error" in v:
                notes.append(f"first call {w.key} {k}: {v['error']}")
        log("  " + "  ".join(f"{k}={fmt_t(v.get('first_s'))}" for k, v in r.items()))
        res[w.key] = r
    return res


def run_memory(ws, tools, notes):
    res = {}
    avail = {"jax": have("jax"), "torch": have("torch")}
    for w in ws:
        log(f"[memory] {w.key}")
        r = {}
        for tool in tools:
            if not avail.get(tool, True):
                continue
            # A fixed mmap threshold: glibc otherwise raises it (up to 32 MB) after the
            # warm-up frees, and the measured call then reuses heap pages invisibly.
            r[tool] = run_child({"kind": "mem", "tool": tool, "workload": w.key},
                                {"MALLOC_MMAP_THRESHOLD_": "65536"})
            if "error" in r[tool]:
                notes.append(f"memory {w.key} {tool}: {r[tool]['error']}")
        log("  " + "  ".join(f"{k}={fmt_mb(v.get('peak_delta_bytes'))}" for k, v in r.items()))
        res[w.key] = r
    return res


SCRIPT_JITGRAD = """\
import jitgrad, numpy as np
def f(w): return np.sum(np.sin(w) * np.exp(-w**2))
x = np.linspace(-3.0, 3.0, {n})
print(jitgrad.grad(f)(x)[:3])
"""

SCRIPT_JAX = """\
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
def f(w): return jnp.sum(jnp.sin(w) * jnp.exp(-w**2))
x = np.linspace(-3.0, 3.0, {n})
print({grad}(x)[:3])
"""

SCRIPT_NUMPY = "import numpy as np; print(np.linspace(-3.0, 3.0, 3))"


def run_whole_script(repeats, tmp, notes):
    has_jax = have("jax")
    variants = [("python+numpy only", SCRIPT_NUMPY, None)]
    for n in (1000, 1_000_000):
        variants.append((f"jitgrad grad, n={n:g}", SCRIPT_JITGRAD.format(n=n), "cold"))
        variants.append((f"jitgrad grad, n={n:g}, warm cache", SCRIPT_JITGRAD.format(n=n), "warm"))
        if has_jax:
            variants.append((f"JAX jit(grad), n={n:g}",
                             SCRIPT_JAX.format(n=n, grad="jax.jit(jax.grad(f))"), None))
            variants.append((f"JAX grad (eager), n={n:g}",
                             SCRIPT_JAX.format(n=n, grad="jax.grad(f)"), None))
    res = {}
    for name, src, cache in variants:
        log(f"[whole script] {name}")
        times, outputs = [], []
        warm_dir = os.path.join(tmp, "script-warm-" + str(abs(hash(src))))
        for i in range(repeats + (1 if cache == "warm" else 0)):
            env = dict(os.environ)
            if cache == "cold":
                env["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="cold-", dir=tmp)
            elif cache == "warm":
                env["JITGRAD_CACHE_DIR"] = warm_dir
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True,
                               env=env, cwd=ROOT)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                notes.append(f"whole script '{name}' exited {p.returncode}: "
                             f"{(p.stderr.strip().splitlines() or ['?'])[-1]}")
            if cache == "warm" and i == 0:
                continue                  # the first run fills the cache
            times.append(dt)
            outputs.append(p.stdout.strip())
        res[name] = {"median_s": statistics.median(times), "times_s": times,
                     "stdout": outputs[-1] if outputs else ""}
        log(f"  {fmt_t(res[name]['median_s'])}  -> {res[name]['stdout'][:60]}")
    return res


def run_hypo(tmp, notes, quick=False):
    res = {}
    runs = [("jitgrad (auto)", {"tool": "jitgrad", "mode": "auto"})]
    if have("jax"):
        runs += [("JAX jit(grad)", {"tool": "jax"})]
        if not quick:                      # ~30 s: one op-by-op compile per op and shape
            runs += [("JAX grad (eager)", {"tool": "jax_eager"})]
    for name, spec in runs:
        log(f"[hypothesis loop] {name}")
        env = {"JITGRAD_CACHE_DIR": tempfile.mkdtemp(prefix="hypo-", dir=tmp)}
        r = run_child({"kind": "hypo", **spec}, env)
        if "error" in r:
            notes.append(f"hypothesis loop {name}: {r['error']}")
        res[name] = r
        log(f"  total {fmt_t(r.get('total_s'))}")
    return res


# ---------------------------------------------------------------------------
# Report


def summarize(R):
    """Build the tables (markdown) and the target verdicts from the results."""
    steady, first, mem = R["steady"], R.get("first_call", {}), R.get("memory", {})
    md = []
    rows = []
    for key, r in steady.items():
        m = {k: v["median"] for k, v in r["stats"].items()}
        rows.append([r["title"]] + [fmt_t(m.get(t)) for t in STEADY] + [
            fmt_r(ratio(m.get("jitgrad"), m.get("jax"))),
            fmt_r(ratio(m.get("jitgrad"), m.get("hand"))),
            fmt_r(ratio(m.get("jitgrad"), m.get("jitgrad_f"))),
            fmt_r(ratio(m.get("torch"), m.get("jitgrad")))])
    md.append("### Steady state (median time per call)\n")
    md.append(table(["workload"] + [LABEL[t] for t in STEADY] +
                    ["jitgrad/JAX", "jitgrad/hand", "grad/f (jitgrad)", "torch/jitgrad"], rows))

    if first:
        rows = []
        for key, r in first.items():
            g = lambda k: r.get(k, {}).get("first_s")
            rows.append([steady.get(key, {}).get("title", key),
                         fmt_t(g("jitgrad_auto_cold")), fmt_t(g("jitgrad_always_cold")),
                         fmt_t(g("jitgrad_auto_warm")), fmt_t(g("jitgrad_always_warm")),
                         fmt_t(g("jax_cold")),
                         fmt_r(ratio(g("jitgrad_auto_cold"), g("jax_cold"))),
                         fmt_r(ratio(g("jitgrad_always_cold"), g("jax_cold")))])
        md.append("\n### First call in a fresh process (imports done; time from first grad(f)(x) to result)\n")
        md.append(table(["workload", "jitgrad auto, empty cache", "jitgrad always, empty cache",
                         "jitgrad auto, warm cache", "jitgrad always, warm cache", "JAX jit(grad)",
                         "auto cold/JAX", "always cold/JAX"], rows))
    if R.get("native"):
        md.append(native_md(R["native"], lambda k: steady.get(k, {}).get("title", k), table))
    if mem:
        tools = []
        for r in mem.values():
            for t in r:
                if t not in tools:
                    tools.append(t)
        rows = []
        for key, r in mem.items():
            outb = next((v.get("output_bytes") for v in r.values() if "output_bytes" in v), None)
            rows.append([W.BY_KEY[key].title, fmt_mb(outb)] +
                        [fmt_mb(r.get(t, {}).get("peak_delta_bytes")) for t in tools])
        md.append("\n### Peak memory of one call (RSS high-water mark above the warm baseline)\n")
        md.append(table(["workload", "gradient size"] + [LABEL.get(t, t) for t in tools], rows))
    if R.get("whole_script"):
        rows = [[k, fmt_t(v["median_s"])] for k, v in R["whole_script"].items()]
        md.append("\n### Whole script `python -c \"...print(grad(f)(x))\"` (wall clock, fresh process)\n")
        md.append(table(["script", "median wall clock"], rows))
    if R.get("hypothesis"):
        rows = [[k, fmt_t(v.get("total_s")), fmt_t(v.get("median_call_s")), fmt_t(v.get("max_call_s"))]
                for k, v in R["hypothesis"].items()]
        md.append("\n### Hypothesis-like loop: grad of sum(sin*exp) on 50 random shapes (fresh process)\n")
        md.append(table(["tool", "total", "median call", "slowest call"], rows))
    md_text = "\n".join(md) + "\n"
    return md_text, targets(R)


def targets(R):
    """Verdicts on the project's performance targets (True = met)."""
    steady, first, mem = R["steady"], R.get("first_call", {}), R.get("memory", {})
    out = []

    def add(name, ok, detail):
        out.append({"target": name, "met": ok, "detail": detail})

    for key, r in steady.items():
        m = {k: v["median"] for k, v in r["stats"].items()}
        rj, rh, rf = ratio(m.get("jitgrad"), m.get("jax")), ratio(m.get("jitgrad"), m.get("hand")), \
            ratio(m.get("jitgrad"), m.get("jitgrad_f"))
        if rj is not None:
            add(f"{key}: steady state <= JAX", rj <= 1.0, f"jitgrad/JAX = {rj:.2f}")
        if rh is not None:
            add(f"{key}: steady state <= 1.2x hand Numba", rh <= 1.2, f"jitgrad/hand = {rh:.2f}")
        if rf is not None and W.BY_KEY[key].kind == "grad":
            add(f"{key}: grad <= 3x jitgrad jit(f)", rf <= 3.0, f"grad/f = {rf:.2f}")
    if "scalar" in steady:
        t = steady["scalar"]["stats"]["jitgrad"]["median"]
        add("scalar: grad call < 3 µs", t < 3e-6, f"{t * 1e6:.2f} µs")
    for key, r in first.items():
        jx = r.get("jax_cold", {}).get("first_s")
        for mode in ("auto", "always"):
            t = r.get(f"jitgrad_{mode}_cold", {}).get("first_s")
            if t is not None and jx is not None:
                add(f"{key}: first call ({mode}, empty cache) <= JAX first call", t <= jx,
                    f"{fmt_t(t)} vs JAX {fmt_t(jx)}")
            tw = r.get(f"jitgrad_{mode}_warm", {}).get("first_s")
            if tw is not None:
                add(f"{key}: first call ({mode}, warm cache) < 50 ms", tw < 0.05, fmt_t(tw))
    native_targets(R.get("native", {}), add)
    ws = R.get("whole_script", {})
    for n in ("1000", "1e+06"):
        a, b = ws.get(f"jitgrad grad, n={n}"), ws.get(f"JAX jit(grad), n={n}")
        if a and b:
            add(f"whole script n={n}: jitgrad < JAX jit(grad)", a["median_s"] < b["median_s"],
                f"{fmt_t(a['median_s'])} vs {fmt_t(b['median_s'])}")
        if a:
            add(f"whole script n={n}: under 0.4 s", a["median_s"] < 0.4, fmt_t(a["median_s"]))
    for key, r in mem.items():
        j = r.get("jitgrad", {})
        if "peak_delta_bytes" in j:
            extra = j["peak_delta_bytes"] - j["output_bytes"]
            ok = extra <= 0.1 * j["output_bytes"] + 8 * 2**20
            add(f"{key}: peak memory of grad ~ output + O(1)", ok,
                f"peak {fmt_mb(j['peak_delta_bytes'])} for a {fmt_mb(j['output_bytes'])} gradient "
                f"(= {j['peak_delta_bytes'] / j['output_bytes']:.2f}x output)")
    return out


def plot(R, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart"
    steady = R["steady"]
    keys = list(steady)
    series = [("jitgrad / JAX", "jitgrad", "jax"), ("jitgrad / hand Numba", "jitgrad", "hand"),
              ("grad / f (jitgrad)", "jitgrad", "jitgrad_f"), ("torch / JAX", "torch", "jax")]
    fig, axes = plt.subplots(2, 1, figsize=(12, 9))
    ax = axes[0]
    width = 0.8 / len(series)
    for i, (lab, a, b) in enumerate(series):
        vals = []
        for k in keys:
            m = {t: v["median"] for t, v in steady[k]["stats"].items()}
            vals.append(ratio(m.get(a), m.get(b)) or np.nan)
        ax.bar(np.arange(len(keys)) + (i - (len(series) - 1) / 2) * width, vals, width, label=lab)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(1.2, color="r", lw=0.8, ls="--", label="1.2x")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(keys)), keys, rotation=20)
    ax.set_ylabel("time ratio (lower is better for jitgrad)")
    ax.set_title("Steady-state time ratios (same run)")
    ax.legend(fontsize=8)
    ax = axes[1]
    first = R.get("first_call", {})
    fk = list(first)
    cols = [("jitgrad auto, empty cache", "jitgrad_auto_cold"),
            ("jitgrad always, empty cache", "jitgrad_always_cold"),
            ("jitgrad always, warm cache", "jitgrad_always_warm"), ("JAX jit(grad)", "jax_cold")]
    width = 0.8 / len(cols)
    for i, (lab, c) in enumerate(cols):
        vals = [first[k].get(c, {}).get("first_s", np.nan) for k in fk]
        ax.bar(np.arange(len(fk)) + (i - (len(cols) - 1) / 2) * width, vals, width, label=lab)
    ax.axhline(0.05, color="r", lw=0.8, ls="--", label="50 ms")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(fk)), fk, rotation=20)
    ax.set_ylabel("seconds")
    ax.set_title("First call in a fresh process")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


def environment():
    env = {"python": sys.version.split()[0], "platform": platform.platform(),
           "machine": platform.machine(), "cpus": os.cpu_count(), "numpy": np.__version__,
           "date": datetime.datetime.now().isoformat(timespec="seconds")}
    if hasattr(os, "sched_getaffinity"):
        env["cpus_used"] = len(os.sched_getaffinity(0))
    import numba
    env["numba"] = numba.__version__
    try:
        env["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                          if l.startswith("model name"))
    except Exception:
        pass
    for mod in ("jax", "jaxlib", "torch", "scipy"):
        if have(mod):
            env[mod] = __import__(mod).__version__
    try:
        env["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                           capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~1-2 minute version")
    ap.add_argument("--only", help="comma-separated workload keys")
    ap.add_argument("--skip-subprocess", action="store_true",
                    help="steady state only (no first-call/memory/script/hypothesis runs)")
    ap.add_argument("--out", default=RESULTS, help="results folder (default perf/results)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads per peer (BLAS, Numba, XLA, torch); 0 = library defaults "
                         "(default 1: the machine is shared, see README)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child_main(a.child)

    a.repeats, a.min_block, a.max_seconds = (5, 0.02, 3.0) if a.quick else (11, 0.1, 15.0)
    ws = [w for w in W.WORKLOADS if "memory_only" not in w.tags]
    if a.only:
        keep = set(a.only.split(","))
        ws = [w for w in ws if w.key in keep]
    notes = []
    for mod, what in (("jax", "JAX"), ("torch", "PyTorch"), ("matplotlib", "matplotlib")):
        if not have(mod):
            notes.append(f"{what} is not installed: skipped (pip install -e '.[bench]'"
                         f"{' and torch' if mod == 'torch' else ''})")
            log(notes[-1])
    t_start = time.perf_counter()
    R = {"environment": environment(), "quick": a.quick,
         "settings": {"repeats": a.repeats, "min_block_s": a.min_block, "threads": a.threads,
                      "thread_env": {k: os.environ.get(k) for k in (
                          "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
                          "XLA_FLAGS")}}}
    R["steady"] = run_steady(ws, a, notes)
    if not a.skip_subprocess:
        tmp = tempfile.mkdtemp(prefix="jitgrad-bench-")
        try:
            first_ws = [w for w in ws if w.key in ("scalar", "elem_1e3", "elem_1e6")] if a.quick else ws
            R["first_call"] = run_first_calls(first_ws, tmp, notes)
            R["native"] = run_native(first_ws, tmp, log, notes)
            mem_ws = [W.BY_KEY["elem_1e7"]] + ([] if a.quick else [w for w in ws if w.key != "scalar"])
            mem_tools = ["jitgrad", "hand", "jax"] if a.quick else \
                ["jitgrad", "jitgrad_f", "hand", "jax", "torch", "numpy_f"]
            R["memory"] = run_memory(mem_ws, mem_tools, notes)
            R["whole_script"] = run_whole_script(1 if a.quick else 3, tmp, notes)
            R["hypothesis"] = run_hypo(tmp, notes, a.quick)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    R["notes"] = notes
    md, verdicts = summarize(R)
    R["targets"] = verdicts
    R["total_wall_s"] = time.perf_counter() - t_start
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(R, f, indent=1)
    verdict_md = "\n### Targets\n\n" + "\n".join(
        f"- {'MET ' if v['met'] else 'MISSED'} {v['target']}: {v['detail']}" for v in verdicts)
    env = R["environment"]
    head = (f"jitgrad benchmark ({'quick' if a.quick else 'full'} run, {env['date']}, "
            f"{env.get('cpu', '?')} x{env['cpus']}, Python {env['python']}, NumPy {env['numpy']}, "
            f"Numba {env['numba']}, JAX {env.get('jax', 'n/a')}, torch {env.get('torch', 'n/a')}, "
            f"{a.threads or 'default'} thread(s) per peer on {env.get('cpus_used', env['cpus'])} CPU(s), "
            f"commit {env.get('git_commit', '?')}; total {R['total_wall_s']:.0f} s)\n")
    notes_md = ("\n### Notes\n\n" + "\n".join(f"- {n}" for n in notes) + "\n") if notes else ""
    text = head + "\n" + md + verdict_md + "\n" + notes_md
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write(text)
    msg = plot(R, os.path.join(a.out, "ratios.png"))
    if msg:
        print(msg)
    print(text)


if __name__ == "__main__":
    main()
