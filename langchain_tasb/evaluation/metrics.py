"""Retrieval metrics exactly as trec_eval computes them: nDCG, Recall, MRR and MAP at k.

Metric definitions follow trec_eval 9.x as called by pytrec_eval (and hence by BEIR's
``EvaluateRetrieval.evaluate``), down to the order in which tied scores are ranked. Shared by
:func:`ndcg_at_k`, :func:`recall_at_k`, :func:`mrr_at_k`, :func:`map_at_k` and :func:`evaluate`:

* Ranking: each query's documents are ordered by score descending; equal scores are ordered
  by document id descending (plain string comparison, i.e. trec_eval's ``strcmp`` on UTF-8),
  so of two tied documents ``"b"`` ranks above ``"a"``. Documents absent from the qrels are
  non-relevant. NaN scores are rejected.
* Relevant means grade ``> 0``; negative grades are treated as 0.
* Averaging: the mean is over every query in ``qrels``. A judged query absent from ``run``
  scores 0 (trec_eval ``-c``; BEIR instead averages over the queries present in the run,
  which is the same whenever the run covers all judged queries). Queries of ``run`` that are
  not in ``qrels`` are ignored.
* A query whose judgments are all 0 has no relevant document: it scores 0 on every metric and
  still counts in the mean. That is what pytrec_eval returns for it, and BEIR averages it in.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

import numpy as np

logger = logging.getLogger(__name__)

Run: TypeAlias = dict[str, dict[str, float]]
"""Query id -> document id -> score (higher is better)."""

STANDARD_KS: tuple[int, ...] = (10, 100)
"""Cut-offs always reported by :func:`evaluate` (nDCG@10, Recall@100, MRR@10, MAP@100, ...)."""

_METRIC_NAMES: tuple[str, ...] = ("ndcg", "recall", "mrr", "map")


def check_k(k: object, what: str = "k") -> int:
    """``k`` as an int, or a ValueError naming ``what`` when it is not a positive integer."""
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
        dcg = 0.0
        hits = 0
        ap_sum = 0.0
        first_hit = 0
        for i, gain in enumerate(grades[:k]):
            if gain > 0:
                dcg += gain / math.log2(i + 2)
                hits += 1
                ap_sum += hits / (i + 1)
                if first_hit == 0:
                    first_hit = i + 1
        idcg = 0.0
        for i, gain in enumerate(ideal[:k]):
            idcg += gain / math.log2(i + 2)
        out.append(
            (
                dcg / idcg,
                hits / num_rel,
                1.0 / first_hit if first_hit else 0.0,
                ap_sum / num_rel,
            )
        )
    return out


def _mean_metrics(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int],
) -> list[tuple[float, float, float, float]]:
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
        per_k = _query_metrics(_rank(doc_scores, depth), rels, ks)
        sums += np.asarray(per_k, dtype=np.float64)
    if missing:
        logger.warning(
            "%d of %d judged queries are missing from the run; they count as 0.",
            missing,
            len(qrels),
        )
    means = sums / len(qrels)
    return [(float(row[0]), float(row[1]), float(row[2]), float(row[3])) for row in means.tolist()]


def ndcg_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean nDCG@k, as trec_eval's ``ndcg_cut.k``.

    DCG@k sums ``grade / log2(rank + 1)`` over the top ``k`` ranks (rank 1 has discount 1). The
    ideal DCG@k uses the query's positive qrels grades sorted descending, truncated at ``k``.
    nDCG = DCG / ideal DCG.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off (``k`` larger than a query's run just uses all of it).

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [check_k(k)])[0][0]


def recall_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean Recall@k, as trec_eval's ``recall.k``.

    Relevant documents in the top ``k`` divided by the query's total number of relevant
    documents (not by ``min(k, relevant)``).

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off.

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [check_k(k)])[0][1]


def mrr_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean reciprocal rank at k: ``1 / rank`` of the first relevant document in the top ``k``.

    This is trec_eval's ``recip_rank`` truncated at ``k`` (0 when no relevant document is in
    the top ``k``). BEIR's own ``mrr`` computes the same value except that it breaks score ties
    by the run's insertion order; this function uses trec_eval's tie-break like the others.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off.

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [check_k(k)])[0][2]


def map_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean average precision at k, as trec_eval's ``map_cut.k``.

    The sum of precision@rank over the ranks ``<= k`` that hold a relevant document, divided by
    the query's total number of relevant documents (trec_eval's ``num_rel``, not
    ``min(k, num_rel)``), so a query with more than ``k`` relevant documents cannot reach 1.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off.

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [check_k(k)])[0][3]


def evaluate(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Iterable[int] = STANDARD_KS,
) -> dict[str, float]:
    """Compute nDCG, Recall, MRR and MAP at every cut-off, ranking each query only once.

    The cut-offs are ``ks`` plus :data:`STANDARD_KS` (10 and 100), so the standard nDCG@10,
    Recall@100, MRR@10 and MAP@100 are always present. Values are unrounded (BEIR rounds to 5
    decimals). Definitions are those of :func:`ndcg_at_k`, :func:`recall_at_k`,
    :func:`mrr_at_k` and :func:`map_at_k`; BEIR's ``ignore_identical_ids`` is not applied.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        ks: Extra cut-offs.

    Returns:
        ``{"ndcg@10": ..., "ndcg@100": ..., "recall@10": ..., ..., "map@100": ...}``: metric
        name, ``@``, cut-off; grouped by metric, cut-offs ascending.

    Raises:
        ValueError: If a cut-off is not a positive integer, ``qrels`` is empty or a score is
            NaN.
    """
    all_ks = sorted({check_k(k, "each of ks") for k in ks} | set(STANDARD_KS))
    means = _mean_metrics(run, qrels, all_ks)
    return {
        f"{name}@{k}": means[i][m]
        for m, name in enumerate(_METRIC_NAMES)
        for i, k in enumerate(all_ks)
    }
