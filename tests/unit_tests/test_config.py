"""config.py: one default collection for library and CLI, one cache root for every cache."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_tasb import TasbRetriever, TasbVectorStore, config
from langchain_tasb.cli import build_parser
from langchain_tasb.evaluation.cache import default_cache_dir


def test_library_and_cli_share_one_default_collection() -> None:
    for argv in (["index", "docs"], ["search", "q"], ["info"], ["mcp"]):
        args = build_parser().parse_args(argv)
        assert args.collection == config.DEFAULT_COLLECTION_NAME == "tasb", argv
    assert TasbRetriever.model_fields["collection_name"].default == "tasb"
    parameters = inspect.signature(TasbVectorStore).parameters
    assert parameters["collection_name"].default == "tasb"


def test_cache_root_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TASB_CACHE_DIR", str(tmp_path / "tasb"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_root() == tmp_path / "tasb"
    assert default_cache_dir() == tmp_path / "tasb" / "embeddings"
    monkeypatch.setenv("TASB_CACHE_DIR", "")
    assert config.cache_root() == tmp_path / "xdg" / "langchain-tasb"
    monkeypatch.delenv("TASB_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.cache_root() == tmp_path / "home" / ".cache" / "langchain-tasb"
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "langchain-tasb" / "embeddings"


def test_config_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, langchain_tasb.config\n"
        "print(sorted(m for m in ('torch', 'chromadb', 'langchain_core') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_manifest_save_interval_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASB_MANIFEST_SAVE_SECONDS", raising=False)
    assert config.manifest_save_seconds() == config.DEFAULT_MANIFEST_SAVE_SECONDS == 30.0
    monkeypatch.setenv("TASB_MANIFEST_SAVE_SECONDS", "0")
    assert config.manifest_save_seconds() == 0.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("TASB_MANIFEST_SAVE_SECONDS", bad)
        with pytest.raises(ValueError, match=f"must be seconds >= 0, got '{bad}'"):
            config.manifest_save_seconds()
