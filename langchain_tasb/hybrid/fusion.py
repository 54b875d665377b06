"""Rank and score fusion: pure functions over ``(id, score)`` lists and over whole runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from langchain_tasb.evaluation import Run

Fusion = Literal["rrf", "weighted"]
FUSIONS: tuple[str, ...] = ("rrf", "weighted")

DEFAULT_RRF_K = 60
"""The RRF constant of Cormack et al. (2009): ``1 / (60 + rank)``."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = DEFAULT_RRF_K
) -> list[tuple[str, float]]:
    """Fuse rankings by ``sum(1 / (k + rank))`` over the rankings an id appears in.

    Ties go to the best rank an id reached, then to the earlier ranking.

    Args:
        rankings: Lists of ids, best first; a repeated id counts once, at its best rank.
        k: The smoothing constant.

    Returns:
        ``(id, fused score)`` pairs, best first.

    Raises:
        ValueError: If ``k`` is negative.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        msg = f"RRF k must be a non-negative integer (60 is the usual choice), got {k!r}"
        raise ValueError(msg)
    fused: dict[str, float] = {}
    best: dict[str, tuple[int, int]] = {}
    for which, ranking in enumerate(rankings):
        seen: set[str] = set()
        for rank, id_ in enumerate(ranking, start=1):
            if id_ in seen:
                continue
            seen.add(id_)
            fused[id_] = fused.get(id_, 0.0) + 1.0 / (k + rank)
            best[id_] = min(best.get(id_, (rank, which)), (rank, which))
    return sorted(fused.items(), key=lambda item: (-item[1], best[item[0]]))


def _min_max(scored: Sequence[tuple[str, float]]) -> dict[str, float]:
    if not scored:
        return {}
    values = [score for _, score in scored]
    low, high = min(values), max(values)
    if high == low:
        return {id_: 1.0 for id_, _ in scored}
    return {id_: (score - low) / (high - low) for id_, score in scored}


def weighted_fusion(
    dense_hits: Sequence[tuple[str, float]],
    lexical_hits: Sequence[tuple[str, float]],
    alpha: float = 0.5,
) -> list[tuple[str, float]]:
    """Fuse by ``alpha * dense + (1 - alpha) * lexical`` on min-max normalised scores.

    A list of equal scores maps to 1; an id missing from a list gets 0 from it. Ties keep
    dense order first, then lexical order.

    Args:
        dense_hits: ``(id, dot product)`` pairs.
        lexical_hits: ``(id, BM25 score)`` pairs.
        alpha: Weight of the dense side, in [0, 1].

    Returns:
        ``(id, fused score)`` pairs, best first, scores in [0, 1].

    Raises:
        ValueError: If ``alpha`` is outside [0, 1] or a score is not finite.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        msg = f"alpha must be in [0, 1] (1 = dense only, 0 = BM25 only), got {alpha!r}"
        raise ValueError(msg)
    for name, hits in (("dense_hits", dense_hits), ("lexical_hits", lexical_hits)):
        bad = [(id_, s) for id_, s in hits if not math.isfinite(s)]
        if bad:
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
        return reciprocal_rank_fusion(
            [[i for i, _ in dense_hits], [i for i, _ in lexical_hits]], rrf_k
        )
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
    return {
        qid: dict(
            fuse(
                _best_first(dense.get(qid, {})),
                _best_first(lexical.get(qid, {})),
                fusion,
                alpha=alpha,
                rrf_k=rrf_k,
            )[:k]
        )
        for qid in dict.fromkeys([*dense, *lexical])
    }
