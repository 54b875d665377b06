"""Hybrid runs scored on a BEIR dataset: BM25 alone and fused with a dense run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_tasb.evaluation import evaluate
from langchain_tasb.hybrid.bm25 import bm25_run
from langchain_tasb.hybrid.fusion import DEFAULT_RRF_K, fuse_runs

if TYPE_CHECKING:
    from langchain_tasb.evaluation import BeirDataset, Run


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
    lexical = lexical_run
    if lexical is None:
        lexical = bm25_run(dataset.doc_ids, dataset.doc_texts, dataset.queries, k)
    fused = fuse_runs(dense_run, lexical, fusion=fusion, alpha=alpha, rrf_k=rrf_k, k=k)
    return HybridEvaluation(
        fusion=fusion,
        alpha=alpha,
        bm25=evaluate(lexical, dataset.qrels),
        hybrid=evaluate(fused, dataset.qrels),
        bm25_run=lexical,
        hybrid_run=fused,
    )
