"""TAS-B dense retrieval for LangChain on an inner-product Chroma collection.

Public names load their modules on first use (PEP 562): ``testing`` needs no LangChain or Chroma.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from langchain_tasb.config import DEFAULT_MODEL_NAME
from langchain_tasb.errors import (
    ChromaUnavailableError,
    CollectionMismatchError,
    CollectionNotFoundError,
    ModelMismatchError,
    SpaceMismatchError,
    StoreLockedError,
)

if TYPE_CHECKING:
    from langchain_tasb.chroma.store import HnswSettings
    from langchain_tasb.embeddings import TasbEmbeddings
    from langchain_tasb.encoding.types import ModelInfo
    from langchain_tasb.scoring import RelevanceScale
    from langchain_tasb.vectorstore import TasbRetriever, TasbVectorStore

try:
    __version__ = metadata.version("langchain-tasb")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_MODULE_OF = {
    "HnswSettings": "chroma.store",
    "ModelInfo": "encoding.types",
    "RelevanceScale": "scoring",
    "TasbEmbeddings": "embeddings",
    "TasbRetriever": "vectorstore",
    "TasbVectorStore": "vectorstore",
}

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ChromaUnavailableError",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "HnswSettings",
    "ModelInfo",
    "ModelMismatchError",
    "RelevanceScale",
    "SpaceMismatchError",
    "StoreLockedError",
    "TasbEmbeddings",
    "TasbRetriever",
    "TasbVectorStore",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
