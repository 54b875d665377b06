"""The LlamaIndex vector store and retriever on the core collection, opened the same way.

What :class:`~langchain_tasb.TasbVectorStore` writes, this store reads as ``TextNode`` objects,
and the other way round (see :mod:`langchain_tasb.llama_index.nodes`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from pydantic import PrivateAttr

from langchain_tasb.collection import Connection, TasbCollection, in_thread
from langchain_tasb.config import DEFAULT_COLLECTION_NAME
from langchain_tasb.encoding.model import as_encoder
from langchain_tasb.errors import ModelMismatchError
from langchain_tasb.llama_index.nodes import (
    REF_DOC_ID_KEY,
    TasbLlamaEmbedding,
    combine,
    record_metadata,
    record_to_node,
    to_node,
    to_where,
)
from langchain_tasb.scoring import model_drift
from langchain_tasb.search import SearchSettings, check_known, check_positive_int

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.schema import NodeWithScore, QueryBundle

    from langchain_tasb.chroma.store import HnswSettings
    from langchain_tasb.search import ScoredHit

logger = logging.getLogger(__name__)

COLLECTION_FIELDS = ("collection_name", "embedding", "hnsw", *Connection.model_fields)
"""What names a collection to open: its name, model, HNSW settings and connection fields."""

_QUERY_KWARGS = (
    "where",
    "where_document",
    "mmr_threshold",
    "mmr_prefetch_k",
    "mmr_prefetch_factor",
)


class TasbLlamaVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on an inner-product Chroma collection, shared with LangChain.

    Node ids are the Chroma ids and writes are upserts. The space and model are checked on
    open, and a node's own embedding is checked to come from that model. Similarities are dot
    products; each node carries ``score`` and ``relevance`` in metadata hidden from the LLM.

    Args:
        vectorstore: A core :class:`~langchain_tasb.collection.TasbCollection` to share, or
            anything holding one as ``.core`` (a ``TasbVectorStore``); or give the
            connection fields instead.
        embedding: The collection's model: a ``TasbModel``, a :class:`TasbLlamaEmbedding`, or
            anything with ``embed_documents`` and ``embed_query``.
        hnsw: HNSW settings for a new collection.
        create_collection_if_not_exists: False opens an existing collection only, raising
            :class:`~langchain_tasb.CollectionNotFoundError` when it is missing.
        **kwargs: The connection fields (:class:`~langchain_tasb.collection.Connection`) and
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
        fields = {"collection_name": collection_name, "embedding": embedding, "hnsw": hnsw}
        fields |= {key: kwargs.pop(key) for key in Connection.model_fields if key in kwargs}
        if not create_collection_if_not_exists:
            fields["create_collection_if_not_exists"] = False
        super().__init__(**kwargs)
        self._core = open_core(vectorstore, fields, create=create_collection_if_not_exists)

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

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert ``nodes``; returns their ids, in input order.

        A node without an ``embedding`` is embedded from its embed-mode content. Repeated ids
        within one call: the last one wins.
        """
        ids = [node.node_id for node in nodes]
        texts = [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes]
        metadatas = [record_metadata(node, i) for i, node in enumerate(nodes)]
        self._core.upsert(ids, texts, metadatas, lambda rows: self._vectors(nodes, rows))
        return ids

    def _vectors(self, given: Sequence[BaseNode], positions: list[int]) -> list[list[float]]:
        nodes = [given[i] for i in positions]
        brought = [i for i, node in enumerate(nodes) if node.embedding is not None]
        if brought:
            self._check_model(nodes[brought[0]], positions[brought[0]])
        texts = [
            n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes if n.embedding is None
        ]
        made = iter(self._core.encoder.embed_documents(texts))
        return [node.embedding if node.embedding is not None else next(made) for node in nodes]

    def _check_model(self, node: BaseNode, position: int) -> None:
        # A node's own embedding must be the collection model's: one per write is recomputed.
        given = list(node.embedding or ())
        text = node.get_content(metadata_mode=MetadataMode.EMBED)
        ours = self._core.encoder.embed_documents([text])[0]
        name = self._core.collection_name
        if len(given) != len(ours):
            problem = (
                f"a {len(given)}-dimensional embedding; collection {name!r} holds "
                f"{len(ours)}-dimensional vectors"
            )
        elif drift := model_drift(ours, given):
            problem = (
                f"an embedding the model of collection {name!r} does not produce for its text "
                f"(cosine {drift[0]:.4f}, norm ratio {drift[1]:.3f})"
            )
        else:
            return
        msg = (
            f"nodes[{position}] (id {node.node_id!r}) carries {problem}. Embed with the "
            "collection's model (embed_model=TasbLlamaEmbedding(embeddings=store.core.encoder)), "
            "or write into a collection of the other model."
        )
        raise ModelMismatchError(msg)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node whose source document is ``ref_doc_id``."""
        self._core.store.delete(where={REF_DOC_ID_KEY: ref_doc_id})

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
        self._core.delete(node_ids, where)

    def clear(self) -> None:
        """Delete every node; the collection and its model record stay."""
        removed = self._core.store.clear()
        logger.debug("cleared %d nodes from %s", removed, self._core.collection_name)

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Stored nodes by id (in the order asked, missing ones skipped) and/or filters."""
        hits = self._core.get(node_ids, to_where(filters))
        return [record_to_node(hit.id, hit.text, hit.metadata) for hit in hits]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes by dot product (mode DEFAULT) or MMR (mode MMR).

        ``filters``, ``doc_ids`` and ``node_ids`` narrow the search (an empty list does not).
        Keyword arguments: ``where`` and ``where_document`` (ANDed with the rest),
        ``mmr_threshold``, ``mmr_prefetch_k`` or ``mmr_prefetch_factor``.
        """
        check_known("query arguments", kwargs, _QUERY_KWARGS)
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            msg = (
                f"Query mode {query.mode.value!r} is not supported; use 'default' or 'mmr' "
                "(for dense + BM25, TasbLlamaRetriever(search_type='hybrid'))"
            )
            raise ValueError(msg)
        k = query.similarity_top_k
        check_positive_int("similarity_top_k", k)
        # An empty list does not narrow: VectorStoreIndex.as_retriever() passes node_ids=[].
        doc_ids = {REF_DOC_ID_KEY: {"$in": query.doc_ids}} if query.doc_ids else None
        mmr = query.mode == VectorStoreQueryMode.MMR
        threshold = kwargs.get("mmr_threshold", query.mmr_threshold) if mmr else None
        factor = kwargs.get("mmr_prefetch_factor") if mmr else None
        prefetch = kwargs.get("mmr_prefetch_k") if mmr else None
        settings = SearchSettings(
            "mmr" if mmr else "similarity",
            k=k,
            filter=combine([to_where(query.filters), doc_ids, kwargs.get("where")]),
            where_document=kwargs.get("where_document"),
            ids=query.node_ids or None,
            fetch_k=prefetch or (None if factor is None else max(k, int(k * factor))),
            lambda_mult=0.5 if threshold is None else float(threshold),
        )
        vector = self._query_vector(query)  # None: the core embeds query_str
        hits = self._core.search(settings, query=query.query_str or None, vector=vector)
        return VectorStoreQueryResult(
            nodes=[to_node(hit).node for hit in hits],
            similarities=[hit.score for hit in hits],
            ids=[hit.id for hit in hits],
        )

    async_add = in_thread(add)
    adelete = in_thread(delete)
    adelete_nodes = in_thread(delete_nodes)
    aclear = in_thread(clear)
    aget_nodes = in_thread(get_nodes)
    aquery = in_thread(query)

    def _query_vector(self, query: VectorStoreQuery) -> list[float] | None:
        dimension = self._core.store.identity.dimension
        if query.query_embedding is not None and len(query.query_embedding) != dimension:
            msg = (
                f"The query embedding has {len(query.query_embedding)} dimensions; collection "
                f"{self._core.collection_name!r} holds {dimension}-dimensional vectors. "
                "Query with the collection's model: VectorStoreIndex.from_vector_store(store, "
                "embed_model=TasbLlamaEmbedding(embeddings=store.core.encoder))."
            )
            raise ValueError(msg)
        return query.query_embedding


def open_core(vectorstore: Any, fields: dict[str, Any], *, create: bool) -> TasbCollection:
    """The core collection of ``vectorstore`` (or its ``.core``), else the one ``fields`` name.

    ``fields``: the :data:`COLLECTION_FIELDS` (None: not given), plus any other field given,
    which only counts against ``vectorstore``. ``create`` makes a missing collection.

    Raises:
        TypeError: ``vectorstore`` and ``fields`` both given, or ``embedding`` a LlamaIndex
            embed model other than :class:`TasbLlamaEmbedding`.
    """
    fields = {key: value for key, value in fields.items() if value is not None}
    if vectorstore is not None:
        if fields:
            msg = (
                f"Pass either vectorstore= or connection fields, not both (got vectorstore and "
                f"{sorted(fields)}); it already holds its collection and model."
            )
            raise TypeError(msg)
        return getattr(vectorstore, "core", vectorstore)  # type: ignore[no-any-return]
    connection = {key: value for key, value in fields.items() if key in Connection.model_fields}
    embedding = fields.get("embedding")
    if isinstance(embedding, TasbLlamaEmbedding):
        embedding = embedding.embeddings
    elif isinstance(embedding, BaseEmbedding):
        msg = (
            f"embedding={type(embedding).__name__}(...) is a LlamaIndex embed model this "
            "store cannot run itself; pass a TasbModel (or TasbEmbeddings()) or a "
            "TasbLlamaEmbedding"
        )
        raise TypeError(msg)
    return TasbCollection(
        None if embedding is None else as_encoder(embedding),
        fields.get("collection_name") or DEFAULT_COLLECTION_NAME,
        connection=Connection(**connection),
        hnsw=fields.get("hnsw"),
        create_collection_if_not_exists=create,
    )


@dataclass(frozen=True)
class CoreSearch:
    """A core collection and search settings: what :class:`TasbLlamaRetriever` runs."""

    core: TasbCollection
    settings: SearchSettings

    def hits(self, query: str) -> list[ScoredHit]:
        """The hits for ``query``."""
        return self.core.search(self.settings, query=query)


class TasbLlamaRetriever(BaseRetriever):
    """LlamaIndex retriever running the core search.

    Node ids are the Chroma ids, ``score`` is the dot product, and the metadata adds the
    hit's scores. The query is encoded from ``query_str`` by the collection's model; a
    ``QueryBundle.embedding`` is not used.

    Args:
        retriever: Anything with ``hits(query)`` returning ``ScoredHit`` s (a
            ``TasbRetriever``, a :class:`CoreSearch`); or give the fields instead.
        **fields: the collection (``vectorstore``, or ``collection_name``, ``embedding``,
            ``hnsw`` and the connection fields), opened but never created, and the search
            settings, with ``similarity_top_k`` for ``k`` and ``filters``
            (``MetadataFilters``) for ``filter``.
    """

    def __init__(
        self,
        retriever: Any = None,
        *,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **fields: Any,
    ) -> None:
        options = _llama_names(fields)
        if retriever is not None and options:
            msg = (
                f"Pass either retriever= or TasbRetriever fields, not both (got retriever and "
                f"{sorted(options)}); set those fields on the retriever instead."
            )
            raise TypeError(msg)
        if retriever is None:
            given = {key: options.pop(key) for key in COLLECTION_FIELDS if key in options}
            core = open_core(options.pop("vectorstore", None), given, create=False)
            search_type = options.pop("search_type", "similarity")
            retriever = CoreSearch(core, SearchSettings.from_options(search_type, **options))
        self.retriever = retriever
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [to_node(hit) for hit in self.retriever.hits(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _llama_names(fields: dict[str, Any]) -> dict[str, Any]:
    """TasbRetriever fields from LlamaIndex's names (``similarity_top_k``, ``filters``)."""
    out = dict(fields)
    for llama, ours in (("similarity_top_k", "k"), ("filters", "filter")):
        if llama in out and ours in out:
            msg = f"Pass {llama}= or {ours}=, not both (they are the same setting)"
            raise TypeError(msg)
        if llama in out:
            out[ours] = out.pop(llama)
    if "filters" in fields:
        if not isinstance(fields["filters"], MetadataFilters | None):
            msg = (
                f"filters must be LlamaIndex MetadataFilters, got "
                f"{type(fields['filters']).__name__}; pass a Chroma where dict as filter= instead"
            )
            raise TypeError(msg)
        out["filter"] = to_where(fields["filters"])
    return out
