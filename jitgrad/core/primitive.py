"""Primitive: one operation of the IR, with a declared slot for each of its rules.

A primitive's rules are set in one block where it is defined (``jitgrad.lax``
and ``jitgrad.transforms.custom``); the slots are fixed (``__slots__``), so a
misspelt rule name fails at import instead of being ignored.  Every primitive
is registered by name in :data:`PRIMITIVES`, which the completeness tests walk.

Slots (``None`` when a primitive has no such rule):

``impl(*arrays, **params) -> array``
    The NumPy reference; the interpreter runs it.
``shape(*avals, **params) -> Aval``
    The abstract-value rule: the output's shape and dtype, or an error that
    names the problem (it runs at trace time, so shapes are checked early).
``jvp(primals, tangents, out, **params) -> tangent or None``
    The tangent rule, written with the ops of ``jitgrad.lax`` (so derivatives
    are ordinary IR).  A tangent of ``None`` is a symbolic zero.
``transpose(ct, *args, **params) -> [cotangent or None per arg]``
    Linear primitives only.  ``args`` hold values for constant operands and
    :class:`Undefined` for the linear ones.
``batch(args, batched, size, **params) -> value``
    The batching rule (``vmap``): ``batched[i]`` says whether ``args[i]`` has
    the batch axis, always leading, of length ``size``; the result has it.
``code``
    What the code generator emits, by kind: for ``'elementwise'`` a format
    string over the operands' scalar expressions (or a function
    ``(operands, lit, **params) -> expression``); for ``'reduce'`` a pair
    ``(initial value, combine template over {acc} and {x})``; for ``'opaque'``
    a function ``(out, ins, in_avals, out_aval, lit, **params) -> lines``.
``complex_code``
    Elementwise only, optional: the code to use instead of ``code`` when an
    operand or the result is complex (Numba's complex math, where ``code``
    calls kernels written for reals).
``index_map(idx, in_shape, **params) -> list of index expressions or None``
    For primitives the fuser reads through instead of computing: the input
    index read for output index ``idx``.  Every ``'view'`` has one; an
    ``'opaque'`` primitive may have one that returns ``None`` for the
    parameters where it is not a view (see ``reshape``).
``partial_eval(eqn, linear) -> (primal eqns, linear eqns)``
    Control flow only: reverse mode splits an equation of the JVP IR some of
    whose operands are tangents (``linear[i]``) into equations of primal work
    and equations linear in the tangents, joined by new residual variables.
``depends(flags, **params) -> list of bool``
    Control flow only: which outputs depend on the operands flagged in
    ``flags`` (through the sub-IRs; without it every output depends on
    every operand).
``prune(eqn, used) -> eqn``
    Control flow only: the equation without the outputs not in ``used``
    (those it can drop: a loop's stacked outputs, a branch's outputs), for
    dead-code elimination.
``multiple_results``
    True for a primitive with a list of outputs (control flow); its ``shape``
    rule returns a list of avals, and its jvp, transpose and batch rules take
    and return lists (one entry per output).
``kind``
    ``'elementwise'``, ``'reduce'``, ``'view'``, ``'opaque'``, ``'call'``
    (its parameters hold a sub-IR that is inlined before code generation), or
    ``'control'`` (its parameters hold sub-IRs that stay functions of their
    own: loops and branches; the code generator emits each as a function).
"""
from __future__ import annotations

KINDS = ("elementwise", "reduce", "view", "opaque", "call", "control")

PRIMITIVES: dict[str, "Primitive"] = {}


class Primitive:
    """One operation of the IR and all of its rules (see the module docs)."""

    __slots__ = ("name", "kind", "impl", "shape", "jvp", "transpose", "batch", "code", "complex_code",
                 "index_map", "partial_eval", "prune", "depends", "multiple_results")

    def __init__(self, name, kind):
        if kind not in KINDS:
            raise ValueError(f"primitive {name}: kind must be one of {KINDS}, got {kind!r}")
        if name in PRIMITIVES:
            raise ValueError(f"a primitive named {name!r} already exists")
        self.name = name
        self.kind = kind
        self.impl = self.shape = self.jvp = self.transpose = None
        self.batch = self.code = self.complex_code = self.index_map = self.partial_eval = None
        self.prune = None
        self.depends = None
        self.multiple_results = False
        PRIMITIVES[name] = self

    def __repr__(self):
        return self.name

    def shape_rule(self, *avals, **params):
        """The output avals, as a list."""
        if self.multiple_results:
            return list(self.shape(*avals, **params))
        return [self.shape(*avals, **params)]

    def rule(self, slot):
        """The rule in ``slot``, or a :class:`MissingRuleError` naming the
        primitive and the kind of rule it lacks."""
        r = getattr(self, slot)
        if r is None:
            raise MissingRuleError(f"primitive '{self.name}' has no {_RULE_NAMES.get(slot, slot)} rule")
        return r


_RULE_NAMES = {"jvp": "jvp (forward-mode)", "transpose": "transpose (reverse-mode)",
               "batch": "batching (vmap)", "impl": "NumPy reference (impl)", "shape": "shape"}


class Undefined:
    """Marks a linear (unknown) operand in a transpose rule."""

    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval


class MissingRuleError(NotImplementedError):
    """A primitive lacks the rule a transform needs (the message names both)."""
