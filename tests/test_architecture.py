"""The package's rooms and its one-way flow (ARCHITECTURE.md): no import runs back up the
pipeline, and no two modules import each other, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: the rooms in the order data flows through them; a module may import its own room or earlier
ROOMS = (
    ("tcdn", "tcdn.errors", "tcdn._lazy", "tcdn.device", "tcdn.outputs", "tcdn.runlock"),
    ("tcdn.data",),
    ("tcdn.losses", "tcdn.models", "tcdn.augment"),
    ("tcdn.training",),
    ("tcdn.features",),
    ("tcdn.discovery",),
    ("tcdn.transfer",),
    ("tcdn.report",),
    ("tcdn.search", "tcdn.search_index"),
    ("tcdn.flows",),
    ("tcdn.experiment",),
    ("tcdn.sweep", "tcdn.demo"),
    ("tcdn.cli", "tcdn.__main__"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "tcdn").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _room(module: str) -> int:
    best, rank = "", -1
    for i, names in enumerate(ROOMS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, rank = name, i
    assert rank >= 0, f"{module} is in no room: add it to ROOMS and ARCHITECTURE.md"
    return rank


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every tcdn module each module imports, at module level or inside a function; imports
    only for type checkers (``if TYPE_CHECKING:``) do not run and are left out."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for c in candidates:
                while c and c not in modules:
                    c = c.rpartition(".")[0]
                if c and c != name and not c.startswith(name + "."):
                    targets.add(c)
        graph[name] = targets
    return graph


GRAPH = _imports(_modules())


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_runs_back_up_the_pipeline(module: str) -> None:
    back = sorted(t for t in GRAPH[module] if _room(t) > _room(module))
    assert not back, f"{module} imports {back}, which come later in the pipeline"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
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
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


#: the most lines a module may have, and a function outside the argument parsers
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100
#: functions that only declare a command's options (a long, flat list is their nature)
PARSERS = ("add_parser",)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_modules_and_functions_stay_readable(module: str) -> None:
    """No module over 600 lines, no function over 100 (argument parsers aside): each file reads
    top to bottom, each function in one screen or two."""
    path = _modules()[module]
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path} has {lines} lines: split it along a seam"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name not in PARSERS
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path}: {', '.join(long)}: split into named steps"
