"""LlamaIndex adapters: an embedding, a vector store and a retriever over the same collection.

LlamaIndex's own stores rank by cosine or rescore dot products, which reorders the results of
unnormalised models such as TAS-B; these keep dot products. Needs ``[llama-index]``.
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401  (the extra's install hint, before the imports below)
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    msg = (
        "langchain_tasb.llama_index needs llama-index-core: "
        "pip install 'langchain-tasb[llama-index]' (or pip install llama-index-core)."
    )
    raise ImportError(msg) from exc

from langchain_tasb.llama_index.nodes import SCORE_KEYS, TasbLlamaEmbedding, to_node
from langchain_tasb.llama_index.vector_store import (
    CoreSearch,
    TasbLlamaRetriever,
    TasbLlamaVectorStore,
)

__all__ = [
    "SCORE_KEYS",
    "CoreSearch",
    "TasbLlamaEmbedding",
    "TasbLlamaRetriever",
    "TasbLlamaVectorStore",
    "to_node",
]
