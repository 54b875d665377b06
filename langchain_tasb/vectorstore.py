"""``TasbVectorStore``: a LangChain ``VectorStore`` over an inner-product Chroma collection."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore

from langchain_tasb.chroma.identity import calibrate, probe_vector
from langchain_tasb.chroma.store import (
    ChromaStore,
    Hit,
    HnswSettings,
    check_collection_name,
    connect,
    recorded_model_name,
    validate_records,
)

# Re-exported: the default was defined here before config.py held it.
from langchain_tasb.config import DEFAULT_COLLECTION_NAME as DEFAULT_COLLECTION_NAME
from langchain_tasb.config import MODEL_ENV_VAR
from langchain_tasb.embeddings import TasbEmbeddings
from langchain_tasb.ids import content_id
from langchain_tasb.metadata import user_metadata
from langchain_tasb.search import ScoredHit, SearchSettings
from langchain_tasb.search import search as run_search
from langchain_tasb.validation import check_texts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from langchain_core.embeddings import Embeddings

    from langchain_tasb.retriever import TasbRetriever
    from langchain_tasb.scoring import RelevanceScale

logger = logging.getLogger(__name__)

# Texts are embedded and written this many at a time, so a huge add_texts call keeps memory
# bounded and what was written before a crash stays written.
WRITE_SLICE = 2048


def embedding_similarity(embedding: Embeddings) -> str:
    """How the embedding says it is scored ("dot" or "cosine"); "dot" when it doesn't say."""
    similarity = getattr(embedding, "similarity", None)
    return similarity if similarity in ("dot", "cosine") else "dot"


def default_embeddings(client: Any, collection_name: str) -> TasbEmbeddings:
    """The model to open ``collection_name`` with when none is given.

    ``$TASB_MODEL`` when set; else the model recorded in the collection, if it exists and
    records one (said at INFO); else TAS-B. A model given explicitly always wins over all of
    these, and opening still refuses a collection built by another model.
    """
    if not os.environ.get(MODEL_ENV_VAR):
        recorded = recorded_model_name(client, collection_name)
        if recorded:
            logger.info("using model %s recorded in collection %s", recorded, collection_name)
            return TasbEmbeddings(model_name=recorded)
    return TasbEmbeddings()


def _to_document(hit: Hit | ScoredHit) -> Document:
    return Document(page_content=hit.text, metadata=user_metadata(hit.metadata), id=hit.id)


def scored_document(hit: ScoredHit) -> Document:
    """A hit as a Document whose metadata also holds the hit's scores.

    ``score`` (dot product) and ``relevance``, and for hybrid search ``fused_score`` and
    ``bm25_score``.
    """
    return Document(page_content=hit.text, metadata={**hit.metadata, **hit.scores()}, id=hit.id)


