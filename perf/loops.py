"""Loop benchmark: gradients of T-step recurrences, jitgrad's loops against
unrolled loops, JAX, PyTorch and hand-written Numba.

    python perf/loops.py                 # full run (about 15 minutes on 2 cores)
    python perf/loops.py --quick         # T = 10 and 100 only
    python perf/loops.py --only rk4 --T 10,1000 --tools jg_loop,hand

Workloads (``loops_workloads.py``): RK4 on a 100-element Lorenz-96 state
(gradient w.r.t. the initial state and the forcing), a tanh RNN (hidden 32,
inputs 8; gradient w.r.t. the weights), the 1-d heat equation on 1,000 cells
(explicit Euler; gradient w.r.t. the initial temperature), GradBench's LSTM
(2 layers, width 14, the eval of ``gradbench_evals.py``; gradient w.r.t. the
main and extra parameters), each at T = 10, 100, 1,000 and 10,000.

Every (variant, workload, T) runs in a fresh process with an empty
``JITGRAD_CACHE_DIR``, which measures: the first call (``compile="always"``:
trace, transform, generate and compile), whether the gradient agrees with
the hand-written one (to 1e-10 relative; a mismatch is not timed), the steady
time per gradient (median of timed blocks), trace time and IR size
(``jitgrad.make_ir``; ``jax.make_jaxpr`` for JAX), and the peak memory of one
warm call (RSS high-water mark above the baseline).  Variants whose cost grows
with T (jitgrad unrolled, JAX unrolled) run only up to a given T, under a
time limit and an address-space limit (``resource.setrlimit`` in the child)
besides an RSS watchdog in the parent; a child past either is reported as
'did not finish' or 'killed at N GB'.

Writes perf/results/loops.md and perf/results/loops.json.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PERF_DIR)
# Measure this checkout's jitgrad, not an installed copy.
sys.path[:0] = [ROOT, PERF_DIR]

import bench as B  # noqa: E402  (pins threads, from --threads, before NumPy loads)
import numpy as np  # noqa: E402

import loops_workloads as L  # noqa: E402
import workloads as W  # noqa: E402

TS = (10, 100, 1000, 10000)
TOOLS = ["jg_loop", "jg_unrolled", "hand", "jax_scan", "jax_unrolled", "torch"]
LABEL = {"jg_loop": "jitgrad loop", "jg_unrolled": "jitgrad unrolled", "hand": "Numba by hand",
         "jax_scan": "JAX lax.scan", "jax_unrolled": "JAX unrolled", "torch": "torch eager"}
TOL = 1e-10
GB = 2 ** 30


# ---------------------------------------------------------------------------
# Child: one variant of one workload at one T, in a fresh process


def _ir_size(ir):
    """(top-level equations, equations including every nested sub-IR)."""
    from jitgrad.core.ir import IR

    def total(g):
        n = 0
        for e in g.eqns:
            n += 1
            for p in e.params.values():
                for s in (p if isinstance(p, (list, tuple)) else (p,)):
                    s = s[0] if isinstance(s, tuple) and s and isinstance(s[0], IR) else s
                    if isinstance(s, IR):
                        n += total(s)
        return n
    return len(ir.eqns), total(ir)


def _jaxpr_size(closed):
    def total(j):
        n = 0
        for e in j.eqns:
            n += 1
            for p in e.params.values():
                for s in (p if isinstance(p, (list, tuple)) else (p,)):
                    inner = getattr(s, "jaxpr", s)
                    if hasattr(inner, "eqns"):
                        n += total(inner)
        return n
    return len(closed.jaxpr.eqns), total(closed.jaxpr)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _build(tool, w, T, args):
    """(call, trace) for one variant: ``call()`` returns the gradient,
    ``trace()`` returns (top, total) IR equations, or ``trace`` is None."""
    nums = L.argnums(w)
    if tool in ("jg_loop", "jg_unrolled"):
        import jitgrad
        jitgrad.config.compile = "always"
        f = (w.loop if tool == "jg_loop" else w.unrolled)(T)
        g = jitgrad.grad(f, argnums=nums)
        return (lambda: g(*args)), (lambda: _ir_size(jitgrad.make_ir(jitgrad.grad(f, argnums=nums))(*args)))
    if tool in ("jax_scan", "jax_unrolled"):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from jax import lax
        f = w.jax(jnp, lax, T, tool == "jax_scan")
        jargs = W.jax_args(None, args)
        gj = jax.jit(jax.grad(f, argnums=nums))
        return (lambda: jax.block_until_ready(gj(*jargs))), \
            (lambda: _jaxpr_size(jax.make_jaxpr(jax.grad(f, argnums=nums))(*jargs)))
    if tool == "torch":
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads()))
        f = w.torch(torch, T)
        targs = [torch.from_numpy(np.array(a, np.float64)) for a in args]
        wrt = [targs[i].requires_grad_(True) for i in w.argnums]
        return (lambda: torch.autograd.grad(f(*targs), wrt)), None
    if tool == "hand":
        return w.hand(args, T), None
    raise ValueError(tool)


def _leaves(g):
    return [np.asarray(x, np.float64) for x in W.leaves(W.to_numpy(g))]


def agreement(ref, got):
    """Max relative error of ``got`` against ``ref``, per leaf, scaled by the
    leaf's largest entry; a leaf whose entries are all below 1e-12 of the
    whole gradient's largest entry is scaled by that instead (it is rounding:
    RK4's gradient w.r.t. the initial state decays to 1e-28 at T = 10,000
    while the one w.r.t. the forcing is 120, and every implementation then
    gets a different 1e-28)."""
    if len(ref) != len(got) or any(np.shape(a) != np.shape(b) for a, b in zip(ref, got)):
        return float("inf")
    top = max((float(np.max(np.abs(a))) for a in ref if np.size(a)), default=0.0)
    err = 0.0
    for a, b in zip(ref, got):
        if not np.size(a):
            continue
        scale = max(float(np.max(np.abs(a))), 1e-12 * top, 1e-300)
        err = max(err, float(np.max(np.abs(np.asarray(a) - b))) / scale)
    return err


def _load(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[1]))]


def _fresh_heap():
    """Pin glibc's mmap threshold and return freed heap to the OS, so that the
    measured call's large allocations are fresh pages the RSS high-water mark
    sees (see bench.py: the warm-up's frees would otherwise hide them)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 65536)        # M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _trace_into(out, trace, runs):
    runs = [_timed(trace) for _ in range(runs)]
    out["trace_s"] = min(t for _, t in runs)
    out["ir_top"], out["ir_total"] = runs[0][0]


def child(spec):
    import resource
    if spec.get("as_limit"):
        vm = B._status("VmSize") or 0
        lim = vm + int(spec["as_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    if spec.get("cpu_limit"):
        resource.setrlimit(resource.RLIMIT_CPU, (int(spec["cpu_limit"]), int(spec["cpu_limit"]) + 5))
    w, T, tool = L.BY_KEY[spec["workload"]], spec["T"], spec["tool"]
    args = L.make_inputs(w, T)
    out = {}
    call, trace = _build(tool, w, T, args)
    if spec.get("trace_first") and trace is not None:
        # a variant that may not finish compiling reports its IR first
        _trace_into(out, trace, 1)
        print(json.dumps(out), flush=True)
    c0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g, out["first_s"] = _timed(call)
    out["first_cpu_s"] = time.process_time() - c0
    # a compile that failed (the call then ran on jitgrad's interpreter) warns
    out["warnings"] = sorted({str(m.message)[:300] for m in caught
                              if issubclass(m.category, RuntimeWarning)})
    out["interpreted"] = any("could not compile" in m for m in out["warnings"])
    grad = _leaves(g)
    np.savez(spec["grad_out"], *grad)
    if spec.get("ref"):
        ref = _load(spec["ref"])
        out["err_vs_hand"] = agreement(ref, grad)
        if not out["err_vs_hand"] <= TOL:
            out["wrong"] = True
            print(json.dumps(out), flush=True)
            return
    _, out["second_s"] = _timed(call)
    # steady state: blocks of about min_block seconds, until the budget is spent
    n, per = B.calibrate(call, spec["min_block"])
    # (CPU time of this process: the machine is shared, and wall time then
    # counts other processes' time slices; every peer runs on one thread)
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
    if trace is not None and "trace_s" not in out:
        _trace_into(out, trace, 3 if out["first_s"] < 5 else 1)
    gc.collect()
    _fresh_heap()
    rss0 = B._status("VmRSS")
    if B._hwm_reset() and rss0 is not None:
        call()
        out["peak_bytes"] = B._status("VmHWM") - rss0
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------
# Parent: run a child under a time limit and an RSS watchdog


def run_child(spec, timeout, rss_limit, cache_dir, script=__file__):
    """Run ``script --child spec`` (this file by default) in a fresh process;
    its last JSON line of output, or an ``error`` verdict."""
    env = dict(os.environ, JITGRAD_CACHE_DIR=cache_dir, PYTHONHASHSEED="0")
    cmd = [sys.executable, os.path.abspath(script), "--child", json.dumps(spec)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
    peak, verdict = 0, None
    status = f"/proc/{p.pid}/status"
    while p.poll() is None:
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        if rss_limit and peak > rss_limit:
            verdict = f"killed at {peak / GB:.1f} GB RSS"
        elif time.perf_counter() - t0 > timeout:
            verdict = f"did not finish in {timeout:.0f} s"
        if verdict:
            p.kill()
            break
        time.sleep(0.1)
    stdout, stderr = p.communicate()
    wall = time.perf_counter() - t0
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    if verdict is None and (p.returncode != 0 or "steady_s" not in out and not out.get("wrong")):
        last = (stderr.strip().splitlines() or ["?"])[-1]
        if p.returncode == -24:                     # SIGXCPU: past RLIMIT_CPU
            verdict = f"did not finish in {spec['cpu_limit']:.0f} s CPU"
        elif "MemoryError" in stderr or "out of memory" in stderr.lower() or p.returncode < 0:
            verdict = (f"killed at {spec.get('as_limit', 0) / GB:.0f} GB address space "
                       f"(signal {-p.returncode})" if p.returncode < 0 else f"({last[:80]})")
        else:
            verdict = f"failed: {last[:160]}"
    if verdict is not None:
        out["error"] = verdict
    out.update(wall_s=wall, child_peak_rss=peak)
    return out


def measure(ws, Ts, tools, a, tmp, notes):
    """Run every (workload, T, variant) child; returns {(workload, T, variant): result}."""
    avail = {"jax_scan": B.have("jax"), "jax_unrolled": B.have("jax"), "torch": B.have("torch")}
    for t, ok in avail.items():
        if t in tools and not ok:
            notes.append(f"{LABEL[t]}: {'JAX' if 'jax' in t else 'PyTorch'} is not installed, skipped")
    caps = {"jg_unrolled": a.unrolled_max_T, "jax_unrolled": a.jax_unrolled_max_T,
            "torch": a.torch_max_T}
    res = {}
    for w in ws:
        for T in Ts:
            ref = None
            for tool in sorted(tools, key=lambda t: t != "hand"):       # the reference first
                if not avail.get(tool, True) or T > caps.get(tool, T):
                    continue
                limited = tool in ("jg_unrolled", "jax_unrolled")
                spec = {"tool": tool, "workload": w.key, "T": T, "ref": ref,
                        "grad_out": os.path.join(tmp, f"{w.key}-{T}-{tool}.npz"),
                        "min_block": a.min_block, "repeats": a.repeats, "budget": a.budget,
                        "as_limit": int(a.mem_limit_gb * GB) if limited else None,
                        "cpu_limit": a.unrolled_cpu if limited else None,
                        "trace_first": tool == "jg_unrolled"}
                B.log(f"[{w.key} T={T}] {tool}")
                cache = tempfile.mkdtemp(prefix="cache-", dir=tmp)
                r = run_child(spec, 6 * a.unrolled_cpu if limited else a.timeout,
                              a.mem_limit_gb * GB if limited else None, cache)
                shutil.rmtree(cache, ignore_errors=True)
                if tool == "hand" and "error" not in r:
                    ref = spec["grad_out"]
                B.log("  " + (r["error"] if "error" in r else
                              f"first {B.fmt_t(r.get('first_s'))}  steady {B.fmt_t(r.get('steady_s'))}  "
                              f"err {r.get('err_vs_hand', 0):.1e}"))
                res[(w.key, T, tool)] = r
                if a.log:
                    with open(a.log, "a") as f:
                        f.write(json.dumps({"workload": w.key, "T": T, "tool": tool, **r}) + "\n")
            # loop against unrolled, where both finished
            lp, un = (os.path.join(tmp, f"{w.key}-{T}-{t}.npz") for t in ("jg_loop", "jg_unrolled"))
            if os.path.exists(lp) and os.path.exists(un):
                e = agreement(_load(un), _load(lp))
                res[(w.key, T, "jg_loop")]["err_vs_unrolled"] = e
                if a.log:
                    with open(a.log, "a") as f:
                        f.write(json.dumps({"workload": w.key, "T": T, "tool": "jg_loop",
                                            "err_vs_unrolled": e}) + "\n")
    return res


def read_logs(paths):
    """Measurements from ``--log`` files: a later measurement of a key
    replaces it; a record without one (an annotation, an agreement) updates it."""
    res = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                key = (d.pop("workload"), d.pop("T"), d.pop("tool"))
                if "wall_s" in d:
                    res[key] = {k: v for k, v in res.get(key, {}).items()
                                if k in ("err_vs_unrolled", "annotation", "interpreted")} | d
                else:
                    res.setdefault(key, {}).update(d)
    return res


def result_notes(res):
    notes = []
    for (k, T, tool), r in res.items():
        if r.get("annotation"):
            notes.append(f"{k} T={T} {LABEL[tool]}: {r['annotation']}")
        for m in r.get("warnings", []):
            notes.append(f"{k} T={T} {LABEL[tool]}: warned at its first call: {m}")
        if r.get("wrong"):
            notes.append(f"{k} T={T} {LABEL[tool]}: gradient differs from the hand-written one "
                         f"(max rel err {r['err_vs_hand']:.2e}); not timed")
    return notes


# ---------------------------------------------------------------------------
# Report


def _carry_bytes(w):
    return {"rk4": L.RK4_N * 8, "rnn": L.RNN_H * 8, "heat": L.HEAT_N * 8,
            "lstm": 2 * L.LSTM_L * L.LSTM_B * 8 + 8}[w.key]


def report(ws, Ts, tools, res):
    rows = []
    for w in ws:
        for T in Ts:
            hand = res.get((w.key, T, "hand"), {}).get("steady_s")
            jscan = res.get((w.key, T, "jax_scan"), {}).get("steady_s")
            for tool in tools:
                r = res.get((w.key, T, tool))
                if r is None:
                    continue
                ir = f"{r['ir_top']:,} / {r['ir_total']:,}" if "ir_top" in r else "-"
                if "error" in r:
                    rows.append([w.key, f"{T:,}", LABEL[tool], B.fmt_t(r.get("trace_s")), ir,
                                 r["error"]] + ["-"] * 7)
                    continue
                s = r.get("steady_s")
                err = r.get("err_vs_hand")
                first = f"{B.fmt_t(r.get('first_s'))} ({B.fmt_t(r.get('first_cpu_s'))})"
                if r.get("interpreted"):
                    first += ", compile failed: interpreted"
                rows.append([w.key, f"{T:,}", LABEL[tool], B.fmt_t(r.get("trace_s")), ir,
                             first, B.fmt_t(s),
                             B.fmt_t(s / T) if s else "-",
                             B.fmt_r(B.ratio(s, hand)) if tool != "hand" else "1.00x",
                             B.fmt_r(B.ratio(s, jscan)),
                             B.fmt_mb(r.get("peak_bytes")),
                             "ref" if tool == "hand" else ("-" if err is None else f"{err:.0e}"),
                             "-" if r.get("err_vs_unrolled") is None else f"{r['err_vs_unrolled']:.0e}"])
    return B.table(["workload", "T", "variant", "trace", "IR eqns (top / all)", "first call (CPU)",
                    "steady / grad", "per step", "vs hand", "vs JAX scan", "peak mem",
                    "err vs hand", "err vs unrolled"], rows)


def summary(ws, Ts, res):
    """One row per workload and T: jitgrad's loop against its peers."""
    rows = []
    for w in ws:
        for T in Ts:
            get = lambda tool, k: res.get((w.key, T, tool), {}).get(k)
            s = get("jg_loop", "steady_s")
            if s is None and get("hand", "steady_s") is None:
                continue
            per = lambda tool: B.fmt_t(get(tool, "steady_s") / T) if get(tool, "steady_s") else "-"
            un = res.get((w.key, T, "jg_unrolled"))
            un = "-" if un is None else (un.get("error") or
                                         f"{B.fmt_t(un.get('first_cpu_s'))} CPU, {per('jg_unrolled')}/step"
                                         + (" (compile failed: interpreted)" if un.get("interpreted") else ""))
            rows.append([w.key, f"{T:,}", per("jg_loop"), per("hand"), per("jax_scan"), per("torch"),
                         B.fmt_r(B.ratio(s, get("hand", "steady_s"))),
                         B.fmt_r(B.ratio(s, get("jax_scan", "steady_s"))),
                         B.fmt_t(get("jg_loop", "first_cpu_s")), B.fmt_t(get("jax_scan", "first_cpu_s")),
                         "-" if get("jg_loop", "ir_total") is None else str(get("jg_loop", "ir_total")),
                         B.fmt_mb(get("jg_loop", "peak_bytes")), B.fmt_mb(get("hand", "peak_bytes")), un])
    return B.table(["workload", "T", "jitgrad loop /step", "hand /step", "JAX scan /step",
                    "torch /step", "loop/hand", "loop/JAX", "loop first call (CPU)",
                    "JAX first call (CPU)", "loop IR eqns", "loop peak mem", "hand peak mem",
                    "jitgrad unrolled"], rows)


def targets(ws, Ts, res):
    """The issue's targets for jitgrad's loops, as verdicts (True = met)."""
    out = []

    def add(name, ok, detail):
        out.append({"target": name, "met": bool(ok), "detail": detail})

    for w in ws:
        got = {T: res.get((w.key, T, "jg_loop"), {}) for T in Ts}
        got = {T: r for T, r in got.items() if "steady_s" in r}
        for T, r in got.items():
            h = res.get((w.key, T, "hand"), {}).get("steady_s")
            j = res.get((w.key, T, "jax_scan"), {}).get("steady_s")
            if h:
                add(f"{w.key} T={T}: steady <= 1.5x hand Numba", r["steady_s"] <= 1.5 * h,
                    f"{r['steady_s'] / h:.2f}x")
            if j:
                add(f"{w.key} T={T}: steady <= JAX scan", r["steady_s"] <= j, f"{r['steady_s'] / j:.2f}x")
            add(f"{w.key} T={T}: first call < 3 s CPU", r["first_cpu_s"] < 3.0,
                f"{B.fmt_t(r['first_cpu_s'])} CPU ({B.fmt_t(r['first_s'])} wall)")
            need = (T + 1) * _carry_bytes(w)
            if r.get("peak_bytes") is not None:
                add(f"{w.key} T={T}: peak memory <= 1.2x stored carries ({B.fmt_mb(need)}) + 1 MB",
                    r["peak_bytes"] <= 1.2 * need + 2 ** 20, B.fmt_mb(r["peak_bytes"]))
        if len(got) >= 2:
            lo, hi = min(got), max(got)
            f = [got[T]["first_cpu_s"] for T in (lo, hi)]
            add(f"{w.key}: first call (CPU) T={hi:,} within 1.5x of T={lo:,}", f[1] <= 1.5 * f[0],
                f"{B.fmt_t(f[0])} -> {B.fmt_t(f[1])}")
            sz = [got[T].get("ir_total") for T in (lo, hi)]
            if None not in sz:
                add(f"{w.key}: IR size flat in T (10%)", sz[1] <= 1.1 * sz[0], f"{sz[0]} -> {sz[1]} equations")
            tr = [got[T].get("trace_s") for T in (lo, hi)]
            if None not in tr:
                add(f"{w.key}: trace time flat in T (10%)", tr[1] <= 1.1 * tr[0],
                    f"{B.fmt_t(tr[0])} -> {B.fmt_t(tr[1])}")
        un = res.get((w.key, 100, "jg_unrolled"))
        if un is not None:
            add(f"{w.key}: unrolled T=100 reaches native code", "steady_s" in un and not un.get("interpreted"),
                un.get("error") or f"first call {B.fmt_t(un['first_s'])}")
        errs = [r.get("err_vs_unrolled") for (k, _, t), r in res.items() if k == w.key and t == "jg_loop"]
        errs = [e for e in errs if e is not None]
        if errs:
            add(f"{w.key}: loop gradient = unrolled gradient to 1e-12", max(errs) <= 1e-12,
                f"max rel err {max(errs):.1e}")
    return out


FOOTNOTE = """\
Targets (issue 11), for jitgrad's loops: steady time per step within 1.5x of
the hand-written Numba loop and no slower than JAX's scan; first compiled call
under 3 s and within 1.5x from T = 10 to T = 10,000; IR size and trace time
flat in T (within 10%); reverse-mode memory at most 1.2x the residual bytes it
must keep (one carry per step: what jitgrad's method keeps; the heat
equation's linear step needs none, and the hand-written gradient keeps
none); gradients equal to the unrolled version's to
1e-12.  Unrolled: native code at T = 100.

Columns: *trace* is `jitgrad.make_ir(grad(f))(*args)` (tracing, transforms and
clean-up passes; best of 3) or `jax.make_jaxpr(jax.grad(f))`; *IR eqns* counts
the top-level equations and all equations including loop bodies; *first call*
is the wall clock (and CPU time) of `grad(f)(*args)` in a fresh process with
an empty `JITGRAD_CACHE_DIR` (`compile="always"`; JAX: `jit(grad)` compile and
run; hand: Numba's compile); jitgrad unrolled traces once before its first
call, so that its IR is reported even when its compile is stopped.  *steady*
is the median CPU time per gradient over timed blocks after warm-up (CPU time,
not wall clock: on a shared machine wall clock counts other processes' time
slices; every peer runs on one thread and one CPU), *per step* = steady / T.
The first-call targets use CPU time for the same reason.  *peak mem* is the
RSS high-water mark of one warm call above the RSS before it; *err* is the max
relative error (scaled by the leaf's largest entry, or by 1e-12 of the whole
gradient's largest entry when the leaf is smaller: a leaf that small is
rounding) of every gradient leaf against the hand-written gradient and, for
jitgrad's loop, against jitgrad unrolled.  A gradient that differs by more
than 1e-10 is not timed.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T = 10 and 100, shorter timing")
    ap.add_argument("--only", help="comma-separated workloads (rk4, rnn, heat, lstm)")
    ap.add_argument("--T", help="comma-separated trip counts (default 10,100,1000,10000)")
    ap.add_argument("--tools", help="comma-separated variants: " + ",".join(TOOLS))
    ap.add_argument("--unrolled-max-T", type=int, default=100, help="largest T for jitgrad unrolled")
    ap.add_argument("--jax-unrolled-max-T", type=int, default=100, help="largest T for JAX unrolled")
    ap.add_argument("--torch-max-T", type=int, default=1000,
                    help="largest T for torch eager (a gradient at T = 10,000 takes seconds)")
    ap.add_argument("--unrolled-cpu", type=float, default=45.0,
                    help="CPU seconds (RLIMIT_CPU) before an unrolled variant's process is stopped "
                         "(and 6x that of wall clock)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds for any other process")
    ap.add_argument("--mem-limit-gb", type=float, default=4.0,
                    help="RSS (and address-space) limit of the unrolled variants' processes")
    ap.add_argument("--threads", type=int, default=1, help="threads per peer (see bench.py)")
    ap.add_argument("--out", default=B.RESULTS)
    ap.add_argument("--log", help="append each measurement to this file as it finishes (JSON lines)")
    ap.add_argument("--report-from", nargs="+", metavar="LOG",
                    help="write the report from --log files of earlier runs, measuring nothing")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    a.min_block, a.repeats, a.budget = (0.02, 5, 1.0) if a.quick else (0.05, 7, 1.5)
    ws = [L.BY_KEY[k] for k in a.only.split(",")] if a.only else L.WORKLOADS
    Ts = [int(t) for t in a.T.split(",")] if a.T else ([10, 100] if a.quick else list(TS))
    tools = a.tools.split(",") if a.tools else TOOLS
    notes = []
    t0 = time.perf_counter()
    if a.report_from:
        res = read_logs(a.report_from)
        total = sum(r.get("wall_s", 0.0) for r in res.values())
    else:
        tmp = tempfile.mkdtemp(prefix="jitgrad-loops-")
        try:
            res = measure(ws, Ts, tools, a, tmp, notes)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        total = time.perf_counter() - t0
    notes += result_notes(res)
    env = B.environment()
    run = (f"report from {len(a.report_from)} logs" if a.report_from
           else f"{'quick' if a.quick else 'full'} run")
    head = (f"jitgrad loop benchmark ({run}, {env['date']}, "
            f"{env.get('cpu', '?')} x{env['cpus']}, Python {env['python']}, NumPy {env['numpy']}, "
            f"Numba {env['numba']}, JAX {env.get('jax', 'n/a')}, torch {env.get('torch', 'n/a')}, "
            f"{a.threads or 'default'} thread(s) per peer, commit {env.get('git_commit', '?')}; "
            f"children's wall clock {total:.0f} s; unrolled jitgrad up to T = {a.unrolled_max_T} with "
            f"{a.unrolled_cpu:.0f} s CPU and {a.mem_limit_gb:g} GB limits, JAX unrolled up to "
            f"T = {a.jax_unrolled_max_T:,})\n")
    verdicts = targets(ws, Ts, res)
    text = (head + "\n### jitgrad's loops against the peers\n\n" + summary(ws, Ts, res)
            + "\n\n### Every variant\n\n" + report(ws, Ts, tools, res) + "\n\n" + FOOTNOTE
            + "\n### Targets\n\n"
            + "\n".join(f"- {'MET   ' if v['met'] else 'MISSED'} {v['target']}: {v['detail']}"
                        for v in verdicts) + "\n")
    if notes:
        text += "\n### Notes\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "loops.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "loops.json"), "w") as f:
        json.dump({"environment": env, "total_wall_s": total, "notes": notes, "targets": verdicts,
                   "results": [{"workload": k, "T": T, "tool": t, **r} for (k, T, t), r in res.items()]},
                  f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
