"""The compile worker process: "auto" mode's background compiles run in a
helper process and the caller loads the result from the disk cache.  Each test
uses array shapes of its own, so that no compile is served from the process's
memory of an equal program compiled before."""
import dataclasses
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import jitgrad
from helpers import start_behind
import procs_helpers as H
from jitgrad.backend import compile as native
from jitgrad.backend import compile_worker, emit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exe(g, *args):
    """The executable of ``g`` at the signature of ``args`` (a transform of a
    module-level function is one object for the process, with every test's
    signatures)."""
    return g._staged.cache[g._staged.signature(args)[3]].exe


def _compile_in_background(g, *args, **settings):
    """Call ``g`` in "auto" mode until its compile is queued, and wait for it;
    returns the first answer (the interpreter's) and how this process got
    its native code."""
    before = dict(native.counts)
    with jitgrad.config(compile="auto", hot_seconds=0, **settings):
        first = g(*args)
        g(*args)
        jitgrad.wait_for_compiles()
    got = {k: native.counts[k] - before.get(k, 0) for k in ("compiled", "loaded", "reused")}
    return first, got


def test_results_through_the_worker_equal_the_in_process_results(tmp_path):
    x = np.linspace(-1.0, 2.0, 7)
    g = jitgrad.grad(H.f)
    first, got = _compile_in_background(g, x, cache_dir=str(tmp_path / "w"))
    assert got == {"compiled": 0, "loaded": 1, "reused": 0}, got
    assert compile_worker.worker_pid() is not None
    assert _exe(g, x).fn is not None
    through_worker = g(x)
    with jitgrad.config(compile="never"):
        interpreted = jitgrad.grad(lambda v: H.f(v))(x)
    np.testing.assert_allclose(through_worker, first, rtol=1e-14)
    np.testing.assert_allclose(through_worker, interpreted, rtol=1e-14)
    # the same program compiled in this process, in another cache folder
    native._compiled.clear()
    with jitgrad.config(compile="always", cache_dir=str(tmp_path / "p")):
        in_process = jitgrad.grad(lambda v: H.f(v))(x)
    assert through_worker.dtype == in_process.dtype == np.float64
    np.testing.assert_array_equal(through_worker, in_process)


def test_float32_scalars_and_several_outputs_through_the_worker(tmp_path):
    def f(a, b):
        return a * np.sin(b) + b ** 2
    g = jitgrad.value_and_grad(f, argnums=(0, 1))
    a, b = np.float32(1.5), np.float32(-0.25)
    first, got = _compile_in_background(g, a, b, cache_dir=str(tmp_path))
    assert got["loaded"] == 1 and got["compiled"] == 0, got
    value, (da, db) = g(a, b)
    assert type(value) is type(da) is type(db) is np.float32
    np.testing.assert_allclose([value, da, db], [first[0], *first[1]], rtol=1e-6)


def test_the_switch_compiles_in_this_process(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(compile_worker, "compile_in_worker", lambda job: asked.append(job))
    x = np.linspace(0.0, 1.0, 9)
    g = jitgrad.grad(H.f)
    first, got = _compile_in_background(g, x, cache_dir=str(tmp_path), compile_worker=False)
    assert not asked
    assert got == {"compiled": 1, "loaded": 0, "reused": 0}, got
    np.testing.assert_allclose(g(x), first, rtol=1e-14)


def test_the_switch_is_checked_and_read_from_the_environment():
    with pytest.raises(ValueError, match="compile_worker must be True or False"):
        jitgrad.config(compile_worker="yes")
    code = "import jitgrad; print(jitgrad.config.compile_worker)"
    for value, want in (("0", "False"), ("1", "True"), ("", "True")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "JITGRAD_COMPILE_WORKER": value})
        assert out.stdout.strip() == want, out.stderr
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "JITGRAD_COMPILE_WORKER": "maybe"})
    assert out.returncode != 0 and "JITGRAD_COMPILE_WORKER must be 0 or 1" in out.stderr


def test_calls_are_answered_while_the_worker_compiles(tmp_path, monkeypatch):
    # the job is held back until the caller has been answered many times
    release = threading.Event()
    send = compile_worker.send

    def held_send(stream, job):
        release.wait(60)
        send(stream, job)
    monkeypatch.setattr(compile_worker, "send", held_send)
    x = np.linspace(-2.0, 2.0, 11)
    g = jitgrad.grad(H.f)
    want = jitgrad.grad(lambda v: H.f(v))(x)
    with jitgrad.config(compile="auto", hot_seconds=0, cache_dir=str(tmp_path)):
        for _ in range(20):
            np.testing.assert_allclose(g(x), want, rtol=1e-14)
        assert _exe(g, x).fn is None          # still compiling
        release.set()
        jitgrad.wait_for_compiles()
    assert _exe(g, x).fn is not None
    np.testing.assert_allclose(g(x), want, rtol=1e-14)


