"""Layering: ``vislens.analysis`` is pure statistics, and no two modules import each other.

Import-cycle rule (checked by parsing every module under src/vislens with ``ast``): every
``import`` statement counts — at module level, inside functions, and under
``if TYPE_CHECKING:``. A function-local import still means neither module can be read or
changed without the other, and a ``TYPE_CHECKING`` import still makes one module's types
part of the other's interface; deferring an import hides a loop from the interpreter, not
from a reader. An edge goes to the module named: ``from a.b import c`` points at ``a.b.c``
when that is a module of its own, else at ``a.b``; the parent packages that Python runs
on the way are not edges.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "vislens"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the vislens modules it imports anywhere in its source."""
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = name.split(".")
                    if not is_pkg:
                        base_parts = base_parts[:-1]
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    out.add(sub if sub in modules else base)
        edges[name] = {m for m in out if m in modules and m != name}
    return edges


def two_module_cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    return {frozenset({a, b}) for a, targets in edges.items() for b in targets if a in edges[b]}


def test_edges_see_function_local_and_type_checking_imports(tmp_path: Path) -> None:
    # the rule itself: a loop hidden in a function or under TYPE_CHECKING is still a loop
    fake = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py", "pkg.c": tmp_path / "c.py"}
    fake["pkg.a"].write_text("def f():\n    from pkg.b import thing\n")
    fake["pkg.b"].write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    fake["pkg.c"].write_text("import pkg.a\n")
    edges = import_edges(fake)
    assert edges == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    assert two_module_cycles(edges) == {frozenset({"pkg.a", "pkg.b"})}


def test_no_two_module_import_cycles() -> None:
    modules = _modules()
    edges = import_edges(modules)
    # the parser sees real edges (guards against a rule that silently finds nothing)
    assert "vislens.models.vlm.load" in edges["vislens.models.toy"]
    assert "vislens.human.transfer" in edges["vislens.human.compare"]
    cycles = two_module_cycles(edges)
    assert not cycles, sorted(sorted(c) for c in cycles)


def test_named_loops_are_gone() -> None:
    cycles = two_module_cycles(import_edges(_modules()))
    for pair in (  # the four loops issue 10 names
        ("vislens.app.annotate", "vislens.app.shell"),
        ("vislens.human.compare", "vislens.human.transfer"),
        ("vislens.models.toy", "vislens.models.vlm.load"),
        ("vislens.models.toy.tower", "vislens.models.toy.train"),
    ):
        assert frozenset(pair) not in cycles


def test_analysis_imports_no_model_code() -> None:
    # a fresh interpreter: importing every analysis module pulls in no model code
    names = sorted(n for n in _modules() if n.startswith("vislens.analysis"))
    assert "vislens.analysis.agreement" in names and "vislens.analysis.monosemanticity" in names
    code = (
        "import importlib, json, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SRC.parent
    )
    loaded = json.loads(out.stdout)
    banned = [
        m
        for m in loaded
        if m.startswith(("vislens.models", "vislens.sae", "torch", "transformers"))
        or m in ("vislens.store.extract",)
    ]
    assert banned == []
    assert not Path(PKG / "analysis" / "embeddings.py").exists()
