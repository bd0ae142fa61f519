"""The package's shape: imports run one way (no circle, function-level and type-checking
imports included), the top level stays small, and each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import lstmlab

ROOT = Path(lstmlab.__file__).parent

# Each subpackage and the ones it may import (its own modules aside); the order of the docs.
ALLOWED = {
    "nn": set(),
    "kernels": {"nn"},
    "data": {"nn"},
    "models": {"nn", "data"},
    "train": {"nn", "data", "models"},
    "viz": {"nn", "data", "models"},
    "study": {"nn", "data", "models", "train", "viz"},
    "cli": {"nn", "kernels", "data", "models", "train", "viz", "study"},
}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the lstmlab modules its import statements name, wherever they stand. ``from
    package import module`` names the module; ``from module import name`` names the module."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package[: len(package) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            else:
                continue
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), plus self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_circle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_top_level_has_at_most_ten_entries():
    entries = [
        p.name
        for p in ROOT.iterdir()
        if p.name != "__pycache__" and (p.suffix == ".py" or (p / "__init__.py").exists())
    ]
    assert len(entries) <= 10, entries
    assert set(ALLOWED) | {"__init__.py"} == set(entries)


def test_layers_import_only_the_layers_below():
    graph = import_graph()
    wrong = []
    for module, targets in graph.items():
        parts = module.split(".")
        if len(parts) < 2:
            continue
        for target in targets:
            other = target.split(".")
            if len(other) < 2 or other[1] == parts[1]:
                continue  # the package's own modules, or lstmlab itself
            if other[1] not in ALLOWED[parts[1]]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_cells_import_no_runner_layer_or_kernel():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("lstmlab.nn.cells"):
            assert all(
                t.startswith(("lstmlab.nn.cells", "lstmlab.nn._checks", "lstmlab.nn.dispatch"))
                for t in targets
            ), (module, targets)


def test_every_subpackage_says_what_it_is():
    for path in ROOT.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 60, path
