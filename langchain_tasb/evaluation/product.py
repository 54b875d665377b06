"""Hybrid search scored on a BEIR dataset, through ``search(..., "hybrid")`` or on whole runs.

BM25 alone is scored beside it, from the same lexical index or from an in-memory one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.evaluation.metrics import evaluate
from langchain_tasb.hybrid.bm25 import bm25_run
from langchain_tasb.hybrid.fusion import DEFAULT_RRF_K, fuse_runs
from langchain_tasb.hybrid.lexical import lexical_index
from langchain_tasb.search import SearchSettings, search

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.evaluation.metrics import Run
    from langchain_tasb.ingest.beir import BeirDataset

HYBRID_K = 10
"""Results asked of each hybrid search: nDCG@10 and MRR@10 are the figures that apply."""

BM25_K = 100
"""Depth of the BM25-alone run."""


@dataclass(frozen=True)
class HybridReport:
    """BM25 alone and hybrid search through the product path, on one dataset's qrels."""

    settings: SearchSettings
    bm25: dict[str, float]
    """Metrics of BM25 alone (top :data:`BM25_K` of the collection's lexical index)."""
    hybrid: dict[str, float]
    """Metrics of ``search(..., "hybrid")`` with ``settings`` (``k`` results per query)."""
    bm25_run: Run = field(repr=False, compare=False, default_factory=dict)
    hybrid_run: Run = field(repr=False, compare=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The settings and metrics, JSON-ready."""
        s = self.settings
        return {
            "k": s.k,
            "fetch_k": s.fetch_k,
            "fusion": s.fusion,
            "alpha": s.alpha,
            "bm25": self.bm25,
            "hybrid": self.hybrid,
        }


def evaluate_product_hybrid(
    store: TasbCollection,
    dataset: BeirDataset,
    query_ids: Sequence[str],
    query_vectors: NDArray[np.float32],
    settings: SearchSettings,
) -> HybridReport:
    """Run every query through hybrid search on ``store`` (which holds the corpus) and score it.

    Args:
        store: The collection holding ``dataset``'s corpus under its document ids.
        dataset: The dataset (queries and qrels).
        query_ids: The queries to run, in the order of ``query_vectors``.
        query_vectors: Each query's embedding (computed once for every search kind).
        settings: Hybrid search settings (``search_type`` must be "hybrid").
    """
    if settings.search_type != "hybrid":
        msg = f"settings.search_type must be 'hybrid', got {settings.search_type!r}"
        raise ValueError(msg)
    index = lexical_index(store)
    index.refresh()
    hybrid_run: Run = {}
    bm25_run: Run = {}
    for qid, vector in zip(query_ids, query_vectors, strict=True):
        text = dataset.queries[qid]
        hits = search(store, settings, query=text, vector=np.asarray(vector).tolist())
        # Fused scores can tie; ranks decide, so scores fall with the rank.
        hybrid_run[qid] = {hit.id: float(len(hits) - rank) for rank, hit in enumerate(hits)}
        bm25_run[qid] = dict(index.search(text, k=BM25_K))
    qrels = dataset.qrels
    return HybridReport(
        settings, evaluate(bm25_run, qrels), evaluate(hybrid_run, qrels), bm25_run, hybrid_run
    )


@dataclass(frozen=True)
class HybridEvaluation:
    """BM25 alone and BM25 fused with a dense run, scored on one dataset's qrels."""

    fusion: str
    alpha: float
    bm25: dict[str, float]
    """Metrics of BM25 alone (``evaluate``'s keys: ``ndcg@10``, ``recall@100``, ...)."""
    hybrid: dict[str, float]
    """Metrics of the fused run."""
    bm25_run: Run
    hybrid_run: Run


def evaluate_hybrid(
    dataset: BeirDataset,
    dense_run: Run,
    *,
    fusion: str = "rrf",
    alpha: float = 0.5,
    rrf_k: int = DEFAULT_RRF_K,
    k: int = 100,
    lexical_run: Run | None = None,
) -> HybridEvaluation:
    """Score BM25 and BM25 fused with ``dense_run`` (e.g. ``EvalReport.exact_run``).

    Args:
        dataset: The BEIR dataset the dense run was computed on.
        dense_run: Dense top-``k`` per query.
        fusion: "rrf" or "weighted".
        alpha: Dense weight for "weighted".
        rrf_k: RRF constant.
        k: Depth of the BM25 run and of the fused run.
        lexical_run: A BM25 run computed before (saves re-indexing in a sweep).
    """
    if lexical_run is None:
        lexical_run = bm25_run(dataset.doc_ids, dataset.doc_texts, dataset.queries, k)
    fused = fuse_runs(dense_run, lexical_run, fusion=fusion, alpha=alpha, rrf_k=rrf_k, k=k)
    qrels = dataset.qrels
    return HybridEvaluation(
        fusion, alpha, evaluate(lexical_run, qrels), evaluate(fused, qrels), lexical_run, fused
    )
