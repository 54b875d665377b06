"""The indexing manifest: a no-change rerun reads no file, and never skips one it should read."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma.client import side_folder
from langchain_tasb.ingest import index_paths
from langchain_tasb.ingest import rows as rows_module
from langchain_tasb.ingest.manifest import _checksum
from tests.unit_tests.ingest.test_ingest import RecordingEmbeddings, paragraph, stored

HOUR_NS = 3600 * 10**9


@pytest.fixture
def embeddings(tiny_embeddings: TasbEmbeddings) -> RecordingEmbeddings:
    return RecordingEmbeddings(tiny_embeddings)


@pytest.fixture
def store(embeddings: RecordingEmbeddings, tmp_path: Path) -> TasbVectorStore:
    """A store on an embedded database in a tmp folder: the manifest lives beside it."""
    store = TasbVectorStore(
        embedding=embeddings, collection_name="manifest", persist_directory=str(tmp_path / "db")
    )
    embeddings.calls.clear()
    return store


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The relpath of every file the indexer reads."""
    seen: list[str] = []
    original = rows_module.read_records

    def spy(entry: Any) -> Any:
        seen.append(entry.relpath)
        return original(entry)

    monkeypatch.setattr(rows_module, "read_records", spy)
    return seen


def age(path: Path, ns: int = HOUR_NS) -> None:
    """Set ``path``'s mtime ``ns`` into the past: out of the manifest's unsure window."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - ns))


def corpus(folder: Path, count: int = 4) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"f{i}.md").write_text(f"{paragraph(i)}\n\n{paragraph(10 + i)}")
        age(folder / f"f{i}.md")


def manifest_files(store: TasbVectorStore) -> list[Path]:
    folder = side_folder(store.client, "manifests", store.collection_name)
    assert folder is not None
    return sorted(folder.glob("*.json"))


def test_a_no_change_rerun_reads_no_file_and_embeds_nothing(
    store: TasbVectorStore, embeddings: RecordingEmbeddings, reads: list[str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    first = index_paths(store, [docs])
    assert sorted(reads) == [f"f{i}.md" for i in range(4)]
    reads.clear()
    embeddings.calls.clear()

    second = index_paths(store, [docs])

    assert reads == []
    assert embeddings.calls == []
    assert (second.files_unchanged, second.files_not_read) == (4, 4)
    assert second.chunks_unchanged == first.chunks_written == len(stored(store))
    [manifest] = manifest_files(store)
    assert manifest.parent == tmp_path / "db" / "manifests" / "manifest"


def test_a_changed_file_is_read_again_and_only_it(
    store: TasbVectorStore, embeddings: RecordingEmbeddings, reads: list[str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    index_paths(store, [docs], overlap_tokens=0)
    reads.clear()
    edited = paragraph(99)
    (docs / "f2.md").write_text(f"{paragraph(2)}\n\n{edited}")
    embeddings.calls.clear()

    report = index_paths(store, [docs], overlap_tokens=0)

    assert reads == ["f2.md"]
    assert embeddings.embedded == [edited]
    assert (report.files_indexed, report.files_not_read) == (1, 3)
    assert sorted(c["text"] for c in stored(store).values()).count(edited) == 1


def test_a_same_size_edit_within_the_same_mtime_is_caught_by_the_hash(
    store: TasbVectorStore, reads: list[str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("the data model")
    index_paths(store, [docs])  # recently modified: its entry is unsure
    before = (docs / "a.md").stat()
    (docs / "a.md").write_text("the data mode!")  # same size...
    os.utime(docs / "a.md", ns=(before.st_atime_ns, before.st_mtime_ns))  # ...same mtime
    reads.clear()

    index_paths(store, [docs])

    assert reads == ["a.md"]
    assert {c["text"] for c in stored(store).values()} == {"the data mode!"}


def test_a_touched_file_with_the_same_content_is_not_read(
    store: TasbVectorStore, reads: list[str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs, 2)
    index_paths(store, [docs])
    age(docs / "f0.md", -HOUR_NS)  # a new mtime, the same bytes
    reads.clear()

    report = index_paths(store, [docs])

    assert reads == []
    assert report.files_not_read == 2


@pytest.mark.parametrize("damage", ["corrupt", "malformed", "foreign"])
def test_a_damaged_or_foreign_manifest_is_ignored_with_a_warning(
    store: TasbVectorStore,
    reads: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    docs, other = tmp_path / "docs", tmp_path / "other"
    corpus(docs, 2)
    corpus(other, 1)
    index_paths(store, [docs])
    [manifest] = manifest_files(store)
    if damage == "corrupt":
        data = json.loads(manifest.read_text())
        data["files"]["f9.md"] = data["files"]["f0.md"]  # checksum no longer matches
        manifest.write_text(json.dumps(data))
    elif damage == "malformed":  # a checksum that matches entries of the wrong shape
        data = json.loads(manifest.read_text())
        data["files"]["f0.md"] = ["big", 0]
        del data["sha256"]
        data["sha256"] = _checksum(data)
        manifest.write_text(json.dumps(data))
    else:
        index_paths(store, [other])
        [theirs] = [m for m in manifest_files(store) if m != manifest]
        manifest.write_bytes(theirs.read_bytes())  # valid, but of another root
    reads.clear()

    with caplog.at_level(logging.WARNING, logger="langchain_tasb.ingest.manifest"):
        report = index_paths(store, [docs])

    assert sorted(reads) == ["f0.md", "f1.md"]
    assert report.files_not_read == 0
    expected = "another collection or root" if damage == "foreign" else "is damaged (checksum)"
    assert expected in caplog.text
    reads.clear()
    assert index_paths(store, [docs]).files_not_read == 2  # rewritten, trusted again
    assert reads == []


def test_changed_chunker_settings_read_every_file_again(
    store: TasbVectorStore, reads: list[str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs, 2)
    index_paths(store, [docs], overlap_tokens=0)
    reads.clear()
    report = index_paths(store, [docs], overlap_tokens=8)
    assert sorted(reads) == ["f0.md", "f1.md"]
    assert report.files_not_read == 0


def test_chunks_deleted_behind_the_manifest_are_noticed_and_written_again(
    store: TasbVectorStore, reads: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = tmp_path / "docs"
    corpus(docs, 3)
    index_paths(store, [docs])
    full = stored(store)
    store.store.delete(where={"source": "f1.md"})
    reads.clear()

    with caplog.at_level(logging.WARNING, logger="langchain_tasb.ingest.manifest"):
        report = index_paths(store, [docs])

    assert "fewer than the" in caplog.text
    assert sorted(reads) == ["f0.md", "f1.md", "f2.md"]
    assert report.chunks_written > 0
    assert stored(store).keys() == full.keys()


def test_full_reads_every_file(store: TasbVectorStore, reads: list[str], tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    corpus(docs, 2)
    index_paths(store, [docs])
    reads.clear()
    assert index_paths(store, [docs], full=True).files_not_read == 0
    assert sorted(reads) == ["f0.md", "f1.md"]
    reads.clear()
    assert index_paths(store, [docs]).files_not_read == 2


def test_prune_removes_a_gone_files_chunks_and_manifest_entry(
    store: TasbVectorStore, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs, 3)
    (docs / "empty.md").write_text("")  # no chunks, but an entry
    index_paths(store, [docs])
    (docs / "f1.md").unlink()
    (docs / "empty.md").unlink()
    report = index_paths(store, [docs], prune=True)
    assert report.files_pruned == 1
    assert {c["metadata"]["source"] for c in stored(store).values()} == {"f0.md", "f2.md"}
    [manifest] = manifest_files(store)
    assert sorted(json.loads(manifest.read_text())["files"]) == ["f0.md", "f2.md"]
    (docs / "f1.md").write_text(paragraph(1))  # back again: read, not trusted from before
    assert index_paths(store, [docs]).files_indexed == 1


def test_a_file_that_now_fails_loses_its_entry_and_keeps_its_chunks(
    store: TasbVectorStore, reads: list[str], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.jsonl").write_text('{"text": "the data model"}\n')
    index_paths(store, [docs])
    (docs / "a.jsonl").write_text('{"text": \n')
    assert index_paths(store, [docs]).files_failed == 1
    [manifest] = manifest_files(store)
    assert json.loads(manifest.read_text())["files"] == {}
    assert {c["text"] for c in stored(store).values()} == {"the data model"}


def test_a_run_that_dies_mid_write_records_only_files_whose_chunks_are_all_written(
    store: TasbVectorStore,
    tiny_embeddings: TasbEmbeddings,
    reads: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASB_MANIFEST_SAVE_SECONDS", "0")  # save after every file
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"f{i}.md").write_text("\n\n".join(paragraph(10 * i + j) for j in range(3)))
        age(docs / f"f{i}.md")
    real_upsert = store.store.upsert
    calls = []

    def failing_upsert(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 4:
            msg = "disk full"
            raise OSError(msg)
        real_upsert(*args, **kwargs)

    monkeypatch.setattr(store.store, "upsert", failing_upsert)
    with pytest.raises(OSError, match="disk full"):
        index_paths(store, [docs], batch_size=2)
    [manifest] = manifest_files(store)
    recorded = json.loads(manifest.read_text())["files"]
    written = stored(store)
    for source, entry in recorded.items():
        assert sum(c["metadata"]["source"] == source for c in written.values()) == entry[3]
    assert 0 < len(recorded) < 6
    monkeypatch.setattr(store.store, "upsert", real_upsert)
    reads.clear()

    index_paths(store, [docs], batch_size=2)

    assert sorted(reads) == sorted(f"f{i}.md" for i in range(6) if f"f{i}.md" not in recorded)
    clean = TasbVectorStore(embedding=tiny_embeddings, collection_name="manifest-clean")
    index_paths(clean, [docs])
    assert stored(store).keys() == stored(clean).keys()
