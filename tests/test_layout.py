"""The package's shape: folders are the pipeline's stages and imports run one way.

Read statically from the source (every ``import``, at module level or inside
a function), so the rules hold whatever order modules are first imported in:

- no module imports, directly or through others, a module that imports it;
- a stage imports only the stages below it (``ALLOWED``);
- no private name (``_x``) is imported from another folder.
"""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "jitgrad"

# stage -> the stages it may import (itself included).  The top-level modules
# (jitgrad/__init__.py and the public re-export paths) may import anything.
ALLOWED = {
    "core": {"core"},
    "lax": {"core", "lax"},
    "transforms": {"core", "lax", "transforms"},
    "numpy": {"core", "lax", "numpy"},
    "backend": {"core", "backend", "version"},
    "api": {"core", "lax", "transforms", "numpy", "backend", "api"},
    "tape": {"core", "lax", "transforms", "numpy", "backend", "api", "tape"},
    # the TensorFlow-compatible namespace, on top of the tape
    "tf": {"core", "lax", "transforms", "numpy", "backend", "api", "tape", "tf"},
}


def _modules():
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = (path, parts[-1] == "__init__")
    return mods


MODULES = _modules()


def _imports(name):
    """(imported module, imported names) for every import statement of ``name``."""
    path, is_pkg = MODULES[name]
    package = name if is_pkg else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("jitgrad"):
                continue
            for alias in node.names:          # ``from pkg import module`` imports the module
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    out.append((sub, ()))
                else:
                    out.append((target, (alias.name,)))
        elif isinstance(node, ast.Import):
            out += [(a.name, ()) for a in node.names if a.name.startswith("jitgrad")]
    return out


def _stage(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and (PKG / parts[1]).is_dir() else None


def _graph():
    return {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}


def test_no_import_cycles():
    graph = _graph()
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_stages_import_downward_only():
    bad = []
    for m in MODULES:
        stage = _stage(m)
        if stage is None:
            continue
        for t, _ in _imports(m):
            ts = _stage(t) or t.split(".")[-1]
            if ts not in ALLOWED[stage] and t != "jitgrad":
                bad.append(f"{m} imports {t}")
            if t == "jitgrad":
                bad.append(f"{m} imports the package root (upward)")
    assert not bad, "\n".join(bad)


def test_no_private_names_across_folders():
    bad = []
    for m in MODULES:
        path, _ = MODULES[m]
        imported = _imports(m)
        for t, names in imported:
            if _stage(t) != _stage(m):
                bad += [f"{m} imports {t}.{n}" for n in names if n.startswith("_") and n != "__version__"]
        # ``from ..lax import elementwise as P`` then ``P._helper``: private too
        tree = ast.parse(path.read_text())
        alias_of = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    target = [t for t, _ in imported if t.endswith("." + a.name)]
                    if target and _stage(target[0]) != _stage(m):
                        alias_of[a.asname or a.name] = target[0]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in alias_of and node.attr.startswith("_")):
                bad.append(f"{m} uses {alias_of[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(sorted(set(bad)))


@pytest.fixture(scope="module")
def loaded_by_the_package():
    """The modules that ``import jitgrad`` loads, in a fresh interpreter
    (which must succeed).  ``import jitgrad.a.b`` runs the package's
    ``__init__`` first, so for any of these modules, importing it first in a
    fresh interpreter is exactly this import: one interpreter checks them all."""
    code = "import sys, jitgrad; print(' '.join(m for m in sys.modules if m.split('.')[0] == 'jitgrad'))"
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=PKG.parent, capture_output=True,
                         text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports_first_in_a_fresh_interpreter(name, loaded_by_the_package):
    if name in loaded_by_the_package:
        return          # imported first (after the package's __init__) by the fixture's interpreter
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True, cwd=PKG.parent)


def test_the_package_loads_most_modules_itself(loaded_by_the_package):
    # (so that the shortcut above is taken, and the fixture saw the package)
    assert "jitgrad" in loaded_by_the_package and "jitgrad.api.functions" in loaded_by_the_package
    assert len(loaded_by_the_package & set(MODULES)) > len(MODULES) // 2
