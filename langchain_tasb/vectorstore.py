"""``TasbVectorStore`` and its ``TasbRetriever``: the one place hits become ``Document`` s."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field

from langchain_tasb.chroma.store import HnswSettings
from langchain_tasb.collection import Connection, TasbCollection, in_thread
from langchain_tasb.config import DEFAULT_COLLECTION_NAME, DEFAULT_FUSION, DEFAULT_K
from langchain_tasb.embeddings import TasbEmbeddings, as_embeddings
from langchain_tasb.encoding.model import as_encoder
from langchain_tasb.search import (
    SETTING_NAMES,
    ScoredHit,
    SearchSettings,
    SearchType,
    check_known,
)
from langchain_tasb.validation import user_metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from typing_extensions import Self

    from langchain_tasb.chroma.records import Hit
    from langchain_tasb.chroma.store import ChromaStore
    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.scoring import RelevanceScale

logger = logging.getLogger(__name__)

# What ``invoke(query, **kwargs)`` may override: SearchSettings but ``ids`` (a store's narrowing).
_PER_CALL = tuple(name for name in SETTING_NAMES if name != "ids")


def to_document(hit: Hit | ScoredHit) -> Document:
    """A hit as a Document: its text, id and user metadata (no reserved ``_tasb_`` keys)."""
    return Document(page_content=hit.text, metadata=user_metadata(hit.metadata), id=hit.id)


def scored_document(hit: ScoredHit) -> Document:
    """A hit as a Document whose metadata also holds its scores (replacing clashing keys)."""
    scores = hit.scores()
    clash = sorted(set(hit.metadata) & set(scores))
    if clash:
        msg = "record %s has metadata keys %s, which a result sets to its scores: rename them"
        logger.warning(msg, hit.id, clash)
    return Document(page_content=hit.text, metadata={**hit.metadata, **scores}, id=hit.id)


class TasbVectorStore(VectorStore):
    """A LangChain vector store on a Chroma collection created for inner-product search.

    Scores are dot products (higher is better); relevance is a calibrated logistic of the dot
    product, in [0, 1]. Async twins run in a thread.

    Args:
        embedding: any LangChain ``Embeddings``; defaults to ``$TASB_MODEL``, else the model
            recorded in an existing collection, else TAS-B.
        collection_name: the Chroma collection.
        hnsw: HNSW settings for a new collection (``ef_search`` also applies to an old one).
        collection_metadata: extra metadata for a new collection.
        create_collection_if_not_exists: when False, a missing collection raises
            ``CollectionNotFoundError`` instead of being created.
        **connection: where Chroma lives (:class:`~langchain_tasb.collection.Connection`);
            in-memory when none is given.
    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        *,
        hnsw: HnswSettings | None = None,
        collection_metadata: Mapping[str, Any] | None = None,
        create_collection_if_not_exists: bool = True,
        **connection: Any,
    ) -> None:
        check_known("arguments", connection, [*Connection.model_fields])
        self.core = TasbCollection(
            as_encoder(embedding) if embedding is not None else None,
            collection_name,
            connection=Connection(**connection),
            hnsw=hnsw,
            collection_metadata=collection_metadata,
            create_collection_if_not_exists=create_collection_if_not_exists,
            model_factory=TasbEmbeddings,
        )
        self._embedding = as_embeddings(self.core.encoder)
        self.encoder: TextEncoder = self.core.encoder
        self.store: ChromaStore = self.core.store
        self.client: Any = self.core.client
        self.collection_name: str = self.core.collection_name
        self.relevance_scale: RelevanceScale = self.core.relevance_scale

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model this store encodes with."""
        return self._embedding

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts; returns their ids (see ``TasbCollection.add_texts``)."""
        return self.core.add_texts(texts, metadatas, ids=ids)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by ids, or by a metadata ``filter`` (Chroma ``where``). Missing ids are fine."""
        self.core.delete(ids, kwargs.get("filter") or kwargs.get("where"))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents for ``ids`` (missing ids are skipped), with their ids set."""
        return [to_document(hit) for hit in self.core.get(ids)]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A collection filled with ``texts``; ``kwargs`` are the other arguments to open it.

        Without a ``collection_name`` or a place it gets a fresh name (in-memory stores are shared).
        """
        places = ("persist_directory", "host", "url", "client")
        if "collection_name" not in kwargs and all(kwargs.get(key) is None for key in places):
            kwargs["collection_name"] = f"tasb-{uuid.uuid4().hex[:12]}"
        opened = cls(embedding=embedding, **kwargs)
        opened.add_texts(texts, metadatas, ids=ids)
        return opened

    def _search(
        self, search_type: str, target: str | Sequence[float], /, **options: Any
    ) -> list[tuple[Document, float]]:
        settings = SearchSettings.from_options(search_type, **options)
        query, vector = (target, None) if isinstance(target, str) else (None, target)
        hits = self.core.search(settings, query=query, vector=vector)
        return [(to_document(hit), hit.score) for hit in hits]

    def search_hits(
        self,
        embedding: Sequence[float],
        k: int = DEFAULT_K,
        *,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """One Chroma query: the ``k`` best records by dot product with ``embedding``."""
        return self.store.query(
            embedding, k, where=filter, where_document=where_document, with_vectors=with_vectors
        )

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """Documents for ``query`` by ``search_type`` (any of SearchSettings, "hybrid" too).

        ``kwargs`` are the other :class:`~langchain_tasb.search.SearchSettings` fields.
        """
        return [doc for doc, _ in self._search(search_type, query, **kwargs)]

    def similarity_search(self, query: str, k: int = DEFAULT_K, **kwargs: Any) -> list[Document]:
        """The ``k`` documents with the largest dot product with the query, best first."""
        return [doc for doc, _ in self._search("similarity", query, k=k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their dot product with the query (higher is better), best first."""
        return self._search("similarity", query, k=k, **kwargs)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = DEFAULT_K, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents with the largest dot product with ``embedding``."""
        return [doc for doc, _ in self._search("similarity", embedding, k=k, **kwargs)]

    def similarity_search_by_vector_with_score(
        self, embedding: Sequence[float], k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their dot product with ``embedding``, best first."""
        return self._search("similarity", embedding, k=k, **kwargs)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # LangChain's similarity_search_with_relevance_scores maps each dot product with this.
        return self.relevance_scale.relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = DEFAULT_K,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse results: MMR over the ``fetch_k`` best, computed on dot products."""
        options = {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, **kwargs}
        return [doc for doc, _ in self._search("mmr", query, **options)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = DEFAULT_K,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR over the ``fetch_k`` best by dot product with ``embedding``."""
        options = {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, **kwargs}
        return [doc for doc, _ in self._search("mmr", embedding, **options)]

    asearch = in_thread(search)
    asimilarity_search_by_vector_with_score = in_thread(similarity_search_by_vector_with_score)
    amax_marginal_relevance_search = in_thread(max_marginal_relevance_search)
    amax_marginal_relevance_search_by_vector = in_thread(max_marginal_relevance_search_by_vector)

    def as_retriever(self, **kwargs: Any) -> TasbRetriever:  # type: ignore[override]
        """A :class:`TasbRetriever`; takes ``search_type`` and ``search_kwargs`` or the fields."""
        search_kwargs = dict(kwargs.pop("search_kwargs", None) or {})
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return TasbRetriever(vectorstore=self, tags=tags, **search_kwargs, **kwargs)


