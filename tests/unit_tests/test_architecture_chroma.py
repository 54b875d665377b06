"""Only ``langchain_tasb/chroma/`` talks to chromadb: every other module goes through it.

The gateway is where the retry policy, the ``ip`` space, batching and paging live; a call
that reaches past it skips them. This test reads the source of every other module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import langchain_tasb

PACKAGE = Path(langchain_tasb.__file__).parent
GATEWAY = PACKAGE / "chroma"

# Methods of a chromadb client: no other object in the package has these names.
CLIENT_METHODS = {
    "PersistentClient",
    "EphemeralClient",
    "HttpClient",
    "CloudClient",
    "get_collection",
    "create_collection",
    "get_or_create_collection",
    "list_collections",
    "delete_collection",
    "get_max_batch_size",
    "get_settings",
    "clear_system_cache",
    "heartbeat",
}
# Methods of a chromadb collection, flagged when called on something named like one.
COLLECTION_METHODS = {
    "add",
    "count",
    "delete",
    "get",
    "modify",
    "peek",
    "query",
    "update",
    "upsert",
}


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return ""


def violations(source: str, filename: str) -> list[str]:
    """Every reach past the gateway in one module's source, as ``file:line: what``."""
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "chromadb":
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] == "chromadb":
                flag(node, f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute):
            # ``args.collection`` is the CLI's --collection option, a name, not a collection.
            owner = _name_of(node.value)
            if node.attr == "collection" and owner != "args":
                flag(node, f"{owner}.collection (a raw chromadb collection)")
            elif node.attr in CLIENT_METHODS:
                flag(node, f"{owner}.{node.attr} (a chromadb client method)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = _name_of(node.func.value)
            if node.func.attr in COLLECTION_METHODS and "collection" in owner.lower():
                flag(node, f"{owner}.{node.func.attr}() (a chromadb collection method)")
    return found


def outside_gateway() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if GATEWAY not in p.parents)


def test_no_module_outside_the_gateway_calls_chromadb() -> None:
    modules = outside_gateway()
    assert len(modules) > 20  # the walk found the package
    found = [
        v
        for path in modules
        for v in violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("import chromadb", "import chromadb"),
        ("import chromadb.errors as e", "import chromadb.errors"),
        ("from chromadb.errors import NotFoundError", "from chromadb.errors import"),
        ("x = store.store.collection.get(ids=[])", "store.collection"),
        ("self.collection.update(ids=i, metadatas=m)", "self.collection"),
        ("page = collection.get(limit=10)", "collection.get()"),
        ("n = info_collection.count()", "info_collection.count()"),
        ("client.list_collections()", "client.list_collections"),
        ("c = self.client.get_collection('x')", "client.get_collection"),
        ("step = client.get_max_batch_size()", "client.get_max_batch_size"),
        ("c = db.PersistentClient(path='x')", "db.PersistentClient"),
    ],
)
def test_each_kind_of_reach_past_the_gateway_is_caught(source: str, what: str) -> None:
    found = violations(source, "m.py")
    assert any(what in f and f.startswith("m.py:1: ") for f in found), found


@pytest.mark.parametrize(
    "source",
    [
        "value = metadata.get('path', '')",
        "stored.update({'a': 1}); counts.get('x')",
        "name = args.collection",
        "store.store.upsert(ids, texts, vectors)",
        "page = store.store.get_where({'root': r})",
        "hits = chroma.query(vector, 4)",
        "collection_name = 'x'",
    ],
)
def test_ordinary_code_is_not_flagged(source: str) -> None:
    assert violations(source, "m.py") == []
