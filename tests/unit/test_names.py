"""One name, one meaning: no class name is defined twice in tui/, and no module of tui/core imports in a circle.

Both read the source with `ast` (nothing is imported), so they hold for code no test runs.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Import circles inside tui/core that are known and not yet broken, each as its sorted list of modules. Keep it
# empty: a new circle is broken where it starts (a protocol, or the shared part moved one level down).
ALLOWED_CYCLES: list[list[str]] = []


def _modules(package: Path, root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _class_names(path: Path) -> list[tuple[str, int]]:
    """The classes a module defines at its top level (inside module-level `if`/`try` blocks too); a class nested in
    a class or a function is named through its owner (`VolumesScreen.Request`), so it is not counted."""
    out: list[tuple[str, int]] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                out.append((node.name, node.lineno))
            elif isinstance(node, ast.If | ast.Try):
                for block in (node.body, node.orelse, getattr(node, "finalbody", []),
                              *(h.body for h in getattr(node, "handlers", []))):
                    visit(block)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)).body)
    return out


def duplicate_class_names(package: Path, root: Path = ROOT) -> dict[str, list[str]]:
    where: dict[str, list[str]] = defaultdict(list)
    for path in _modules(package, root).values():
        for name, line in _class_names(path):
            where[name].append(f"{path.relative_to(root)}:{line}")
    return {name: places for name, places in sorted(where.items()) if len(places) > 1}


def import_graph(package: Path, root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports anywhere in its source: at the top, inside functions, and under
    `if TYPE_CHECKING:`. `from pkg import mod` counts as importing `pkg.mod` (not `pkg`)."""
    modules = _modules(package, root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        resolved = set()
        for target in targets:
            while target and target not in modules:  # `a.b.C` (a class) -> the module `a.b`
                target = target.rpartition(".")[0]
            if target and target != name:
                resolved.add(target)
        graph[name] = resolved
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted: every circle lies in one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    return "\n".join(f"  {m} -> {', '.join(sorted(graph[m] & members))}" for m in component)


def test_no_class_name_is_defined_twice_in_tui() -> None:
    dupes = duplicate_class_names(ROOT / "tui")
    assert dupes == {}, "class names defined twice (rename one to say what it is):\n" + "\n".join(
        f"  {name}: {', '.join(places)}" for name, places in dupes.items())


def test_no_module_of_the_core_imports_in_a_circle() -> None:
    graph = import_graph(ROOT / "tui" / "core")
    assert "tui.core.manager" in graph and "tui.core.options" in graph["tui.core.jupyter.servers"]  # it sees them
    found = [c for c in cycles(graph) if c not in ALLOWED_CYCLES]
    assert found == [], "import circles in tui/core (TYPE_CHECKING imports included):\n" + "\n\n".join(
        _describe(c, graph) for c in found)


def test_the_scanners_see_a_duplicate_and_a_circle(tmp_path: Path) -> None:
    """The two checks above can fail: a made-up package with both defects is caught by both scanners."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import b\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.b import B\n"
                              "class Same:\n    class Nested: ...\n")
    (pkg / "sub" / "b.py").write_text("class B: ...\nclass Same: ...\nclass Nested: ...\n"
                                      "def f():\n    from ..a import Same\n")
    assert list(duplicate_class_names(pkg, tmp_path)) == ["Same"]
    graph = import_graph(pkg, tmp_path)
    assert graph["pkg.sub"] == {"pkg.sub.b"}  # `from pkg.sub import b` imports the module b, not the package
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
