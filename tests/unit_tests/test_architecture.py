"""The package's shape: no import cycles, and small modules.

The import graph is read from the source with :mod:`ast`, so it holds every import a module
can run: at module level and inside functions (a lazy import still ties two modules together),
but not under ``if TYPE_CHECKING:``, which never runs. An edge goes to the module an import
names (``from langchain_tasb.encoding import pool`` names ``encoding.pool``); the parent
packages Python initialises on the way are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_tasb

PACKAGE_DIR = Path(langchain_tasb.__file__).parent
PACKAGE = "langchain_tasb"
MAX_LINES = 400


def module_names(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[list[str]]:
    """For each name an import statement loads, the dotted names it may be, best first.

    ``from a.b import c`` loads ``a.b.c`` if that is a module, else (``c`` is a name in it)
    ``a.b``.
    """
    if isinstance(node, ast.Import):
        return [[alias.name] for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    return [[f"{source}.{alias.name}", source] for alias in node.names]


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[list[str]]:
    """Every name imported anywhere in ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    found: list[list[str]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        found.extend(_imported_names(node, module, is_package))
        pending.extend(ast.iter_child_nodes(node))
    return found


def _deepest_module(dotted: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``dotted`` that is one of ``modules`` ("" when none is)."""
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (the deepest module each import names)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for candidates in _imports(tree, name, path.name == "__init__.py"):
            exact = (c for c in candidates if c in modules)
            target = next(exact, _deepest_module(candidates[-1], modules))
            if target and target != name:
                graph[name].add(target)
    return graph


def import_groups(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of two or more modules that import each other (directly or not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the package is small
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each group of :func:`import_groups`."""
    return [_cycle_in(graph, group) for group in import_groups(graph)]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, within the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    return sorted(group)  # pragma: no cover - a strongly connected group always has a cycle


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def oversized_modules(prefix: str = PACKAGE, limit: int = MAX_LINES) -> dict[str, int]:
    """Modules under ``prefix`` longer than ``limit`` lines, with their lengths."""
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in module_names().items()
        if _within(name, prefix)
    }
    return {name: lines for name, lines in lengths.items() if lines > limit}


def test_the_package_has_no_import_cycle() -> None:
    cycles = import_cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_lazy_and_relative_imports_but_not_type_checking_ones(
    tmp_path: Path,
) -> None:
    root = tmp_path / PACKAGE
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from . import b\n")
    (root / "a.py").write_text("def f():\n    from langchain_tasb.sub import b\n")
    (root / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from langchain_tasb import d\n"
        "else:\n    import langchain_tasb.c\n"
        "from .. import a\n"
    )
    (root / "c.py").write_text("import os\n")
    (root / "d.py").write_text("from langchain_tasb.sub.b import x\n")
    graph = import_graph(root)
    assert graph == {
        PACKAGE: set(),
        f"{PACKAGE}.a": {f"{PACKAGE}.sub.b"},
        f"{PACKAGE}.c": set(),
        f"{PACKAGE}.d": {f"{PACKAGE}.sub.b"},
        f"{PACKAGE}.sub": {f"{PACKAGE}.sub.b"},
        f"{PACKAGE}.sub.b": {f"{PACKAGE}.a", f"{PACKAGE}.c"},
    }
    assert import_cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.sub.b", f"{PACKAGE}.a"]]


def test_the_graph_of_the_package_is_read() -> None:
    graph = import_graph()
    encoding = f"{PACKAGE}.encoding"
    assert f"{encoding}.types" in graph[f"{encoding}.torch_backend"]
    assert f"{encoding}.onnx_backend" in graph[f"{encoding}.selection"]
    assert f"{encoding}.pool" in graph[f"{encoding}.model"]  # a lazy import
    # The LangChain store and retriever reach the core collection and the one search.
    assert f"{PACKAGE}.collection" in graph[f"{PACKAGE}.vectorstore"]
    assert f"{PACKAGE}.search" in graph[f"{PACKAGE}.vectorstore"]


def test_every_module_stays_small() -> None:
    oversized = oversized_modules()
    assert oversized == {}, f"modules over {MAX_LINES} lines; split each by concept: " + ", ".join(
        f"{name} ({lines} lines)" for name, lines in sorted(oversized.items())
    )


def test_unit_tests_mirror_the_package() -> None:
    """Each folder of unit tests is named after the subpackage it tests."""
    here = Path(__file__).parent
    folders = {p.name for p in here.iterdir() if p.is_dir() and p.name != "__pycache__"}
    subpackages = {p.parent.name for p in PACKAGE_DIR.glob("*/__init__.py")}
    assert folders <= subpackages, sorted(folders - subpackages)
    assert {"chroma", "encoding", "ingest", "evaluation", "hybrid", "cli"} <= folders
