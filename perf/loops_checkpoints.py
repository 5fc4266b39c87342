"""What each of ``scan``'s checkpoint policies costs: the gradient of the 1-d
heat equation (1,000 cells, ``loops_workloads.py``) at T steps, compiled.

    python perf/loops_checkpoints.py                  # T = 10,000 (about 2 minutes)
    python perf/loops_checkpoints.py --T 1000 --tracemalloc

For each policy, in a fresh process (``loops.run_child``): the first call, the
steady CPU time per step, the RSS high-water mark of one warm call above the
RSS before it (as ``perf/loops.py``), the carries the policy should keep
(``residuals``: the heat step is linear, so none; ``carries``: T; every k:
T/k + k; ``binomial(s)``: s) and the forward steps its reverse sweep runs.
With ``--tracemalloc`` the same gradient also runs on the interpreter under
``tracemalloc``, whose peak counts the NumPy arrays alive at once.

Writes perf/results/loops_checkpoints.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(PERF_DIR), PERF_DIR]

import bench as B  # noqa: E402  (pins threads before NumPy loads)
import numpy as np  # noqa: E402

import loops  # noqa: E402
import loops_workloads as L  # noqa: E402

POLICIES = ["residuals", "carries", "100", "binomial:10", "binomial:20"]


def _policy(name):
    import jitgrad
    if name.startswith("binomial:"):
        return jitgrad.binomial(int(name.split(":")[1]))
    return int(name) if name.isdigit() else name


def expected(name, T, linear):
    """(carries the policy keeps, forward steps of the primal pass and the
    reverse sweep's recomputation)."""
    from jitgrad.transforms.revolve import forward_steps
    if linear:                  # the transposed step reads no primal value
        return 0, T
    if name == "residuals":     # at least one array per step (here, one: 1 - 2 u)
        return T, T
    if name == "carries":
        return T, 2 * T          # the transposed step recomputes its step from the carry
    if name.isdigit():
        k = int(name)
        return T // k + k, 3 * T
    s = int(name.split(":")[1])
    return s, forward_steps(T, s) + 2 * T


REACTION = 0.01
WORKLOADS = {"heat": 0.0, "reaction": REACTION}
TITLES = {"heat": "heat (linear step)", "reaction": f"heat + {REACTION} u (1 - u)"}


def child(spec):
    import jitgrad
    T, name, rate = spec["T"], spec["policy"], WORKLOADS[spec["workload"]]
    (u0,) = L.make_inputs(L.BY_KEY["heat"], T)
    out = {}
    if spec.get("tracemalloc"):
        import tracemalloc
        g = jitgrad.grad(L.heat_scan(T, _policy(name), rate))
        with jitgrad.config(compile="never"):
            g(u0)                       # traced once, outside the measurement
            tracemalloc.start()
            g(u0)
            out["traced_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    jitgrad.config.compile = "always"
    g = jitgrad.grad(L.heat_scan(T, _policy(name), rate))
    call = lambda: g(u0)        # noqa: E731
    t0 = time.process_time()
    got = call()
    out["first_cpu_s"] = time.process_time() - t0
    # the reference: the hand-written gradient, or the default policy's
    ref = L.BY_KEY["heat"].hand((u0,), T)() if not rate else jitgrad.grad(L.heat_scan(T, "carries", rate))(u0)
    out["err_vs_hand"] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    n, _ = B.calibrate(call, 0.2)
    cpu = []
    for _ in range(5):
        c0 = time.process_time()
        for _ in range(n):
            call()
        cpu.append((time.process_time() - c0) / n)
    out["steady_s"] = sorted(cpu)[2]
    gc.collect()
    loops._fresh_heap()
    rss0 = B._status("VmRSS")
    if B._hwm_reset() and rss0 is not None:
        call()
        out["peak_bytes"] = B._status("VmHWM") - rss0
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=10000)
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--workloads", default="heat,reaction")
    ap.add_argument("--tracemalloc", action="store_true", help="also measure the interpreter under tracemalloc")
    ap.add_argument("--threads", type=int, default=1, help="threads per peer (see bench.py)")
    ap.add_argument("--out", default=B.RESULTS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    carry = L.HEAT_N * 8
    rows = []
    tmp = tempfile.mkdtemp(prefix="jitgrad-ckpt-")
    try:
        for wk in a.workloads.split(","):
            for name in a.policies.split(","):
                B.log(f"[{wk} T={a.T}] checkpoint={name}")
                cache = tempfile.mkdtemp(dir=tmp)
                r = loops.run_child({"T": a.T, "policy": name, "workload": wk, "tracemalloc": a.tracemalloc}, 900,
                                    None, cache, script=__file__)
                shutil.rmtree(cache, ignore_errors=True)
                keep, steps = expected(name, a.T, not WORKLOADS[wk])
                label = f"binomial({name.split(':')[1]})" if name.startswith("binomial") else \
                    (f"every {name}" if name.isdigit() else f'"{name}"')
                if "error" in r:
                    rows.append([TITLES[wk], label, r["error"]] + ["-"] * 7)
                    continue
                rows.append([TITLES[wk], label, B.fmt_t(r["first_cpu_s"]), B.fmt_t(r["steady_s"] / a.T),
                             B.fmt_mb(r.get("peak_bytes")), B.fmt_mb(r.get("traced_peak")),
                             f"{keep:,} ({B.fmt_mb(keep * carry)})", f"{steps:,}", f"{r['err_vs_hand']:.0e}"])
                B.log("  " + "  ".join(rows[-1][2:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    env = B.environment()
    text = (f"Gradient of the heat equation (1,000 cells), and of the same with a logistic reaction term, "
            f"at T = {a.T:,} with each of scan's checkpoint policies, compiled ({env['date']}, "
            f"{env.get('cpu', '?')}, commit {env.get('git_commit', '?')}, {a.threads} thread)\n\n"
            + B.table(["workload", "checkpoint", "first call (CPU)", "steady / step (CPU)", "peak RSS of a call",
                       "interpreter tracemalloc peak", "carries kept (bytes)", "forward steps",
                       "rel. err"], rows)
            + "\n\n*carries kept*: what the policy stores for the reverse sweep.  The heat step is linear, so "
              "its transposed step reads no primal value and every policy keeps nothing (the reverse sweep is a "
              "plain loop); the reaction term makes it read the carry.  *forward steps*: the steps evaluated "
              "forward, by the primal pass and by the reverse sweep (whose transposed step also recomputes "
              "its own step from the carry, for every policy but \"residuals\").  *rel. err*: against the "
              "hand-written gradient (heat) or the default policy's (reaction).  A carry is "
              f"{carry:,} bytes.  *peak RSS*: the high-water mark of one warm call above the RSS before "
              "it, so it counts the gradient's own arrays too (a few carries).\n")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "loops_checkpoints.md" if a.T == 10000 else f"loops_checkpoints_T{a.T}.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
