"""The core runs with no framework installed: LangChain, LlamaIndex and MCP blocked at import.

A fresh interpreter gets a meta-path finder that raises ``ImportError`` for every framework
package, imports each core module, then indexes and searches a few texts with the tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit_tests.test_architecture import PACKAGE, module_names

FRAMEWORKS = ("langchain", "langchain_core", "langchain_community", "llama_index", "mcp")
"""Top-level packages the core may not import (``mcp_types`` is the MCP SDK's too)."""
BLOCKED = (*FRAMEWORKS, "mcp_types")

SKINS = (
    f"{PACKAGE}.embeddings",
    f"{PACKAGE}.vectorstore",
    f"{PACKAGE}.tools",
    f"{PACKAGE}.llama_index",
    f"{PACKAGE}.mcp_server",
    f"{PACKAGE}.cli.mcp",
)
"""The framework skins; every other module of the package is core or framework-free."""


def is_skin(module: str) -> bool:
    """Whether ``module`` belongs to a framework skin."""
    return any(module == skin or module.startswith(f"{skin}.") for skin in SKINS)


def core_modules() -> list[str]:
    """Every module of the package outside the skins (``__main__`` runs the CLI: left out)."""
    return sorted(
        name for name in module_names() if not is_skin(name) and not name.endswith("__main__")
    )


_SCRIPT = """
import importlib, importlib.abc, json, sys, tempfile

BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the core must not import it")
        return None

sys.meta_path.insert(0, Block())
for module in json.loads(sys.argv[2]):
    importlib.import_module(module)

from langchain_tasb.collection import TasbCollection
from langchain_tasb.collection import Connection
from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.search import SearchSettings

model = TasbModel(model_name=sys.argv[3], backend="torch", device="cpu")
with tempfile.TemporaryDirectory() as folder:
    collection = TasbCollection(model, "core", connection=Connection(persist_directory=folder))
    ids = collection.add_texts(
        ["rotate the logs daily", "the moon pulls the tides", "London has nine million people"],
        [{"source": "a"}, {"source": "b"}, {"source": "c"}],
    )
    hits = collection.search(SearchSettings(k=2), query="how many people live in London")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"ids": ids, "hits": [[h.id, h.score, h.relevance] for h in hits],
                      "loaded": loaded}))
"""


def test_the_core_imports_and_searches_with_every_framework_blocked(
    tiny_model_path: Path,
) -> None:
    modules = core_modules()
    assert f"{PACKAGE}.collection" in modules
    assert f"{PACKAGE}.search" in modules
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            ",".join(BLOCKED),
            json.dumps(modules),
            str(tiny_model_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(out["ids"]) == 3
    assert len(out["hits"]) == 2
    assert {hit[0] for hit in out["hits"]} <= set(out["ids"])
    assert out["hits"][0][1] >= out["hits"][1][1]  # best first by dot product
    assert all(0.0 <= hit[2] <= 1.0 for hit in out["hits"])
    assert out["loaded"] == []


def test_the_block_would_catch_a_skin(tiny_model_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            ",".join(BLOCKED),
            json.dumps([f"{PACKAGE}.vectorstore"]),
            str(tiny_model_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "langchain_core" in result.stderr
    assert "is blocked" in result.stderr
