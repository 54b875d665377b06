"""LlamaIndex adapters: an embedding, a vector store and a retriever over the same collection.

LlamaIndex's own stores rank by cosine or rescore dot products, which reorders the results of
unnormalised models such as TAS-B; these keep dot products. Needs ``[llama-index]``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.schema import NodeWithScore, QueryBundle
    from llama_index.core.vector_stores.types import MetadataFilters
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    msg = (
        "langchain_tasb.llama_index needs llama-index-core: "
        "pip install 'langchain-tasb[llama-index]' (or pip install llama-index-core)."
    )
    raise ImportError(msg) from exc
from pydantic import Field, PrivateAttr

from langchain_tasb.collection import Connection
from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.llama_index.nodes import SCORE_KEYS, to_node, to_where
from langchain_tasb.llama_index.vector_store import TasbLlamaVectorStore, open_core
from langchain_tasb.search import SearchSettings

if TYPE_CHECKING:
    from llama_index.core.callbacks import CallbackManager

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.search import ScoredHit

__all__ = [
    "SCORE_KEYS",
    "CoreSearch",
    "TasbLlamaEmbedding",
    "TasbLlamaRetriever",
    "TasbLlamaVectorStore",
    "to_node",
]


class TasbLlamaEmbedding(BaseEmbedding):
    """LlamaIndex embedding model backed by a ``TasbModel`` (``TasbEmbeddings`` is one).

    Vectors are returned as the model makes them: TAS-B's are not normalised, and must be
    compared by dot product.
    """

    embed_batch_size: int = Field(default=256, gt=0, le=2048)
    """Texts LlamaIndex hands over per call (the model batches again inside)."""

    _embeddings: TasbModel = PrivateAttr()

    def __init__(self, embeddings: TasbModel | None = None, **kwargs: Any) -> None:
        model = embeddings if embeddings is not None else TasbModel()
        kwargs.setdefault("model_name", model.model_name)
        super().__init__(**kwargs)
        self._embeddings = model

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's serialisation name."""
        return "TasbLlamaEmbedding"

    @property
    def embeddings(self) -> TasbModel:
        """The wrapped model."""
        return self._embeddings

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embeddings.embed_query(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await self._embeddings.aembed_query(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embeddings.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embeddings.embed_documents(texts)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._embeddings.aembed_documents([text]))[0]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._embeddings.aembed_documents(texts)


@dataclass(frozen=True)
class CoreSearch:
    """A core collection and search settings: what :class:`TasbLlamaRetriever` runs."""

    core: TasbCollection
    settings: SearchSettings

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> CoreSearch:
        """Open the collection named by ``fields`` (never creating it); the rest are settings.

        Raises:
            TypeError: On a field that is neither a collection field nor a search setting.
        """
        options = dict(fields)
        vectorstore, embedding = options.pop("vectorstore", None), options.pop("embedding", None)
        name, hnsw = options.pop("collection_name", None), options.pop("hnsw", None)
        connection = Connection.pop_from(options)
        settings = SearchSettings.from_options(options.pop("search_type", "similarity"), **options)
        return cls(open_core(vectorstore, embedding, name, hnsw, connection, False), settings)

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
        callback_manager: LlamaIndex callbacks.
        verbose: LlamaIndex's verbose flag.
        **fields: the collection (``vectorstore``, or ``collection_name``, ``embedding``,
            ``hnsw`` and the connection fields) and the search settings, with
            ``similarity_top_k`` for ``k`` and ``filters`` (``MetadataFilters``) for
            ``filter``.
    """

    def __init__(
        self,
        retriever: Any = None,
        *,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **fields: Any,
    ) -> None:
        fields = _llama_names(fields)
        if retriever is not None and fields:
            msg = (
                f"Pass either retriever= or TasbRetriever fields, not both (got retriever and "
                f"{sorted(fields)}); set those fields on the retriever instead."
            )
            raise TypeError(msg)
        self.retriever = retriever if retriever is not None else CoreSearch.from_fields(fields)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [to_node(hit) for hit in self.retriever.hits(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await asyncio.to_thread(self.retriever.hits, query_bundle.query_str)
        return [to_node(hit) for hit in hits]


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
        if fields["filters"] is not None and not isinstance(fields["filters"], MetadataFilters):
            msg = (
                f"filters must be LlamaIndex MetadataFilters, got "
                f"{type(fields['filters']).__name__}; pass a Chroma where dict as filter= instead"
            )
            raise TypeError(msg)
        out["filter"] = to_where(fields["filters"])
    return out
