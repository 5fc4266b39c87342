"""The hostile user: bad inputs, odd dtypes and layouts, threads, processes,
cache faults, resource growth and tape misuse.

Each family is a table; a new case is one line in it.  The generic tests
below the tables run every row:

- ``AGREE``: ``f(*args)`` must give NumPy's answer (value and dtype, or the
  same exception type) on the interpreter and on the compiled tier;
- ``FRESH``: a call whose results must not share memory with any array the
  user still holds (inputs, captured constants);
- ``RAISES``: a call that must raise the given exception, whose message must
  match the given pattern (names the problem, suggests the fix);
- ``EQUALS``: a call whose result must equal an expected value (NaN where
  NaN is right), compared with ``assert_allclose`` (``equal_nan``).

Families that need more than one call (threads, processes, caches, growth)
are tests of their own further down, each built on a small table too.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import jitgrad
from jitgrad import tree as tree_util

rs = np.random.default_rng(0)
W = rs.standard_normal(3)          # a captured constant


# ---------------------------------------------------------------------------
# AGREE: (id, f, args).  f is called through jitgrad.jit in both tiers and
# compared with plain NumPy.

AGREE = [
    ("sum_float", lambda x: np.sum(x * 2.0), (np.arange(4.0),)),
    # -- core

    # -- numerics

    # -- api

    # -- runtime
    ("big_endian_argument", lambda x: np.sum(x * 2.0), (np.arange(4.0).astype(">f8"),)),
    ("big_endian_argument_returned", lambda x: x, (np.arange(4.0).astype(">f8"),)),
    ("big_endian_constant", lambda x: x * np.arange(4.0).astype(">f8"), (np.ones(4),)),

    # -- tape
]


# ---------------------------------------------------------------------------
# FRESH: (id, call) where call() -> (results, [arrays the user still holds]).

def _grad_mul(y):
    g = jitgrad.grad(lambda a, b: np.sum(a * b))(np.ones(3), y)
    return g, [y]


FRESH = [
    ("grad_of_product_is_not_other_input", lambda: _grad_mul(np.arange(3.0))),
    # -- core

    # -- numerics

    # -- api

    # -- runtime

    # -- tape
]


# ---------------------------------------------------------------------------
# RAISES: (id, call, exception type, message pattern).

RAISES = [
    ("argnums_out_of_range", lambda: jitgrad.grad(lambda x: x * 2.0, argnums=3)(1.0),
     ValueError, "out of range"),
    # -- core

    # -- numerics

    # -- api

    # -- runtime
    ("config_compile_typo", lambda: jitgrad.config(compile="alwyas"),
     ValueError, r"compile must be one of 'auto', 'always', 'never', got 'alwyas'"),
    ("config_compile_typo_assigned", lambda: setattr(jitgrad.config, "compile", "alwyas"),
     ValueError, r"compile must be one of 'auto', 'always', 'never'"),
    ("config_hot_calls_string", lambda: jitgrad.config(hot_calls="2"),
     ValueError, r"hot_calls must be an integer >= 1, got '2'"),
    ("config_hot_calls_zero", lambda: setattr(jitgrad.config, "hot_calls", 0),
     ValueError, r"hot_calls must be an integer >= 1"),
    ("config_hot_calls_bool", lambda: jitgrad.config(hot_calls=True),
     ValueError, r"hot_calls must be an integer"),
    ("config_big_elements_float", lambda: jitgrad.config(big_elements=1e5),
     ValueError, r"big_elements must be an integer >= 0, got 100000.0"),
    ("config_big_elements_negative", lambda: setattr(jitgrad.config, "big_elements", -1),
     ValueError, r"big_elements must be an integer >= 0"),
    ("config_cache_dir_number", lambda: jitgrad.config(cache_dir=3),
     ValueError, r"cache_dir must be a folder path"),
    ("config_cache_dir_empty", lambda: jitgrad.config(cache_dir=""),
     ValueError, r"cache_dir must be a folder path"),
    ("config_unknown_setting", lambda: jitgrad.config(compil="always"),
     AttributeError, r"no setting 'compil'; the settings are compile, hot_calls"),
    ("config_unknown_setting_assigned", lambda: setattr(jitgrad.config, "hot_call", 3),
     AttributeError, r"no setting 'hot_call'"),

    # -- tape
]


# ---------------------------------------------------------------------------
# EQUALS: (id, call, expected).

EQUALS = [
    ("grad_square", lambda: jitgrad.grad(lambda x: x * x)(3.0), 6.0),
    # -- core

    # -- numerics

    # -- api

    # -- runtime
    ("config_numpy_integer_setting", lambda: _setting_inside("hot_calls", np.int64(5)), 5),
    ("config_unchanged_by_rejected_override", lambda: _hot_calls_after_rejected_override(), 2),

    # -- tape
]


# ---------------------------------------------------------------------------
# The generic tests.


def _numpy_outcome(f, args):
    try:
        with np.errstate(all="ignore"):
            return f(*args), None
    except Exception as exc:     # noqa: BLE001 - the exception type is the outcome
        return None, type(exc)


def _check_outcome(got_fn, want, want_exc, tier):
    if want_exc is not None:
        with pytest.raises(want_exc):
            got_fn()
        return
    got = got_fn()
    for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(want)[0]):
        assert np.asarray(g).dtype == np.asarray(w).dtype, f"{tier}: dtype"
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=tier)


@pytest.mark.parametrize("f, args", [r[1:] for r in AGREE], ids=[r[0] for r in AGREE])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_agrees_with_numpy(f, args, mode):
    want, want_exc = _numpy_outcome(f, args)
    with jitgrad.config(compile=mode):
        _check_outcome(lambda: jitgrad.jit(f)(*args), want, want_exc, mode)


def _leaves(x):
    return [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in tree_util.flatten(x)[0]]


@pytest.mark.parametrize("call", [r[1] for r in FRESH], ids=[r[0] for r in FRESH])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_results_are_fresh(call, mode):
    with jitgrad.config(compile=mode):
        for _ in range(2):              # the first call and a cached one
            results, held = call()
            held = held + [W]
            for r in _leaves(results):
                for h in held:
                    assert not np.shares_memory(r, h), "a result shares memory with an array the user holds"


@pytest.mark.parametrize("call, exc, pattern", [r[1:] for r in RAISES], ids=[r[0] for r in RAISES])
def test_raises_clearly(call, exc, pattern):
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("call, expected", [r[1:] for r in EQUALS], ids=[r[0] for r in EQUALS])
def test_equals(call, expected):
    got = call()
    for g, w in zip(tree_util.flatten(got)[0], tree_util.flatten(expected)[0]):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), rtol=1e-12, equal_nan=True)


# === core ===
# Tracing state is per thread.  The races are made likely, not left to luck:
# the interpreter switches threads every 10 µs, and every thread starts at a
# barrier.  Each case is (id, make(k) -> (function of thread k, its argument,
# its exact answer)); every thread checks its own answer, on a cold and a warm
# cache.

import sys
import threading

from jitgrad.core.errors import JitgradError


def _run_threads(n, work):
    """Run ``work(k)`` on ``n`` threads at once; re-raise the first failure."""
    errors, barrier = [], threading.Barrier(n)

    def body(k):
        try:
            barrier.wait()
            work(k)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]


_shared_grad = jitgrad.grad(lambda x: np.sum(np.sin(x) * x))


def _own_grad(k):
    c = float(k + 1)
    return jitgrad.grad(lambda x: np.sum(c * x * x)), np.arange(3.0) + k, 2 * c * (np.arange(3.0) + k)


def _shared_cold(k):
    x = np.linspace(0, 1, 2 + k)      # a new shape per thread: each traces
    return _shared_grad, x, np.cos(x) * x + np.sin(x)


def _nested(k):
    c = float(k + 1)
    f = jitgrad.grad(jitgrad.grad(lambda x: c * x ** 3))
    return f, 2.0, 6 * c * 2.0


def _jvp_thread(k):
    c = float(k + 1)
    f = lambda x: jitgrad.jvp(lambda y: c * np.sum(y * y), (x,), (np.ones_like(x),))[1]
    x = np.arange(4.0)
    return f, x, c * 2 * np.sum(x)


def _vmap_thread(k):
    c = float(k + 1)
    f = jitgrad.vmap(jitgrad.grad(lambda x: c * np.sum(x * x)))
    x = np.arange(6.0).reshape(2, 3) + k
    return f, x, 2 * c * x


def _custom(k):
    @jitgrad.custom_jvp
    def f(x):
        return np.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(x), np.cos(x) * t

    c = float(k + 1)
    return jitgrad.grad(lambda x: c * np.sum(f(x))), np.arange(3.0), c * np.cos(np.arange(3.0))


THREADS = [
    ("own_function_each", _own_grad),
    ("one_function_new_shapes", _shared_cold),
    ("grad_of_grad", _nested),
    ("jvp", _jvp_thread),
    ("vmap_of_grad", _vmap_thread),
    ("custom_jvp", _custom),
]


@pytest.mark.parametrize("make", [r[1] for r in THREADS], ids=[r[0] for r in THREADS])
def test_threads_trace_independently(make):
    def work(k):
        f, x, want = make(k)
        for _ in range(3):            # cold, then cached
            got = f(x)
            assert type(got) in (np.ndarray, np.float64), f"thread {k} got {type(got).__name__}"
            np.testing.assert_allclose(got, want, rtol=1e-13)
    _run_threads(6, work)


def test_warm_calls_while_another_thread_traces():
    warm = jitgrad.grad(lambda x: np.sum(x * x))
    x = np.arange(3.0)
    warm(x)
    stop = threading.Event()

    def work(k):
        if k == 0:                    # keeps tracing new functions
            for i in range(30):
                c = float(i)
                assert jitgrad.grad(lambda y: c * y * y)(1.0) == 2 * c
            stop.set()
        else:                         # calls the warm one meanwhile
            while not stop.is_set():
                np.testing.assert_array_equal(warm(x), 2 * x)
    _run_threads(3, work)


def test_background_compile_never_traces(monkeypatch):
    # In "auto" mode the compile runs on a thread of its own; a function with a
    # custom rule used to be inlined there, opening a trace the calling thread saw.
    opened_on = set()
    init = jitgrad.core.trace.Trace.__init__

    def recording_init(self):
        opened_on.add(threading.current_thread().name)
        init(self)
    monkeypatch.setattr(jitgrad.core.trace.Trace, "__init__", recording_init)

    @jitgrad.custom_jvp
    def g(x):
        return np.exp(x)

    @g.defjvp
    def g_jvp(primals, tangents):
        return np.exp(primals[0]), np.exp(primals[0]) * tangents[0]

    f = jitgrad.grad(lambda x: np.sum(g(x) * x))
    x = np.linspace(0, 1, 5)
    want = np.exp(x) * x + np.exp(x)
    with jitgrad.config(compile="auto"):
        for _ in range(20):
            others = jitgrad.grad(lambda y: np.sum(y ** 3))(x)   # traces while the compile runs
            np.testing.assert_allclose(others, 3 * x ** 2, rtol=1e-13)
            np.testing.assert_allclose(f(x), want, rtol=1e-13)
        jitgrad.wait_for_compiles()
        np.testing.assert_allclose(f(x), want, rtol=1e-13)
    assert opened_on == {threading.current_thread().name}


def test_traced_value_from_another_thread_is_refused():
    box, ready, done = [], threading.Event(), threading.Event()

    def other(x):
        box.append(x)
        ready.set()
        done.wait(5)
        return x * 2.0

    t = threading.Thread(target=lambda: jitgrad.jit(other)(np.ones(2)))
    t.start()
    try:
        ready.wait(5)
        with pytest.raises(JitgradError, match="another thread"):
            jitgrad.jit(lambda y: y + box[0])(np.ones(2))
    finally:
        done.set()
        t.join()


# === runtime ===
# Compiling, the parallel loops, threads and processes, the disk cache, the
# compile queue and what the caches keep alive.  Anything that could abort or
# hang the interpreter runs in a subprocess.

import gc                 # noqa: E402
import os                 # noqa: E402
import subprocess         # noqa: E402
import sys                # noqa: E402
import textwrap           # noqa: E402
import threading          # noqa: E402
import warnings           # noqa: E402
import weakref            # noqa: E402

from jitgrad.backend import executable as runtime  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(jitgrad.__file__)))
PARALLEL_N = 1 << 18       # the smallest size that takes the parallel path


def _setting_inside(name, value):
    with jitgrad.config(**{name: value}):
        got = getattr(jitgrad.config, name)
    assert type(got) is int
    return got


def _hot_calls_after_rejected_override():
    """An override with one bad setting changes none, not even its valid ones."""
    with pytest.raises(ValueError):
        with jitgrad.config(hot_calls=7, compile="alwyas"):
            pass
    return jitgrad.config.hot_calls


def _python(code, timeout=240, **env):
    """Run ``code`` in a fresh interpreter importing this jitgrad; returns the
    completed process (an abort or a hang cannot take pytest with it)."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def _ok(proc, *expected):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for line in expected:
        assert line in proc.stdout, f"{line!r} not in\n{proc.stdout}\n{proc.stderr}"


