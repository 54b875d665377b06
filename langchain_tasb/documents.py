"""The LangChain skin's base: a core collection written and read as LangChain ``Document`` s."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from langchain_tasb.collection import TasbCollection
from langchain_tasb.config import DEFAULT_COLLECTION_NAME
from langchain_tasb.connection import CONNECTION_FIELDS, Connection
from langchain_tasb.embeddings import TasbEmbeddings, as_embeddings
from langchain_tasb.encoding.model import as_encoder
from langchain_tasb.metadata import user_metadata

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from langchain_core.embeddings import Embeddings
    from typing_extensions import Self

    from langchain_tasb.chroma.records import Hit
    from langchain_tasb.chroma.store import ChromaStore, HnswSettings
    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.scoring import RelevanceScale
    from langchain_tasb.search import ScoredHit

logger = logging.getLogger(__name__)


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


class DocumentCollection:
    """A core collection opened with a LangChain ``Embeddings``, read as Documents.

    Args:
        embedding: any LangChain ``Embeddings``; defaults to ``$TASB_MODEL``, else the model
            recorded in an existing collection, else TAS-B.
        collection_name: the Chroma collection.
        hnsw: HNSW settings for a new collection (``ef_search`` also applies to an old one).
        collection_metadata: extra metadata for a new collection.
        create_collection_if_not_exists: when False, a missing collection raises
            ``CollectionNotFoundError`` instead of being created.
        **connection: where Chroma lives (:class:`~langchain_tasb.connection.Connection`);
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
        unknown = sorted(set(connection) - set(CONNECTION_FIELDS))
        if unknown:
            msg = f"Unknown arguments {unknown}; the connection fields are {CONNECTION_FIELDS}"
            raise TypeError(msg)
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
        if "collection_name" not in kwargs and not Connection.pop_from(dict(kwargs)).given():
            kwargs["collection_name"] = f"tasb-{uuid.uuid4().hex[:12]}"
        opened = cls(embedding=embedding, **kwargs)
        opened.add_texts(texts, metadatas, ids=ids)
        return opened
