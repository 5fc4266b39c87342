"""A workspace for a compiled function's temporaries.

A temporary array that a generated function allocates on every call costs
more than its allocation: the C library returns a large freed block to the
system, so the next call's block is fresh memory, and each of its 4 KB pages
faults in (zeroed by the kernel, about 2 us a page here), which for a few
arrays of megabytes costs more than the loops that fill them.  Instead, the
temporaries that cannot leave the call live in one byte buffer, the
*workspace*, that the function receives as its last argument and that is
allocated once and reused while its executable lives.

Planning works on the function's generated lines, one list per item of the
fusion plan (a loop nest, an opaque statement, a loop or branch), and on the
IR:

* an allocation is a statement at the function's top level of the form
  ``name = np.empty(shape, np.dtype)`` (or ``lc.empty``, see backend.libcalls, ``np.zeros``, or ``np.full(shape,
  fill, np.dtype)``) with a literal shape; it belongs to the IR value
  ``name`` names, or, for an internal array of an equation's code
  (``gather3_r``, ``dot_general4_x``), to that equation's outputs;
* it may use the workspace when none of the values that may share its memory
  is an output of the IR (views, reshapes, loops, branches and custom-rule
  calls may return memory of their operands: the same rule as
  ``executable.shared_outputs``), so a result is never workspace memory;
* it is live from its item to the last item whose code names it or one of
  those values (the generated code reads an array only through its name), and
  two allocations share bytes only when their live ranges are disjoint.

Calls of one executable on several threads at once each take a workspace of
their own from the executable's pool (see :class:`Pool`).
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..core.ir import Var

# A temporary smaller than this comes from the allocator as before: the C
# library recycles small blocks without page faults (its threshold for giving
# memory back to the system starts at 128 KB), and there a view of the
# workspace costs more than the allocation (measured on gmm at d=2: 25%
# slower with every array in the workspace).  A function without such
# temporaries takes no workspace, and its calls no pool's bookkeeping.
MIN_BYTES = 1 << 17
# Above this, no workspace: the executable would hold it between calls.
MAX_BYTES = 1 << 30
ALIGN = 64            # bytes: every array starts on a cache line
NAME = "_ws"          # the workspace argument of the generated function

_ALLOC = re.compile(r"^(?P<name>\w+) = (?:np|lc)\.(?P<kind>empty|zeros|full)"
                    r"\(\((?P<dims>[\d, ]*)\),(?: (?P<fill>[^,]+),)? np\.(?P<dtype>\w+)\)$")
_TOKEN = re.compile(r"[A-Za-z_]\w*")


def may_share(ir):
    """For each value of ``ir``, the values defined later that may share its
    memory (itself included): the outputs of views, reshapes, control flow
    and custom-rule calls share memory with their operands."""
    shared = {}
    for e in reversed(ir.eqns):
        if e.prim.kind in ("view", "call", "control") or e.prim.name == "reshape":
            operands = e.inputs if e.prim.kind in ("call", "control") else e.inputs[:1]
            later = set().union(*(shared.get(o, {o}) for o in e.outputs))
            for a in operands:
                if isinstance(a, Var):
                    shared[a] = shared.get(a, {a}) | later
    return shared


class _Allocation:
    def __init__(self, item, line, match, owners):
        self.item, self.line, self.owners = item, line, owners
        self.name = match["name"]
        self.dims = tuple(int(d) for d in match["dims"].replace(" ", "").split(",") if d)
        self.dtype = np.dtype(match["dtype"])
        self.kind, self.fill = match["kind"], match["fill"]
        self.nbytes = math.prod(self.dims) * self.dtype.itemsize
        self.last = item
        self.offset = 0


def _code_tokens(lines):
    """The names a list of generated lines uses (comments left out)."""
    names = set()
    for line in lines:
        code = line.split("#", 1)[0]
        names.update(_TOKEN.findall(code))
    return names


class Chunks:
    """A function's body as it is written: per item of its plan, the values
    the item defines and its lines.  The temporaries of the functions an
    item calls (their hoisted parameters) are allocated in front of it."""

    def __init__(self):
        self.items = []
        self.scratch = {}     # the names of those allocations -> the values they may back

    def add(self, defined, lines, callees, backs=()):
        """Append an item; ``callees`` (the functions its lines call, made
        while writing them) is emptied.  ``backs``: the values of this
        function that the callees' parameters may hold when the item is done
        (a piece's outputs written into parameters, see :func:`hoist`), which
        keep those arrays live."""
        allocs = [line for f in callees for line in f.allocations()]
        callees.clear()
        self.scratch.update((line.split(" = ")[0], tuple(backs)) for line in allocs)
        self.items.append((list(defined), allocs + list(lines)))


def escaping(ir, internal=()):
    """The values of ``ir`` whose memory may be returned by it: those that may
    share memory with an output not in ``internal`` (outputs the caller only
    passes on within one of its own calls, see :func:`hoist`)."""
    outvars = {v for v in ir.outvars if isinstance(v, Var)} - set(internal)
    shared = may_share(ir)
    return {v for v in [*ir.invars, *ir.constvars, *(o for e in ir.eqns for o in e.outputs)]
            if shared.get(v, {v}) & outvars}


def _allocations(ir, chunks, names, scratch, internal=()):
    """The allocations of a function's code whose arrays cannot leave a call
    (``scratch``: names of arrays allocated for a called function, each with
    the values of this function it may back), each with the item that makes
    it and its live range."""
    scratch = scratch or {}
    outvars = {v for v in ir.outvars if isinstance(v, Var)} - set(internal)
    shared = may_share(ir)
    allocs = []
    for i, (defined, lines) in enumerate(chunks):
        by_name = {names[v]: v for v in defined}
        for j, line in enumerate(lines):
            m = _ALLOC.match(line)
            if m is None:
                continue
            name = m["name"]
            if name in scratch:
                a = _Allocation(i, j, m, [])
                backs = set().union(*(shared.get(v, {v}) for v in scratch[name]))
                a.family = {names[v] for v in backs if v in names.names}
                allocs.append(a)
                continue
            if name in by_name:
                owners = [by_name[name]]
            else:       # an internal array of an equation's code: named after an output
                owners = [v for n, v in by_name.items() if name.startswith(n + "_")][:1]
                owners = list(defined) if owners else []
            if not owners:
                continue
            family = set().union(*(shared.get(v, {v}) for v in owners))
            if family & outvars:
                continue
            a = _Allocation(i, j, m, owners)
            a.family = {names[v] for v in family if v in names.names} | {a.name}
            allocs.append(a)
    tokens = [_code_tokens(lines) for _, lines in chunks]
    for a in allocs:
        for i in range(len(chunks) - 1, a.item, -1):
            if tokens[i] & a.family:
                a.last = i
                break
    return allocs


def _rewrite(chunks, allocs, replace):
    """The body's lines, each allocation's line replaced by ``replace(a)`` (a list)."""
    rewritten = [list(lines) for _, lines in chunks]
    for a in allocs:
        rewritten[a.item][a.line] = replace(a)
    body = []
    for lines in rewritten:
        for line in lines:
            body += line if isinstance(line, list) else [line]
    return body


def place(ir, chunks, names, scratch=None):
    """Put the temporaries of a function's code in a workspace.

    ``chunks`` is the function's body as ``(defined, lines)`` per plan item,
    in order (``defined``: the IR values the item computes).  Returns the
    body's lines, allocations rewritten as views of the workspace, and the
    workspace's size in bytes (0: no workspace, lines unchanged)."""
    allocs = [a for a in _allocations(ir, chunks, names, scratch) if a.nbytes >= MIN_BYTES]
    size = _pack(allocs) if allocs else 0
    if size == 0 or size > MAX_BYTES:
        return [line for _, lines in chunks for line in lines], 0
    return _rewrite(chunks, allocs, _view_lines), size


def hoist(ir, chunks, names, scratch=None, internal=()):
    """Move the temporaries of a called function (a loop body, a branch, a
    piece) out of it: they become parameters, which its caller allocates once
    at its own top level (and, in the executable's function, in the
    workspace), instead of one allocation per call of a loop's body.  A view
    of a workspace costs more than a small allocation (Numba's ``view`` and
    ``reshape`` are calls), a parameter almost nothing.

    Returns the body's lines and the parameters as ``(name, dims, dtype)``;
    an array the code asked zeroed or filled is filled at each call.

    ``internal``: outputs of ``ir`` that its callers only pass to other
    functions within one of their own calls (a piece's values that the next
    pieces read, see backend.split): their arrays are parameters too, as the
    caller is done with them before it calls this function again."""
    allocs = _allocations(ir, chunks, names, scratch, internal)
    return _rewrite(chunks, allocs, _fill_lines), [(a.name, a.dims, a.dtype.name) for a in allocs]


def _fill_lines(a):
    if a.kind == "zeros":
        return [f"{a.name}.fill(0)  # a parameter (see workspace.hoist)"]
    if a.kind == "full":
        return [f"{a.name}.fill({a.fill})  # a parameter (see workspace.hoist)"]
    return [f"# {a.name}: a parameter (see workspace.hoist)"]


def _pack(allocs):
    """Give every allocation an offset, first fit among those live at the same
    time; returns the workspace's size."""
    placed, size = [], 0
    for a in sorted(allocs, key=lambda a: (a.item, -a.nbytes)):
        busy = sorted((b.offset, b.offset + b.nbytes) for b in placed
                      if b.item <= a.last and a.item <= b.last)
        offset = 0
        for lo, hi in busy:
            if offset + a.nbytes <= lo:
                break
            offset = max(offset, _aligned(hi))
        a.offset = offset
        placed.append(a)
        size = max(size, _aligned(offset + a.nbytes))
    return size


def _aligned(n):
    return -(-n // ALIGN) * ALIGN


def _view_lines(a):
    """The allocation ``a`` as a view of the workspace (filled if it asked for it)."""
    view = f"{NAME}[{a.offset}:{a.offset + a.nbytes}].view(np.{a.dtype.name}).reshape({a.dims!r})"
    return [f"{a.name} = {view}  # workspace"] + [
        line.split("  #")[0] for line in _fill_lines(a) if not line.startswith("#")]


def new_buffer(nbytes):
    """A zeroed workspace of ``nbytes`` bytes starting on a cache line."""
    raw = np.zeros(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes]


class Pool:
    """The idle workspaces of one compiled function.  A call takes one (or
    makes one, when every workspace is in use by calls on other threads) and
    gives it back when it returns; ``list.pop`` and ``list.append`` are atomic,
    so no lock is needed, and no two running calls share a workspace."""

    def __init__(self, nbytes):
        self.nbytes = nbytes
        self.idle = [new_buffer(nbytes)]

    def take(self):
        try:
            return self.idle.pop()
        except IndexError:
            return new_buffer(self.nbytes)

    def give(self, buffer):
        self.idle.append(buffer)
