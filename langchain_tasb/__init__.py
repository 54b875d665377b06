"""TAS-B dense retrieval for LangChain on an inner-product Chroma collection."""

from __future__ import annotations

from importlib import metadata

from langchain_tasb.embeddings import TasbEmbeddings
from langchain_tasb.encoder import DEFAULT_MODEL_NAME, ModelInfo
from langchain_tasb.errors import (
    ChromaUnavailableError,
    CollectionMismatchError,
    ModelMismatchError,
    SpaceMismatchError,
)
from langchain_tasb.retriever import TasbRetriever
from langchain_tasb.scoring import RelevanceScale
from langchain_tasb.store import HnswSettings
from langchain_tasb.vectorstore import TasbVectorStore

try:
    __version__ = metadata.version("langchain-tasb")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ChromaUnavailableError",
    "CollectionMismatchError",
    "HnswSettings",
    "ModelInfo",
    "ModelMismatchError",
    "RelevanceScale",
    "SpaceMismatchError",
    "TasbEmbeddings",
    "TasbRetriever",
    "TasbVectorStore",
    "__version__",
]
