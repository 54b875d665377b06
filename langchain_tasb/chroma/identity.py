"""What a collection records about the model that filled it, and how that is checked.

A model is identified by what it computes (its embedding of a fixed probe sentence), not by
its name; the record also carries the calibrated relevance scale.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.scoring import RelevanceScale

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tasb.encoding.types import TextEncoder

PROBE_TEXT = (
    "A fixed probe sentence: the quick brown fox jumps over the lazy dog near the river bank."
)

# Each passage answers its own question and none of the others: one positive, many negatives.
CALIBRATION_PAIRS: tuple[tuple[str, str], ...] = (
    (
        "how many people live in london",
        "Around 9 million people live in London, the capital of the United Kingdom.",
    ),
    (
        "what causes tides in the ocean",
        "Ocean tides are caused by the gravitational pull of the moon and the sun on the sea.",
    ),
    (
        "how do vaccines protect against disease",
        "Vaccines train the immune system to recognise a pathogen, so that later infection "
        "is fought off before it causes disease.",
    ),
    (
        "what is the boiling point of water",
        "At sea level, pure water boils at 100 degrees Celsius (212 degrees Fahrenheit).",
    ),
    (
        "how to rotate log files on linux",
        "logrotate rotates, compresses and removes old log files on Linux on a daily or "
        "weekly schedule set in /etc/logrotate.conf.",
    ),
    (
        "who wrote pride and prejudice",
        "Pride and Prejudice is an 1813 novel by the English author Jane Austen.",
    ),
    (
        "what does insulin do in the body",
        "Insulin is a hormone made by the pancreas that lets cells take up glucose from blood.",
    ),
    (
        "how does a jet engine produce thrust",
        "A jet engine compresses air, burns fuel in it and expels the hot exhaust backwards, "
        "which pushes the aircraft forwards.",
    ),
    (
        "what is the capital of australia",
        "Canberra is the capital city of Australia; Sydney is its largest city.",
    ),
    (
        "why is the sky blue",
        "Sunlight is scattered by air molecules, and blue light is scattered most, so the sky "
        "looks blue.",
    ),
    (
        "how to sort a list in python",
        "In Python, sorted(items) returns a new sorted list and items.sort() sorts in place.",
    ),
    (
        "what is photosynthesis",
        "Photosynthesis is the process by which plants use sunlight, water and carbon dioxide "
        "to make glucose and oxygen.",
    ),
)

_CALIBRATION_TARGET = 0.9

# One model's probe vectors agree far above this across backends; unrelated models fall below.
_PROBE_MIN_COSINE = 0.99
_PROBE_NORM_TOLERANCE = 0.05

PREFIX = "tasb:"
"""Where langchain-tasb's own keys start in collection metadata."""


def probe_vector(embedding: TextEncoder) -> list[float]:
    """The model's document-side embedding of :data:`PROBE_TEXT` (its fixed one, if any)."""
    fixed = getattr(embedding, "embed_fixed_document", None)
    vector = fixed(PROBE_TEXT) if callable(fixed) else embedding.embed_documents([PROBE_TEXT])[0]
    return [float(x) for x in vector]


def calibrate(embedding: TextEncoder) -> RelevanceScale:
    """Fit the relevance logistic to the model's own scores on :data:`CALIBRATION_PAIRS`.

    The matching pairs' mean dot product maps to 0.9 and the non-matching mean to 0.1.
    """
    queries = [embedding.embed_query(q) for q, _ in CALIBRATION_PAIRS]
    passages = embedding.embed_documents([p for _, p in CALIBRATION_PAIRS])
    dots = np.asarray(queries, dtype=np.float64) @ np.asarray(passages, dtype=np.float64).T
    positive = float(np.mean(np.diag(dots)))
    negative = float(np.mean(dots[~np.eye(len(dots), dtype=bool)]))
    center = (positive + negative) / 2.0
    logit = math.log(_CALIBRATION_TARGET / (1.0 - _CALIBRATION_TARGET))
    # A gap smaller than the spread of all scores means the model cannot tell the pairs
    # apart; then the spread sets the scale, so relevance does not saturate at 0 or 1.
    spread = max(positive - negative, float(np.std(dots)), 1e-6)
    return RelevanceScale(center=center, scale=spread / (2.0 * logit))


@dataclass(frozen=True)
class ModelIdentity:
    """What filled a collection: dimension, similarity, probe vector and relevance scale."""

    dimension: int
    similarity: str
    probe: tuple[float, ...]
    relevance: RelevanceScale
    model_name: str = ""

    def to_metadata(self) -> dict[str, str | int | float]:
        """Flat Chroma collection metadata (scalars only) recording this identity."""
        return {
            f"{PREFIX}format": 1,
            f"{PREFIX}dimension": self.dimension,
            f"{PREFIX}similarity": self.similarity,
            f"{PREFIX}model": self.model_name,
            f"{PREFIX}probe": json.dumps([round(x, 6) for x in self.probe]),
            f"{PREFIX}relevance_center": self.relevance.center,
            f"{PREFIX}relevance_scale": self.relevance.scale,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> ModelIdentity | None:
        """Read an identity back from collection metadata; None if it holds none."""
        if not metadata or f"{PREFIX}probe" not in metadata:
            return None
        record = {k[len(PREFIX) :]: v for k, v in metadata.items() if k.startswith(PREFIX)}
        try:
            return cls(
                int(record["dimension"]),
                str(record["similarity"]),
                tuple(float(x) for x in json.loads(record["probe"])),
                RelevanceScale(float(record["relevance_center"]), float(record["relevance_scale"])),
                str(record.get("model", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Collection metadata has a damaged langchain-tasb record: {exc}"
            raise ValueError(msg) from exc

    def mismatch(self, dimension: int, similarity: str, probe: list[float]) -> str | None:
        """Describe how a model with these properties differs from this record, or None."""
        if dimension != self.dimension:
            return f"dimension {self.dimension} (model {self.model_name!r}), not {dimension}"
        if similarity != self.similarity:
            return f"{self.similarity} similarity (model {self.model_name!r}), not {similarity}"
        stored, current = np.asarray(self.probe, np.float64), np.asarray(probe, np.float64)
        old_norm, new_norm = float(np.linalg.norm(stored)), float(np.linalg.norm(current))
        cosine = float(stored @ current) / (old_norm * new_norm) if old_norm * new_norm > 0 else 0.0
        ratio = new_norm / max(old_norm, 1e-12)
        if cosine < _PROBE_MIN_COSINE or abs(ratio - 1.0) > _PROBE_NORM_TOLERANCE:
            return (
                f"vectors of model {self.model_name!r} (the probe sentence's embedding differs: "
                f"cosine {cosine:.4f}, norm ratio {ratio:.3f})"
            )
        return None
