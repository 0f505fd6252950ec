"""The architecture, enforced: rnr's packages form layers, and every import runs downward (docs/architecture.md).

The graph is read from the source with ``ast``: every ``import`` and ``from ... import`` of an rnr module, at
module level or inside a function. A unit is ``rnr.<first name>`` (``rnr.forecast.panel`` belongs to
``rnr.forecast``); a unit may import itself and the units of lower layers, never a unit of its own layer or above.
Importing ``rnr.core.rnn`` from outside ``rnr.core`` also runs ``rnr/core/__init__.py``, so that edge is counted.
An import inside a function is allowed only for a package outside rnr that is optional or heavy, with a comment
on its line that says so.
"""
import ast
from pathlib import Path

import pytest

import rnr

PACKAGE = Path(rnr.__file__).parent

# bottom to top; the same table is drawn in docs/architecture.md (a test below keeps the two equal)
LAYERS = [
    ("rnr._version", "rnr.base", "rnr.weights", "rnr.metrics", "rnr.core"),
    ("rnr.data",),
    ("rnr.nn",),
    ("rnr.training",),
    ("rnr.forecast", "rnr.sequences"),
    ("rnr.io", "rnr.export"),
    ("rnr.cli",),
    ("rnr", "rnr.__main__"),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def read_imports(root: Path) -> dict[str, list[tuple[str, int, bool, str]]]:
    """module -> [(imported rnr module, line, inside a function, the line's text)] for every module under root."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source, filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = []

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                targets = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:  # a relative import
                        base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1]
                                        + ([base] if base else []))
                    submodules = [f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in files]
                    # the package itself only where a name comes from its __init__ (rnr/__init__ runs first anyway)
                    targets = submodules + ([base] if len(submodules) < len(child.names) else [])
                for target in targets:
                    edges.append((target, child.lineno, in_function, lines[child.lineno - 1]))
                visit(child, nested)

        visit(tree, False)
        graph[name] = edges
    return graph


def rnr_edges(graph) -> dict[str, set[str]]:
    """module -> the rnr modules it makes Python run: each one named, and the __init__ of each package entered."""
    out = {}
    for name, edges in graph.items():
        targets = set()
        for target, *_ in edges:
            if target.split(".")[0] != "rnr":
                continue
            targets.add(target)
            parts = target.split(".")
            for k in range(2, len(parts)):  # the packages on the way, when entered from outside
                parent = ".".join(parts[:k])
                if not (name == parent or name.startswith(parent + ".")):
                    targets.add(parent)
        out[name] = {t for t in targets if t in graph and t != name}
    return out


def upward_imports(graph, layers) -> list[str]:
    layer_of = {u: i for i, units in enumerate(layers) for u in units}
    found = []
    for name, targets in rnr_edges(graph).items():
        for target in targets:
            a, b = unit(name), unit(target)
            if a == b:
                continue
            if a not in layer_of or b not in layer_of:
                found.append(f"{name} -> {target}: {a if a not in layer_of else b} is in no layer")
            elif layer_of[b] >= layer_of[a]:
                found.append(f"{name} -> {target}: layer {layer_of[a]} ({a}) imports layer {layer_of[b]} ({b})")
    return sorted(found)


def cycles(graph) -> list[list[str]]:
    """Every cycle's modules, one cycle per strongly connected component of more than one module (Tarjan)."""
    edges = rnr_edges(graph)
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def hidden_imports(graph) -> list[str]:
    """Imports inside functions that are of rnr itself, or that do not say which optional or heavy package they
    defer."""
    bad = []
    for name, edges in graph.items():
        for target, line, in_function, text in edges:
            if not in_function:
                continue
            if target.split(".")[0] == "rnr":
                bad.append(f"{name}:{line}: {target} imported inside a function")
            elif not any(word in text.split("#", 1)[-1] for word in ("optional", "heavy")) or "#" not in text:
                bad.append(f"{name}:{line}: {text.strip()!r} inside a function without a comment naming it optional "
                           f"or heavy")
    return bad


@pytest.fixture(scope="module")
def graph():
    return read_imports(PACKAGE)


def test_every_module_is_in_a_layer(graph):
    layered = {u for units in LAYERS for u in units}
    assert sorted({unit(m) for m in graph} - layered) == []


def test_imports_only_run_downward(graph):
    assert upward_imports(graph, LAYERS) == []


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_imports_inside_functions_only_defer_optional_or_heavy_packages(graph):
    assert hidden_imports(graph) == []


def test_the_checks_catch_an_upward_import_a_cycle_and_a_hidden_import(tmp_path):
    """A fixture package with one of each fault: the checks above must fail on it."""
    root = tmp_path / "rnr"
    for pkg in ("core", "forecast"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("from rnr.forecast import model\n")
    (root / "core" / "cells.py").write_text("from rnr.forecast.model import Forecaster  # upward\n")
    (root / "forecast" / "model.py").write_text("from rnr.core import cells\n\n\ndef f():\n    import pyarrow\n"
                                                "    from rnr.core import cells\n")
    fixture = read_imports(root)
    layers = [("rnr.core",), ("rnr.forecast",), ("rnr",)]
    assert upward_imports(fixture, layers) == [
        "rnr.core.cells -> rnr.forecast.model: layer 0 (rnr.core) imports layer 1 (rnr.forecast)",
        "rnr.core.cells -> rnr.forecast: layer 0 (rnr.core) imports layer 1 (rnr.forecast)"]
    assert cycles(fixture) == [["rnr.core.cells", "rnr.forecast.model"]]
    assert hidden_imports(fixture) == [
        "rnr.forecast.model:5: 'import pyarrow' inside a function without a comment naming it optional or heavy",
        "rnr.forecast.model:6: rnr.core.cells imported inside a function"]


def test_the_architecture_page_draws_the_same_layers():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    drawn = [tuple(u.strip(" `") for u in row.split("|")[2].split(",")) for row in rows]
    assert drawn == LAYERS
