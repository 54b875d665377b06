from __future__ import annotations

import json
import os
import random
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb import ingest as ingest_module
from langchain_tasb.cli.index import summary_lines
from langchain_tasb.ingest import (
    IndexProgress,
    chunk_id,
    default_root_id,
    index_paths,
    make_chunker,
)
from langchain_tasb.ingest import files as files_module
from langchain_tasb.ingest import pipeline as pipeline_module
from langchain_tasb.ingest import rows as rows_module
from langchain_tasb.ingest.chunking import TokenChunker
from langchain_tasb.testing import tiny_vocabulary

# Whole words of the tiny model's vocabulary: one token each.
WORDS = [w for w in tiny_vocabulary() if w.isalpha() and len(w) > 2]


class RecordingEmbeddings(Embeddings):
    """Delegates to the tiny model and records every text sent to ``embed_documents``."""

    def __init__(self, inner: TasbEmbeddings) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def __getattr__(self, name: str) -> Any:  # tokenizer, limits, similarity
        return getattr(self.inner, name)

    @property
    def embedded(self) -> list[str]:
        return [text for call in self.calls for text in call]


@pytest.fixture
def embeddings(tiny_embeddings: TasbEmbeddings) -> RecordingEmbeddings:
    return RecordingEmbeddings(tiny_embeddings)


@pytest.fixture
def store(embeddings: RecordingEmbeddings, collection_name: str) -> TasbVectorStore:
    store = TasbVectorStore(embedding=embeddings, collection_name=collection_name)
    embeddings.calls.clear()  # the probe and calibration texts
    return store


