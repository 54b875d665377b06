"""Runs and their metrics: exact dot-product search, and trec_eval's nDCG, Recall, MRR and MAP.

Metrics are exactly as trec_eval (pytrec_eval, BEIR) computes them: ties rank by document id
descending (trec_eval's ``strcmp``); relevant means grade ``> 0``; the mean is over every query
in ``qrels`` (missing or all-zero queries score 0); NaN is rejected.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

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


def _mean_metrics(run: RunLike, qrels: QrelsLike, ks: Sequence[int]) -> npt.NDArray[np.float64]:
    """Rows nDCG, Recall, MRR and MAP: their means at each cut-off in ``ks``."""
    if not qrels:
        msg = "qrels is empty; metrics are averaged over the judged queries, so give at least one."
        raise ValueError(msg)
    depth = max(ks)
    ranks = np.arange(1, depth + 1)
    discounts = np.log2(ranks + 1)
    sums = np.zeros((len(_METRIC_NAMES), depth))  # each metric at every cut-off 1..depth
    missing = 0
    for query_id, rels in qrels.items():
        doc_scores = run.get(query_id)
        if doc_scores is None:
            missing += 1
            continue
        ranked = _rank(doc_scores, depth)
        ideal = sorted((g for g in rels.values() if g > 0), reverse=True)
        if not ideal:
            continue
        gains, best = np.zeros(depth), np.zeros(depth)
        gains[: len(ranked)] = [max(int(rels.get(doc_id, 0)), 0) for doc_id in ranked]
        best[: min(depth, len(ideal))] = ideal[:depth]
        relevant = gains > 0
        hits = np.cumsum(relevant)
        first = np.flatnonzero(relevant)[:1] + 1  # the first relevant rank, or empty
        sums[0] += np.cumsum(gains / discounts) / np.cumsum(best / discounts)
        sums[1] += hits / len(ideal)
        sums[2] += (ranks >= first) / first if first.size else 0.0
        sums[3] += np.cumsum(relevant * hits / ranks) / len(ideal)
    if missing:
        msg = "%d of %d judged queries are missing from the run; they count as 0."
        logger.warning(msg, missing, len(qrels))
    means: npt.NDArray[np.float64] = sums.take([k - 1 for k in ks], axis=1) / len(qrels)
    return means


def ndcg_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean nDCG@k, as trec_eval's ``ndcg_cut.k``; raises as :func:`evaluate` does."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[0, 0])


def recall_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean Recall@k, as trec_eval's ``recall.k`` (of all relevant); raises as :func:`evaluate`."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[1, 0])


def mrr_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean reciprocal rank, trec_eval's ``recip_rank`` cut at ``k``; raises as :func:`evaluate`."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[2, 0])


def map_at_k(run: RunLike, qrels: QrelsLike, k: int) -> float:
    """Mean average precision, as trec_eval's ``map_cut.k``; raises as :func:`evaluate` does."""
    return float(_mean_metrics(run, qrels, [check_k(k)])[3, 0])


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
        f"{name}@{k}": float(means[m, i])
        for m, name in enumerate(_METRIC_NAMES)
        for i, k in enumerate(all_ks)
    }


def _check_matrix(array: npt.ArrayLike, what: str) -> npt.NDArray[np.floating[Any]]:
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        msg = f"{what} must be a 2-D array (rows, dim), got shape {matrix.shape}."
        raise ValueError(msg)
    if not np.issubdtype(matrix.dtype, np.floating):
        matrix = matrix.astype(np.float32)
    if not np.isfinite(matrix).all():
        msg = f"{what} contains NaN or infinite values; check the encoder output."
        raise ValueError(msg)
    return matrix