def sincos(x):
    return np.sum(np.sin(x) + np.cos(2 * x))


def sincos_grad_exact(x):
    return np.cos(x) - 2 * np.sin(2 * x)


# The parallel program every process test runs, and its check.
PARALLEL_SETUP = f"""
import os, sys, threading, warnings
import numpy as np
import jitgrad
warnings.simplefilter("error")
jitgrad.config.compile = "always"
x = np.linspace(-3, 3, {PARALLEL_N})
g = jitgrad.grad(lambda x: np.sum(np.exp(-x * x) * x))
want = np.exp(-x * x) * (1 - 2 * x * x)
def check():
    assert np.allclose(g(x), want, rtol=1e-13, atol=1e-13)
    return True
"""


@pytest.mark.parametrize("transform", ["jit", "grad"])
def test_parallel_sin_cos_loop_compiles(transform):
    x = np.linspace(-3, 3, PARALLEL_N)
    f = getattr(jitgrad, transform)(sincos)
    assert " in prange(" in jitgrad.source(f)(x), "not the parallel path"
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f(x)
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None
    want = sincos(x) if transform == "jit" else sincos_grad_exact(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_big_endian_arguments_answer_without_warnings():
    x = np.arange(4.0).astype(">f8")
    f = jitgrad.grad(lambda x: np.sum(x * x * 1.25))
    with jitgrad.config(compile="always"), warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(f(x), 2.5 * x)
        np.testing.assert_allclose(jitgrad.jit(lambda a: a * x)(np.ones(4)), x)


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# (id, the argument in another layout than the C-contiguous one compiled for)
LAYOUTS = [
    ("strided", np.linspace(0, 1, 24)[::2]),
    ("reversed", np.linspace(0, 1, 12)[::-1]),
    ("read_only", _read_only(np.linspace(0, 1, 12))),
    ("unaligned", np.frombuffer(b"\0" + np.linspace(0, 1, 12).tobytes(), offset=1)),
]


@pytest.mark.parametrize("x", [r[1] for r in LAYOUTS], ids=[r[0] for r in LAYOUTS])
def test_other_layouts_are_not_compiled_on_the_calling_thread(x):
    f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.1875))
    with jitgrad.config(compile="always"):
        f(np.linspace(0, 1, 12))
        got = f(x)
    np.testing.assert_allclose(got, 1.1875 * np.exp(x), rtol=1e-13)
    (entry,) = f._staged.cache.values()
    assert len(entry.exe.fn.signatures) == 1, "compiled again for the layout"


