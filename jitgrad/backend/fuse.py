"""Fusion: group the equations of an IR into loop nests.

A *group* is one loop nest over an iteration shape.  Its members are
elementwise equations over that shape, whose values live in scalar locals
(no intermediate arrays), and the reductions that consume them (accumulated
inside the same loop).  'view' equations (broadcast_in_dim, transpose, slice,
pad, and reshapes that only insert or remove size-1 axes) are never executed:
a read through a view becomes an index expression on the viewed array.
'opaque' equations (dot_general, other reshapes, concatenate) are
statements of their own between groups; a concatenate reads its operands
through their views (each operand's loop copies it into its place).

Invariant: a value is read in group ``g`` either as a local computed earlier
in ``g`` (same iteration index) or from a materialised array/scalar whose
producer is scheduled before ``g``.  An equation joins the newest group of its
shape that satisfies this for all its operands; otherwise it opens a new group
at the end of the schedule.  Values used outside their own group are
materialised (written to an array inside the loop).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.ir import IR, Eqn, Lit, Var


def is_view(e):
    """Is ``e`` read through an index map rather than computed?  Every 'view'
    primitive is; an opaque one may be for some parameters (see reshape)."""
    if e.prim.kind == "view":
        return True
    if e.prim.index_map is None:
        return False
    placeholder = [f"i{d}" for d in range(len(e.outputs[0].aval.shape))]
    return index_map(e, placeholder) is not None


def sliced_view(e):
    """Is ``e`` a slice that generated code writes as a NumPy view (every
    step positive)?  A loop's ``xs`` that are slices of one array (``seq[:-1]``,
    ``seq[1:]``) then cost no copies."""
    return e.prim.name == "slice" and all(c > 0 for c in e.params["step"])


def index_map(e, idx):
    """The input index (list of index expressions) a view ``e`` reads for output index ``idx``."""
    return e.prim.index_map(idx, e.inputs[0].aval.shape, **e.params)


def _hoisted(eqns):
    """``eqns`` with each concatenate (and each view, which costs nothing)
    moved up to just after the equation producing the last of its operands
    (a valid order still).  In its place a concatenate would end the loop
    being filled, and the loop reading it would start anew; moved up, the
    loops before and after it can be one."""
    out, at = [], {}        # at: var -> index in out of the equation producing it
    for e in eqns:
        if e.prim.name == "concatenate" or is_view(e):
            k = max([at[a] for a in e.inputs if a in at], default=-1) + 1
            out.insert(k, e)
            for v, j in at.items():
                if j >= k:
                    at[v] = j + 1
        else:
            k = len(out)
            out.append(e)
        for v in e.outputs:
            at[v] = k
    return out


@dataclass(eq=False)
class Group:
    shape: tuple
    pos: int
    members: list = field(default_factory=list)     # Eqn, or ("copy", var) for a materialised view
    materialized: list = field(default_factory=list)
    reductions: list = field(default_factory=list)
    recompute: set = field(default_factory=set)      # values recomputed here, not read from arrays


@dataclass(eq=False)
class Opaque:
    eqn: Eqn
    pos: int


class Plan:
    """The schedule of an IR: groups and opaque statements, in execution order."""

    def __init__(self, ir: IR):
        self.ir = ir
        self.schedule = []
        self.home = {}      # var -> Group computing it as a loop local
        self.avail = {}     # var -> schedule position after which it exists as array/scalar
        self.views = {}     # var -> view Eqn
        self.eqn_of = {}    # var -> elementwise Eqn computing it
        self.groups = {}    # shape -> the groups over that shape, in schedule order
        for v in list(ir.invars) + list(ir.constvars):
            self.avail[v] = -1
        for e in _hoisted(ir.eqns):
            kind = e.prim.kind
            if is_view(e):
                self.views[e.outputs[0]] = e
            elif kind == "elementwise":
                self._place(e, e.outputs[0].aval.shape, e.inputs)
            elif kind == "reduce":
                self._place(e, e.inputs[0].aval.shape, e.inputs, reduction=True)
            else:
                for a in e.inputs:
                    if e.prim.name == "concatenate" and a in self.views:
                        # a concatenate copies each operand into its place,
                        # reading through the operand's views: no copy of its own
                        self._materialize(self.root(a))
                    else:
                        self._materialize(a)
                item = Opaque(e, len(self.schedule))
                self.schedule.append(item)
                for v in e.outputs:
                    self.avail[v] = item.pos
        for v in ir.outvars:
            self._materialize(v)

    # -- where can a value be read?

    def root(self, v):
        while isinstance(v, Var) and v in self.views and v not in self.home:
            v = self.views[v].inputs[0]
        return v

    def _ready_at(self, v):
        """Position after which v exists as an array or scalar (if materialised)."""
        if v in self.avail:
            return self.avail[v]
        return self.home[v].pos

    def _readable(self, a, g):
        if isinstance(a, Lit):
            return True
        if self.home.get(a) is g:
            return True
        r = self.root(a)
        return isinstance(r, Lit) or self._ready_at(r) < g.pos or self._recomputable(a, r, g)

    # Recomputation.  A cheap elementwise value read through a view (a shifted
    # slice, a pad) would otherwise be stored by its own loop and read back; it
    # is cheaper to recompute it at the mapped index from values that exist
    # before this loop.  Only arithmetic without transcendental calls, and at
    # most RECOMPUTE_BUDGET equations (BROADCAST_BUDGET when a broadcast
    # repeats each recomputation), are recomputed.
    RECOMPUTE_BUDGET = 12
    BROADCAST_BUDGET = 2
    CHEAP = frozenset(("add", "sub", "mul", "div", "neg", "integer_pow", "convert", "select", "max",
                       "min", "abs", "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"))

    def _recomputable(self, a, r, g, budget=None):
        if r not in self.eqn_of:
            return False
        if a is r:
            # Read directly from an earlier loop.  Recomputing it here saves
            # that loop's store (and the array) when the recomputation reads
            # no more arrays than the one load it replaces: a mask such as
            # convert(x == max(x)), or a scalar times a stored array.
            return self._can_recompute(r, g, [self.RECOMPUTE_BUDGET]) and \
                len(self._array_leaves(r, g, set())) <= 1
        if budget is None:
            # read through a broadcast, a value is recomputed once per copy: only a short chain
            spread = a.aval.size >= 2 * max(r.aval.size, 1)
            budget = [self.BROADCAST_BUDGET if spread else self.RECOMPUTE_BUDGET]
        return self._can_recompute(r, g, budget)

    def _can_recompute(self, r, g, budget):
        e = self.eqn_of.get(r)
        if e is None or e.prim.name not in self.CHEAP or r in self.home[r].materialized:
            return False
        budget[0] -= 1
        if budget[0] < 0:
            return False
        for a in e.inputs:
            ra = self.root(a)
            if isinstance(ra, Lit) or self._stored_before(ra, g):
                continue
            if self._guarded(a) or not self._can_recompute(ra, g, budget):
                # (a recomputation nested under a pad's condition repeats a
                # whole conditional expression at every level: its text, and
                # Numba's compile time, grow geometrically)
                return False
        return True

    def _array_leaves(self, r, g, out):
        """The stored arrays (at least half r's size) a recomputation of r in g reads."""
        for a in self.eqn_of[r].inputs:
            ra = self.root(a)
            if isinstance(ra, Lit):
                continue
            if self._stored_before(ra, g):
                if 2 * ra.aval.size >= r.aval.size and ra.aval.shape != ():
                    out.add(ra)
            else:
                self._array_leaves(ra, g, out)
        return out

    def _guarded(self, a):
        """Is ``a`` read through a pad (a conditional read)?"""
        while isinstance(a, Var) and a in self.views and a not in self.home:
            if self.views[a].prim.name == "pad":
                return True
            a = self.views[a].inputs[0]
        return False

    def _stored_before(self, v, g):
        if v in self.avail:
            return self.avail[v] < g.pos
        h = self.home[v]
        return (v in h.materialized or h.shape == ()) and h.pos < g.pos

    def _mark_recompute(self, r, g):
        g.recompute.add(r)
        for a in self.eqn_of[r].inputs:
            ra = self.root(a)
            if not isinstance(ra, Lit) and not self._stored_before(ra, g):
                self._mark_recompute(ra, g)

    def _place(self, e, shape, operands, reduction=False):
        candidates = [self.home[a] for a in operands if isinstance(a, Var) and a in self.home
                      and self.home[a].shape == shape]
        candidates += self.groups.get(shape, [])[-4:]
        g = next((g for g in sorted(set(candidates), key=lambda g: -g.pos)
                  if all(self._readable(a, g) for a in operands)), None)
        if g is None:
            g = self._new_group(shape)
        for a in operands:
            if isinstance(a, Var) and self.home.get(a) is not g:
                r = self.root(a)
                if isinstance(r, Var) and not self._stored_before(r, g) and self._recomputable(a, r, g):
                    self._mark_recompute(r, g)
                else:
                    self._materialize(r)
        if reduction:
            g.reductions.append(e)
            self.avail[e.outputs[0]] = g.pos
        else:
            g.members.append(e)
            self.home[e.outputs[0]] = g
            self.eqn_of[e.outputs[0]] = e

    def _new_group(self, shape):
        g = Group(shape, len(self.schedule))
        self.schedule.append(g)
        self.groups.setdefault(shape, []).append(g)
        return g

    def _materialize(self, v):
        if isinstance(v, Lit) or v in self.avail:
            return
        if v in self.home:
            g = self.home[v]
            if v not in g.materialized and g.shape != ():
                g.materialized.append(v)
            return
        e = self.views[v]
        if isinstance(e.inputs[0], Var) and (e.prim.name == "reshape" or sliced_view(e)):
            # a reshape that only adds or drops size-1 axes of an array, or a
            # slice with positive steps, is a view of it in the generated code
            # too (NumPy's basic slicing): no copy
            self._materialize(e.inputs[0])
            item = Opaque(e, len(self.schedule))
            self.schedule.append(item)
            self.avail[v] = item.pos
            return
        # a view that must exist as an array: copy it in a loop over its shape
        shape = v.aval.shape
        self._place_copy(v, shape)

    def _place_copy(self, v, shape):
        r = self.root(v)
        g = next((g for g in reversed(self.groups.get(shape, []))
                  if isinstance(r, Lit) or self._ready_at(r) < g.pos), None)
        if g is None:
            g = self._new_group(shape)
        self._materialize(r)
        g.members.append(("copy", v))
        self.home[v] = g
        if shape != ():
            g.materialized.append(v)
