"""Defaults and environment variables: the one place each of them is defined.

Imports only the standard library. Every cache lives under :func:`cache_root`: ``onnx/``,
``embeddings/``, ``bm25/<server>/<collection>/`` and ``manifests/<server>/<collection>/``
(BM25 indexes and manifests of an embedded database sit beside it instead).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

DEFAULT_MODEL_NAME = "sentence-transformers/msmarco-distilbert-base-tas-b"
"""The model used when none is named and ``$TASB_MODEL`` is unset: TAS-B."""

DEFAULT_COLLECTION_NAME = "tasb"
"""The collection used when none is named, by the library and by the ``tasb`` command alike."""

DEFAULT_K = 4
"""Hits per search when none is asked for: by every skin (LangChain's own default)."""

DEFAULT_FUSION: Literal["rrf"] = "rrf"

MODEL_ENV_VAR = "TASB_MODEL"
"""Environment variable naming the model to load when none is given."""

BACKEND_ENV_VAR = "TASB_BACKEND"
"""Environment variable naming the inference backend when none is given."""

CACHE_ENV_VAR = "TASB_CACHE_DIR"
"""Environment variable naming langchain-tasb's cache root (see :func:`cache_root`)."""

DATA_DIR_ENV_VAR = "TASB_DATA_DIR"
"""Environment variable naming a folder that holds BEIR dataset folders."""

HEADERS_ENV_VAR = "TASB_CHROMA_HEADERS"
"""HTTP headers for a Chroma server, one ``KEY=VALUE`` a line (keeps tokens out of ``ps``)."""

MANIFEST_SAVE_ENV_VAR = "TASB_MANIFEST_SAVE_SECONDS"
"""Environment variable: seconds between saves of the indexing manifests during a run."""

DEFAULT_MANIFEST_SAVE_SECONDS = 30.0


def default_fetch_k(k: int) -> int:
    """Candidates for MMR and for each side of hybrid search when none are asked for."""
    return max(20, 4 * k)


def cache_root() -> Path:
    """``$TASB_CACHE_DIR``, else ``$XDG_CACHE_HOME/langchain-tasb``, else ``~/.cache/...``."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "langchain-tasb"


def manifest_save_seconds() -> float:
    """``$TASB_MANIFEST_SAVE_SECONDS`` (0: after every file), else 30; ValueError unless >= 0."""
    configured = os.environ.get(MANIFEST_SAVE_ENV_VAR, "").strip()
    with contextlib.suppress(ValueError):
        if (seconds := float(configured or DEFAULT_MANIFEST_SAVE_SECONDS)) >= 0:
            return seconds
    msg = (
        f"${MANIFEST_SAVE_ENV_VAR} must be seconds >= 0, got {configured!r}: set a number "
        "such as 30, or unset it"
    )
    raise ValueError(msg)
