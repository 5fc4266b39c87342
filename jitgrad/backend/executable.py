"""Executables: run an IR, compiled by Numba when it pays, interpreted until then.

Tiers.  Importing Numba costs about half a second and compiling a function
from a fraction of a second to seconds, so a cold signature first runs on the
NumPy reference interpreter (no compile at all).  A signature that is called
again, or whose arrays are large, is compiled in a background thread; calls
switch to native code as soon as it is ready.  ``config.compile`` chooses:

- ``"auto"`` (default): the tiers above;
- ``"always"``: compile on the first call and wait for it (benchmarks, tests of
  the compiled code);
- ``"never"``: always interpret.

Generated source goes to a file in the cache folder (``JITGRAD_CACHE_DIR``,
default ``~/.cache/jitgrad``) named by a hash of the source, jitgrad's version,
Numba's and the vectorised math kernels' source, so that Numba's own on-disk
cache serves the next process (Numba's cache also checks the CPU).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import threading
import warnings

import numpy as np

from ..core.trace import eval_ir
from ..core.ir import Var


class _Config:
    def __init__(self):
        self.compile = os.environ.get("JITGRAD_COMPILE", "auto")
        self.hot_calls = 2            # compile when a signature is called this many times
        self.big_elements = 200_000   # ... or at once when its arrays are this large
        self.cache_dir = os.environ.get(
            "JITGRAD_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "jitgrad"))

    def __call__(self, **kw):
        """Temporarily change settings: ``with jitgrad.config(compile="always"): ...``."""
        return _Override(self, kw)


class _Override:
    def __init__(self, cfg, kw):
        self.cfg, self.kw = cfg, kw

    def __enter__(self):
        self.old = {k: getattr(self.cfg, k) for k in self.kw}
        for k, v in self.kw.items():
            setattr(self.cfg, k, v)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            setattr(self.cfg, k, v)


config = _Config()
_compiled = {}            # source key -> Numba dispatcher (shared by equal IRs)
_lock = threading.Lock()
_pending = []             # threads compiling in the background


def _debug_level():
    try:
        return int(os.environ.get("JITGRAD_DEBUG", "0"))
    except ValueError:
        return 0


def wait_for_compiles():
    """Block until every background compile has finished."""
    while _pending:
        t = _pending.pop()
        t.join()


def shared_outputs(ir):
    """The positions of the array outputs of ``ir`` that may share memory with
    an input, a constant or an earlier output; the executable copies exactly
    these, so that every result is a fresh array (users mutate results in place).

    Only a few equations can return memory they did not allocate, in either
    tier: the views (broadcast_in_dim, transpose, slice, pad) and reshape may
    return a view of their operand, and a call of a custom rule may return any
    of its operands.  Every other equation writes a new array.  0-d outputs are
    returned as NumPy scalars, which are immutable.
    """
    roots = {}                 # var -> the vars whose memory it may share

    def roots_of(a):
        return roots.get(a, {a}) if isinstance(a, Var) else set()
    for e in ir.eqns:
        if e.prim.kind in ("view", "call") or e.prim.name == "reshape":
            operands = e.inputs if e.prim.kind == "call" else e.inputs[:1]
            shared = set().union(*map(roots_of, operands))
            for o in e.outputs:
                roots[o] = shared | {o}
    held = set(ir.invars) | set(ir.constvars)
    copied = []
    for i, v in enumerate(ir.outvars):
        if v.aval.shape == ():
            continue
        r = roots_of(v)
        if r & held:
            copied.append(i)
        held |= r
    return copied


class Executable:
    """One IR at one signature."""

    def __init__(self, ir, label=""):
        self.ir = ir
        self.label = label or "f"
        self.fn = None            # the compiled function, once ready
        self.calls = 0
        self.compiling = False
        self.error = None
        # the captured arrays themselves, views included (Numba takes any
        # layout): both tiers read their values at call time, as NumPy would
        self.consts = list(ir.consts)
        self.scalar_out = [(i, np.dtype(v.aval.dtype).type) for i, v in enumerate(ir.outvars)
                           if v.aval.shape == ()]
        self.copied_out = shared_outputs(ir)
        self.size = sum(v.aval.size for v in ir.invars) + sum(
            v.aval.size for e in ir.eqns for v in e.outputs)
        if _debug_level() >= 1:
            print(f"jitgrad: IR of {self.label}\n{ir}", file=sys.stderr)

    def __call__(self, args):
        """Run on a sequence of arguments (arrays or scalars, one per input);
        returns a sequence of outputs (arrays, and NumPy scalars for 0-d outputs)."""
        return self.call(args)

    def call(self, args):
        # Replaced by a direct call of the native function once it is compiled
        # (see _native_caller); until then, the interpreter tier.
        if self.fn is not None:
            return self.call(args)
        self.calls += 1
        mode = config.compile
        if mode == "always" and self.error is None:
            self.compile()
            return self(args)
        outs = self.interpret(args)
        # start compiling after answering, so the compile does not slow this call
        if mode == "auto" and not self.compiling and self.error is None and (
                self.calls >= config.hot_calls or self.size >= config.big_elements):
            self.compile_in_background()
        return outs

    def interpret(self, args):
        """Run on the NumPy interpreter (IEEE results, no warnings, as the native code)."""
        args = [np.float64(a) if type(a) is float else np.asarray(a) for a in args]
        with np.errstate(all="ignore"):
            outs = [np.asarray(o) for o in eval_ir(self.ir, args)]
        for i, t in self.scalar_out:
            outs[i] = t(outs[i])
        for i in self.copied_out:
            outs[i] = outs[i].copy()
        return outs

    def _native_caller(self, fn, range_checked=False):
        """A closure calling ``fn`` with no per-call bookkeeping: written out for
        this signature so that each argument, constant and scalar output costs
        one expression (this is the hot path of every transformed function).
        With ``range_checked``, ``fn`` returns one more value, the number of
        sin/cos arguments outside the vectorised kernels' exact range; when it
        is not zero the call is answered by the interpreter (see codegen)."""
        ns = {"fn": fn, "ndarray": np.ndarray, "interpret": self.interpret}
        args = []
        for i, v in enumerate(self.ir.invars):
            # a 0-d array argument is passed as the scalar the native code expects
            args.append(f"(a{i}[()] if type(a{i}) is ndarray else a{i})" if v.aval.shape == ()
                        else f"a{i}")
        for i, c in enumerate(self.consts):
            ns[f"c{i}"] = c
            args.append(f"c{i}")
        outs = []
        for i, v in enumerate(self.ir.outvars):
            if v.aval.shape == ():
                ns[f"t{i}"] = np.dtype(v.aval.dtype).type
                outs.append(f"t{i}(r[{i}])")
            else:
                outs.append(f"r[{i}].copy()" if i in self.copied_out else f"r[{i}]")
        unpack = "".join(f"a{i}, " for i in range(len(self.ir.invars)))
        src = (f"def call(args):\n"
               f"    {unpack or '_'} = {'args' if unpack else '()'}\n"
               f"    r = fn({', '.join(args)})\n")
        if range_checked:
            src += f"    if r[{len(outs)}]:\n        return interpret(args)\n"
        src += f"    return ({''.join(o + ', ' for o in outs)})\n"
        exec(src, ns)
        return ns["call"]

    # -- compiling

    def compile_in_background(self):
        self.compiling = True
        t = threading.Thread(target=self.compile, daemon=True, name=f"jitgrad-compile-{self.label}")
        _pending.append(t)
        t.start()

    def compile(self):
        try:
            fn, range_checked = compile_ir(self.ir, self.label)
            # Numba compiles lazily, at the first call; compile now, for the
            # argument types this signature will be called with.
            import numba
            sig = tuple(numba.typeof(np.zeros((), v.aval.dtype)[()] if v.aval.shape == ()
                                     else np.zeros(v.aval.shape, v.aval.dtype)) for v in self.ir.invars)
            sig += tuple(numba.typeof(c) for c in self.consts)
            fn.compile(sig)
            self.call = self._native_caller(fn, range_checked)
            self.fn = fn
        except Exception as exc:   # keep answering from the interpreter
            self.error = exc
            warnings.warn(f"jitgrad could not compile {self.label} ({type(exc).__name__}: {exc}); "
                          "it will keep running on the NumPy interpreter", RuntimeWarning)
        finally:
            self.compiling = False
        return self.fn


@functools.lru_cache(maxsize=None)
def _vecmath_hash():
    from . import vecmath
    with open(vecmath.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def compile_ir(ir, label="f"):
    """Generate, write and import the Numba function for ``ir``; returns it and
    whether it returns the sin/cos range count as a last output (see codegen)."""
    from ..version import __version__
    from .emit import generate
    gen = generate(ir, label)
    if _debug_level() >= 4:
        print(gen.source, file=sys.stderr)
    import numba
    # the generated module calls jitgrad.backend.vecmath, whose machine code Numba's
    # cache stores with the module's: a change there must change the file name
    key = hashlib.sha256(f"{gen.key}/{__version__}/{numba.__version__}/{_vecmath_hash()}".encode()
                         ).hexdigest()[:24]
    with _lock:
        fn = _compiled.get(key)
        if fn is not None:
            return fn, gen.range_checked
    module = _load_module(gen.source, f"jitgrad_gen_{key}")
    fn = getattr(module, gen.fn_name)
    with _lock:
        _compiled[key] = fn
    return fn, gen.range_checked


def _load_module(source, modname):
    """Write ``source`` to the cache folder (unless an identical file is there) and import it."""
    path = None
    try:
        os.makedirs(config.cache_dir, exist_ok=True)
        path = os.path.join(config.cache_dir, modname + ".py")
        existing = None
        if os.path.exists(path):
            with open(path) as f:
                existing = f.read()
        if existing != source:           # missing, stale or corrupt: (re)write it
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as f:
                f.write(source)
            os.replace(tmp, path)
    except OSError:
        path = None
    if path is None:                      # no writable cache: compile without a disk cache
        import tempfile
        d = tempfile.mkdtemp(prefix="jitgrad-")
        path = os.path.join(d, modname + ".py")
        with open(path, "w") as f:
            f.write(source)
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module
