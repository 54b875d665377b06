"""The BM25 index of hybrid search follows every writer: skins, ``tasb index``, raw chromadb,
other processes, and processes killed between the Chroma write and the BM25 write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.chroma import writer_lock
from langchain_tasb.hybrid import LexicalIndex, default_directory, sync
from tests.integration_tests.test_cli import tasb, write_doc

BASE = [f"notes on the {w} and other matters" for w in ("walrus", "falcon", "pelican", "lagoon")]


@pytest.fixture
def embeddings(tiny_model_path: Path) -> TasbEmbeddings:
    return TasbEmbeddings(model_name=str(tiny_model_path), backend="torch", device="cpu")


@pytest.fixture
def store(embeddings: TasbEmbeddings, tmp_path: Path) -> TasbVectorStore:
    s = TasbVectorStore(embedding=embeddings, persist_directory=str(tmp_path / "db"))
    s.add_texts(BASE, ids=[f"base-{i}" for i in range(len(BASE))])
    return s


def child(db: Path, model: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a new Python process with ``store`` open on ``db`` (collection tasb)."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from langchain_tasb import TasbEmbeddings, TasbVectorStore
        from langchain_tasb.hybrid.bm25 import Bm25Index
        emb = TasbEmbeddings(model_name={str(model)!r}, backend="torch", device="cpu")
        store = TasbVectorStore(embedding=emb, persist_directory={str(db)!r})
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )


def pending(store: TasbVectorStore) -> set[str]:
    directory = default_directory(store)
    assert directory is not None
    return set(json.loads((directory / "state.json").read_text())["pending"])


def bm25_ids(index: LexicalIndex, query: str) -> list[str]:
    return [i for i, _ in index.search(query, k=10)]


def test_a_write_killed_between_chroma_and_bm25_is_reconciled_with_the_exact_ids(
    store: TasbVectorStore, tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = LexicalIndex(store)
    assert index.refresh() == "built"
    writer_lock.release(tmp_path / "db")  # one writer process at a time: the children write

    added = child(
        tmp_path / "db",
        tiny_model_path,
        """
        Bm25Index.apply = die  # Chroma has the write; the BM25 side never gets it
        store.add_texts(["the zircon at dawn", "zircon again"], ids=["new-1", "new-2"])
        """,
    )
    assert added.returncode == -signal.SIGKILL, added.stderr
    assert pending(store) == {"new-1", "new-2"}
    assert set(store.store.existing_ids(["new-1", "new-2"])) == {"new-1", "new-2"}

    def no_rebuild(*args: Any, **kwargs: Any) -> None:
        msg = "rebuilt the whole index instead of re-reading the journalled ids"
        raise AssertionError(msg)

    monkeypatch.setattr(sync.Core, "rebuild", no_rebuild)
    assert index.refresh() == "updated"
    assert sorted(bm25_ids(index, "zircon")) == ["new-1", "new-2"]
    assert pending(store) == set()

    deleted = child(
        tmp_path / "db",
        tiny_model_path,
        """
        Bm25Index.apply = die
        store.delete(["base-0"])
        """,
    )
    assert deleted.returncode == -signal.SIGKILL, deleted.stderr
    assert pending(store) == {"base-0"}
    # A fresh process opening the store reconciles too (here: this one, through a new index).
    sync._CORES.clear()
    reopened = LexicalIndex(store)
    assert reopened.refresh() == "updated"
    assert bm25_ids(reopened, "walrus") == []
    assert bm25_ids(reopened, "falcon") == ["base-1"]


def test_writes_by_every_writer_reach_the_next_hybrid_search(
    store: TasbVectorStore,
    embeddings: TasbEmbeddings,
    tiny_model_path: Path,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    from llama_index.core.schema import TextNode

    from langchain_tasb.llama_index import TasbLlamaVectorStore

    index = LexicalIndex(store)
    index.refresh()
    hybrid = TasbRetriever(vectorstore=store, k=3, search_type="hybrid")

    # LangChain, in this process.
    [lc_id] = store.add_texts(["a quasar seen from langchain"])
    assert lc_id in {d.id for d in hybrid.invoke("quasar")}
    # LlamaIndex, on the same collection, through its own store object.
    llama = TasbLlamaVectorStore(
        persist_directory=str(tmp_path / "db"), collection_name="tasb", embedding=embeddings
    )
    llama.add([TextNode(id_="llama-1", text="a nebula seen from llamaindex")])
    assert "llama-1" in {d.id for d in hybrid.invoke("nebula")}
    # Other processes write below, one at a time, after this one gives up its writer lock.
    # Embedded Chroma's vector index is one process's: this one would need to reopen the
    # database to query their records densely, so from here on the BM25 side is checked alone.
    writer_lock.release(tmp_path / "db")
    other = child(tmp_path / "db", tiny_model_path, 'store.add_texts(["an obsidian"], ids=["p-1"])')
    assert other.returncode == 0, other.stderr
    assert index.refresh() == "current"  # that process updated the shared BM25 index itself
    assert bm25_ids(index, "obsidian") == ["p-1"]
    # A raw chromadb client in another process: no observer, found through the write log.
    dim = store.store.dimension or 32
    raw = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import chromadb; c = chromadb.PersistentClient(path={str(tmp_path / 'db')!r})."
            f"get_collection('tasb'); c.add(ids=['raw-1'], embeddings=[[0.0]*{dim}], "
            "documents=['a marimba played raw']); c.delete(ids=['base-1'])",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert raw.returncode == 0, raw.stderr
    assert index.refresh() == "updated"
    assert bm25_ids(index, "marimba") == ["raw-1"]
    assert bm25_ids(index, "falcon") == []
    # tasb index: new files, then a deleted file pruned and a renamed file moved.
    docs = tmp_path / "docs"
    write_doc(docs / "a.txt", ["the saffron harvest"])
    write_doc(docs / "b.txt", ["the cobalt mine"])
    tasb(tmp_path, env, "index", "docs", "--db", tmp_path / "db", "--quiet")
    [saffron] = bm25_ids(index, "saffron")
    assert store.get_by_ids([saffron])[0].page_content == "the saffron harvest"
    (docs / "a.txt").unlink()
    (docs / "b.txt").rename(docs / "c.txt")
    tasb(tmp_path, env, "index", "docs", "--db", tmp_path / "db", "--prune", "--quiet")
    assert bm25_ids(index, "saffron") == []
    [cobalt] = bm25_ids(index, "cobalt")
    assert store.get_by_ids([cobalt])[0].metadata["source"] == "c.txt"
    assert index.refresh() == "current"
