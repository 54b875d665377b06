"""Hybrid retrieval: fusing dense (dot product) and BM25 hits; re-exports the BM25 side."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from langchain_tasb.chroma.records import Hit
from langchain_tasb.config import DEFAULT_FUSION, default_fetch_k
from langchain_tasb.hybrid.bm25 import Bm25Index, bm25_run, tokenize, tokenizer_settings
from langchain_tasb.hybrid.lexical import (
    LexicalIndex,
    attach_persisted,
    default_directory,
    lexical_index,
)
from langchain_tasb.hybrid.sync import PAGE_SIZE

if TYPE_CHECKING:
    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.evaluation import Run

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


Fusion = Literal["rrf", "weighted"]
FUSIONS: tuple[str, ...] = ("rrf", "weighted")

DEFAULT_RRF_K = 60
"""The RRF constant of Cormack et al. (2009): ``1 / (60 + rank)``."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = DEFAULT_RRF_K
) -> list[tuple[str, float]]:
    """Fuse rankings by ``sum(1 / (k + rank))`` over the rankings an id appears in.

    Rankings are ids best first; a repeated id counts once, at its best rank. Returns pairs
    best first; ties go to the best rank an id reached, then to the earlier ranking.
    ValueError if ``k`` is negative.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        msg = f"RRF k must be a non-negative integer (60 is the usual choice), got {k!r}"
        raise ValueError(msg)
    fused: dict[str, float] = {}
    best: dict[str, tuple[int, int]] = {}
    for which, ranking in enumerate(rankings):
        first_rank = {id_: rank for rank, id_ in reversed(list(enumerate(ranking, start=1)))}
        for id_, rank in first_rank.items():
            fused[id_] = fused.get(id_, 0.0) + 1.0 / (k + rank)
            best[id_] = min(best.get(id_, (rank, which)), (rank, which))
    return sorted(fused.items(), key=lambda item: (-item[1], best[item[0]]))


def _min_max(scored: Sequence[tuple[str, float]]) -> dict[str, float]:
    values = [score for _, score in scored]
    low = min(values, default=0.0)
    span = max(values, default=0.0) - low
    return {id_: (score - low) / span if span else 1.0 for id_, score in scored}


def weighted_fusion(
    dense_hits: Sequence[tuple[str, float]],
    lexical_hits: Sequence[tuple[str, float]],
    alpha: float = 0.5,
) -> list[tuple[str, float]]:
    """Fuse by ``alpha * dense + (1 - alpha) * lexical`` on min-max normalised scores.

    A list of equal scores maps to 1; an id missing from a list gets 0 from it. Ties keep
    dense order first, then lexical order. Returns pairs best first, scores in [0, 1].

    Raises:
        ValueError: If ``alpha`` is outside [0, 1] or a score is not finite.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        msg = f"alpha must be in [0, 1] (1 = dense only, 0 = BM25 only), got {alpha!r}"
        raise ValueError(msg)
    for name, hits in (("dense_hits", dense_hits), ("lexical_hits", lexical_hits)):
        if bad := [(id_, s) for id_, s in hits if not math.isfinite(s)]:
            msg = f"{name} holds non-finite scores {bad[:3]}; pass finite scores"
            raise ValueError(msg)
    dense, lexical = _min_max(dense_hits), _min_max(lexical_hits)
    order = {id_: i for i, id_ in enumerate([*dense, *[i for i in lexical if i not in dense]])}
    fused = {
        id_: alpha * dense.get(id_, 0.0) + (1.0 - alpha) * lexical.get(id_, 0.0) for id_ in order
    }
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))


def fuse(
    dense_hits: Sequence[tuple[str, float]],
    lexical_hits: Sequence[tuple[str, float]],
    fusion: str = "rrf",
    *,
    alpha: float = 0.5,
    rrf_k: int = DEFAULT_RRF_K,
) -> list[tuple[str, float]]:
    """Fuse two best-first ``(id, score)`` lists by ``fusion`` ("rrf" or "weighted")."""
    if fusion == "rrf":
        rankings = [[i for i, _ in hits] for hits in (dense_hits, lexical_hits)]
        return reciprocal_rank_fusion(rankings, rrf_k)
    if fusion == "weighted":
        return weighted_fusion(dense_hits, lexical_hits, alpha)
    msg = f"fusion must be one of {FUSIONS}, got {fusion!r}"
    raise ValueError(msg)


def _best_first(scores: Mapping[str, float]) -> list[tuple[str, float]]:  # trec_eval's order
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def fuse_runs(
    dense: Run,
    lexical: Run,
    *,
    fusion: str = "rrf",
    alpha: float = 0.5,
    rrf_k: int = DEFAULT_RRF_K,
    k: int = 100,
) -> Run:
    """Fuse two runs query by query, keeping the top ``k`` of each fused ranking."""
    fused: Run = {}
    for qid in dict.fromkeys([*dense, *lexical]):
        pair = _best_first(dense.get(qid, {})), _best_first(lexical.get(qid, {}))
        fused[qid] = dict(fuse(*pair, fusion, alpha=alpha, rrf_k=rrf_k)[:k])
    return fused


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

    Both sides take ``max(fetch_k, k)`` candidates (default ``config.default_fetch_k(k)``)
    under the same filters; every result carries its dot product with the query, even when
    only BM25 found it. ``alpha`` weighs the dense side of "weighted"; ``query_vector`` saves
    encoding the query; ``index`` defaults to the store's shared :func:`lexical_index`.

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
    lexical = index.search(query, fetch, filter=filter, where_document=where_document)
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
        dots = {h.id: float(h.vector @ vector) for h in stored if h.vector is not None}
        records = {h.id: replace(h, dot=dots[h.id], vector=None) for h in stored if h.id in dots}
        for id_, fused_score in window:
            hit = dense_by_id.get(id_) or records.get(id_)
            if hit is not None:  # None: deleted since the BM25 index was checked
                ranks = dense_rank.get(id_), lexical_rank.get(id_)
                out.append(HybridHit(hit, fused_score, bm25_scores.get(id_, 0.0), *ranks))
    return out
