"""``np.einsum`` on traced arrays, lowered to dot_general, reductions,
diagonals and transposes (no primitive of its own, so every derivative
comes from theirs).

Each operand first loses its repeated letters (``ii`` takes the diagonal)
and the letters no one else needs (summed).  Operands are then combined
left to right: letters shared by the pair are batch axes of ``dot_general``
when still needed afterwards and contracted otherwise.  A final transpose
puts the letters in the requested order.  Ellipsis (``...``) is supported
by naming the broadcast axes with letters of their own.
"""
from __future__ import annotations

import string

import numpy as _np

from .. import lax as P
from .base import _operand, result_dtype, _shape, _to
from .indexing import diagonal
from .reductions import sum

_LETTERS = string.ascii_letters
# NumPy's labels for integers in sublists: 0-25 are A-Z, 26-51 a-z, so the
# implicit output (letters sorted) follows the integers' order
_SUBLIST_LETTERS = string.ascii_uppercase + string.ascii_lowercase


def einsum(subscripts, *operands, optimize=False, dtype=None, out=None, **kwargs):
    if out is not None:
        raise TypeError("jitgrad does not support out=; assign the result instead (out[...] = f(x))")
    if not isinstance(subscripts, str):
        subscripts, operands = _from_sublists((subscripts, *operands))
    ops = [_operand(x) for x in operands]
    ins, outs = _parse(subscripts.replace(" ", ""), [len(_shape(x)) for x in ops])
    if len(ins) != len(ops):
        raise ValueError(f"einsum: {len(ins)} operands in the subscripts, {len(ops)} given")
    dt = _np.dtype(dtype) if dtype is not None else result_dtype(*ops)
    sizes = {}
    for term, x in zip(ins, ops):
        for letter, n in zip(term, _shape(x)):
            if sizes.setdefault(letter, n) != n:
                if n != 1 and sizes[letter] != 1:
                    raise ValueError(f"einsum: letter '{letter}' has sizes {sizes[letter]} and {n}")
                sizes[letter] = max(sizes[letter], n)
    terms = []
    for k, (term, x) in enumerate(zip(ins, ops)):
        x = _to(x, dt, _shape(x))
        x, term = _broadcast_ones(x, term, sizes)
        x, term = _take_diagonals(x, term)
        needed = set(outs).union(*[set(t) for j, t in enumerate(ins) if j != k])
        x, term = _sum_out(x, term, needed)
        terms.append((x, term))
    x, term = terms[0]
    for k, (y, yterm) in enumerate(terms[1:], start=1):
        later = set(outs).union(*[set(t) for _, t in terms[k + 1:]])
        x, term = _pair(x, term, y, yterm, later)
    x, term = _sum_out(x, term, set(outs))
    return P.transpose(x, tuple(term.index(c) for c in outs)) if term != outs else x


def _from_sublists(args):
    """NumPy's second form ``einsum(x, [0, 1], y, [1, 2], [0, 2])`` (axis
    labels as integers below 52 or Ellipsis, an optional output list last) as
    ``("ab,bc->ac", (x, y))``."""
    def term(sub):
        letters = []
        for s in sub:
            if s is Ellipsis:
                letters.append("...")
            elif isinstance(s, (int, _np.integer)) and not isinstance(s, bool) and 0 <= s < 52:
                letters.append(_SUBLIST_LETTERS[s])
            else:
                raise ValueError(f"einsum: subscript labels are integers in [0, 52) or Ellipsis, got {s!r}")
        return "".join(letters)
    pairs = len(args) // 2
    ins = ",".join(term(args[2 * k + 1]) for k in range(pairs))
    out = f"->{term(args[-1])}" if len(args) % 2 else ""
    return ins + out, args[0:2 * pairs:2]


def _parse(subscripts, ndims):
    """Input terms and the output term, with ``...`` replaced by fresh letters."""
    if "->" in subscripts:
        lhs, out = subscripts.split("->")
    else:
        lhs, out = subscripts, None
    terms = lhs.split(",")
    used = set(subscripts) - set(".,->")
    fresh = [c for c in _LETTERS if c not in used]
    n_ell = max([nd - len(t.replace("...", "")) for t, nd in zip(terms, ndims) if "..." in t],
                default=0)
    ell = "".join(fresh[:n_ell])
    ins = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            k = nd - len(t.replace("...", ""))
            t = t.replace("...", ell[n_ell - k:])
        if len(t) != nd or not all(c in _LETTERS for c in t):
            raise ValueError(f"einsum: subscripts '{t}' do not match an operand with {nd} axes")
        ins.append(t)
    if out is None:       # implicit form: letters seen once, alphabetically (after the ellipsis)
        counts = {}
        for t in ins:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return ins, out


def _broadcast_ones(x, term, sizes):
    """Stretch size-1 axes whose letter has a larger size elsewhere."""
    shape = _shape(x)
    want = tuple(sizes[c] for c in term)
    if shape != want:
        x = P.broadcast_in_dim(x, want, tuple(range(len(want))))
    return x, term


def _take_diagonals(x, term):
    while len(set(term)) < len(term):
        c = next(c for c in term if term.count(c) > 1)
        i = term.index(c)
        j = term.index(c, i + 1)
        x = diagonal(x, 0, i, j)              # the shared axis goes last
        term = "".join(t for k, t in enumerate(term) if k not in (i, j)) + c
    return x, term


def _sum_out(x, term, needed):
    axes = tuple(i for i, c in enumerate(term) if c not in needed)
    if not axes:
        return x, term
    return sum(x, axis=axes), "".join(c for c in term if c in needed)


def _pair(x, xt, y, yt, later):
    shared = [c for c in xt if c in yt]
    batch = [c for c in shared if c in later]
    contract = [c for c in shared if c not in later]
    pos = lambda term, letters: tuple(term.index(c) for c in letters)
    out = P.dot_general(x, y, (pos(xt, contract), pos(yt, contract)),
                        (pos(xt, batch), pos(yt, batch)))
    # dot_general's layout: batch letters, then x's free letters, then y's
    term = "".join(batch) + "".join(c for c in xt if c not in shared) + \
        "".join(c for c in yt if c not in shared)
    return out, term
