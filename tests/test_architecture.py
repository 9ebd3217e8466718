"""The package's shape, read with `ast`: imports between adapt's modules form no cycle (imports inside functions
count; `TYPE_CHECKING` imports do not), the lower layers never look a task up in the registry, no function is over
60 lines, and the Tuner stays a small loop."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adapt"
# the modules below the doors: they receive their task's spec, never look it up by name
LOWER = ("tuner", "easy", "data", "engine", "inference", "modelio", "hub", "adapters", "card", "fastcopy", "utils",
         "publish", "loading")
REGISTRY_CALLS = {"get_task", "all_tasks", "task_for_folder"}
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, outside `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (i for child in node.orelse for i in _imports(child))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _package_of(module: str, is_package: bool) -> list[str]:
    parts = module.split(".") if module else []
    return parts if is_package else parts[:-1]


def _targets(module: str, node: ast.Import | ast.ImportFrom, names: set[str], is_package: bool) -> set[str]:
    """The adapt modules an import statement in `module` reaches (a `from . import x` reaches `x` if it is one)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("adapt."):
                found.add(alias.name.removeprefix("adapt."))
        return found & names
    if node.level:
        base = _package_of(module, is_package)[: len(_package_of(module, is_package)) - (node.level - 1)]
    elif (node.module or "").startswith("adapt"):
        base = []
        node = ast.ImportFrom(module=(node.module or "").removeprefix("adapt").lstrip("."), names=node.names, level=1)
    else:
        return found
    stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
    for alias in node.names:
        full = f"{stem}.{alias.name}" if stem else alias.name
        found.add(full if full in names else stem)
    return {f for f in found if f in names}


def import_graph() -> dict[str, set[str]]:
    trees = _modules()
    names = set(trees)
    packages = {n for n in names if (PACKAGE / Path(*n.split(".")) / "__init__.py").exists() or n == ""}
    graph: dict[str, set[str]] = {}
    for name, tree in trees.items():
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(name, node, names, name in packages)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_import_cycle_among_adapt_modules() -> None:
    graph = import_graph()
    # the package facade and the doors sit on top: everything below them must form a DAG
    below = {m: {t for t in edges if t != ""} for m, edges in graph.items() if m != ""}
    assert cycles(below) == []


def test_the_lower_layers_never_look_a_task_up_by_name() -> None:
    offenders = []
    for name, tree in _modules().items():
        if name not in LOWER:
            continue
        for node in ast.walk(tree):
            called = node.func if isinstance(node, ast.Call) else None
            ident = getattr(called, "id", None) or getattr(called, "attr", None)
            if ident in REGISTRY_CALLS:
                offenders.append(f"{name}:{node.lineno} {ident}")
    assert offenders == []


def test_no_function_is_over_60_lines() -> None:
    long = [f"{name}.{fn.name} ({fn.end_lineno - fn.lineno + 1})" for name, tree in _modules().items()
            for fn in _functions(tree) if fn.end_lineno and fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_tuner_is_a_small_loop() -> None:
    source = (PACKAGE / "tuner.py").read_text()
    tree = ast.parse(source)
    tuner = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tuner")
    tune = next(n for n in tuner.body if isinstance(n, ast.FunctionDef) and n.name == "tune")
    assert len(source.splitlines()) <= 650
    assert tuner.end_lineno is not None and tuner.end_lineno - tuner.lineno + 1 <= 550
    assert tune.end_lineno is not None and tune.end_lineno - tune.lineno + 1 <= 40


@pytest.mark.parametrize("module", ["utils", "versions"])
def test_the_version_is_not_read_from_the_facade(module: str) -> None:
    tree = _modules()[module]
    for node in _imports(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            assert "__version__" not in {a.name for a in node.names}
