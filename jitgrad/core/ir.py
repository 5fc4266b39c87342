"""The intermediate representation: flat, typed single-assignment equations.

An :class:`IR` is a list of :class:`Eqn` over :class:`Var` s.  Every variable has
an abstract value, :class:`Aval` (shape and dtype), fixed when it is created.
Operands of an equation are variables or :class:`Lit` (a Python or NumPy scalar
with a dtype).  Parameters of an equation are hashable, so that a whole IR can be
hashed into a cache key.

Structured control flow (loops, branches) is primitives whose parameters hold
sub-IRs (see jitgrad.transforms.loops and branches); such an equation may have
several outputs.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Aval:
    """Abstract value: what is known of an array at trace time."""

    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self):
        return f"{_dtype_short(self.dtype)}[{','.join(map(str, self.shape))}]"


def _dtype_short(dtype):
    return {"float64": "f64", "float32": "f32", "int64": "i64", "int32": "i32", "bool": "bool"}.get(
        np.dtype(dtype).name, np.dtype(dtype).name)


_var_ids = itertools.count()


class Var:
    """A single-assignment variable.  Identity is the variable; ``id`` orders them."""

    __slots__ = ("aval", "id")

    def __init__(self, aval: Aval):
        self.aval = aval
        self.id = next(_var_ids)

    def __repr__(self):
        return f"Var({self.id}:{self.aval})"


@dataclass(frozen=True)
class Lit:
    """A scalar literal operand.  ``value`` is a Python number of the given dtype."""

    value: object
    dtype: np.dtype

    @property
    def aval(self):
        return Aval((), np.dtype(self.dtype))

    @property
    def array(self):
        """The literal as a NumPy scalar of its dtype (how every interpreter reads it)."""
        return np.asarray(self.value, self.dtype)[()]

    def __str__(self):
        return repr(self.value)


@dataclass
class Eqn:
    prim: object            # a Primitive
    inputs: list            # Var or Lit
    outputs: list           # Var
    params: dict = field(default_factory=dict)
    where: str = ""         # the user's source line that produced it, for comments


class IR:
    """A function: ``outvars = eqns(invars, constvars)``.

    ``consts`` holds the values bound to ``constvars`` (NumPy arrays captured
    from the traced function's closure, or tracers of an enclosing trace).
    """

    def __init__(self, invars, constvars, consts, eqns, outvars):
        self.invars = list(invars)
        self.constvars = list(constvars)
        self.consts = list(consts)
        self.eqns = list(eqns)
        self.outvars = list(outvars)

    @property
    def in_avals(self):
        return [v.aval for v in self.invars]

    @property
    def out_avals(self):
        return [v.aval for v in self.outvars]

    def __str__(self):
        return pretty(self)

    __repr__ = __str__


def pretty(ir: IR) -> str:
    """Print like a jaxpr: one line per equation, shapes and dtypes on every binder."""
    names = {}

    def n(a):
        if isinstance(a, Lit):
            return repr(a.value)
        if a not in names:
            names[a] = _letters(len(names))
        return names[a]

    def binder(v):
        return f"{n(v)}:{v.aval}"

    head_in = " ".join(binder(v) for v in ir.invars)
    head_c = " ".join(binder(v) for v in ir.constvars)
    lines = [f"{{ lambda {head_c + ' ; ' if head_c else ''}{head_in} ."]
    for e in ir.eqns:
        outs = " ".join(binder(v) for v in e.outputs)
        params, subs = "", []
        if e.params:
            shown = []
            for k, v in e.params.items():
                irs = [v] if isinstance(v, IR) else list(v) if isinstance(v, tuple) and v and all(
                    isinstance(b, IR) for b in v) else None
                if irs is None:
                    shown.append(f"{k}={_fmt_param(v)}")
                else:          # sub-IRs (loop bodies, branches): printed below, indented
                    shown.append(f"{k}=<{len(subs) + 1}>" if len(irs) == 1 else
                                 f"{k}=<{','.join(str(len(subs) + 1 + j) for j in range(len(irs)))}>")
                    subs += irs
            params = "[" + " ".join(shown) + "]"
        ins = " ".join(n(a) for a in e.inputs)
        lines.append(f"    {outs} = {e.prim.name}{params} {ins}")
        for j, s in enumerate(subs):
            lines += [f"      <{j + 1}> " + l if i == 0 else "          " + l
                      for i, l in enumerate(pretty(s).splitlines())]
    lines.append(f"  in ({', '.join(n(v) for v in ir.outvars)}) }}")
    return "\n".join(lines)


def _fmt_param(v):
    if isinstance(v, np.dtype):
        return v.name
    return str(v).replace(" ", "")


def _letters(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


class IRTypeError(Exception):
    pass


def typecheck(ir: IR):
    """Recompute every aval through the shape rules and check single assignment."""
    defined = set(ir.invars) | set(ir.constvars)
    if len(defined) != len(ir.invars) + len(ir.constvars):
        raise IRTypeError("an input variable is bound twice")
    for e in ir.eqns:
        for a in e.inputs:
            if isinstance(a, Var) and a not in defined:
                raise IRTypeError(f"{e.prim.name}: input {a} used before it is defined")
        avals = e.prim.shape_rule(*[a.aval for a in e.inputs], **e.params)
        for v, av in zip(e.outputs, avals):
            if v in defined:
                raise IRTypeError(f"{e.prim.name}: {v} assigned twice")
            if v.aval.shape != av.shape or np.dtype(v.aval.dtype) != np.dtype(av.dtype):
                raise IRTypeError(f"{e.prim.name}: output declared {v.aval}, shape rule gives {av}")
            defined.add(v)
    for v in ir.outvars:
        if isinstance(v, Var) and v not in defined:
            raise IRTypeError(f"output {v} is not defined")
    return True
