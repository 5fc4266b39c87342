"""Run HIPS autograd's NumPy test files on jitgrad through a shim.

    python perf/autograd_shim.py [--dir CACHE] [--out perf/results/autograd_shim.md] [-k EXPR]

Downloads autograd's source distribution with pip (into ``--dir``, default
``~/.cache/jitgrad-autograd``; nothing of autograd's is kept in this
repository), puts ``perf/agshim`` first on ``sys.path`` so that ``import
autograd`` finds the shim (``autograd.numpy`` is NumPy itself, the
differential operators and ``check_grads`` are jitgrad's: see
perf/agshim/autograd), runs pytest on the test files in a subprocess and
writes a report: passed and failed per file, real and complex cases apart,
and the failures grouped by the first line of their error.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tarfile
import time

VERSION = "1.9.1"
FILES = ("test_systematic.py", "test_numpy.py", "test_scalar_ops.py", "test_binary_ops.py")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def fetch(cache):
    """autograd's tests folder, from the sdist (downloaded once into ``cache``)."""
    tests = os.path.join(cache, f"autograd-{VERSION}", "tests")
    if os.path.isdir(tests):
        return tests
    os.makedirs(cache, exist_ok=True)
    if not glob.glob(os.path.join(cache, f"autograd-{VERSION}.tar.gz")):
        subprocess.run([sys.executable, "-m", "pip", "download", f"autograd=={VERSION}", "--no-deps",
                        "--no-binary", ":all:", "-d", cache], check=True)
    with tarfile.open(os.path.join(cache, f"autograd-{VERSION}.tar.gz")) as tar:
        tar.extractall(cache, filter="data")
    return tests


def run(tests, files, record, extra, compile_mode="never", root=ROOT):
    """pytest on ``files`` with the shim and the jitgrad of ``root`` on the
    path; one JSON line per test in ``record``."""
    if os.path.exists(record):
        os.remove(record)
    env = dict(os.environ, AGSHIM_RECORD=record, JITGRAD_COMPILE=compile_mode,
               PYTHONPATH=os.pathsep.join([os.path.join(HERE, "agshim"), root, tests]))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "agshim_plugin",
           "--rootdir", tests, "-o", "addopts=", "-o", "required_plugins=", "--tb=no", "-W", "ignore", *extra, *files]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=tests, env=env, capture_output=True, text=True)
    if not os.path.exists(record):
        sys.exit(f"pytest wrote no results:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with open(record) as fh:
        return [json.loads(line) for line in fh], time.time() - t0


def cause(line):
    """The group of an error line: numbers and quoted arrays blurred."""
    line = re.sub(r"array\(.*", "array(...)", line)
    line = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", line)
    return line[:160]


def summarize(rows, seconds):
    by_file = collections.OrderedDict((f, []) for f in FILES)
    for r in rows:
        by_file.setdefault(r["nodeid"].split("::")[0], []).append(r)
    out = [f"# autograd {VERSION}'s tests on jitgrad (perf/autograd_shim.py)", "",
           "`autograd.numpy` is NumPy itself; `check_grads` and `combo_check` check jitgrad's "
           "forward and reverse mode to the requested order (autograd's recursion, "
           "perf/agshim/autograd/test_util.py). A test's *real part* is every check whose "
           "arguments and outputs are real, plus any code outside the checks; its *complex "
           "part* the checks with a complex argument or output. A test passes when both do.",
           "", f"Run time {seconds:.0f} s.", "",
           "| file | tests | passed | real part passed | tests with complex cases | complex part passed |",
           "|---|---|---|---|---|---|"]
    tot = collections.Counter()
    real_fail, cplx_fail = collections.defaultdict(list), collections.defaultdict(list)
    for f, rs in by_file.items():
        c = collections.Counter()
        for r in rs:
            real_err = r["real_errors"] + ([r["other_error"]] if "other_error" in r else [])
            c["tests"] += 1
            c["passed"] += r["outcome"] == "passed"
            c["real"] += not real_err
            c["with_complex"] += r["complex_checks"] > 0
            c["complex_ok"] += r["complex_checks"] > 0 and not r["complex_errors"]
            name = r["nodeid"].replace(".py::", "::").replace("test_", "")
            if real_err:
                real_fail[cause(real_err[0])].append(name)
            if r["complex_errors"]:
                cplx_fail[cause(r["complex_errors"][0])].append(name)
        tot.update(c)
        out.append(f"| {f} | {c['tests']} | {c['passed']} | {c['real']} | {c['with_complex']} | "
                   f"{c['complex_ok']} |")
    pct = lambda a, b: f"{100.0 * a / max(b, 1):.1f}%"  # noqa: E731
    out += [f"| **all** | {tot['tests']} | {tot['passed']} ({pct(tot['passed'], tot['tests'])}) | "
            f"{tot['real']} ({pct(tot['real'], tot['tests'])}) | {tot['with_complex']} | "
            f"{tot['complex_ok']} ({pct(tot['complex_ok'], tot['with_complex'])}) |", ""]
    for title, groups in (("Real-number failures", real_fail), ("Complex-number failures", cplx_fail)):
        out += [f"## {title} by cause ({sum(map(len, groups.values()))} tests)", ""]
        for line, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            out.append(f"- {len(names)} × `{line}`: {', '.join(names)}")
        out.append("")
    return "\n".join(out), tot


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.path.expanduser("~/.cache/jitgrad-autograd"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "autograd_shim.md"))
    ap.add_argument("--compile", default="never", choices=("never", "auto", "always"),
                    help="jitgrad's tier (JITGRAD_COMPILE); the interpreter by default")
    ap.add_argument("--jitgrad", default=ROOT, help="the checkout whose jitgrad runs (this one)")
    ap.add_argument("-k", default=None, help="pytest -k expression (a subset; no report written)")
    ap.add_argument("files", nargs="*", default=list(FILES))
    args = ap.parse_args(argv)
    tests = fetch(args.dir)
    extra = ["-k", args.k] if args.k else []
    rows, seconds = run(tests, args.files, os.path.join(args.dir, "results.jsonl"), extra, args.compile,
                         os.path.abspath(args.jitgrad))
    text, tot = summarize(rows, seconds)
    if args.k or args.files != list(FILES) or os.path.abspath(args.jitgrad) != ROOT:
        print(text)
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    print(text.split("\n## ")[0])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