def test_compiled_code_releases_the_gil():
    assert "nogil=True" in jitgrad.source(jitgrad.grad(sincos))(np.ones(3))


def test_fork_after_a_parallel_kernel():
    proc = _python(PARALLEL_SETUP + textwrap.dedent("""
        check()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if check() else 1)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """))
    _ok(proc, "child exit 0")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_after_a_parallel_kernel(method, tmp_path):
    # spawn imports the main module in the children: a script file
    script = tmp_path / "pool_script.py"
    script.write_text(PARALLEL_SETUP + textwrap.dedent(f"""
        def work(i):
            return check()
        if __name__ == "__main__":
            import multiprocessing
            check()
            with multiprocessing.get_context("{method}").Pool(2) as pool:
                print("pool", pool.map(work, range(2)))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "PYTHONPATH": ROOT})
    _ok(proc, "pool [True, True]")


def test_threads_call_a_parallel_gradient_concurrently():
    proc = _python(PARALLEL_SETUP + textwrap.dedent("""
        check()
        sys.setswitchinterval(1e-5)
        errors = []
        def run():
            try:
                for _ in range(5):
                    check()
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("errors", errors)
    """), NUMBA_THREADING_LAYER="workqueue")
    _ok(proc, "errors []")


def test_threads_overlap_compiled_calls():
    # serial compiled calls from several threads at once, each with its own
    # arrays: every answer right (the calls run without the GIL)
    f = jitgrad.grad(lambda x: np.sum(np.exp(-x * x) * x))
    xs = [np.linspace(-1, 1, 64) + k for k in range(4)]
    want = [np.exp(-x * x) * (1 - 2 * x * x) for x in xs]
    with jitgrad.config(compile="always"):
        f(xs[0])
    results = [[] for _ in xs]

    def run(k):
        for _ in range(200):
            results[k].append(f(xs[k]))
    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, rs in enumerate(results):
        assert len(rs) == 200
        for r in rs:
            np.testing.assert_allclose(r, want[k], rtol=1e-13, atol=1e-15)


def test_fork_during_a_background_compile():
    # the child must not inherit a compile lock held by a thread it lacks
    proc = _python("""
        import os
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.big_elements = 0          # compile every signature at once
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.25 + np.tanh(x)))
        f(np.arange(3.0))                        # queued: compiling in the background
        pid = os.fork()
        if pid == 0:
            with jitgrad.config(compile="always"):
                g = jitgrad.grad(lambda x: np.sum(np.cos(x) * 1.75))
                ok = np.allclose(g(np.arange(3.0)), -1.75 * np.sin(np.arange(3.0)))
                jitgrad.wait_for_compiles()
            os._exit(0 if ok else 1)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """, timeout=120)
    _ok(proc, "child exit 0")


def test_exit_while_compiling_in_the_background():
    proc = _python("""
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.big_elements = 0
        for k in range(3):
            jitgrad.grad(lambda x: np.sum(np.exp(x) * (k + 0.5)))(np.arange(3.0))
        print("done")
    """)
    _ok(proc, "done")
    assert "Fatal" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_keyboard_interrupt_while_waiting_for_a_compile():
    # interrupted, wait_for_compiles still knows the compile, and waits for it
    proc = _python("""
        import os, signal, threading
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        jitgrad.config.big_elements = 0
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.375 + np.tanh(x)))
        f(np.arange(3.0))
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            jitgrad.wait_for_compiles()
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
        jitgrad.wait_for_compiles()
        (entry,) = f._staged.cache.values()
        print("compiled", entry.exe.fn is not None)
    """)
    _ok(proc, "compiled True")


def test_keyboard_interrupt_during_a_compile_on_the_calling_thread():
    # whatever the interrupt cuts short (at 50 ms, the import of Numba), the
    # next call compiles and is right
    proc = _python("""
        import os, signal, threading, warnings
        import numpy as np
        import jitgrad
        warnings.simplefilter("error")
        jitgrad.config.compile = "always"
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.625 + np.tanh(x)))
        x = np.arange(3.0)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            f(x)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
        want = 1.625 * np.exp(x) + 1 / np.cosh(x) ** 2
        print("right", np.allclose(f(x), want, rtol=1e-13))
        (entry,) = f._staged.cache.values()
        print("compiled", entry.exe.fn is not None)
    """)
    _ok(proc, "right True", "compiled True")


def test_forked_child_compiles_the_signatures_queued_before_the_fork():
    proc = _python("""
        import os
        import numpy as np
        import jitgrad
        jitgrad.config.compile = "auto"
        f = jitgrad.grad(lambda x: np.sum(np.exp(x) * 1.8125))
        x = np.arange(3.0)
        with jitgrad.backend.executable._compile_lock:     # the worker cannot start it before the fork
            f(x), f(x)                          # hot: queued
            pid = os.fork()
        if pid == 0:
            for _ in range(50):
                f(x)                            # a call of a queued signature starts a worker
                (entry,) = f._staged.cache.values()
                if entry.exe.fn is not None:
                    os._exit(0)
                import time; time.sleep(0.1)
            os._exit(1)
        print("child exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    _ok(proc, "child exit 0")


def test_empty_cache_dir_variable_means_the_default():
    proc = _python("import jitgrad; print(jitgrad.config.cache_dir)", JITGRAD_CACHE_DIR="")
    _ok(proc, os.path.join(".cache", "jitgrad"))


def test_config_overrides_on_two_threads_do_not_undo_each_other():
    # A enters, B enters, A leaves, B leaves: with one shared override, B's
    # exit would restore A's setting for everyone
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with jitgrad.config(compile="always", hot_calls=3):
            a_in.set()
            b_in.wait()
            seen["a"] = (jitgrad.config.compile, jitgrad.config.hot_calls)
        a_out.set()

    def b():
        a_in.wait()
        with jitgrad.config(compile="auto"):
            b_in.set()
            a_out.wait()
            seen["b"] = (jitgrad.config.compile, jitgrad.config.hot_calls)
    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": ("always", 3), "b": ("auto", 2)}
    assert (jitgrad.config.compile, jitgrad.config.hot_calls) == ("never", 2)


def test_environment_compile_mode_is_checked():
    proc = _python("import jitgrad", JITGRAD_COMPILE="alwyas")
    assert proc.returncode != 0
    assert "JITGRAD_COMPILE must be one of 'auto', 'always', 'never', got 'alwyas'" in proc.stderr


# -- the disk cache

def _cache_files(folder, suffix):
    return sorted(p for p in folder.rglob("*" + suffix))


CACHE_PROGRAM = """
    import warnings
    import numpy as np
    import jitgrad
    warnings.simplefilter("error")              # a fallback to the interpreter warns
    jitgrad.config.compile = "always"
    f = jitgrad.grad(lambda x: np.sum(np.exp(x) * np.tanh(x)))
    x = np.linspace(-1, 1, 7)
    want = np.exp(x) * np.tanh(x) + np.exp(x) / np.cosh(x) ** 2
    assert np.allclose(f(x), want, rtol=1e-13)
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None, entry.exe.error
    print("compiled")
"""


def _truncate(path):
    path.write_bytes(path.read_bytes()[:20])


def _garble(path):
    path.write_bytes(bytes(range(256)) * 3)


# (id, what to damage: [(suffix, damage)])
CACHE_DAMAGE = [
    ("index_truncated", [(".nbi", _truncate)]),
    ("index_garbled", [(".nbi", _garble)]),
    ("data_garbled", [(".nbc", _garble)]),
    ("everything_garbled", [(".nbi", _garble), (".nbc", _garble), (".py", _garble)]),
]


@pytest.mark.parametrize("damage", [r[1] for r in CACHE_DAMAGE], ids=[r[0] for r in CACHE_DAMAGE])
def test_damaged_cache_entry_is_rebuilt(damage, tmp_path):
    env = {"JITGRAD_CACHE_DIR": str(tmp_path)}
    _ok(_python(CACHE_PROGRAM, **env), "compiled")
    damaged = {}
    for suffix, fn in damage:
        (path,) = _cache_files(tmp_path, suffix)
        fn(path)
        damaged[path] = path.read_bytes()
    _ok(_python(CACHE_PROGRAM, **env), "compiled")
    for path, data in damaged.items():
        assert path.exists() and path.read_bytes() != data, f"{path.name} not repaired"
    _ok(_python(CACHE_PROGRAM, **env), "compiled")     # and the repaired entry loads


def test_two_processes_fill_one_cache_entry(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "JITGRAD_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CACHE_PROGRAM)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0 and "compiled" in out, err
    _ok(_python(CACHE_PROGRAM, JITGRAD_CACHE_DIR=str(tmp_path)), "compiled")
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"


def _fresh_compile(scale):
    """Compile a function no other test compiles (its constant is in the source)."""
    f = jitgrad.jit(lambda x: np.sum(np.exp(x) * scale))
    with jitgrad.config(compile="always"):
        got = f(np.arange(3.0))
    (entry,) = f._staged.cache.values()
    assert entry.exe.fn is not None, entry.exe.error
    np.testing.assert_allclose(got, np.sum(np.exp(np.arange(3.0)) * scale))


# (id, a cache folder that cannot be used, given a temporary folder, scale for a fresh compile)
UNUSABLE_CACHE_DIRS = [
    ("a_file", lambda tmp: tmp / "file", 1.0625),
    ("under_a_file", lambda tmp: tmp / "file" / "cache", 1.09375),
    ("read_only_file_system", lambda tmp: "/proc/jitgrad-cache", 1.15625),
]


@pytest.mark.parametrize("folder, scale", [r[1:] for r in UNUSABLE_CACHE_DIRS],
                         ids=[r[0] for r in UNUSABLE_CACHE_DIRS])
def test_unusable_cache_dir_compiles_without_a_disk_cache(folder, scale, tmp_path):
    (tmp_path / "file").write_text("a file")
    with jitgrad.config(cache_dir=str(folder(tmp_path))):
        with pytest.warns(RuntimeWarning, match="cannot use the compile cache"):
            _fresh_compile(scale)
    assert (tmp_path / "file").read_text() == "a file"


def test_cache_on_a_full_disk(tmp_path, monkeypatch):
    import errno
    from numba.core import caching

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    monkeypatch.setattr(caching.IndexDataCacheFile, "_open_for_write", full)
    with jitgrad.config(cache_dir=str(tmp_path)):
        with pytest.warns(RuntimeWarning, match="No space left on device"):
            _fresh_compile(1.1875)


def test_compile_failure_while_another_thread_calls(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler today")
    monkeypatch.setattr(runtime, "compile_ir", broken)
    f = jitgrad.grad(lambda x: np.sum(x * x * 1.3125))
    x = np.arange(4.0)
    results = []
    jitgrad.config.compile = "always"                # for every thread
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threads = [threading.Thread(target=lambda: results.append(f(x))) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        jitgrad.config.compile = "never"
    assert len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, 2.625 * x)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "no compiler today" in messages[0], messages


# -- the compile queue

def _compile_threads():
    return [t for t in threading.enumerate() if t.name.startswith("jitgrad-compile")]


def test_new_shapes_do_not_each_start_a_compile(monkeypatch):
    compiled = []
    real = runtime.compile_ir
    monkeypatch.setattr(runtime, "compile_ir", lambda ir, *a: compiled.append(ir) or real(ir, *a))
    f = jitgrad.grad(lambda x: np.sum(np.sin(x) * 1.4375))
    runtime.wait_for_compiles()
    with jitgrad.config(compile="auto"):
        with runtime._compile_lock:              # the worker waits: the queue only grows
            for n in range(1, 41):
                x = np.linspace(0, 1, n)
                f(x), f(x)
                assert len(_compile_threads()) <= 1
        jitgrad.wait_for_compiles()
        assert len(compiled) == 1                # the first hot shape; the rest waited
        assert not runtime._queue.jobs and not runtime._queue.busy
        x = np.linspace(0, 1, 7)                 # with the queue empty, a hot shape compiles
        for _ in range(jitgrad.config.hot_calls):
            f(x)
        jitgrad.wait_for_compiles()
    assert len(compiled) == 2
    np.testing.assert_allclose(f(x), 1.4375 * np.cos(x), rtol=1e-13)


def test_queued_compiles_of_dropped_functions_are_skipped(monkeypatch):
    compiled = []
    real = runtime.compile_ir
    monkeypatch.setattr(runtime, "compile_ir", lambda ir, *a: compiled.append(ir) or real(ir, *a))
    runtime.wait_for_compiles()
    refs = []
    with jitgrad.config(compile="auto", big_elements=0):   # every signature queued at once
        with runtime._compile_lock:
            for k in range(20):
                def f(x, k=k):
                    return np.sum(np.sin(x) * (k + 0.5))
                g = jitgrad.grad(f)
                g(np.arange(3.0))
                refs.append(weakref.ref(f))
                del f, g
            gc.collect()
            assert all(r() is None for r in refs), "a queued compile keeps its function alive"
        jitgrad.wait_for_compiles()
    assert compiled == []


# -- what the caches keep alive

def _drops(use):
    """Whether a function (closure included) is freed once the caller drops it,
    after ``use(f)`` called a transform of it."""
    big = np.ones(1000)

    def f(a):
        return np.sum(np.sin(a) * big[:3])
    use(f)
    ref = weakref.ref(f)
    del f
    gc.collect()
    return ref() is None


X3 = np.arange(3.0)
RELEASES = [
    ("grad", lambda f: jitgrad.grad(f)(X3)),
    ("jit", lambda f: jitgrad.jit(f)(X3)),
    ("jvp", lambda f: jitgrad.jvp(f, (X3,), (X3,))),
    ("vjp", lambda f: jitgrad.vjp(f, X3)[1](1.0)),
    ("linearize", lambda f: jitgrad.linearize(f, X3)[1](X3)),
    ("hvp", lambda f: jitgrad.hvp(f, (X3,), (X3,))),
    ("jacfwd", lambda f: jitgrad.jacfwd(f)(X3)),
    ("vmap", lambda f: jitgrad.vmap(f)(np.ones((2, 3)))),
]


@pytest.mark.parametrize("use", [r[1] for r in RELEASES], ids=[r[0] for r in RELEASES])
def test_transforms_release_the_function(use):
    assert _drops(use)


def test_a_failed_compile_releases_the_function(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler today")
    monkeypatch.setattr(runtime, "compile_ir", broken)
    with jitgrad.config(compile="always"), pytest.warns(RuntimeWarning, match="no compiler"):
        assert _drops(lambda f: jitgrad.jvp(f, (X3,), (X3,)))


def test_compiled_jvp_releases_the_function():
    with jitgrad.config(compile="always"):
        assert _drops(lambda f: jitgrad.jvp(f, (X3,), (X3,)))


def test_jvp_cache_still_serves_a_live_function():
    h = lambda a: np.sum(a * a * 1.5625)   # noqa: E731
    for _ in range(3):
        out, tan = jitgrad.jvp(h, (X3,), (np.ones(3),))
    np.testing.assert_allclose(tan, 3.125 * np.sum(X3))
    assert len(jitgrad.api.functions._STAGED[h]["jvp"].cache) == 1