def exact_top_k(
    query_vectors: npt.ArrayLike, doc_vectors: npt.ArrayLike, k: int, batch: int = 256
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.floating[Any]]]:
    """Exact maximum-inner-product search: the top ``k`` dot products of each query.

    Ties are broken by the lower document index (corpus order), also at the ``k``-th place.

    Args:
        query_vectors: ``(num_queries, dim)`` array.
        doc_vectors: ``(num_docs, dim)`` array.
        k: How many documents to return per query; a ``k`` above ``num_docs`` returns all.
        batch: Queries scored per matrix product (bounds memory).

    Returns:
        ``(indices, scores)``, both ``(num_queries, min(k, num_docs))``, best first: row
        indices into ``doc_vectors`` and their dot products with each query.

    Raises:
        ValueError: If an array is not 2-D, the dimensions differ, the corpus is empty, a value
            is not finite, or ``k``/``batch`` is not a positive integer.
    """
    k = check_k(k)
    batch = check_k(batch, "batch")
    queries = _check_matrix(query_vectors, "query_vectors")
    docs = _check_matrix(doc_vectors, "doc_vectors")
    if queries.shape[1] != docs.shape[1]:
        msg = (
            f"query_vectors have dimension {queries.shape[1]} but doc_vectors have "
            f"{docs.shape[1]}; encode both with the same model."
        )
        raise ValueError(msg)
    num_docs = docs.shape[0]
    if num_docs == 0:
        msg = "doc_vectors has no rows; encode at least one document before searching."
        raise ValueError(msg)
    dtype = np.result_type(queries.dtype, docs.dtype)
    kk = min(k, num_docs)
    num_queries = queries.shape[0]
    out_idx = np.empty((num_queries, kk), dtype=np.int64)
    out_scores = np.empty((num_queries, kk), dtype=dtype)
    docs_t = docs.T
    for start in range(0, num_queries, batch):
        scores = np.asarray(queries[start : start + batch] @ docs_t, dtype=dtype)
        cand = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        cand_scores = np.take_along_axis(scores, cand, axis=1)
        # argpartition picks arbitrarily among documents tied at the k-th score; redo the
        # (rare) rows where it had a choice so the lowest indices win.
        kth = cand_scores.min(axis=1, keepdims=True)
        tied_all = (scores == kth).sum(axis=1)
        tied_kept = (cand_scores == kth).sum(axis=1)
        for row in np.flatnonzero(tied_all > tied_kept):
            above = np.flatnonzero(scores[row] > kth[row, 0])
            at = np.flatnonzero(scores[row] == kth[row, 0])[: kk - above.size]
            cand[row] = np.concatenate([above, at])
            cand_scores[row] = scores[row, cand[row]]
        order = np.lexsort((cand, -cand_scores), axis=-1)
        out_idx[start : start + batch] = np.take_along_axis(cand, order, axis=1)
        out_scores[start : start + batch] = np.take_along_axis(cand_scores, order, axis=1)
    return out_idx, out_scores


def run_from_top_k(
    query_ids: Sequence[str], doc_ids: Sequence[str], indices: npt.ArrayLike, scores: npt.ArrayLike
) -> Run:
    """Turn :func:`exact_top_k` output into a run (query id -> document id -> score).

    ``query_ids`` name the rows of ``indices`` and ``scores``, in order; ``indices`` index
    ``doc_ids``.

    Raises:
        ValueError: If shapes disagree, a query id repeats or an index is out of range.
    """
    idx = np.asarray(indices)
    vals = np.asarray(scores)
    if idx.ndim != 2 or idx.shape != vals.shape:
        msg = (
            f"indices {idx.shape} and scores {vals.shape} must be 2-D arrays of the same shape, "
            "as returned by exact_top_k()."
        )
        raise ValueError(msg)
    if len(query_ids) != idx.shape[0]:
        msg = (
            f"Got {len(query_ids)} query ids for {idx.shape[0]} result rows; pass the ids in "
            "the order the queries were encoded."
        )
        raise ValueError(msg)
    if len(set(query_ids)) != len(query_ids):
        msg = "query_ids contains duplicates; each query id must appear once."
        raise ValueError(msg)
    if idx.size and (idx.min() < 0 or idx.max() >= len(doc_ids)):
        msg = (
            f"indices range over [{idx.min()}, {idx.max()}] but there are {len(doc_ids)} "
            "doc ids; pass the doc ids of the corpus that was searched."
        )
        raise ValueError(msg)
    return {
        query_id: {doc_ids[i]: float(v) for i, v in zip(row_idx, row_vals, strict=True)}
        for query_id, row_idx, row_vals in zip(query_ids, idx.tolist(), vals.tolist(), strict=True)
    }


def recall_against_exact(
    approx_ids: Sequence[Sequence[str]], exact_ids: Sequence[Sequence[str]], k: int = 10
) -> float:
    """Mean fraction of each query's exact top ``k`` that an approximate search also returned.

    ``approx_ids`` and ``exact_ids`` hold each query's ids, best first, in one query order.
    Only ids are compared, so score ties at the ``k``-th place can cost a little recall.

    Raises:
        ValueError: If the lists have different lengths, are empty, ``k`` is not a positive
            integer, or an exact list is empty.
    """
    k = check_k(k)
    if len(approx_ids) != len(exact_ids):
        msg = (
            f"approx_ids has {len(approx_ids)} queries but exact_ids has {len(exact_ids)}; "
            "pass the same queries in the same order."
        )
        raise ValueError(msg)
    if not exact_ids:
        msg = "No queries given; pass at least one query's results."
        raise ValueError(msg)
    total = 0.0
    for i, (approx, exact) in enumerate(zip(approx_ids, exact_ids, strict=True)):
        truth = set(exact[:k])
        if not truth:
            msg = f"exact_ids[{i}] is empty; exact search returns at least one id per query."
            raise ValueError(msg)
        total += len(truth & set(approx[:k])) / len(truth)
    return total / len(exact_ids)
