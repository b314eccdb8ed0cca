"""The package's shape, read from its source with `ast`: imports run one way (down the layers),
no module waits on itself through a loop, other packages' private modules stay private, and no
source file outgrows one screenful of ideas."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# Bottom to top: a room may import its own modules and any room of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"_version", "_cpu", "_signals", "_cache"},  # shared utilities, no cnnlab imports
    {"_pool", "config"},
    {"data", "models", "fusion"},
    {"training"},  # the loop: knows nothing of MLflow, Optuna or Hyperopt
    {"tracking"},  # MLflow, observing the loop through callbacks
    {"export"},  # models out of runs; its ModelLogger is one of the run's callbacks
    {"runs", "cluster"},  # one run end to end; Ray tasks on a cluster's nodes
    {"search"},
    {"reports"},  # reads what MLflow recorded, searches' findings included
    {"advisor", "study"},
    {"api"},
    {"cnnlab", "cli"},  # the package root (lazy re-exports) and the command line
]
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = ["cnnlab", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """cnnlab.search._space -> search; the CLI's command modules are the CLI's."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "cnnlab"
    return "cli" if name == "_commands" else name


def imports(path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every cnnlab import in the file, those inside functions too:
    a lazy import is still a dependency; imports under `if TYPE_CHECKING:` are for annotations
    and never run, so they are left out."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n) for block in ast.walk(tree) if _type_checking(block) for n in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:  # names for annotations: nothing is imported at run time
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("cnnlab")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if not base.startswith("cnnlab"):
                continue
            # `from cnnlab.x import _module` depends on the module, not on what x re-exports
            modules = [f"{base}.{a.name}" for a in node.names if is_module(f"{base}.{a.name}")]
            if len(modules) < len(node.names):
                found.append((base, node.lineno))
            found += [(m, node.lineno) for m in modules]
    return found


def _type_checking(node: ast.AST) -> bool:
    """An `if TYPE_CHECKING:` block."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


SOURCES = sorted(SRC.rglob("*.py"))
GRAPH = {module_name(p): {m for m, _ in imports(p) if is_module(m)} for p in SOURCES}


def test_every_room_has_a_layer():
    rooms = {room(m) for m in GRAPH}
    assert rooms <= set(LAYER), f"give these a layer in LAYERS: {sorted(rooms - set(LAYER))}"


def test_imports_run_down_the_layers():
    upward = [
        f"{p.relative_to(SRC)}:{line} imports {target} ({room(target)} is above {room(source)})"
        for p in SOURCES
        for source in [module_name(p)]
        for target, line in imports(p)
        if room(target) != room(source)
        and LAYER.get(room(target), len(LAYERS)) >= LAYER[room(source)]
    ]
    assert not upward, "\n".join(upward)


def test_no_private_module_of_another_package():
    """Top-level private modules (cnnlab._cpu, ...) are the shared utilities every layer may
    use; a package's private modules are its own."""
    leaks = [
        f"{p.relative_to(SRC)}:{line} imports {target}"
        for p in SOURCES
        for target, line in imports(p)
        if room(target) != room(module_name(p))
        and any(part.startswith("_") for part in target.split(".")[2:])
    ]
    assert not leaks, "\n".join(leaks)


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of the module graph (packages are modules: their
    __init__ imports what it re-exports); a component of two or more modules is a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loops():
    found = loops(GRAPH)
    assert not found, "import loops:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_source_files_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)}: {lines} lines, expected <= {MAX_LINES}"


def test_the_checker_sees_a_loop_and_an_upward_import(tmp_path, monkeypatch):
    """The checks can fail: a planted loop and a planted upward import are both caught."""
    pkg = tmp_path / "cnnlab"
    (pkg / "config").mkdir(parents=True)
    (pkg / "api").mkdir()
    files = {
        "config/__init__.py": "from cnnlab.config import _a\n",
        "config/_a.py": "def f():\n    from ._b import X\n",  # lazy and relative: still seen
        "config/_b.py": "from cnnlab.config._a import f\n",
        "data.py": "from cnnlab.api import _x\n",
        "fusion.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cnnlab.api\n",
        "api/__init__.py": "",
        "api/_x.py": "",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    monkeypatch.setattr(__import__(__name__), "SRC", pkg)
    graph = {module_name(p): {m for m, _ in imports(p) if is_module(m)} for p in pkg.rglob("*.py")}
    assert loops(graph) == [["cnnlab.config._a", "cnnlab.config._b"]]
    assert graph["cnnlab.data"] == {"cnnlab.api._x"}
    assert graph["cnnlab.fusion"] == set()  # annotations only
    assert LAYER[room("cnnlab.api._x")] > LAYER[room("cnnlab.data")]
