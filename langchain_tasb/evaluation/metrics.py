"""Retrieval metrics exactly as trec_eval (pytrec_eval, BEIR) computes them: nDCG, Recall, MRR, MAP.

Ties rank by document id descending (trec_eval's ``strcmp``); relevant means grade ``> 0``; the
mean is over every query in ``qrels`` (missing or all-zero queries score 0); NaN is rejected.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

Run: TypeAlias = dict[str, dict[str, float]]
"""Query id -> document id -> score (higher is better)."""
RunLike: TypeAlias = Mapping[str, Mapping[str, float]]
QrelsLike: TypeAlias = Mapping[str, Mapping[str, int]]
"""Query id -> document id -> graded relevance."""

STANDARD_KS: tuple[int, ...] = (10, 100)
"""Cut-offs always reported by :func:`evaluate` (nDCG@10, Recall@100, MRR@10, MAP@100, ...)."""

_METRIC_NAMES: tuple[str, ...] = ("ndcg", "recall", "mrr", "map")


def check_k(k: object, what: str = "k") -> int:
    """``k`` as an int; a ValueError naming ``what`` if it is not a positive integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        msg = f"{what} must be a positive integer cut-off such as 10, got {k!r}."
        raise ValueError(msg)
    return int(k)


def _rank(doc_scores: Mapping[str, float], depth: int) -> list[str]:
    """Top ``depth`` doc ids, ordered as trec_eval does: score descending, then id descending."""
    for doc_id, score in doc_scores.items():
        if math.isnan(score):
            msg = f"Score of document {doc_id!r} is NaN; every score in a run must be a number."
            raise ValueError(msg)
    top = heapq.nlargest(depth, doc_scores.items(), key=lambda item: (item[1], item[0]))
    return [doc_id for doc_id, _ in top]


def _query_metrics(
    ranked: Sequence[str], rels: Mapping[str, int], ks: Sequence[int]
) -> list[tuple[float, float, float, float]]:
    """(nDCG, Recall, MRR, MAP) at each cut-off in ``ks`` for one query's ranked list."""
    grades = [max(int(rels.get(doc_id, 0)), 0) for doc_id in ranked]
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)
    num_rel = len(ideal)
    out: list[tuple[float, float, float, float]] = []
    for k in ks:
        if num_rel == 0:
            out.append((0.0, 0.0, 0.0, 0.0))
            continue
        dcg = ap_sum = 0.0
        hits = first_hit = 0
        for i, gain in enumerate(grades[:k]):
            if gain > 0:
                dcg += gain / math.log2(i + 2)
                hits += 1
                ap_sum += hits / (i + 1)
                if first_hit == 0:
                    first_hit = i + 1
        idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal[:k]))
        mrr = 1.0 / first_hit if first_hit else 0.0
        out.append((dcg / idcg, hits / num_rel, mrr, ap_sum / num_rel))
    return out


def _mean_metrics(run: RunLike, qrels: QrelsLike, ks: Sequence[int]) -> NDArray[np.float64]:
    """(nDCG, Recall, MRR, MAP) means, one row per cut-off in ``ks``."""
    if not qrels:
        msg = "qrels is empty; metrics are averaged over the judged queries, so give at least one."
        raise ValueError(msg)
    depth = max(ks)
    sums = np.zeros((len(ks), len(_METRIC_NAMES)), dtype=np.float64)
    missing = 0
    for query_id, rels in qrels.items():
        doc_scores = run.get(query_id)
        if doc_scores is None:
            missing += 1
            continue
        sums += np.asarray(_query_metrics(_rank(doc_scores, depth), rels, ks))
    if missing:
        msg = "%d of %d judged queries are missing from the run; they count as 0."
        logger.warning(msg, missing, len(qrels))
    return sums / len(qrels)


def ndcg_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean nDCG@k, as trec_eval's ``ndcg_cut.k``; raises as :func:`evaluate` does."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[0, 0])


def recall_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean Recall@k, as trec_eval's ``recall.k`` (of all relevant); raises as :func:`evaluate`."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[0, 1])


def mrr_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean reciprocal rank, trec_eval's ``recip_rank`` cut at ``k``; raises as :func:`evaluate`."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[0, 2])


def map_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean average precision, as trec_eval's ``map_cut.k``; raises as :func:`evaluate` does."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[0, 3])


def evaluate(run: RunLike, qrels: QrelsLike, ks: Iterable[int] = STANDARD_KS) -> dict[str, float]:
    """Compute nDCG, Recall, MRR and MAP at ``ks`` and :data:`STANDARD_KS`, unrounded.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        ks: Extra cut-offs.

    Returns:
        ``{"ndcg@10": ..., "recall@100": ..., ...}``, grouped by metric, cut-offs ascending.

    Raises:
        ValueError: If a cut-off is not a positive integer, ``qrels`` is empty or a score is
            NaN.
    """
    all_ks = sorted({check_k(k, "each of ks") for k in ks} | set(STANDARD_KS))
    means = _mean_metrics(run, qrels, all_ks)
    return {
        f"{name}@{k}": float(means[i, m])
        for m, name in enumerate(_METRIC_NAMES)
        for i, k in enumerate(all_ks)
    }
