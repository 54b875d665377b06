"""``TasbRetriever``: a LangChain retriever with dot-product scores and calibrated relevance."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from langchain_tasb.chroma.store import HnswSettings
from langchain_tasb.config import DEFAULT_COLLECTION_NAME, DEFAULT_FUSION, DEFAULT_K
from langchain_tasb.connection import CONNECTION_FIELDS, Connection
from langchain_tasb.documents import DocumentCollection, scored_document
from langchain_tasb.embeddings import TasbEmbeddings
from langchain_tasb.search import SETTING_NAMES, ScoredHit, SearchSettings, SearchType

if TYPE_CHECKING:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )

# What ``invoke(query, **kwargs)`` may override: SearchSettings but ``ids`` (a store's narrowing).
_PER_CALL = tuple(name for name in SETTING_NAMES if name != "ids")


class TasbRetriever(Connection, BaseRetriever):
    """Retrieve Documents by dot product from an inner-product Chroma collection.

    Each Document carries ``id``, ``metadata["score"]`` (the dot product, higher is better)
    and ``metadata["relevance"]`` (calibrated, in [0, 1]). Build it from a ``TasbVectorStore``
    or from connection fields, which open an existing collection (never creating one).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    vectorstore: DocumentCollection | None = None
    """The collection to search; opened from the connection fields when None."""
    collection_name: str = DEFAULT_COLLECTION_NAME
    """Collection to open when no ``vectorstore`` is given."""
    embedding: Embeddings | None = None
    """Embedding model when no ``vectorstore`` is given (default: as for the collection)."""
    hnsw: HnswSettings | None = None
    """HNSW settings for a new collection (``ef_search`` also applies to an existing one)."""

    k: int = Field(default=DEFAULT_K, gt=0)
    """How many Documents to return."""
    search_type: SearchType = "similarity"
    """"similarity", "mmr", "similarity_score_threshold" or "hybrid" (needs ``[hybrid]``)."""
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Minimum relevance for "similarity_score_threshold" (and for the others when set)."""
    filter: dict[str, Any] | None = None
    """Chroma ``where`` filter on metadata, e.g. ``{"source": "guide.md"}``."""
    where_document: dict[str, Any] | None = None
    """Chroma ``where_document`` filter on text, e.g. ``{"$contains": "London"}``."""
    fetch_k: int | None = Field(default=None, gt=0)
    """Candidates for MMR and each side of "hybrid" (None: ``default_fetch_k(k)``)."""
    lambda_mult: float = Field(default=0.5, ge=0.0, le=1.0)
    """MMR trade-off: 1 is pure relevance, 0 is pure diversity."""
    fusion: Literal["rrf", "weighted"] = DEFAULT_FUSION
    """How "hybrid" fuses: reciprocal rank fusion, or scores weighted by ``alpha``."""
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    """Dense weight for ``fusion="weighted"``: 1 is dense only, 0 is BM25 only."""

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if self.vectorstore is None:
            # Opened here rather than in a validator: pydantic would turn the store's errors
            # (CollectionNotFoundError, CollectionMismatchError) into a ValidationError.
            self.vectorstore = DocumentCollection(
                embedding=self.embedding,
                collection_name=self.collection_name,
                hnsw=self.hnsw,
                create_collection_if_not_exists=False,
                **{key: getattr(self, key) for key in CONNECTION_FIELDS},
            )

    @model_validator(mode="after")
    def _check_settings(self) -> TasbRetriever:
        self.settings()  # SearchSettings checks every search setting, in one place
        return self

    @property
    def store(self) -> DocumentCollection:
        """The collection searched (always set after construction)."""
        return cast("DocumentCollection", self.vectorstore)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        k: int = DEFAULT_K,
        **kwargs: Any,
    ) -> TasbRetriever:
        """Index ``texts`` (in memory by default) and return a retriever over them.

        Keyword arguments go to ``DocumentCollection`` or to the retriever's search fields.
        """
        retriever_fields = {key: kwargs.pop(key) for key in _PER_CALL if key in kwargs}
        store = DocumentCollection.from_texts(
            texts, embedding or TasbEmbeddings(), metadatas, ids=ids, **kwargs
        )
        return cls(vectorstore=store, k=k, **retriever_fields)

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> TasbRetriever:
        """Like :meth:`from_texts`, keeping each Document's metadata and id."""
        return cls.from_texts(
            [d.page_content for d in documents],
            embedding,
            [d.metadata for d in documents],
            ids=[d.id for d in documents] if any(d.id for d in documents) else None,  # type: ignore[misc]
            **kwargs,
        )

    def settings(self, **overrides: Any) -> SearchSettings:
        """This retriever's search settings, with ``overrides`` replacing fields."""
        unknown = set(overrides) - set(_PER_CALL)
        if unknown:
            msg = f"Unknown search arguments {sorted(unknown)}; expected some of {_PER_CALL}"
            raise TypeError(msg)
        return SearchSettings(**({key: getattr(self, key) for key in _PER_CALL} | overrides))

    def hits(self, query: str, **overrides: Any) -> list[ScoredHit]:
        """The core's hits for ``query``; ``overrides`` replace fields for this call only."""
        return self.store.core.search(self.settings(**overrides), query=query)

    def search(self, query: str, **overrides: Any) -> list[Document]:
        """Retrieve for ``query``; ``overrides`` replace fields for this call only."""
        return [scored_document(hit) for hit in self.hits(query, **overrides)]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self.search(query, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return await asyncio.to_thread(self.search, query, **kwargs)