class TasbRetriever(Connection, BaseRetriever):
    """Retrieve Documents by dot product from an inner-product Chroma collection.

    Each Document carries ``id``, ``metadata["score"]`` (the dot product, higher is better)
    and ``metadata["relevance"]`` (calibrated, in [0, 1]). Build it from a ``TasbVectorStore``
    or from connection fields, which open an existing collection (never creating one).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    vectorstore: TasbVectorStore | None = None
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
        self.settings()  # SearchSettings checks every search setting, before anything opens
        if self.vectorstore is None:
            # Opened here rather than in a validator: pydantic would turn the store's errors
            # (CollectionNotFoundError, CollectionMismatchError) into a ValidationError.
            self.vectorstore = TasbVectorStore(
                embedding=self.embedding,
                collection_name=self.collection_name,
                hnsw=self.hnsw,
                create_collection_if_not_exists=False,
                **{key: getattr(self, key) for key in Connection.model_fields},
            )

    @property
    def store(self) -> TasbVectorStore:
        """The collection searched (always set after construction)."""
        return cast("TasbVectorStore", self.vectorstore)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> TasbRetriever:
        """Index ``texts`` (in memory by default) and return a retriever over them.

        Keyword arguments (``ids`` among them) open the store or set the retriever's fields.
        """
        fields = {key: kwargs.pop(key) for key in _PER_CALL if key in kwargs}
        store = TasbVectorStore.from_texts(
            texts, embedding or TasbEmbeddings(), metadatas, **kwargs
        )
        return cls(vectorstore=store, **fields)

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> TasbRetriever:
        """Like :meth:`from_texts`, keeping each Document's metadata and id (unless ``ids``)."""
        texts, metadatas = [d.page_content for d in documents], [d.metadata for d in documents]
        kwargs.setdefault("ids", [d.id for d in documents])
        return cls.from_texts(texts, embedding, metadatas, **kwargs)

    def settings(self, **overrides: Any) -> SearchSettings:
        """This retriever's search settings, with ``overrides`` replacing fields."""
        check_known("search arguments", overrides, _PER_CALL)
        return SearchSettings(**({key: getattr(self, key) for key in _PER_CALL} | overrides))

    def hits(self, query: str, **overrides: Any) -> list[ScoredHit]:
        """The core's hits for ``query``; ``overrides`` replace fields for this call only."""
        return self.store.core.search(self.settings(**overrides), query=query)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [scored_document(hit) for hit in self.hits(query, **kwargs)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = await asyncio.to_thread(self.hits, query, **kwargs)
        return [scored_document(hit) for hit in hits]