def test_a_worker_killed_during_a_compile_falls_back_with_a_clear_message(tmp_path, monkeypatch):
    send = compile_worker.send

    def send_then_kill(stream, job):
        send(stream, job)
        os.kill(compile_worker.worker_pid(), signal.SIGKILL)
    monkeypatch.setattr(compile_worker, "send", send_then_kill)
    x = np.linspace(-1.0, 1.0, 13)
    g = jitgrad.grad(H.f)
    with pytest.warns(RuntimeWarning, match=r"could not compile grad_f \(WorkerDied: the compile "
                      r"worker process was killed by SIGKILL \(out of memory\?\)\); it will keep "
                      "running on the NumPy interpreter"):
        first, _ = _compile_in_background(g, x, cache_dir=str(tmp_path))
    exe = _exe(g, x)
    assert exe.fn is None and exe.error is not None
    np.testing.assert_allclose(g(x), first, rtol=1e-14)          # the interpreter answers
    # the next compile starts a new worker
    monkeypatch.setattr(compile_worker, "send", send)
    g2 = jitgrad.grad(H.f)
    y = np.linspace(-1.0, 1.0, 14)
    _, got = _compile_in_background(g2, y, cache_dir=str(tmp_path))
    assert got["loaded"] == 1, got


def _with_an_undefined_name(generate):
    """``emit.generate`` whose entry function calls a name that does not
    exist: the module imports, Numba's type inference fails."""
    def bad(*args, **kwargs):
        gen = generate(*args, **kwargs)
        head, sep, tail = gen.source.rpartition("\n    return (")
        return dataclasses.replace(gen, source=head + "\n    jg_undefined_for_test()" + sep + tail)
    return bad


@pytest.mark.parametrize("worker", [True, False])
def test_a_numba_error_gives_the_same_message_in_the_worker_and_in_process(tmp_path, monkeypatch,
                                                                          worker):
    monkeypatch.setattr(emit, "generate", _with_an_undefined_name(emit.generate))
    x = np.linspace(-1.0, 1.0, 15 + worker)
    g = jitgrad.grad(H.f)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        first, _ = _compile_in_background(g, x, cache_dir=str(tmp_path), compile_worker=worker)
    messages = [str(w.message) for w in ws if "could not compile" in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in ws]
    assert messages[0].startswith("jitgrad could not compile grad_f (TypingError: ")
    assert "jg_undefined_for_test" in messages[0]
    assert messages[0].endswith("it will keep running on the NumPy interpreter")
    assert "Traceback" not in messages[0]
    np.testing.assert_allclose(g(x), first, rtol=1e-14)


def _child_compiles_in_auto_mode(n, cache_dir):
    from jitgrad.backend import compile_worker as cw
    x = np.linspace(0.0, 1.0, n)
    g = jitgrad.grad(H.f)
    with jitgrad.config(compile="auto", hot_seconds=0, cache_dir=cache_dir):
        g(x)
        g(x)
        jitgrad.wait_for_compiles()
    return cw.worker_pid(), g(x), _exe(g, x).fn is not None


def test_a_forked_child_starts_its_own_worker(tmp_path):
    # the parent's worker runs when the child is forked
    x = np.linspace(0.0, 1.0, 17)
    _compile_in_background(jitgrad.grad(H.f), x, cache_dir=str(tmp_path))
    parent_worker = compile_worker.worker_pid()
    assert parent_worker is not None
    with mp.get_context("fork").Pool(1) as pool:
        child_worker, got, compiled = pool.apply(_child_compiles_in_auto_mode, (18, str(tmp_path)))
    assert compiled and child_worker not in (None, parent_worker)
    np.testing.assert_allclose(got, jitgrad.grad(lambda v: H.f(v))(np.linspace(0.0, 1.0, 18)),
                               rtol=1e-14)
    # the parent's worker still serves the parent
    assert compile_worker.worker_pid() == parent_worker
    _, counts = _compile_in_background(jitgrad.grad(H.f), np.linspace(0.0, 1.0, 19),
                                       cache_dir=str(tmp_path))
    assert counts["loaded"] == 1 and compile_worker.worker_pid() == parent_worker


