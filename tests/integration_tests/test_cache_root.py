"""The BM25 index and the indexing manifests of a server collection live under the cache root."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.ingest import index_paths

pytestmark = pytest.mark.server


def test_bm25_cache_of_a_server_collection_honours_tasb_cache_dir(
    chroma_server: str,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_tasb.hybrid import LexicalIndex

    cache = tmp_path / "cache"
    monkeypatch.setenv("TASB_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    host, port = chroma_server.removeprefix("http://").split(":")
    name = f"bm25-{uuid.uuid4().hex[:8]}"
    store = TasbVectorStore(
        embedding=tiny_embeddings, collection_name=name, host=host, port=int(port)
    )
    store.add_texts(["rotate the logs daily", "the protein binds the cell"])

    index = LexicalIndex(store)
    assert index.refresh() == "built"
    assert index.directory is not None
    assert index.directory.parent.parent == cache / "bm25"
    assert index.directory.name == name
    assert [p.name for p in index.directory.iterdir() if not p.name.startswith(".")]
    assert not (tmp_path / "xdg").exists()
    assert index.search("logs", k=1)[0][1] > 0


def test_manifest_of_a_server_collection_lives_under_tasb_cache_dir(
    chroma_server: str,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TASB_CACHE_DIR", str(cache))
    host, port = chroma_server.removeprefix("http://").split(":")
    name = f"manifest-{uuid.uuid4().hex[:8]}"
    store = TasbVectorStore(
        embedding=tiny_embeddings, collection_name=name, host=host, port=int(port)
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("rotate the logs daily")
    (docs / "b.md").write_text("the protein binds the cell")

    assert index_paths(store, [docs]).files_indexed == 2
    again = index_paths(store, [docs])

    assert (again.files_unchanged, again.files_not_read) == (2, 2)
    [manifest] = (cache / "manifests").glob(f"*/{name}/*.json")
    assert manifest.parent.parent.name.startswith(f"{host}_{port}")
