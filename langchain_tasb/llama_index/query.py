"""How :class:`~langchain_tasb.llama_index.TasbLlamaVectorStore` answers a LlamaIndex query."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from langchain_tasb.llama_index.filters import combine, to_where
from langchain_tasb.llama_index.nodes import REF_DOC_ID_KEY
from langchain_tasb.search import ScoredHit, SearchSettings, search

if TYPE_CHECKING:
    from langchain_tasb.collection import TasbCollection

__all__ = ["query_hits"]

_QUERY_KWARGS = frozenset(
    {"where", "where_document", "mmr_threshold", "mmr_prefetch_k", "mmr_prefetch_factor"}
)
_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR)


def query_hits(
    vectorstore: TasbCollection, query: VectorStoreQuery, options: dict[str, Any]
) -> list[ScoredHit]:
    """The hits of a LlamaIndex query (see :meth:`TasbLlamaVectorStore.query`), checked first."""
    unknown = sorted(set(options) - _QUERY_KWARGS)
    if unknown:
        msg = f"Unknown query arguments {unknown}; expected some of {sorted(_QUERY_KWARGS)}"
        raise TypeError(msg)
    if query.mode not in _MODES:
        msg = (
            f"Query mode {query.mode.value!r} is not supported; use 'default' or 'mmr' "
            "(for dense + BM25, TasbLlamaRetriever(search_type='hybrid'))"
        )
        raise ValueError(msg)
    k = query.similarity_top_k
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        msg = f"similarity_top_k must be a positive integer, got {k!r}"
        raise ValueError(msg)
    vector = _query_vector(vectorstore, query)
    # An empty list does not narrow: VectorStoreIndex.as_retriever() passes node_ids=[].
    doc_ids = {REF_DOC_ID_KEY: {"$in": query.doc_ids}} if query.doc_ids else None
    where = combine([to_where(query.filters), doc_ids, options.get("where")])
    narrowing: dict[str, Any] = {
        "k": k,
        "filter": where,
        "where_document": options.get("where_document"),
        "ids": query.node_ids or None,
    }
    if query.mode == VectorStoreQueryMode.MMR:
        threshold = options.get("mmr_threshold", query.mmr_threshold)
        factor = options.get("mmr_prefetch_factor")
        fetch_k = options.get("mmr_prefetch_k") or (
            None if factor is None else max(k, int(k * factor))
        )
        if threshold is not None:
            narrowing["lambda_mult"] = float(threshold)
        settings = SearchSettings("mmr", fetch_k=fetch_k, **narrowing)
    else:
        settings = SearchSettings("similarity", **narrowing)
    return search(vectorstore, settings, vector=vector)


def _query_vector(vectorstore: TasbCollection, query: VectorStoreQuery) -> list[float]:
    if query.query_embedding is None:
        if not query.query_str:
            msg = "VectorStoreQuery needs query_embedding or query_str; it has neither"
            raise ValueError(msg)
        return vectorstore.encoder.embed_query(query.query_str)
    dimension = vectorstore.store.identity.dimension
    if len(query.query_embedding) != dimension:
        msg = (
            f"The query embedding has {len(query.query_embedding)} dimensions; collection "
            f"{vectorstore.collection_name!r} holds {dimension}-dimensional vectors. "
            "Query with the collection's model: VectorStoreIndex.from_vector_store(store, "
            "embed_model=TasbLlamaEmbedding(embeddings=store.core.encoder))."
        )
        raise ValueError(msg)
    return list(query.query_embedding)
