"""Every primitive declares the rules its kind needs, in its declared slots."""
import pytest

import jitgrad  # noqa: F401  (defines every primitive)
from jitgrad.core.primitive import PRIMITIVES, Primitive

# what each kind of primitive must have besides impl, shape, jvp and batch
BY_KIND = {"elementwise": ["code"], "reduce": ["code"], "opaque": ["code"], "view": ["index_map"], "call": [],
           "control": ["code", "partial_eval", "transpose"]}
# primitives that by design lack a rule, and why
EXEMPT = {
    ("custom_lin", "jvp"): "exists only between linearisation and transposition: never differentiated",
    ("while_back", "transpose"): "the reverse sweep of a while loop: never linear in its operands "
                                 "(a second reverse pass rewrites it with while loops: partial_eval)",
    ("concatenate", "code"): "the code generator writes it as one copy loop per operand "
                             "(backend.emit._emit_concatenate)",
    ("scan_revolve", "transpose"): "the binomial reverse sweep of a scan: never linear in its operands "
                                   "(a second reverse pass rewrites it as two scans: partial_eval)",
}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_declares_its_rules(name):
    p = PRIMITIVES[name]
    need = ["impl", "shape", "jvp", "batch"] + BY_KIND[p.kind]
    missing = [slot for slot in need if getattr(p, slot) is None and (name, slot) not in EXEMPT]
    assert not missing, f"primitive {name} ({p.kind}) has no {', '.join(missing)} rule"


def test_rule_slots_are_declared():
    p = PRIMITIVES["exp"]
    with pytest.raises(AttributeError):
        p.tranpose = lambda ct, x: [ct]           # a misspelt slot fails loudly
    with pytest.raises(ValueError, match="kind"):
        Primitive("not_a_primitive", "elementwize")


def test_missing_rule_error_names_primitive_and_rule():
    p = PRIMITIVES["exp"]
    with pytest.raises(NotImplementedError, match="'exp' has no transpose"):
        p.rule("transpose")