def paragraph(seed: int, words: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def stored(store: TasbVectorStore, **where: Any) -> dict[str, dict[str, Any]]:
    """id -> {"text", "metadata", "vector"} of the stored chunks (optionally filtered)."""
    kwargs: dict[str, Any] = {"include": ["documents", "metadatas", "embeddings"]}
    if where:
        kwargs["where"] = where
    got = store.store.collection.get(**kwargs)
    return {
        id_: {"text": doc, "metadata": meta, "vector": np.asarray(vec)}
        for id_, doc, meta, vec in zip(
            got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
        )
    }


def test_chunks_carry_relative_source_root_path_and_offsets(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    long_text = "\n\n".join(paragraph(i) for i in range(5))
    (docs / "long.md").write_text(long_text)
    # Leading whitespace: offsets must still point into the file itself.
    (docs / "sub" / "short.txt").write_text("\n\n   the data model\n")
    report = index_paths(store, [docs])

    chunks = stored(store)
    assert report.files_seen == 2
    assert report.files_indexed == 2
    assert report.chunks_written == len(chunks) > 2
    by_source: dict[str, list[dict[str, Any]]] = {}
    for id_, chunk in chunks.items():
        meta = chunk["metadata"]
        by_source.setdefault(meta["source"], []).append(chunk)
        assert meta["root"] == str(docs.resolve())
        assert meta["path"] == str((docs / meta["source"]).resolve())
        text = (docs / meta["source"]).read_text()
        assert text[meta["start"] : meta["end"]] == chunk["text"]
        assert meta["root_id"] == default_root_id(docs) == f"{socket.gethostname()}:{meta['root']}"
        assert id_ == chunk_id(meta["root_id"], meta["source"], "", chunk["text"], 0)
    assert sorted(by_source) == ["long.md", "sub/short.txt"]
    assert sorted(c["metadata"]["chunk"] for c in by_source["long.md"]) == list(
        range(len(by_source["long.md"]))
    )
    tokenizer = store.embeddings.encoder.tokenizer  # type: ignore[attr-defined]
    limit = store.embeddings.info.max_seq_length - 2  # type: ignore[attr-defined]
    for chunk in chunks.values():
        assert len(tokenizer(chunk["text"], add_special_tokens=False)["input_ids"]) <= limit


def test_rerun_on_unchanged_files_embeds_and_writes_nothing(
    store: TasbVectorStore, embeddings: RecordingEmbeddings, tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text("\n\n".join(paragraph(i) for i in range(4)))
    (tmp_path / "b.txt").write_text(paragraph(9))
    first = index_paths(store, [tmp_path])
    before = stored(store)
    embeddings.calls.clear()

    second = index_paths(store, [tmp_path])

    assert embeddings.calls == []
    assert not second.changed
    assert second.files_unchanged == 2
    assert second.files_indexed == 0
    assert second.chunks_written == 0
    assert second.chunks_unchanged == first.chunks_written == len(before)
    assert stored(store).keys() == before.keys()


def test_moved_chunk_keeps_its_vector_and_only_new_text_is_embedded(
    store: TasbVectorStore, embeddings: RecordingEmbeddings, tmp_path: Path
) -> None:
    # With no overlap, each paragraph (about 80 tokens; the limit is 126) is one chunk.
    paragraphs = [paragraph(i) for i in range(4)]
    path = tmp_path / "a.md"
    path.write_text("\n\n".join(paragraphs))
    index_paths(store, [tmp_path], overlap_tokens=0)
    before = stored(store)
    assert sorted(c["text"] for c in before.values()) == sorted(paragraphs)
    embeddings.calls.clear()

    # A paragraph inserted at the top moves every other one down; the third one is edited.
    inserted, edited = paragraph(100), paragraph(101)
    new = [inserted, paragraphs[0], paragraphs[1], edited, paragraphs[3]]
    path.write_text("\n\n".join(new))
    report = index_paths(store, [tmp_path], overlap_tokens=0)

    assert sorted(embeddings.embedded) == sorted([inserted, edited])
    assert report.chunks_written == 2
    assert report.chunks_moved == 3
    assert report.chunks_deleted == 1
    after = stored(store)
    assert sorted(c["text"] for c in after.values()) == sorted(new)
    text = path.read_text()
    for id_, chunk in after.items():
        meta = chunk["metadata"]
        assert text[meta["start"] : meta["end"]] == chunk["text"]
        assert meta["chunk"] == new.index(chunk["text"])
        if id_ in before:  # moved: same id, same vector, new position
            np.testing.assert_array_equal(chunk["vector"], before[id_]["vector"])
            assert meta["start"] != before[id_]["metadata"]["start"]
    assert not any(c["text"] == paragraphs[2] for c in after.values())


def test_identical_chunks_in_one_file_get_distinct_ids(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    same = paragraph(7)
    (tmp_path / "a.md").write_text("\n\n".join([same, paragraph(8), same, same]))
    index_paths(store, [tmp_path], overlap_tokens=0)
    chunks = stored(store)
    assert len(chunks) == 4
    assert sorted(c["metadata"]["chunk"] for c in chunks.values() if c["text"] == same) == [
        0,
        2,
        3,
    ]
    assert not index_paths(store, [tmp_path], overlap_tokens=0).changed


def test_same_file_under_two_roots_is_stored_once_per_root(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "readme.md").write_text("the same data model text")
    index_paths(store, [tmp_path / "one", tmp_path / "two"])
    roots = sorted(c["metadata"]["root"] for c in stored(store).values())
    assert roots == [str((tmp_path / "one").resolve()), str((tmp_path / "two").resolve())]
    assert not index_paths(store, [tmp_path / "one", tmp_path / "two"]).changed


def test_a_file_under_nested_roots_keeps_one_record_set_per_root(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    inner.mkdir(parents=True)
    (inner / "notes.md").write_text(paragraph(3))
    index_paths(store, [outer])
    index_paths(store, [inner])
    by_root = {c["metadata"]["root"]: c for c in stored(store).values()}
    assert sorted(by_root) == [str(outer.resolve()), str(inner.resolve())]
    assert {c["metadata"]["path"] for c in by_root.values()} == {
        str((inner / "notes.md").resolve())
    }
    # Each run sees the other root's records of the same path and must leave them alone.
    assert not index_paths(store, [inner], prune=True).changed
    assert not index_paths(store, [outer], prune=True).changed
    assert len(stored(store)) == 2


def test_prune_deletes_vanished_files_only_under_the_roots_indexed(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        root.mkdir()
        (root / "keep.md").write_text(paragraph(1))
        (root / "gone.md").write_text(paragraph(2))
    index_paths(store, [first, second])
    (first / "gone.md").unlink()
    (second / "gone.md").unlink()

    without = index_paths(store, [first])
    assert without.chunks_pruned == 0
    assert {c["metadata"]["source"] for c in stored(store, root=str(first.resolve())).values()} == {
        "keep.md",
        "gone.md",
    }

    report = index_paths(store, [first], prune=True)
    assert report.chunks_pruned == 1
    assert report.files_pruned == 1
    sources = {
        (Path(c["metadata"]["root"]).name, c["metadata"]["source"]) for c in stored(store).values()
    }
    assert sources == {("first", "keep.md"), ("second", "keep.md"), ("second", "gone.md")}


def test_prune_keeps_files_filtered_out_or_skipped_this_run(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text(paragraph(1))
    (tmp_path / "b.html").write_text(f"<p>{paragraph(2)}</p>")
    (tmp_path / "c.md").write_text(paragraph(3))
    (tmp_path / "d.md").write_text(paragraph(4))
    (tmp_path / "e.md").write_text(paragraph(5))
    index_paths(store, [tmp_path])
    (tmp_path / "c.md").write_bytes(b"now binary\x00")
    (tmp_path / "d.md").unlink()
    (tmp_path / "e.md").unlink()
    os.mkfifo(tmp_path / "e.md")  # not a regular file any more, but there

    excluded = index_paths(store, [tmp_path], exclude=["*.html"], prune=True)
    assert excluded.skipped.excluded == 1
    assert excluded.skipped.binary == 1
    assert (excluded.chunks_pruned, excluded.files_pruned) == (1, 1)  # d.md only
    assert {c["metadata"]["source"] for c in stored(store).values()} == {
        "a.md",
        "b.html",
        "c.md",
        "e.md",
    }
    included = index_paths(store, [tmp_path], include=["a.md"], prune=True)
    assert included.chunks_pruned == 0
    assert len(stored(store)) == 4


def test_prune_skips_a_root_with_a_folder_that_could_not_be_listed(
    store: TasbVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.md").write_text(paragraph(1))
    (tmp_path / "b.md").write_text(paragraph(2))
    (tmp_path / "gone.md").write_text(paragraph(3))
    index_paths(store, [tmp_path])
    (tmp_path / "gone.md").unlink()
    real_scandir = files_module.os.scandir
    locked = str((tmp_path / "locked").resolve())

    def refuse(path: Any) -> Any:  # the tests run as root, so chmod 000 would not stop it
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(files_module.os, "scandir", refuse)
    report = index_paths(store, [tmp_path], prune=True)

    assert report.chunks_pruned == 0
    assert report.prune_skipped == [str(tmp_path.resolve())]
    assert [(f.source, f.path) for f in report.failures] == [("locked", locked)]
    assert "cannot list" in report.failures[0].reason
    assert "Permission denied" in report.failures[0].reason
    assert {c["metadata"]["source"] for c in stored(store).values()} == {
        "locked/a.md",
        "b.md",
        "gone.md",
    }


def test_two_hosts_indexing_the_same_path_keep_each_others_chunks(
    store: TasbVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path.resolve())
    (tmp_path / "a.md").write_text(paragraph(1))
    (tmp_path / "b.md").write_text(paragraph(2))
    monkeypatch.setattr(socket, "gethostname", lambda: "alpha")
    first = index_paths(store, [tmp_path])
    # The same path on another machine holds other files.
    (tmp_path / "b.md").unlink()
    (tmp_path / "c.md").write_text(paragraph(3))
    monkeypatch.setattr(socket, "gethostname", lambda: "beta")
    second = index_paths(store, [tmp_path], prune=True)

    assert first.chunks_written == second.chunks_written == 2
    assert second.chunks_pruned == 0
    assert second.chunks_deleted == 0
    by_root = sorted(
        (c["metadata"]["root_id"], c["metadata"]["source"]) for c in stored(store).values()
    )
    assert by_root == [
        (f"alpha:{root}", "a.md"),
        (f"alpha:{root}", "b.md"),
        (f"beta:{root}", "a.md"),
        (f"beta:{root}", "c.md"),
    ]
    assert all(c["metadata"]["root"] == root for c in stored(store).values())


def test_a_given_root_id_names_the_root_and_keys_ids_and_prune(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / "a.md").write_text(paragraph(1))
    (one / "b.md").write_text(paragraph(2))
    index_paths(store, [one], root_id="handbook")
    chunks = stored(store)
    assert {c["metadata"]["root_id"] for c in chunks.values()} == {"handbook"}
    for id_, chunk in chunks.items():
        assert id_ == chunk_id("handbook", chunk["metadata"]["source"], "", chunk["text"], 0)
    # The same root found at another path (moved, or mounted elsewhere): same ids, and what
    # is not in it there is gone from it.
    moved = index_paths(store, [two], root_id="handbook", prune=True)
    assert (moved.chunks_written, moved.chunks_pruned, moved.files_pruned) == (1, 1, 1)
    [(id_, chunk)] = stored(store).items()
    assert id_ in chunks
    assert chunk["metadata"]["path"] == str((two / "a.md").resolve())
    with pytest.raises(ValueError, match="root_id names one root"):
        index_paths(store, [one, two], root_id="handbook")


def test_chunks_indexed_before_root_ids_are_replaced_once(
    store: TasbVectorStore, tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    root = str(tmp_path.resolve())
    (tmp_path / "a.md").write_text("the data model")
    (tmp_path / "gone.md").write_text("an old file")
    legacy = {}  # as the indexer wrote them before root ids: keyed on the bare root path
    for source in ("a.md", "gone.md"):
        text = (tmp_path / source).read_text()
        meta = {"source": source, "root": root, "path": f"{root}/{source}"}
        legacy[chunk_id(root, source, "", text, 0)] = (
            text,
            {**meta, "chunk": 0, "start": 0, "end": len(text)},
        )
    store.store.upsert(
        list(legacy),
        [t for t, _ in legacy.values()],
        np.asarray(
            tiny_embeddings.embed_documents([t for t, _ in legacy.values()]), dtype=np.float32
        ),
        [m for _, m in legacy.values()],
    )
    (tmp_path / "gone.md").unlink()

    report = index_paths(store, [tmp_path], prune=True)

    assert (report.chunks_written, report.chunks_deleted, report.chunks_pruned) == (1, 1, 1)
    [(id_, chunk)] = stored(store).items()
    assert chunk["metadata"]["root_id"].endswith(f":{root}")
    assert id_ == chunk_id(chunk["metadata"]["root_id"], "a.md", "", "the data model", 0)
    assert not index_paths(store, [tmp_path], prune=True).changed


def test_jsonl_records_keep_their_key_and_metadata(
    store: TasbVectorStore, embeddings: RecordingEmbeddings, tmp_path: Path
) -> None:
    lines = [
        {"_id": "doc1", "title": "Logs", "text": "rotate the logs daily", "metadata": {"y": 1}},
        {"text": "the plain record text", "metadata": {"lang": "en", "rank": 0.5}},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    index_paths(store, [tmp_path])
    chunks = {c["metadata"]["record"]: c for c in stored(store).values()}
    assert set(chunks) == {"doc1", "line:2"}
    beir = chunks["doc1"]["metadata"]
    assert beir["source"] == "corpus.jsonl"
    assert (beir["doc_id"], beir["title"], beir["y"], beir["line"]) == ("doc1", "Logs", 1, 1)
    assert chunks["doc1"]["text"] == "Logs rotate the logs daily"
    assert chunks["line:2"]["metadata"]["rank"] == 0.5
    assert not index_paths(store, [tmp_path]).changed

    # A BEIR record moved down a line keeps its id and vector: only its metadata changes.
    # A record whose metadata lost a key has that key removed, not left behind.
    embeddings.calls.clear()
    lines[0]["metadata"] = {}
    path.write_text(json.dumps({"text": "new first line"}) + "\n" + json.dumps(lines[0]) + "\n")
    report = index_paths(store, [tmp_path])
    assert embeddings.embedded == ["new first line"]
    assert report.chunks_moved == 1
    meta = next(c["metadata"] for c in stored(store).values() if c["metadata"]["record"] == "doc1")
    assert meta["line"] == 2
    assert "y" not in meta
    assert not index_paths(store, [tmp_path]).changed


def test_reserved_and_result_metadata_keys_in_jsonl_are_dropped_and_counted(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    planted = {
        "_tasb_llama_node": "{not json",
        "_tasb_ref_doc_id": "victim-doc",
        "score": 99.0,
        "relevance": 1.0,
        "lang": "en",
    }
    lines = [
        {"text": "rotate the logs daily", "metadata": planted},
        {"_id": "d2", "text": "the cache is warm", "metadata": {"bm25_score": 3}},
    ]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    report = index_paths(store, [tmp_path])

    assert report.metadata_keys_dropped == 5
    assert "dropped: 5 metadata keys reserved" in "\n".join(summary_lines(report, "here"))
    metas = [chunk["metadata"] for chunk in stored(store).values()]
    assert len(metas) == 2
    for meta in metas:
        assert not set(meta) & {*planted, "bm25_score"} - {"lang"}
    assert sorted(meta.get("lang", "") for meta in metas) == ["", "en"]
    assert store.store.count() == 2


def test_unreadable_file_is_reported_and_its_old_chunks_kept(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    (tmp_path / "good.md").write_text(paragraph(1))
    bad = tmp_path / "records.jsonl"
    bad.write_text(json.dumps({"text": "fine for now"}) + "\n")
    index_paths(store, [tmp_path])
    bad.write_text(json.dumps({"text": "fine"}) + "\n{not json\n")
    (tmp_path / "new.md").write_text(paragraph(2))

    report = index_paths(store, [tmp_path], prune=True)

    assert [(f.source, f.path) for f in report.failures] == [("records.jsonl", str(bad.resolve()))]
    assert "line 2" in report.failures[0].reason
    assert report.files_failed == 1
    texts = {c["text"] for c in stored(store).values()}
    assert "fine for now" in texts  # neither replaced nor pruned
    assert paragraph(2) in texts  # the other files were indexed


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bad.jsonl", b'{"text": "hello \\ud800 world"}\n', "lone surrogate"),
        ("bad.jsonl", b"[" * 100_000 + b"\n", "nested too deeply"),
        ("bad.jsonl", b'{"text": "hi", "metadata": {"k": "\\udc00"}}\n', "lone surrogate"),
    ],
)
def test_a_hostile_file_fails_alone_and_the_others_are_indexed(
    store: TasbVectorStore, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / "good.txt").write_text("the good text")
    (tmp_path / name).write_bytes(content)
    report = index_paths(store, [tmp_path])
    assert [(f.source, f.path) for f in report.failures] == [
        (name, str((tmp_path / name).resolve()))
    ]
    assert reason in report.failures[0].reason
    assert {c["text"] for c in stored(store).values()} == {"the good text"}


class _ChokingChunker(TokenChunker):
    """A chunker that fails on one text, as a buggy tokenizer would."""

    def iter_chunks(self, text: str) -> Any:
        if "poison" in text:
            msg = "tokenizer exploded"
            raise RuntimeError(msg)
        return super().iter_chunks(text)


def test_any_error_reading_or_chunking_a_file_is_that_files_failure(
    store: TasbVectorStore, tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("the good text")
    (tmp_path / "b.txt").write_text("poison pill")
    (tmp_path / "c.txt").write_text("more good text")
    base = make_chunker(tiny_embeddings)
    chunker = _ChokingChunker(base._tokenizer, base.max_tokens, base.overlap_tokens)
    report = index_paths(store, [tmp_path], chunker=chunker)
    assert [f.source for f in report.failures] == ["b.txt"]
    assert report.failures[0].reason == "RuntimeError: tokenizer exploded"
    assert {c["text"] for c in stored(store).values()} == {"the good text", "more good text"}


def test_files_over_the_size_or_chunk_limit_fail_by_name(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    (tmp_path / "small.md").write_text(paragraph(1))
    (tmp_path / "big.txt").write_text("x " * 3000)
    (tmp_path / "long.md").write_text("\n\n".join(paragraph(i) for i in range(2, 8)))
    report = index_paths(
        store, [tmp_path], max_file_bytes=5000, max_chunks_per_file=3, overlap_tokens=0
    )
    reasons = {f.source: f.reason for f in report.failures}
    assert sorted(reasons) == ["big.txt", "long.md"]
    assert "6000 bytes, over the limit of 5000 bytes per file" in reasons["big.txt"]
    assert "max_file_bytes" in reasons["big.txt"]
    assert "more than 3 chunks, over the limit per file" in reasons["long.md"]
    assert "max_chunks_per_file" in reasons["long.md"]
    assert {c["metadata"]["source"] for c in stored(store).values()} == {"small.md"}

    unlimited = index_paths(
        store, [tmp_path], max_file_bytes=None, max_chunks_per_file=None, overlap_tokens=0
    )
    assert unlimited.failures == []
    assert {c["metadata"]["source"] for c in stored(store).values()} == {
        "small.md",
        "big.txt",
        "long.md",
    }
    with pytest.raises(ValueError, match="max_chunks_per_file must be at least 1, got 0"):
        index_paths(store, [tmp_path], max_chunks_per_file=0)


def test_default_limits_are_documented_constants() -> None:
    assert ingest_module.DEFAULT_MAX_FILE_BYTES == 256 * 2**20
    assert ingest_module.DEFAULT_MAX_CHUNKS_PER_FILE == 100_000


def test_batches_are_bounded_and_pipelined(
    store: TasbVectorStore,
    embeddings: RecordingEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = 40
    for i in range(files):
        (tmp_path / f"f{i:02d}.txt").write_text(f"the data model number {i}")
    reads: list[int] = []
    writes: list[int] = []
    seen_at_encode: list[tuple[int, int]] = []
    real_read = rows_module.read_records
    real_upsert = store.store.upsert
    real_embed = embeddings.embed_documents

    def counting_read(entry: Any) -> Any:
        reads.append(1)
        return real_read(entry)

    def counting_upsert(*args: Any, **kwargs: Any) -> None:
        real_upsert(*args, **kwargs)
        writes.append(1)

    def watching_embed(texts: list[str]) -> list[list[float]]:
        seen_at_encode.append((len(reads), len(writes)))
        return real_embed(texts)

    monkeypatch.setattr(rows_module, "read_records", counting_read)
    monkeypatch.setattr(store.store, "upsert", counting_upsert)
    monkeypatch.setattr(embeddings, "embed_documents", watching_embed)

    report = index_paths(store, [tmp_path], batch_size=3)

    assert report.chunks_written == files
    assert [len(call) for call in embeddings.calls] == [3] * 13 + [1]
    for batch, (read, written) in enumerate(seen_at_encode):
        # Files are read only as far as the batch being encoded needs...
        assert read <= 3 * (batch + 1)
        # ...and encoding runs at most the queue's depth (plus the batch in hand) ahead of
        # writing.
        assert batch - written <= pipeline_module._QUEUE_BATCHES + 1
    assert len(writes) == 14


def test_writer_failure_stops_the_run_and_a_rerun_completes_it(
    store: TasbVectorStore,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "a.md").write_text("\n\n".join(paragraph(i) for i in range(6)))
    (tmp_path / "b.md").write_text("\n\n".join(paragraph(i) for i in range(6, 9)))
    real_upsert = store.store.upsert
    calls = []

    def failing_upsert(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            msg = "disk full"
            raise OSError(msg)
        real_upsert(*args, **kwargs)

    monkeypatch.setattr(store.store, "upsert", failing_upsert)
    with pytest.raises(OSError, match="disk full"):
        index_paths(store, [tmp_path], batch_size=2)
    partial = stored(store)
    monkeypatch.setattr(store.store, "upsert", real_upsert)
    index_paths(store, [tmp_path], batch_size=2)

    clean = TasbVectorStore(embedding=tiny_embeddings, collection_name="clean-" + store.store.name)
    index_paths(clean, [tmp_path], batch_size=5)
    resumed, expected = stored(store), stored(clean)
    assert 0 < len(partial) < len(expected)
    assert resumed.keys() == expected.keys()
    for id_, chunk in expected.items():
        assert resumed[id_]["metadata"] == chunk["metadata"]
        assert resumed[id_]["text"] == chunk["text"]


def test_progress_reports_files_and_chunks(store: TasbVectorStore, tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"f{i}.md").write_text(paragraph(i))
    (tmp_path / ".hidden.md").write_text(paragraph(9))
    events: list[IndexProgress] = []
    report = index_paths(store, [tmp_path], batch_size=2, progress=events.append)
    assert events[0].files_total == 3
    assert events[-1].finished
    assert events[-1].files_done == 3
    assert events[-1].chunks_done == report.chunks_written == 3
    assert [e.files_done for e in events] == sorted(e.files_done for e in events)
    assert report.skipped.hidden == 1


def test_missing_root_fails_before_anything_is_written(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text(paragraph(1))
    with pytest.raises(FileNotFoundError, match="nope"):
        index_paths(store, [tmp_path, tmp_path / "nope"])
    assert store.store.count() == 0


def test_chunker_fits_the_model_limit(tiny_embeddings: TasbEmbeddings) -> None:
    chunker = make_chunker(tiny_embeddings, overlap_tokens=8)
    assert chunker.max_tokens == tiny_embeddings.info.max_seq_length - 2
    assert chunker.overlap_tokens == 8
    with pytest.raises(ValueError, match="overlap_tokens"):
        make_chunker(tiny_embeddings, overlap_tokens=500)


def test_bad_batch_size_is_refused(store: TasbVectorStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        index_paths(store, [tmp_path], batch_size=0)


@pytest.mark.parametrize(
    ("lookup_files", "lookup_records", "gets"),
    [
        (64, 20_000, 1),  # one query for the group of five files
        (2, 20_000, 3),  # groups of 2, 2 and 1
        (64, 2, 1 + 5),  # the group holds too many records: each file alone
    ],
)
def test_stored_records_are_looked_up_per_group_of_files(
    store: TasbVectorStore,
    embeddings: RecordingEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lookup_files: int,
    lookup_records: int,
    gets: int,
) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.md").write_text(f"{paragraph(i)}\n\n{paragraph(10 + i)}")
    index_paths(store, [tmp_path], overlap_tokens=0)
    before = stored(store)
    edited = paragraph(99)
    (tmp_path / "f3.md").write_text(f"{paragraph(3)}\n\n{edited}")
    embeddings.calls.clear()
    monkeypatch.setattr(pipeline_module, "_LOOKUP_FILES", lookup_files)
    monkeypatch.setattr(pipeline_module, "_LOOKUP_RECORDS", lookup_records)
    collection = store.store.collection
    queries: list[Any] = []
    original_get = collection.get

    def counting_get(*args: Any, **kwargs: Any) -> Any:
        if "path" in (kwargs.get("where") or {}):  # not the writer's lookups by id
            queries.append(kwargs["where"])
        return original_get(*args, **kwargs)

    monkeypatch.setattr(collection, "get", counting_get)
    report = index_paths(store, [tmp_path], overlap_tokens=0)

    assert len(queries) == gets
    assert embeddings.embedded == [edited]
    assert (report.files_unchanged, report.files_indexed) == (4, 1)
    assert (report.chunks_unchanged, report.chunks_written, report.chunks_deleted) == (9, 1, 1)
    after = stored(store)
    assert len(after) == len(before) == 10
    assert sorted(c["text"] for c in after.values()).count(edited) == 1


def test_gitignored_files_are_not_indexed_and_prune_keeps_them_like_exclude(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text(paragraph(1))
    (tmp_path / "b.md").write_text(paragraph(2))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "c.md").write_text(paragraph(3))
    (tmp_path / ".gitignore").write_text("cache/\n")

    report = index_paths(store, [tmp_path])
    assert report.skipped.ignored == 1
    assert {c["metadata"]["source"] for c in stored(store).values()} == {"a.md", "b.md"}
    assert "skipped: 1 hidden, 1 gitignored" in summary_lines(report, "db")

    everything = index_paths(store, [tmp_path], gitignore=False)
    assert everything.skipped.ignored == 0
    assert {c["metadata"]["source"] for c in stored(store).values()} == {
        "a.md",
        "b.md",
        "cache/c.md",
    }

    # Ignored now, as --exclude would leave it out: --prune keeps its chunks.
    (tmp_path / ".gitignore").write_text("cache/\nb.md\n")
    pruned = index_paths(store, [tmp_path], prune=True)
    assert pruned.skipped.ignored == 2
    assert pruned.chunks_pruned == 0
    assert len({c["metadata"]["source"] for c in stored(store).values()}) == 3
