"""Hybrid retrieval: dense (dot product) hits fused with BM25 hits from a :class:`LexicalIndex`.

The BM25 side is in :mod:`~langchain_tasb.hybrid.lexical`, fusion in
:mod:`~langchain_tasb.hybrid.fusion`; their names are importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.chroma.records import Hit
from langchain_tasb.config import DEFAULT_FUSION, default_fetch_k
from langchain_tasb.hybrid.bm25 import Bm25Index, bm25_run, tokenize, tokenizer_settings
from langchain_tasb.hybrid.fusion import (
    DEFAULT_RRF_K,
    FUSIONS,
    Fusion,
    fuse,
    fuse_runs,
    reciprocal_rank_fusion,
    weighted_fusion,
)
from langchain_tasb.hybrid.lexical import (
    PAGE_SIZE,
    LexicalIndex,
    attach_persisted,
    default_directory,
    lexical_index,
)

if TYPE_CHECKING:
    from langchain_tasb.collection import TasbCollection

__all__ = [
    "DEFAULT_RRF_K",
    "FUSIONS",
    "PAGE_SIZE",
    "Bm25Index",
    "Fusion",
    "HybridHit",
    "LexicalIndex",
    "attach_persisted",
    "bm25_run",
    "default_directory",
    "fuse",
    "fuse_runs",
    "hybrid_search",
    "lexical_index",
    "reciprocal_rank_fusion",
    "tokenize",
    "tokenizer_settings",
    "weighted_fusion",
]


@dataclass(frozen=True)
class HybridHit:
    """One fused result: the record (``hit.dot`` is its dot product with the query) and scores."""

    hit: Hit
    fused_score: float
    """RRF score, or the weighted score in [0, 1]."""
    bm25_score: float
    """BM25 score of the record for the query (0 when no query term occurs in it)."""
    dense_rank: int | None
    """1-based rank among the dense candidates; None when it was not one."""
    lexical_rank: int | None
    """1-based rank among the BM25 candidates; None when it was not one."""


def hybrid_search(
    store: TasbCollection,
    query: str,
    k: int = 4,
    *,
    fetch_k: int | None = None,
    fusion: str = DEFAULT_FUSION,
    alpha: float = 0.5,
    rrf_k: int = DEFAULT_RRF_K,
    filter: Mapping[str, Any] | None = None,
    where_document: Mapping[str, Any] | None = None,
    query_vector: Sequence[float] | None = None,
    index: LexicalIndex | None = None,
) -> list[HybridHit]:
    """The ``k`` best records by fusing dense (dot product) and BM25 candidates.

    Both sides take ``max(fetch_k, k)`` candidates under the same filters; every result
    carries its dot product with the query, even when only BM25 found it.

    Args:
        store: The collection.
        query: The query text.
        k: How many results.
        fetch_k: Candidates per side (default ``config.default_fetch_k(k)``).
        fusion: "rrf" or "weighted".
        alpha: Dense weight for "weighted", in [0, 1].
        rrf_k: RRF constant.
        filter: Chroma ``where`` on metadata.
        where_document: Chroma ``where_document`` on text.
        query_vector: The query's embedding, when already computed.
        index: The lexical index; default the store's shared :func:`lexical_index`.

    Raises:
        ValueError: On a bad ``k``/``fetch_k``, ``fusion`` or ``alpha``.
    """
    fetch = default_fetch_k(k) if fetch_k is None else fetch_k
    for name, value in (("k", k), ("fetch_k", fetch)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            msg = f"{name} must be a positive integer, got {value!r}"
            raise ValueError(msg)
    fetch = max(fetch, k)
    vector = np.asarray(
        store.encoder.embed_query(query) if query_vector is None else query_vector,
        dtype=np.float32,
    )
    dense = store.store.query(vector, fetch, where=filter, where_document=where_document)
    index = index or lexical_index(store)
    index.refresh()
    lexical = index.filtered(query, fetch, filter, where_document)
    fused = fuse([(h.id, h.dot) for h in dense], lexical, fusion, alpha=alpha, rrf_k=rrf_k)
    dense_by_id = {h.id: h for h in dense}
    dense_rank = {h.id: r for r, h in enumerate(dense, start=1)}
    lexical_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
    bm25_scores = dict(lexical)
    # Only the results shown need a BM25 score that BM25's top list did not give.
    unscored = [i for i, _ in fused[: 2 * k] if i not in bm25_scores]
    bm25_scores.update(index.bm25.scores_of(query, unscored))
    out: list[HybridHit] = []
    start = 0
    while len(out) < k and start < len(fused):
        window = fused[start : start + k - len(out)]
        start += len(window)
        # Records only BM25 found: read with their vectors, for their dot product with the query.
        missing = [i for i, _ in window if i not in dense_by_id]
        stored = index.gateway.get(missing, with_vectors=True) if missing else []
        records = {
            h.id: Hit(h.id, h.text, h.metadata, dot=float(h.vector @ vector))
            for h in stored
            if h.vector is not None
        }
        for id_, fused_score in window:
            hit = dense_by_id.get(id_) or records.get(id_)
            if hit is not None:  # None: deleted since the BM25 index was checked
                bm25 = bm25_scores.get(id_, 0.0)
                out.append(
                    HybridHit(hit, fused_score, bm25, dense_rank.get(id_), lexical_rank.get(id_))
                )
    return out
