"""Where a cold compile goes: one first compiled call, split by stage.

    python perf/compile_profile.py loop rk4 [T]     # a workload of perf/loops_workloads.py
    python perf/compile_profile.py perf mlp         # a workload of perf/workloads.py
    FUNCS=20 python perf/compile_profile.py ...     # also the 20 costliest compiled functions

Run from the repository's root.  The call compiles into a fresh cache folder
(``compile="always"``); the kernels Numba keeps beside jitgrad's source
(vecmath, specialmath, libcalls) are cold only if their ``__pycache__`` is
deleted first.  Times are CPU seconds (``time.process_time``), exclusive:
each Numba compiler pass (Numba's event API, ``numba:run_pass``), LLVM's
module and function passes, its machine-code emission (``finalize``), and
the rest of the call (tracing, transforms, jitgrad's planning and emission,
Numba's dispatcher and cache files).  Passes are also summed per compiled
function family: jitgrad's generated functions, jitgrad's kernels, and
Numba's own library code (its implementations of np.empty, np.dot, ...,
compiled in every process) with the kernels when they are not cached.
"""
import collections
import os
import shutil
import sys
import tempfile
import time

sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "perf")]
_t0 = time.process_time()
import jitgrad  # noqa: E402
IMPORT_CPU = time.process_time() - _t0

from numba.core import event as ev  # noqa: E402
import llvmlite.binding as llb  # noqa: E402
from numba.core import codegen  # noqa: E402

excl = collections.Counter()
_stack = []     # [label, start, time of children]


def _push(label):
    _stack.append([label, time.process_time(), 0.0])


def _pop():
    label, start, child = _stack.pop()
    total = time.process_time() - start
    excl[label] += total - child
    if _stack:
        _stack[-1][2] += total


class _Passes(ev.Listener):
    def on_start(self, event):
        _push("pass:" + event.data["name"])

    def on_end(self, event):
        _pop()


def _timed(obj, attr, label):
    f = getattr(obj, attr)

    def timed(*a, **k):
        _push(label)
        try:
            return f(*a, **k)
        finally:
            _pop()
    setattr(obj, attr, timed)


ev.register("numba:run_pass", _Passes())
_timed(llb.ModulePassManager, "run", "llvm: module passes")
_timed(llb.FunctionPassManager, "run", "llvm: function passes")
_timed(llb, "parse_assembly", "llvm: parse IR")
_timed(codegen.JITCodeLibrary, "_finalize_specific", "llvm: machine code (finalize)")


def _family(fn):
    """Which code a compiled function is: jitgrad's generated functions are
    named jg_*, the kernels by their module's names, the rest is Numba's."""
    if fn.startswith("jg_"):
        return "jitgrad generated"
    return "numba library (and kernels)"


def main():
    mode, key = sys.argv[1], sys.argv[2]
    if mode == "loop":
        import loops_workloads as LW
        w = LW.BY_KEY[key]
        T = int(sys.argv[3]) if len(sys.argv) > 3 else 10
        args = LW.make_inputs(w, T)
        g = jitgrad.grad(w.loop(T), argnums=LW.argnums(w))
        call = lambda: g(*args)        # noqa: E731
    else:
        import workloads as W
        w = W.BY_KEY[key]
        call = W.make_jitgrad(w, W.make_inputs(w))
    cache = tempfile.mkdtemp(prefix="jitgrad-profile-")
    try:
        with jitgrad.config(compile="always", cache_dir=cache):
            _push("rest of the call (trace, transforms, jitgrad, dispatcher)")
            t0 = time.process_time()
            call()
            total = time.process_time() - t0
            _pop()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"{mode} {key}: import jitgrad {IMPORT_CPU:.2f} s CPU; first compiled call {total:.2f} s CPU")
    stages, families, functions = collections.Counter(), collections.Counter(), collections.Counter()
    for label, t in excl.items():
        if label.startswith("pass:"):
            name, _, fn = label[5:].partition(" [")
            fn = fn.rstrip("]")
            stages["numba pass: " + name] += t
            families[_family(fn)] += t
            functions[fn] += t
        else:
            stages[label] += t
    for label, t in stages.most_common(int(os.environ.get("TOP", 16))):
        print(f"  {t:7.3f} s  {label}")
    print("  numba passes by function family: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in families.most_common()))
    for fn, t in functions.most_common(int(os.environ.get("FUNCS", 0))):
        print(f"      {t:7.3f} s  {fn}")


if __name__ == "__main__":
    main()