class TasbVectorStore(VectorStore):
    """A LangChain vector store on a Chroma collection created for inner-product search.

    Scores are dot products (higher is better); relevance is a calibrated logistic of the dot
    product, in [0, 1] and monotonic. Opening a collection checks its distance space and that
    it was filled by the same model (by what the model computes, not its name).

    Setup:
        ``pip install langchain-tasb``

    Key init args:
        embedding: any LangChain ``Embeddings``; defaults to ``$TASB_MODEL``, else the model
            recorded in an existing collection, else TAS-B (see :func:`default_embeddings`).
        collection_name: the Chroma collection (default ``"tasb"``, as for the ``tasb`` command).
        persist_directory / host, port, ssl, headers / client: where Chroma lives; in-memory
            when none is given.
        hnsw: HNSW settings for a new collection (``ef_search`` also applies to an old one).
        create_collection_if_not_exists: when False, a missing collection raises
            ``CollectionNotFoundError`` (naming it, where, and those that exist) instead of
            being created.

    Example:
        .. code-block:: python

            from langchain_tasb import TasbEmbeddings, TasbVectorStore

            store = TasbVectorStore(embedding=TasbEmbeddings(), persist_directory="./tasb_db")
            store.add_texts(["Around 9 Million people live in London"])
            store.similarity_search_with_score("How many people live in London?", k=1)
    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        *,
        persist_directory: str | None = None,
        client: Any = None,
        host: str | None = None,
        port: int | None = None,
        ssl: bool = False,
        headers: Mapping[str, str] | None = None,
        hnsw: HnswSettings | None = None,
        collection_metadata: Mapping[str, Any] | None = None,
        create_collection_if_not_exists: bool = True,
    ) -> None:
        check_collection_name(collection_name)  # before connecting or loading a model
        self.client = connect(
            client=client,
            persist_directory=persist_directory,
            host=host,
            port=port,
            ssl=ssl,
            headers=headers,
        )
        self._embedding: Embeddings = (
            embedding if embedding is not None else default_embeddings(self.client, collection_name)
        )
        self.store = ChromaStore.open(
            self.client,
            collection_name,
            probe=probe_vector(self._embedding),
            similarity=embedding_similarity(self._embedding),
            calibrate=lambda: calibrate(self._embedding),
            model_name=str(getattr(self._embedding, "model_name", type(self._embedding).__name__)),
            hnsw=hnsw,
            metadata=collection_metadata,
            create=create_collection_if_not_exists,
        )

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model this store encodes with."""
        return self._embedding

    @property
    def collection_name(self) -> str:
        """The Chroma collection's name."""
        return self.store.name

    @property
    def relevance_scale(self) -> RelevanceScale:
        """The calibrated map from dot product to relevance recorded in the collection."""
        return self.store.relevance

    # ----------------------------------------------------------------------------- writing

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts; returns their ids, in input order.

        An id given in ``ids`` wins for its item; a missing one (``None``) is derived from the
        text and ``metadata["source"]``, so adding the same text twice stores it once. Repeated
        ids within one call are merged, the last occurrence winning.
        """
        items = check_texts(texts)
        metas = self._check_lengths(items, metadatas, ids)
        given_ids: Sequence[str | None] = ids or [None] * len(items)
        resolved = [
            given if given is not None else content_id(text, meta)
            for text, meta, given in zip(items, metas, given_ids, strict=True)
        ]
        last = {id_: i for i, id_ in enumerate(resolved)}
        order = sorted(last.values())
        for start in range(0, len(order), WRITE_SLICE):
            picked = order[start : start + WRITE_SLICE]
            slice_texts = [items[i] for i in picked]
            slice_metas = [metas[i] for i in picked]
            slice_ids = [resolved[i] for i in picked]
            # Validate before spending time on encoding, and before anything is written.
            validate_records(slice_ids, slice_texts, slice_metas)
            vectors = self._embedding.embed_documents(slice_texts)
            self.store.upsert(slice_ids, slice_texts, vectors, slice_metas)
        return resolved

    @staticmethod
    def _check_lengths(
        texts: list[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
    ) -> list[Mapping[str, Any] | None]:
        if metadatas is not None and len(metadatas) != len(texts):
            msg = f"Got {len(texts)} texts but {len(metadatas)} metadatas; pass one per text"
            raise ValueError(msg)
        if ids is not None and len(ids) != len(texts):
            msg = f"Got {len(texts)} texts but {len(ids)} ids; pass one per text (None to derive)"
            raise ValueError(msg)
        return list(metadatas) if metadatas is not None else [None] * len(texts)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by ids, or by a metadata ``filter`` (Chroma ``where``). Missing ids are fine."""
        where = kwargs.get("filter") or kwargs.get("where")
        if ids is not None and not ids and where is None:
            return True
        self.store.delete(ids=ids, where=where)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents for ``ids`` (missing ids are skipped), with their ids set."""
        return [_to_document(hit) for hit in self.store.get(ids)]

    # ----------------------------------------------------------------------------- searching
    #
    # Every method below is one call of langchain_tasb.search.search; each async twin runs
    # its sync twin in a worker thread, so both return the same Documents and scores.

    def _search(
        self,
        search_type: str,
        options: dict[str, Any],
        *,
        query: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> list[ScoredHit]:
        return run_search(
            self, SearchSettings.from_options(search_type, **options), query=query, vector=vector
        )

    def search_hits(
        self,
        embedding: Sequence[float],
        k: int = 4,
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
        """Documents for ``query`` by ``search_type``.

        ``search_type`` is "similarity", "mmr", "similarity_score_threshold" (needs
        ``score_threshold``) or "hybrid"; ``kwargs`` are the other
        :class:`~langchain_tasb.search.SearchSettings` fields (``k``, ``filter``,
        ``where_document``, ``score_threshold``, ``fetch_k``, ``lambda_mult``, ``fusion``,
        ``alpha``).
        """
        return [_to_document(hit) for hit in self._search(search_type, kwargs, query=query)]

    async def asearch(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """:meth:`search` in a worker thread."""
        return await asyncio.to_thread(self.search, query, search_type, **kwargs)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents with the largest dot product with the query, best first.

        ``kwargs``: ``filter`` (Chroma ``where``), ``where_document``, ``score_threshold``
        (minimum relevance).
        """
        hits = self._search("similarity", {"k": k, **kwargs}, query=query)
        return [_to_document(hit) for hit in hits]

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search` in a worker thread."""
        return await asyncio.to_thread(self.similarity_search, query, k, **kwargs)

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their dot product with the query (higher is better), best first."""
        hits = self._search("similarity", {"k": k, **kwargs}, query=query)
        return [(_to_document(hit), hit.score) for hit in hits]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_with_score` in a worker thread."""
        return await asyncio.to_thread(self.similarity_search_with_score, query, k, **kwargs)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents with the largest dot product with ``embedding``."""
        hits = self._search("similarity", {"k": k, **kwargs}, vector=embedding)
        return [_to_document(hit) for hit in hits]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """:meth:`similarity_search_by_vector` in a worker thread."""
        return await asyncio.to_thread(self.similarity_search_by_vector, embedding, k, **kwargs)

    def similarity_search_by_vector_with_score(
        self, embedding: Sequence[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their dot product with ``embedding``, best first."""
        hits = self._search("similarity", {"k": k, **kwargs}, vector=embedding)
        return [(_to_document(hit), hit.score) for hit in hits]

    async def asimilarity_search_by_vector_with_score(
        self, embedding: Sequence[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_by_vector_with_score` in a worker thread."""
        return await asyncio.to_thread(
            self.similarity_search_by_vector_with_score, embedding, k, **kwargs
        )

    def similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their calibrated relevance, best first.

        Relevance is in [0, 1] and increases with the dot product; with ``score_threshold``
        only documents at or above it are returned.
        """
        search_type = (
            "similarity"
            if kwargs.get("score_threshold") is None
            else ("similarity_score_threshold")
        )
        hits = self._search(search_type, {"k": k, **kwargs}, query=query)
        return [(_to_document(hit), hit.relevance) for hit in hits]

    async def asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_with_relevance_scores` in a worker thread."""
        return await asyncio.to_thread(
            self.similarity_search_with_relevance_scores, query, k, **kwargs
        )

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self.similarity_search_with_relevance_scores(query, k, **kwargs)

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return await self.asimilarity_search_with_relevance_scores(query, k, **kwargs)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """The collection's calibrated map from a dot product (this store's score) to relevance.

        For LangChain code that applies it to what ``similarity_search_with_score`` returns.
        """
        return self.relevance_scale.relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse results: MMR over the ``fetch_k`` best, computed on dot products."""
        options = {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, **kwargs}
        return [_to_document(hit) for hit in self._search("mmr", options, query=query)]

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """:meth:`max_marginal_relevance_search` in a worker thread."""
        return await asyncio.to_thread(
            self.max_marginal_relevance_search, query, k, fetch_k, lambda_mult, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR over the ``fetch_k`` best by dot product with ``embedding``."""
        options = {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, **kwargs}
        return [_to_document(hit) for hit in self._search("mmr", options, vector=embedding)]

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """:meth:`max_marginal_relevance_search_by_vector` in a worker thread."""
        return await asyncio.to_thread(
            self.max_marginal_relevance_search_by_vector,
            embedding,
            k,
            fetch_k,
            lambda_mult,
            **kwargs,
        )

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> TasbVectorStore:
        """A store filled with ``texts``.

        With no ``collection_name`` and no ``persist_directory``, ``client`` or ``host``, the
        collection gets a fresh unique name: in-memory Chroma clients share one store per
        process, and two notebook cells must not write into each other's collection.
        """
        if "collection_name" not in kwargs and not any(
            kwargs.get(key) is not None for key in ("persist_directory", "client", "host")
        ):
            kwargs["collection_name"] = f"tasb-{uuid.uuid4().hex[:12]}"
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def as_retriever(self, **kwargs: Any) -> TasbRetriever:  # type: ignore[override]
        """A :class:`TasbRetriever` over this store.

        Accepts LangChain's ``search_type`` and ``search_kwargs`` (``k``, ``filter``,
        ``where_document``, ``score_threshold``, ``fetch_k``, ``lambda_mult``) as well as
        those fields directly.
        """
        from langchain_tasb.retriever import TasbRetriever

        search_kwargs = dict(kwargs.pop("search_kwargs", None) or {})
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return TasbRetriever(vectorstore=self, tags=tags, **search_kwargs, **kwargs)
