"""``TasbLlamaRetriever``: a LlamaIndex retriever running the core search."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.vector_stores.types import MetadataFilters

from langchain_tasb.llama_index.nodes import to_node, to_where
from langchain_tasb.llama_index.vector_store import COLLECTION_FIELDS, open_core
from langchain_tasb.search import SearchSettings

if TYPE_CHECKING:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.schema import NodeWithScore, QueryBundle

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.search import ScoredHit


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
            given = {key: value for key, value in given.items() if value is not None}
            core = open_core(options.pop("vectorstore", None), given, create=False)
            search_type = options.pop("search_type", "similarity")
            retriever = CoreSearch(core, SearchSettings.from_options(search_type, **options))
        self.retriever = retriever
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
        if not isinstance(fields["filters"], MetadataFilters | None):
            msg = (
                f"filters must be LlamaIndex MetadataFilters, got "
                f"{type(fields['filters']).__name__}; pass a Chroma where dict as filter= instead"
            )
            raise TypeError(msg)
        out["filter"] = to_where(fields["filters"])
    return out
