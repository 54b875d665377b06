"""``TasbCollection``: a Chroma collection opened with its model, written and read by id.

What :class:`~langchain_tasb.vectorstore.TasbVectorStore` and
:class:`~langchain_tasb.retriever.TasbRetriever` both need, below both of them: opening a
collection from connection fields with a model (the default model chosen as documented in
:func:`default_embeddings`), embedding and upserting texts, deleting, and reading records back
as Documents. A ``TasbCollection`` is a :class:`~langchain_tasb.search.SearchTarget`; a
``TasbVectorStore`` is a ``TasbCollection`` with LangChain's search methods added.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.documents import Document

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
from langchain_tasb.config import DEFAULT_COLLECTION_NAME, MODEL_ENV_VAR
from langchain_tasb.embeddings import TasbEmbeddings
from langchain_tasb.hybrid.lexical import attach_persisted
from langchain_tasb.ids import content_id
from langchain_tasb.metadata import check_user_metadata, user_metadata
from langchain_tasb.validation import check_texts

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from langchain_core.embeddings import Embeddings

    from langchain_tasb.scoring import RelevanceScale
    from langchain_tasb.search import ScoredHit

logger = logging.getLogger(__name__)

# Texts are embedded and written this many at a time, so a huge add_texts call keeps memory
# bounded and what was written before a crash stays written.
WRITE_SLICE = 2048

_C = TypeVar("_C", bound="TasbCollection")


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


def to_document(hit: Hit | ScoredHit) -> Document:
    """A hit as a Document: its text, id and user metadata (no reserved ``_tasb_`` keys)."""
    return Document(page_content=hit.text, metadata=user_metadata(hit.metadata), id=hit.id)


def scored_document(hit: ScoredHit) -> Document:
    """A hit as a Document whose metadata also holds the hit's scores.

    ``score`` (dot product) and ``relevance``, and for hybrid search ``fused_score`` and
    ``bm25_score``. Writes through this package refuse these keys in user metadata; a record
    written around it that holds one is said at WARNING, and the score takes its place.
    """
    scores = hit.scores()
    clash = sorted(set(hit.metadata) & set(scores))
    if clash:
        logger.warning(
            "record %s holds metadata keys %s, which a search result sets to its scores: "
            "the scores replace them (re-write the record with other key names)",
            hit.id,
            clash,
        )
    return Document(page_content=hit.text, metadata={**hit.metadata, **scores}, id=hit.id)


class TasbCollection:
    """A Chroma collection created for inner-product search, opened with its model.

    Opening checks the collection's distance space and that it was filled by the same model
    (by what the model computes, not its name). Texts are embedded and upserted in slices;
    records read back as Documents.

    Args:
        embedding: any LangChain ``Embeddings``; defaults to ``$TASB_MODEL``, else the model
            recorded in an existing collection, else TAS-B (see :func:`default_embeddings`).
        collection_name: the Chroma collection (default ``"tasb"``, as for the ``tasb`` command).
        persist_directory / host, port, ssl, headers / client: where Chroma lives; in-memory
            when none is given.
        hnsw: HNSW settings for a new collection (``ef_search`` also applies to an old one).
        collection_metadata: extra metadata for a new collection.
        create_collection_if_not_exists: when False, a missing collection raises
            ``CollectionNotFoundError`` (naming it, where, and those that exist) instead of
            being created.
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
        # A BM25 index built by an earlier hybrid search is kept in step by this store's writes.
        attach_persisted(self)

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

        Raises:
            ValueError: a metadata key is reserved (starts with ``_tasb_``) or is one a
                search result sets (``score``, ``relevance``, ``fused_score``,
                ``bm25_score``); nothing was written.
        """
        items = check_texts(texts)
        metas = self._check_lengths(items, metadatas, ids)
        check_user_metadata(metas)
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
        return [to_document(hit) for hit in self.store.get(ids)]

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_texts(
        cls: type[_C],
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> _C:
        """A collection filled with ``texts``; ``kwargs`` are the other arguments to open it.

        With no ``collection_name`` and no ``persist_directory``, ``client`` or ``host``, the
        collection gets a fresh unique name: in-memory Chroma clients share one store per
        process, and two notebook cells must not write into each other's collection.
        """
        if "collection_name" not in kwargs and not any(
            kwargs.get(key) is not None for key in ("persist_directory", "client", "host")
        ):
            kwargs["collection_name"] = f"tasb-{uuid.uuid4().hex[:12]}"
        opened = cls(embedding=embedding, **kwargs)
        opened.add_texts(texts, metadatas, ids=ids)
        return opened