def test_threads_asking_at_once(tmp_path):
    results, errors = {}, []

    def work(n):
        try:
            x = np.linspace(-1.0, 1.0, n)
            g = jitgrad.grad(H.f)
            # a signature joins a queue of w others after hot_calls * (1 + w) calls:
            # with hot_calls=1, 5 calls are enough for each of the 3 signatures
            with jitgrad.config(compile="auto", hot_seconds=0, hot_calls=1, cache_dir=str(tmp_path)):
                for _ in range(5):
                    results[n] = g(x)
        except Exception as exc:      # pragma: no cover (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(n,)) for n in (21, 22, 23)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jitgrad.wait_for_compiles()
    assert not errors
    for n, r in results.items():
        x = np.linspace(-1.0, 1.0, n)
        g = jitgrad.grad(H.f)
        assert _exe(g, x).fn is not None
        np.testing.assert_allclose(g(x), r, rtol=1e-14)


_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, jitgrad
    sys.path.insert(0, "tests")
    import procs_helpers as H
    from jitgrad.backend import compile_worker
    jitgrad.config.compile, jitgrad.config.hot_seconds = "auto", 0
    g = jitgrad.grad(H.f)
    g(np.ones(24)); g(np.ones(24))
    jitgrad.wait_for_compiles()
    g(np.ones(25)); g(np.ones(25))        # queued, perhaps compiling at exit
    print(compile_worker.worker_pid(), flush=True)
    if sys.argv[1] == "kill":
        import os, signal, time
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def _gone(pid, wait=30.0):
    """Whether process ``pid`` has ended within ``wait`` seconds (a zombie
    left to a parent other than this process counts as ended)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_worker_outlives_its_parent(tmp_path, how):
    p = subprocess.run([sys.executable, "-c", _SCRIPT, how], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "JITGRAD_CACHE_DIR": str(tmp_path)},
                       timeout=300)
    pid = int(p.stdout.split()[0])
    if how == "exit":
        assert p.returncode == 0, p.stderr
        # reaped by its parent at exit: no such process, not even a zombie
        assert not os.path.exists(f"/proc/{pid}")
    else:
        assert p.returncode == -signal.SIGKILL
        assert _gone(pid)


def test_scipy_linalg_imports_as_usual_after_native_code_ran():
    # the Cython BLAS module is loaded by itself for Numba's matrix products
    code = textwrap.dedent("""
        import sys, numpy as np, jitgrad
        jitgrad.config.compile = "always"
        print(jitgrad.jit(lambda a, b: a @ b)(np.eye(3), np.ones((3, 2))).sum())
        print("scipy.linalg" in sys.modules)
        import scipy.linalg
        print(scipy.linalg.solve(np.eye(2) * 2.0, np.ones(2)).tolist())
        print(scipy.linalg.cython_blas is sys.modules["scipy.linalg.cython_blas"])
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:4] == ["6.0", "False", "[0.5, 0.5]", "True"], p.stdout


def test_a_worker_that_cannot_start_means_compiling_in_this_process(tmp_path, monkeypatch):
    compile_worker.shutdown()
    monkeypatch.setattr(compile_worker, "_SERVE", "import sys; sys.exit(3)")
    monkeypatch.setattr(compile_worker, "unavailable", None)
    monkeypatch.setattr(native, "_warned_no_worker", [])
    x = np.linspace(-1.0, 1.0, 26)
    g = jitgrad.grad(H.f)
    with pytest.warns(RuntimeWarning, match="jitgrad compiles in this process: the compile worker "
                      "process exited with status 3 while starting"):
        first, got = _compile_in_background(g, x, cache_dir=str(tmp_path))
    assert got["compiled"] == 1 and _exe(g, x).fn is not None
    assert compile_worker.worker_pid() is None
    np.testing.assert_allclose(g(x), first, rtol=1e-14)
    # from then on, no start is tried
    y = np.linspace(-1.0, 1.0, 27)
    _, got = _compile_in_background(g, y, cache_dir=str(tmp_path))
    assert got["compiled"] == 1 and compile_worker.worker_pid() is None


# -- the scalar fast path (executable._entry_point) against the plain path

@pytest.mark.parametrize("make", [float, int, np.float32, np.float64, np.int64, np.int32, bool,
                                  lambda v: np.asarray(v, np.float32), lambda v: np.asarray(float(v))],
                         ids=["float", "int", "f32", "f64", "i64", "i32", "bool", "0d_f32", "0d_f64"])
