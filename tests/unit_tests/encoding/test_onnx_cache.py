"""The ONNX export cache: keyed by content, written durably, and checked before it is trusted."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_tasb.encoding import onnx_cache
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.onnx_cache import cache_key, ensure_exported
from langchain_tasb.encoding.onnx_export import OnnxSettings
from langchain_tasb.encoding.types import EncoderSettings

TEXTS = ["people live in london", "the protein binds the cell surface"]


def overwrite_keeping_size_and_mtime(path: Path) -> None:
    """Other bytes, same length and modification time: what a size+mtime key cannot see."""
    stat = path.stat()
    data = path.read_bytes()
    path.write_bytes(data[::-1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


def test_key_follows_the_weights_content_not_their_size_and_time(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(tiny_model_path, tmp_path / "model"))
    key = cache_key(str(copy), copy, OnnxSettings())
    overwrite_keeping_size_and_mtime(copy / "model.safetensors")
    assert cache_key(str(copy), copy, OnnxSettings()) != key


def test_weights_are_hashed_once_then_remembered_by_their_stat(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = Path(shutil.copytree(tiny_model_path, tmp_path / "model"))
    memo = tmp_path / "cache" / "hashes.json"
    monkeypatch.setattr(onnx_cache, "_SETTLED_SECONDS", 0.2)
    time.sleep(0.5)  # older than the settling time: the stat is trusted from now on
    hashed: list[str] = []
    digest = onnx_cache.file_digest

    def spy(path: Path) -> str:
        hashed.append(path.name)
        return digest(path)

    monkeypatch.setattr(onnx_cache, "file_digest", spy)
    key = cache_key(str(copy), copy, OnnxSettings(), memo=memo)
    assert "model.safetensors" in hashed
    hashed.clear()
    assert cache_key(str(copy), copy, OnnxSettings(), memo=memo) == key
    assert hashed == []  # every file remembered
    overwrite_keeping_size_and_mtime(copy / "model.safetensors")  # changes its ctime
    assert cache_key(str(copy), copy, OnnxSettings(), memo=memo) != key
    assert hashed == ["model.safetensors"]


def test_a_just_written_file_is_not_remembered(tiny_model_path: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_model_path, tmp_path / "model"))
    memo = tmp_path / "hashes.json"
    cache_key(str(copy), copy, OnnxSettings(), memo=memo)
    # Written within the timestamps' resolution, a later change could keep every stat field.
    assert not memo.exists() or "model.safetensors" not in memo.read_text()


def test_an_export_is_synced_before_it_is_renamed_into_place(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def spy_replace(source: Any, destination: Any) -> None:
        events.append(("replace", str(source)))
        replace(source, destination)

    monkeypatch.setattr(onnx_cache, "_SETTLED_SECONDS", -60.0)  # digests are remembered too
    monkeypatch.setattr(onnx_cache.os, "fsync", spy_fsync)
    monkeypatch.setattr(onnx_cache.os, "replace", spy_replace)
    exported = ensure_exported(str(tiny_model_path), cache_dir=tmp_path)
    renamed = next(  # the export's rename (hashes.json is replaced too)
        i for i, (kind, path) in enumerate(events) if kind == "replace" and ".tmp-" in path
    )
    temporary = events[renamed][1]
    synced = {path for kind, path in events[:renamed] if kind == "fsync"}
    written = {
        str(p).replace(str(exported.directory), temporary) for p in exported.directory.rglob("*")
    }
    assert written <= synced
    assert temporary in synced  # the folder's entries too
    assert ("fsync", str(tmp_path)) in events[renamed:]  # and the rename itself
    assert (tmp_path / "hashes.json").is_file()


def test_an_export_with_an_empty_graph_is_exported_again_with_a_warning(
    tiny_model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = ensure_exported(str(tiny_model_path), cache_dir=tmp_path)
    first.model_file.write_bytes(b"")  # what a crash after an unsynced rename leaves
    with caplog.at_level(logging.WARNING, logger="langchain_tasb"):
        again = ensure_exported(str(tiny_model_path), cache_dir=tmp_path)
    assert again.directory == first.directory
    assert again.model_file.stat().st_size > 0
    assert any("exporting it again" in r.getMessage() for r in caplog.records)
    encoder = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path)
    assert encoder.encode(TEXTS, role="document", max_tokens=16, batch_size=2).vectors.shape == (
        2,
        32,
    )


def test_a_graph_replaced_keeping_its_size_is_exported_again_with_a_warning(
    tiny_model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path / "good")
    expected = good.encode(TEXTS[:1], role="query", max_tokens=16, batch_size=1).vectors
    cache = tmp_path / "damaged"
    graph = ensure_exported(str(tiny_model_path), cache_dir=cache).graph_for("query")
    overwrite_keeping_size_and_mtime(graph)  # same size: only its digest tells
    with caplog.at_level(logging.WARNING, logger="langchain_tasb"):
        encoder = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=cache)
        vectors = encoder.encode(TEXTS[:1], role="query", max_tokens=16, batch_size=1).vectors
    np.testing.assert_array_equal(vectors, expected)
    assert any(
        "model.onnx that is not the file written there" in r.getMessage()
        and "exporting it again" in r.getMessage()
        for r in caplog.records
    )


def test_another_models_planted_graph_is_caught_and_the_probe_recomputed(
    tiny_model_path: Path,
    other_model_path: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path / "own")
    probe = own.encode_fixed("the probe sentence", role="document", max_tokens=16)
    other = ensure_exported(str(other_model_path), cache_dir=tmp_path / "other")
    assert other.model_file.stat().st_size == own.exported.model_file.stat().st_size
    shutil.copyfile(other.model_file, own.exported.model_file)  # same shape, other weights

    with caplog.at_level(logging.WARNING, logger="langchain_tasb"):
        reloaded = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path / "own")
        again = reloaded.encode_fixed("the probe sentence", role="document", max_tokens=16)
        query = reloaded.encode(TEXTS[:1], role="document", max_tokens=16, batch_size=1)

    np.testing.assert_array_equal(again, probe)
    np.testing.assert_array_equal(
        query.vectors, own.encode(TEXTS[:1], role="document", max_tokens=16, batch_size=1).vectors
    )
    assert any("SHA-256 differs" in r.getMessage() for r in caplog.records)


def test_remembered_vectors_that_do_not_verify_are_computed_again(
    tiny_model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    encoder = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path)
    probe = encoder.encode_fixed("the probe sentence", role="document", max_tokens=16)
    remembered = encoder.exported.directory / "remembered.json"
    stored = json.loads(remembered.read_text())
    stored["entries"] = {key: [0.5] * len(v) for key, v in stored["entries"].items()}
    remembered.write_text(json.dumps(stored))  # planted vectors, stale digest
    with caplog.at_level(logging.WARNING, logger="langchain_tasb"):
        again = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path).encode_fixed(
            "the probe sentence", role="document", max_tokens=16
        )
    np.testing.assert_array_equal(again, probe)
    assert any("does not verify" in r.getMessage() for r in caplog.records)


def test_a_cache_folder_other_users_can_write_is_refused(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "shared"
    ensure_exported(str(tiny_model_path), cache_dir=cache)
    cache.chmod(0o777)
    with pytest.raises(
        PermissionError, match=rf"{cache} can be written by other users.*chmod go-w"
    ):
        ensure_exported(str(tiny_model_path), cache_dir=cache)
    cache.chmod(0o755)
    assert ensure_exported(str(tiny_model_path), cache_dir=cache).model_file.is_file()
