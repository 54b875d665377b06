"""The core rule: core modules never import a framework skin or a framework.

Read from the source like the other architecture tests (lazy imports count, ``if
TYPE_CHECKING:`` ones do not); :mod:`tests.unit_tests.test_core_imports` checks the same
at run time, with the frameworks blocked.
"""

from __future__ import annotations

import ast

from tests.unit_tests.test_architecture import PACKAGE, _imports, import_graph, module_names
from tests.unit_tests.test_core_imports import FRAMEWORKS, core_modules, is_skin


def framework_imports() -> dict[str, set[str]]:
    """Core module -> the framework packages it imports."""
    modules = module_names()
    found: dict[str, set[str]] = {}
    for name in core_modules():
        path = modules[name]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for candidates in _imports(tree, name, path.name == "__init__.py"):
            top = candidates[-1].split(".")[0]
            if top in FRAMEWORKS or top == "mcp_types":
                found.setdefault(name, set()).add(top)
    return found


def test_no_core_module_imports_a_framework() -> None:
    assert framework_imports() == {}


def test_no_core_module_imports_a_skin() -> None:
    graph = import_graph()
    reaching = {
        name: sorted(target for target in graph[name] if is_skin(target)) for name in core_modules()
    }
    assert {name: skins for name, skins in reaching.items() if skins} == {}


def test_the_skins_are_what_the_rule_exempts() -> None:
    modules = set(module_names())
    assert f"{PACKAGE}.vectorstore" in modules
    assert is_skin(f"{PACKAGE}.llama_index.vector_store")
    assert not is_skin(f"{PACKAGE}.collection")
    assert not is_skin(f"{PACKAGE}.cli.search")
    # The graph of a skin does reach the frameworks (the rule reads real imports).
    assert f"{PACKAGE}.embeddings" in import_graph()[f"{PACKAGE}.vectorstore"]


LANGCHAIN_SKIN = ("embeddings", "vectorstore", "tools")


def test_the_other_skins_are_peers_of_the_langchain_skin() -> None:
    graph = import_graph()
    langchain_skin = {f"{PACKAGE}.{name}" for name in LANGCHAIN_SKIN}
    peers = [
        name
        for name in graph
        if name.startswith((f"{PACKAGE}.llama_index", f"{PACKAGE}.mcp_server", f"{PACKAGE}.cli"))
    ]
    assert peers
    reaching = {name: sorted(graph[name] & langchain_skin) for name in peers}
    assert {name: skins for name, skins in reaching.items() if skins} == {}