def test_scalar_entry_point_agrees_with_the_interpreter(make):
    f = jitgrad.value_and_grad(lambda x, y: x * np.sin(y) + y, argnums=0) if make not in (
        int, np.int64, np.int32, bool) else jitgrad.jit(lambda x, y: x * 3 + y)
    args = (make(2), make(1))
    want = f(*args)
    with jitgrad.config(compile="always"):
        for _ in range(3):                      # first call compiles; later ones take the fast path
            got = f(*args)
            for g, w in zip(jitgrad.tree.leaves(got), jitgrad.tree.leaves(want)):
                assert np.asarray(g).dtype == np.asarray(w).dtype
                np.testing.assert_allclose(g, w, rtol=1e-6)


# -- one build per signature

def _held_build(staged, entered, release):
    """Make ``staged``'s build wait for ``release`` once it has started
    (each start is appended to ``entered``)."""
    build = staged.build

    def held(*args):
        entered.append(threading.get_ident())
        release.wait(60)
        return build(*args)
    staged.build = held


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_threads_missing_one_signature_at_once_build_it_once(mode, monkeypatch):
    # a compile that fails warns once, not once per thread that missed the cache
    from jitgrad.backend import executable
    monkeypatch.setattr(executable, "compile_ir", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("no compiler today")))
    g = jitgrad.grad(lambda v: np.sum(np.cos(v) * 1.8125))
    x = np.linspace(0.0, 1.0, 6)
    entered, release, results = [], threading.Event(), []
    _held_build(g._staged, entered, release)

    def call():
        with jitgrad.config(compile=mode, hot_seconds=0, hot_calls=1, compile_worker=False):
            results.append(g(x))
            results.append(g(x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = threading.Thread(target=call)
        first.start()
        while not entered:                   # the first thread is building
            time.sleep(0.001)
        others = [threading.Thread(target=call) for _ in range(3)]
        for t in others:
            t.start()
        time.sleep(0.2)                      # (without one build per signature, they build too)
        release.set()
        for t in [first, *others]:
            t.join()
        jitgrad.wait_for_compiles()
    assert len(entered) == 1, entered
    assert len(g._staged.cache) == 1 and not g._staged.building
    for r in results:
        np.testing.assert_allclose(r, -1.8125 * np.sin(x), rtol=1e-14)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "no compiler today" in messages[0], messages


def test_a_build_that_raises_lets_each_waiting_thread_raise_its_own_error():
    def f(v):
        raise ValueError("not today")
    g = jitgrad.grad(f)
    entered, release, errors = [], threading.Event(), []
    _held_build(g._staged, entered, release)

    def call():
        try:
            g(np.ones(3))
        except ValueError as exc:
            errors.append(str(exc))
    threads = [threading.Thread(target=call) for _ in range(3)]
    start_behind(threads, entered)
    time.sleep(0.1)
    assert len(entered) == 1
    release.set()
    for t in threads:
        t.join()
    assert errors == ["not today"] * 3 and len(entered) == 3
    assert not g._staged.cache and not g._staged.building


def test_a_build_that_calls_its_own_signature_does_not_wait_for_itself():
    calls = []

    def f(v):
        calls.append(1)
        return np.sum(v * v)
    g = jitgrad.grad(f)
    build = g._staged.build

    def reentrant(*args):
        if len(calls) == 0:
            calls.append(0)
            g(np.ones(2))              # the same signature, from inside its build
        return build(*args)
    g._staged.build = reentrant
    np.testing.assert_allclose(g(np.ones(2)), [2.0, 2.0])
    assert not g._staged.building


# -- the job goes to the worker before this process imports Numba

_VALUES = [np.zeros(3), np.zeros((2, 3), np.float32), np.zeros((2, 3), order="F"),
           np.zeros((4, 4))[::2, 1:], np.zeros((), np.int64), np.zeros(0, np.complex64),
           np.zeros((1, 1)), np.zeros((3, 2)).T, np.float64(1.5), np.float32(2.0), np.int32(3),
           np.bool_(True), np.complex128(1j), np.uint8(7)]


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("value", _VALUES + [_readonly(np.zeros((2, 2))), _readonly(np.zeros(5)[::2])],
                         ids=lambda v: f"{type(v).__name__}-{v.dtype}-{np.shape(v)}")
def test_a_signature_described_without_numba_gives_numbas_types(value):
    import numba
    from jitgrad.backend import numba_import
    spec = numba_import.arg_spec(value)
    assert spec is not None
    assert numba_import.types_of([spec]) == (numba.typeof(value),)
    assert pickle_roundtrip(spec) == spec          # (plain values: sent to the worker)


def pickle_roundtrip(x):
    import pickle
    return pickle.loads(pickle.dumps(x))


class _Sub(np.ndarray):
    pass


def test_other_values_are_not_described():
    from jitgrad.backend import numba_import
    for value in (1.0, 2, [1.0], np.zeros(2).view(_Sub), None):
        assert numba_import.arg_spec(value) is None


def test_a_module_in_the_disk_cache_loads_without_starting_a_worker(tmp_path, monkeypatch):
    x = np.linspace(-1.0, 1.0, 13)
    g = jitgrad.grad(lambda v: H.f(v) * 1.0625)
    _, got = _compile_in_background(g, x, cache_dir=str(tmp_path))
    assert got["loaded"] == 1
    native._compiled.clear()                 # a new process, as far as the cache goes

    def no_worker(job):
        raise AssertionError("a worker was asked")
    monkeypatch.setattr(compile_worker, "submit", no_worker)
    h = jitgrad.grad(lambda v: H.f(v) * 1.0625)
    first, got = _compile_in_background(h, x, cache_dir=str(tmp_path))
    assert got == {"compiled": 0, "loaded": 1, "reused": 0}, got
    np.testing.assert_array_equal(h(x), g(x))


_ORDER = textwrap.dedent("""
    import sys, numpy as np, jitgrad
    sys.path.insert(0, "tests")
    import procs_helpers as H
    from jitgrad.backend import compile_worker
    submit, seen = compile_worker.submit, []
    def watched(job):
        seen.append(("numba" in sys.modules, sorted(job)))
        return submit(job)
    compile_worker.submit = watched
    jitgrad.config.compile, jitgrad.config.hot_seconds = "auto", 0
    g = jitgrad.grad(H.f)
    g(np.ones(5)); g(np.ones(5))
    jitgrad.wait_for_compiles()
    from jitgrad.backend import compile as native
    print(seen, dict(native.counts))
""")


def test_the_job_goes_to_the_worker_before_this_process_imports_numba(tmp_path):
    p = subprocess.run([sys.executable, "-c", _ORDER], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "JITGRAD_CACHE_DIR": str(tmp_path)}, timeout=300)
    assert p.returncode == 0, p.stderr
    seen = "[(False, ['cache_dir', 'fn_name', 'modname', 'source', 'specs'])]"
    assert p.stdout.split("] ")[0] + "]" == seen, p.stdout
    assert "'loaded': 1" in p.stdout and "'compiled'" not in p.stdout, p.stdout


_GC = textwrap.dedent("""
    import gc, sys, jitgrad
    from jitgrad.backend import compile as native, numba_import
    version = numba_import.version()
    imported = "numba" in sys.modules
    runs = []
    gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(info["generation"]))
    if sys.argv[1] == "off":
        gc.disable()
    numba = native._numba()
    print(imported, version == numba.__version__,
          len(runs), gc.isenabled(), gc.get_count()[0] < 700, gc.get_freeze_count())
""")


@pytest.mark.parametrize("state", ["on", "off"])
def test_importing_numba_runs_no_collection_and_leaves_the_collector_as_found(state):
    # (each collection while Numba imports holds the GIL for tens of ms); and
    # Numba's version (part of the cache key) is known before it is imported
    p = subprocess.run([sys.executable, "-c", _GC, state], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True", "0", str(state == "on"), "True", "0"], p.stdout


def test_background_compiles_hand_the_gil_over_often_and_restore_the_interval(monkeypatch):
    seen = []
    from jitgrad.backend import executable
    real = executable.Executable.compile_in_background
    monkeypatch.setattr(executable.Executable, "compile_in_background",
                        lambda self: seen.append(sys.getswitchinterval()) or real(self))
    before = sys.getswitchinterval()
    g = jitgrad.grad(lambda v: np.sum(np.tanh(v) * 1.4375))
    _compile_in_background(g, np.linspace(0.0, 1.0, 5), compile_worker=False)
    assert seen == [pytest.approx(native.SWITCH_INTERVAL)]
    assert sys.getswitchinterval() == before
    # an interval set meanwhile is kept
    with native._short_switches():
        sys.setswitchinterval(0.002)
    assert sys.getswitchinterval() == pytest.approx(0.002)
    sys.setswitchinterval(before)
