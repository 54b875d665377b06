"""Scores: Chroma ``ip`` distances to dot products, dot products to relevance, and MMR."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray


def dot_from_distance(distance: float) -> float:
    """The dot product behind a Chroma ``ip`` distance (``distance = 1 - dot``)."""
    return 1.0 - float(distance)


@dataclass(frozen=True)
class RelevanceScale:
    """A logistic map from dot product to relevance: ``1 / (1 + exp(-(dot - center) / scale))``.

    ``center`` is the dot product that scores 0.5; ``scale`` moves relevance from 0.5 to about
    0.73. Both are calibrated per model.
    """

    center: float
    scale: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.scale)) or self.scale <= 0:
            msg = (
                f"RelevanceScale needs a finite center and a positive finite scale, got "
                f"center={self.center!r}, scale={self.scale!r}"
            )
            raise ValueError(msg)

    def relevance(self, dot: float) -> float:
        """Relevance in [0, 1], strictly increasing in ``dot`` (saturating far from center)."""
        z = (dot - self.center) / self.scale
        e = math.exp(-abs(z))  # never overflows, however far from the center
        return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)

    def dot_for(self, relevance: float) -> float:
        """The dot product at which relevance equals ``relevance`` (the inverse map)."""
        if not 0.0 < relevance < 1.0:
            msg = f"relevance must be strictly between 0 and 1 to invert, got {relevance!r}"
            raise ValueError(msg)
        return self.center + self.scale * math.log(relevance / (1.0 - relevance))


def mmr_select(
    query_vector: NDArray[np.float32],
    candidates: NDArray[np.float32],
    k: int,
    lambda_mult: float = 0.5,
) -> list[int]:
    """MMR with both terms dot products (the index's scale); candidate indices in pick order."""
    if not 0.0 <= lambda_mult <= 1.0:
        msg = f"lambda_mult must be in [0, 1], got {lambda_mult!r}"
        raise ValueError(msg)
    n = len(candidates)
    if k <= 0 or n == 0:
        return []
    to_query = candidates @ query_vector
    picked: list[int] = [int(np.argmax(to_query))]
    redundancy = candidates @ candidates[picked[0]]
    while len(picked) < min(k, n):
        score = lambda_mult * to_query - (1.0 - lambda_mult) * redundancy
        score[picked] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        redundancy = np.maximum(redundancy, candidates @ candidates[best])
    return picked


def model_drift(expected: Sequence[float], got: Sequence[float]) -> tuple[float, float] | None:
    """``(cosine, norm ratio |got| / |expected|)`` if ``got`` is not ``expected`` to rounding.

    One model's vectors of one text agree far closer than this across backends; another
    model's do not.
    """
    want, have = np.asarray(expected, np.float64), np.asarray(got, np.float64)
    norms = float(np.linalg.norm(want)), float(np.linalg.norm(have))
    cosine = float(want @ have) / (norms[0] * norms[1]) if norms[0] * norms[1] > 0 else 0.0
    ratio = norms[1] / max(norms[0], 1e-12)
    return None if cosine >= 0.99 and abs(ratio - 1.0) <= 0.05 else (cosine, ratio)
