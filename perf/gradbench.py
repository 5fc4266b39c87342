"""GradBench's evals: jitgrad against JAX ``jit(grad)`` and PyTorch eager.

    python perf/gradbench.py                  # every eval at the sizes of gradbench_evals.EVALS
    python perf/gradbench.py --quick          # the first size of each eval, shorter timing
    python perf/gradbench.py --only gmm,lstm --tools jitgrad,jax

The evals (lse, llsq, ode, kmeans with its Hessian-diagonal output, gmm,
lstm, det) are written in ``gradbench_evals.py`` from GradBench's public
specifications.  Every (eval, size, tool) runs in a fresh process with an
empty ``JITGRAD_CACHE_DIR`` (one thread, one CPU, as ``bench.py``), which
measures the first call (wall clock and CPU time: jitgrad with
``compile="always"``, so its trace, transforms and Numba compile; JAX's
``jit`` compile and run; torch's first eager call), checks the gradient
against the first tool's of that size (JAX's) to 1e-8 relative before
anything is timed, then times the steady state (median CPU time of timed
blocks) and the peak memory of one warm call (RSS high-water mark above the
RSS before it).  ode and lstm loop with ``jitgrad.scan`` / ``lax.scan``;
torch runs a Python loop.

Writes perf/results/gradbench.md and perf/results/gradbench.json.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PERF_DIR)
sys.path[:0] = [ROOT, PERF_DIR]

import bench as B  # noqa: E402  (pins threads before NumPy loads)
import loops as LP  # noqa: E402  (fresh-process runner, agreement, heap reset)
import numpy as np  # noqa: E402

import gradbench_evals as G  # noqa: E402

TOOLS = ["jax", "jitgrad", "torch", "jitgrad_heap"]     # the first that runs is the reference
LABEL = {"jitgrad": "jitgrad", "jax": "JAX jit(grad)", "torch": "torch eager",
         "jitgrad_heap": "jitgrad, heap kept"}
TOL = 1e-8
# "jitgrad, heap kept": jitgrad again, with glibc told to keep freed memory
# (no mmap for large blocks, no trimming), so that a call's temporaries reuse
# the previous call's pages instead of faulting in fresh zeroed ones.
HEAP_KEPT = {"MALLOC_MMAP_THRESHOLD_": str(2 ** 30), "MALLOC_TRIM_THRESHOLD_": str(2 ** 30)}


# ---------------------------------------------------------------------------
# Child: one tool on one eval at one size, in a fresh process


def child(spec):
    ev, size, tool = G.BY_KEY[spec["eval"]], spec["size"], spec["tool"]
    tool = "jitgrad" if tool == "jitgrad_heap" else tool
    if tool == "jitgrad":
        import jitgrad
        jitgrad.config.compile = "always"
    elif tool == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
    else:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads()))
    args = G.make_inputs(ev, size)
    call = G.CALLS[tool](ev, size, args)
    out = {}
    c0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g, out["first_s"] = LP._timed(call)
    out["first_cpu_s"] = time.process_time() - c0
    out["warnings"] = sorted({str(m.message)[:300] for m in caught
                              if issubclass(m.category, RuntimeWarning)})
    out["interpreted"] = any("could not compile" in m for m in out["warnings"])
    grad = G.to_numpy(g)
    np.savez(spec["grad_out"], *grad)
    if spec.get("ref"):
        out["err_vs_ref"] = LP.agreement(LP._load(spec["ref"]), grad)
        if not out["err_vs_ref"] <= TOL:
            out["wrong"] = True
            print(json.dumps(out), flush=True)
            return
    _, out["second_s"] = LP._timed(call)
    n, _ = B.calibrate(call, spec["min_block"])
    cpu, wall, start = [], [], time.perf_counter()
    while len(cpu) < spec["repeats"]:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            call()
        cpu.append((time.process_time() - c0) / n)
        wall.append((time.perf_counter() - t0) / n)
        if len(cpu) >= 3 and time.perf_counter() - start > spec["budget"]:
            break
    out.update(steady_s=statistics.median(cpu), steady_min_s=min(cpu),
               steady_wall_s=statistics.median(wall), blocks=len(cpu), calls_per_block=n)
    gc.collect()
    LP._fresh_heap()
    rss0 = B._status("VmRSS")
    if B._hwm_reset() and rss0 is not None:
        call()
        out["peak_bytes"] = B._status("VmHWM") - rss0
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------
# Parent


def measure(evs, tools, a, tmp, notes):
    for t in ("jax", "torch"):
        if t in tools and not B.have(t):
            notes.append(f"{LABEL[t]}: not installed, skipped")
            tools = [x for x in tools if x != t]
    res = {}
    for ev in evs:
        for size in (ev.sizes[:1] if a.quick else ev.sizes):
            label = G._label(size)
            ref = None
            for tool in tools:
                spec = {"eval": ev.key, "size": size, "tool": tool, "ref": ref,
                        "grad_out": os.path.join(tmp, f"{ev.key}-{label}-{tool}.npz"),
                        "min_block": a.min_block, "repeats": a.repeats, "budget": a.budget}
                B.log(f"[{ev.key} {label}] {tool}")
                cache = tempfile.mkdtemp(prefix="cache-", dir=tmp)
                saved = dict(os.environ)
                if tool == "jitgrad_heap":
                    os.environ.update(HEAP_KEPT)
                try:
                    r = LP.run_child(spec, a.timeout, a.mem_limit_gb * LP.GB, cache, script=__file__)
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                shutil.rmtree(cache, ignore_errors=True)
                if ref is None and "error" not in r:
                    r["reference"] = True
                    ref = spec["grad_out"]
                B.log("  " + (r["error"] if "error" in r else
                              f"first {B.fmt_t(r.get('first_s'))} ({B.fmt_t(r.get('first_cpu_s'))} CPU)  "
                              f"steady {B.fmt_t(r.get('steady_s'))}  err {r.get('err_vs_ref', 0):.1e}"))
                res[(ev.key, label, tool)] = r
            # every pair of tools, not only against the reference
            done = {t: os.path.join(tmp, f"{ev.key}-{label}-{t}.npz") for t in tools}
            done = {t: p for t, p in done.items() if os.path.exists(p)}
            pairs = [(x, y) for i, x in enumerate(done) for y in list(done)[i + 1:]]
            worst = max((LP.agreement(LP._load(done[x]), LP._load(done[y])) for x, y in pairs),
                        default=None)
            for t in done:
                res[(ev.key, label, t)]["err_pairs"] = worst
    return res


def result_notes(res):
    notes = []
    for (k, size, tool), r in res.items():
        for m in r.get("warnings", []):
            notes.append(f"{k} {size} {LABEL[tool]}: warned at its first call: {m}")
        if r.get("wrong"):
            notes.append(f"{k} {size} {LABEL[tool]}: gradient differs from the reference "
                         f"(max rel err {r['err_vs_ref']:.2e}); not timed")
        if "error" in r:
            notes.append(f"{k} {size} {LABEL[tool]}: {r['error']}")
    return notes


def summary(evs, res, quick):
    rows = []
    for ev in evs:
        for size in (ev.sizes[:1] if quick else ev.sizes):
            label = G._label(size)
            get = lambda t, k: res.get((ev.key, label, t), {}).get(k)
            if all(res.get((ev.key, label, t)) is None for t in TOOLS):
                continue

            def steady(t):
                r = res.get((ev.key, label, t))
                if r is None:
                    return "-"
                return r.get("error") or ("not timed (gradient differs)" if r.get("wrong")
                                          else B.fmt_t(r.get("steady_s")))

            def first(t):
                s = get(t, "first_cpu_s")
                return "-" if s is None else (f"{B.fmt_t(s)} ({B.fmt_t(get(t, 'first_s'))} wall)"
                                              + (", interpreted" if get(t, "interpreted") else ""))
            err = get("jitgrad", "err_pairs")
            rows.append([ev.key + (" (J/diag H)" if ev.hessian_dir else ""), label,
                         steady("jitgrad"), steady("jax"), steady("torch"),
                         B.fmt_r(B.ratio(get("jitgrad", "steady_s"), get("jax", "steady_s"))),
                         steady("jitgrad_heap"),
                         B.fmt_r(B.ratio(get("jitgrad_heap", "steady_s"), get("jax", "steady_s"))),
                         B.fmt_r(B.ratio(get("torch", "steady_s"), get("jitgrad", "steady_s"))),
                         first("jitgrad"), first("jax"), first("torch"),
                         B.fmt_mb(get("jitgrad", "peak_bytes")), B.fmt_mb(get("jax", "peak_bytes")),
                         B.fmt_mb(get("torch", "peak_bytes")),
                         "-" if err is None else f"{err:.0e}"])
    return B.table(["eval", "size", "jitgrad steady", "JAX jit(grad) steady", "torch steady",
                    "jitgrad/JAX", "jitgrad steady, heap kept", "heap kept/JAX", "torch/jitgrad", "jitgrad first call (CPU)",
                    "JAX first call (CPU)", "torch first call (CPU)", "jitgrad peak mem",
                    "JAX peak mem", "torch peak mem", "max rel err (pairs)"], rows)


FOOTNOTE = """\
Columns: *steady* is the median CPU time per gradient (kmeans: per `J / diag(H)`,
one forward-over-reverse product) over timed blocks after the first two calls,
jitgrad with `compile="always"` (CPU time, not wall clock: the machine is
shared; every tool runs on one thread and one CPU).  *first call* is the CPU
time (and wall clock) of the first call in a fresh process, imports done:
jitgrad with an empty `JITGRAD_CACHE_DIR` (trace, transforms, Numba compile),
JAX's `jit` compile and run, torch's first eager call.  *peak mem* is the RSS
high-water mark of one warm call above the RSS before it.  *max rel err* is
the largest relative difference (per leaf, scaled by its largest entry) of any
two tools' gradients; each tool's gradient is checked against JAX's to 1e-8
before it is timed.  *heap kept* runs jitgrad again with
`MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` at 1 GB, so that glibc
reuses freed pages for the next call's temporaries instead of returning them
to the system and faulting fresh zeroed pages in (about 2 µs per 4 KB page
on this machine); the difference is the cost of page faults.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="first size of each eval, shorter timing")
    ap.add_argument("--only", help="comma-separated evals: " + ",".join(e.key for e in G.EVALS))
    ap.add_argument("--tools", help="comma-separated tools: " + ",".join(TOOLS))
    ap.add_argument("--timeout", type=float, default=300.0, help="wall-clock seconds per process")
    ap.add_argument("--mem-limit-gb", type=float, default=4.0, help="RSS limit per process")
    ap.add_argument("--threads", type=int, default=1, help="threads per tool (see bench.py)")
    ap.add_argument("--out", default=B.RESULTS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    a.min_block, a.repeats, a.budget = (0.02, 5, 0.5) if a.quick else (0.05, 7, 1.5)
    evs = [G.BY_KEY[k] for k in a.only.split(",")] if a.only else G.EVALS
    tools = [t for t in TOOLS if t in a.tools.split(",")] if a.tools else TOOLS
    notes = []
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="jitgrad-gradbench-")
    try:
        res = measure(evs, tools, a, tmp, notes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - t0
    notes += result_notes(res)
    env = B.environment()
    head = (f"jitgrad GradBench evals ({'quick' if a.quick else 'full'} run, {env['date']}, "
            f"{env.get('cpu', '?')} x{env['cpus']}, Python {env['python']}, NumPy {env['numpy']}, "
            f"Numba {env['numba']}, JAX {env.get('jax', 'n/a')}, torch {env.get('torch', 'n/a')}, "
            f"{a.threads or 'default'} thread(s) per tool, commit {env.get('git_commit', '?')}; "
            f"total {total:.0f} s)\n")
    text = head + "\n" + summary(evs, res, a.quick) + "\n\n" + FOOTNOTE
    if notes:
        text += "\n### Notes\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "gradbench.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "gradbench.json"), "w") as f:
        json.dump({"environment": env, "total_wall_s": total, "notes": notes,
                   "results": [{"eval": k, "size": s, "tool": t, **r} for (k, s, t), r in res.items()]},
                  f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
