"""``TasbLlamaVectorStore``: a LlamaIndex vector store on the core collection.

What :class:`~langchain_tasb.TasbVectorStore` writes, this store reads as ``TextNode`` objects,
and the other way round (see :mod:`langchain_tasb.llama_index.nodes`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryResult,
)
from pydantic import PrivateAttr

from langchain_tasb.chroma.records import validate_records
from langchain_tasb.collection import WRITE_SLICE, TasbCollection
from langchain_tasb.config import DEFAULT_COLLECTION_NAME
from langchain_tasb.connection import CONNECTION_FIELDS, Connection
from langchain_tasb.encoding.model import as_encoder
from langchain_tasb.errors import ModelMismatchError
from langchain_tasb.llama_index.filters import to_where
from langchain_tasb.llama_index.nodes import REF_DOC_ID_KEY, node_to_record, record_to_node
from langchain_tasb.llama_index.query import query_hits

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tasb.chroma.collection import Field
    from langchain_tasb.chroma.settings import HnswSettings
    from langchain_tasb.chroma.store import ChromaStore
    from langchain_tasb.encoding.types import TextEncoder

logger = logging.getLogger(__name__)

__all__ = ["TasbLlamaVectorStore"]

# A node's own embedding must be the collection model's: one per write is recomputed and compared.
_MIN_COSINE = 0.99
_NORM_TOLERANCE = 0.05


class TasbLlamaVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on an inner-product Chroma collection, shared with LangChain.

    Node ids are the Chroma ids and writes are upserts. The space and model are checked on
    open, and a node's own embedding is checked to come from that model. Similarities are dot
    products; each node carries ``score`` and ``relevance`` in metadata hidden from the LLM.

    Args:
        vectorstore: A core :class:`~langchain_tasb.collection.TasbCollection` to share, or
            anything holding one as ``.core`` (a ``TasbVectorStore``); or give the
            connection fields instead.
        collection_name: The Chroma collection.
        embedding: The collection's model: a ``TasbModel``, a :class:`TasbLlamaEmbedding`, or
            anything with ``embed_documents`` and ``embed_query``.
        hnsw: HNSW settings for a new collection.
        create_collection_if_not_exists: False opens an existing collection only, raising
            :class:`~langchain_tasb.CollectionNotFoundError` when it is missing.
        **kwargs: The connection fields (:class:`~langchain_tasb.connection.Connection`) and
            LlamaIndex's own vector store fields.
    """

    stores_text: bool = True
    is_embedding_query: bool = True

    _core: TasbCollection = PrivateAttr()

    def __init__(
        self,
        vectorstore: Any = None,
        *,
        collection_name: str | None = None,
        embedding: Any = None,
        hnsw: HnswSettings | None = None,
        create_collection_if_not_exists: bool = True,
        **kwargs: Any,
    ) -> None:
        connection = Connection.pop_from(kwargs)
        fields = {
            **{key: getattr(connection, key) for key in CONNECTION_FIELDS},
            "ssl": connection.ssl or None,
            "collection_name": collection_name,
            "embedding": embedding,
            "hnsw": hnsw,
            "create_collection_if_not_exists": None if create_collection_if_not_exists else False,
        }
        given = sorted(key for key, value in fields.items() if value is not None)
        if vectorstore is not None and given:
            msg = (
                f"Pass either vectorstore= or connection fields, not both (got vectorstore and "
                f"{given}); it already holds its collection and model."
            )
            raise TypeError(msg)
        if vectorstore is None:
            collection = TasbCollection(
                encoder_of(embedding),
                collection_name or DEFAULT_COLLECTION_NAME,
                connection=connection,
                hnsw=hnsw,
                create_collection_if_not_exists=create_collection_if_not_exists,
            )
        else:
            collection = getattr(vectorstore, "core", vectorstore)
        super().__init__(**kwargs)
        self._core = collection

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's serialisation name."""
        return "TasbLlamaVectorStore"

    @property
    def client(self) -> Any:
        """The Chroma client."""
        return self._core.client

    @property
    def core(self) -> TasbCollection:
        """The core collection this store runs on."""
        return self._core

    @property
    def _gateway(self) -> ChromaStore:
        return self._core.store

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert ``nodes``; returns their ids, in input order.

        A node without an ``embedding`` is embedded from its embed-mode content. Repeated ids
        within one call: the last one wins.
        """
        records = [node_to_record(node, i) for i, node in enumerate(nodes)]
        last = {record.id: i for i, record in enumerate(records)}
        order = sorted(last.values())
        for start in range(0, len(order), WRITE_SLICE):
            picked = order[start : start + WRITE_SLICE]
            batch = [records[i] for i in picked]
            ids = [record.id for record in batch]
            texts = [record.text for record in batch]
            metadatas = [record.metadata for record in batch]
            validate_records(ids, texts, metadatas)  # before spending time on encoding
            vectors = self._vectors([nodes[i] for i in picked], picked)
            self._gateway.upsert(ids, texts, vectors, metadatas)
        logger.debug("upserted %d nodes into %s", len(order), self._core.collection_name)
        return [record.id for record in records]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Async :meth:`add`."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    def _vectors(self, nodes: list[BaseNode], positions: list[int]) -> list[list[float]]:
        encoder = self._core.encoder
        missing = [i for i, node in enumerate(nodes) if node.embedding is None]
        made = encoder.embed_documents(
            [nodes[i].get_content(metadata_mode=MetadataMode.EMBED) for i in missing]
        )
        vectors: list[list[float]] = [node.embedding or [] for node in nodes]
        for i, vector in zip(missing, made, strict=True):
            vectors[i] = vector
        brought = next((i for i, node in enumerate(nodes) if node.embedding is not None), None)
        if brought is not None:
            self._check_model(nodes[brought], positions[brought])
        return vectors

    def _check_model(self, node: BaseNode, position: int) -> None:
        """Refuse a node embedding that the collection's model does not produce."""
        given = np.asarray(node.embedding, dtype=np.float64)
        ours = np.asarray(
            self._core.encoder.embed_documents(
                [node.get_content(metadata_mode=MetadataMode.EMBED)]
            )[0],
            dtype=np.float64,
        )
        fix = (
            "Embed with the collection's model (embed_model=TasbLlamaEmbedding(embeddings="
            "store.core.encoder)), or write into a collection of the other model."
        )
        if given.shape != ours.shape:
            msg = (
                f"nodes[{position}] (id {node.node_id!r}) carries a {given.size}-dimensional "
                f"embedding; collection {self._core.collection_name!r} holds "
                f"{ours.size}-dimensional vectors. {fix}"
            )
            raise ModelMismatchError(msg)
        norms = float(np.linalg.norm(given)) * float(np.linalg.norm(ours))
        cosine = float(given @ ours) / norms if norms > 0 else 0.0
        ratio = float(np.linalg.norm(given)) / max(float(np.linalg.norm(ours)), 1e-12)
        if cosine < _MIN_COSINE or abs(ratio - 1.0) > _NORM_TOLERANCE:
            msg = (
                f"nodes[{position}] (id {node.node_id!r}) carries an embedding the model of "
                f"collection {self._core.collection_name!r} does not produce for its "
                f"text (cosine {cosine:.4f}, norm ratio {ratio:.3f}). {fix}"
            )
            raise ModelMismatchError(msg)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node whose source document is ``ref_doc_id``."""
        self._gateway.delete(where={REF_DOC_ID_KEY: ref_doc_id})

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Async :meth:`delete`."""
        await asyncio.to_thread(self.delete, ref_doc_id)

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id, by metadata filters, or by both (nodes matching both)."""
        where = to_where(filters)
        if node_ids is None and where is None:
            msg = "delete_nodes() needs node_ids or filters; to remove every node, call clear()"
            raise ValueError(msg)
        if node_ids is not None and not node_ids:
            return
        self._gateway.delete(ids=node_ids, where=where)

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Async :meth:`delete_nodes`."""
        await asyncio.to_thread(self.delete_nodes, node_ids, filters)

    def clear(self) -> None:
        """Delete every node; the collection and its model record stay."""
        removed = self._gateway.clear()
        logger.debug("cleared %d nodes from %s", removed, self._core.collection_name)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await asyncio.to_thread(self.clear)

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Stored nodes by id (in the order asked, missing ones skipped) and/or filters."""
        if node_ids is not None and not node_ids:
            return []
        where = to_where(filters)
        include: list[Field] = ["documents", "metadatas"]
        if node_ids is None:
            hits = [
                hit for page in self._gateway.scan(where, include=include) for hit in page.hits()
            ]
        else:
            unique = list(dict.fromkeys(node_ids))
            got = self._gateway.get_where(where, ids=unique, include=include)
            found = {hit.id: hit for hit in got.hits()}
            hits = [found[i] for i in unique if i in found]
        return [record_to_node(hit.id, hit.text, hit.metadata) for hit in hits]

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Async :meth:`get_nodes`."""
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes by dot product (mode DEFAULT) or MMR (mode MMR).

        ``filters``, ``doc_ids`` and ``node_ids`` narrow the search (an empty list does not).
        Keyword arguments: ``where`` and ``where_document`` (ANDed with the rest),
        ``mmr_threshold``, ``mmr_prefetch_k`` or ``mmr_prefetch_factor``.
        """
        hits = query_hits(self._core, query, kwargs)
        nodes = [
            record_to_node(
                hit.id,
                hit.text,
                {**hit.metadata, **hit.reserved},
                {"score": hit.score, "relevance": hit.relevance},
            )
            for hit in hits
        ]
        return VectorStoreQueryResult(
            nodes=nodes, similarities=[hit.score for hit in hits], ids=[hit.id for hit in hits]
        )

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Async :meth:`query`."""
        return await asyncio.to_thread(self.query, query, **kwargs)


def encoder_of(embedding: Any) -> TextEncoder | None:
    """The core encoder behind a model, a ``TasbLlamaEmbedding`` or a LangChain embeddings."""
    if embedding is None:
        return None
    if not isinstance(embedding, BaseEmbedding):
        return as_encoder(embedding)
    inner = getattr(embedding, "embeddings", None)
    if inner is None:
        msg = (
            f"embedding={type(embedding).__name__}(...) is a LlamaIndex embed model this store "
            "cannot run itself; pass a TasbModel (or TasbEmbeddings()) or a TasbLlamaEmbedding"
        )
        raise TypeError(msg)
    return as_encoder(inner)
