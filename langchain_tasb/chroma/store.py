"""The model-bound store: an inner-product collection that only its own model may use."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.chroma.client import (
    find_collection,
    hold_writer_lock,
    location,
    retry_policy,
)
from langchain_tasb.chroma.collection import Collection
from langchain_tasb.chroma.retry import RetryPolicy, call_with_retry
from langchain_tasb.errors import ModelMismatchError, SpaceMismatchError
from langchain_tasb.scoring import RelevanceScale, model_drift

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tasb.encoding.types import TextEncoder

logger = logging.getLogger(__name__)

PROBE_TEXT = (
    "A fixed probe sentence: the quick brown fox jumps over the lazy dog near the river bank."
)

# Query, passage, query, ...: each passage answers its query and none of the others.
_QUERY_PASSAGE = (
    "how many people live in london",
    "Around 9 million people live in London, the capital of the United Kingdom.",
    "what causes tides in the ocean",
    "Ocean tides are caused by the gravitational pull of the moon and the sun on the sea.",
    "how do vaccines protect against disease",
    "Vaccines train the immune system to recognise a pathogen, so that later infection "
    "is fought off before it causes disease.",
    "what is the boiling point of water",
    "At sea level, pure water boils at 100 degrees Celsius (212 degrees Fahrenheit).",
    "how to rotate log files on linux",
    "logrotate rotates, compresses and removes old log files on Linux on a daily or "
    "weekly schedule set in /etc/logrotate.conf.",
    "who wrote pride and prejudice",
    "Pride and Prejudice is an 1813 novel by the English author Jane Austen.",
    "what does insulin do in the body",
    "Insulin is a hormone made by the pancreas that lets cells take up glucose from blood.",
    "how does a jet engine produce thrust",
    "A jet engine compresses air, burns fuel in it and expels the hot exhaust backwards, "
    "which pushes the aircraft forwards.",
    "what is the capital of australia",
    "Canberra is the capital city of Australia; Sydney is its largest city.",
    "why is the sky blue",
    "Sunlight is scattered by air molecules, and blue light is scattered most, so the sky "
    "looks blue.",
    "how to sort a list in python",
    "In Python, sorted(items) returns a new sorted list and items.sort() sorts in place.",
    "what is photosynthesis",
    "Photosynthesis is the process by which plants use sunlight, water and carbon dioxide "
    "to make glucose and oxygen.",
)
CALIBRATION_PAIRS = tuple(zip(_QUERY_PASSAGE[::2], _QUERY_PASSAGE[1::2], strict=True))

_CALIBRATION_TARGET = 0.9

PREFIX = "tasb:"
"""Where langchain-tasb's own keys start in collection metadata."""


def probe_vector(embedding: TextEncoder) -> list[float]:
    """The model's document-side embedding of :data:`PROBE_TEXT` (its fixed one, if any)."""
    fixed = getattr(embedding, "embed_fixed_document", None)
    vector = fixed(PROBE_TEXT) if callable(fixed) else embedding.embed_documents([PROBE_TEXT])[0]
    return [float(x) for x in vector]


def calibrate(embedding: TextEncoder) -> RelevanceScale:
    """Fit relevance: :data:`CALIBRATION_PAIRS`' mean dot maps to 0.9, mismatched pairs' to 0.1."""
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
        if drift := model_drift(self.probe, probe):
            return (
                f"vectors of model {self.model_name!r} (the probe sentence's embedding differs: "
                f"cosine {drift[0]:.4f}, norm ratio {drift[1]:.3f})"
            )
        return None


# Chosen so the index ranks as exact dot-product search does, where Chroma's own defaults fall
# short (benchmarks/RESULTS.md, "Index quality").
DEFAULT_EF_SEARCH = 128
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_MAX_NEIGHBORS = 32


@dataclass(frozen=True)
class HnswSettings:
    """HNSW index settings for a new collection (``ef_search`` can change later).

    Chroma reads ``ef_search`` when it loads an index, so a change applies to later clients.
    """

    ef_search: int = DEFAULT_EF_SEARCH
    """Candidates explored per query: higher is slower and closer to exact search."""
    ef_construction: int = DEFAULT_EF_CONSTRUCTION
    """Candidates explored when inserting: higher builds slower and a better graph."""
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS
    """Graph degree (HNSW's M): higher costs memory and improves recall."""

    def configuration(self) -> dict[str, Any]:
        """Chroma collection configuration for an inner-product HNSW index."""
        return {"hnsw": {"space": "ip", **asdict(self)}}


class ChromaStore(Collection):
    """An inner-product Chroma collection bound to one model identity (and its dimension)."""

    identity: ModelIdentity
    relevance: RelevanceScale
    """The relevance scale recorded for this collection."""

    @classmethod
    def open(
        cls,
        client: Any,
        name: str,
        *,
        encoder: TextEncoder,
        hnsw: HnswSettings | None = None,
        metadata: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        create: bool = True,
    ) -> ChromaStore:
        """Open (or create, when ``create``) collection ``name``; check it fits the model.

        ``encoder``'s relevance is calibrated only when a collection is created; ``hnsw``
        configures a new collection, and only its ``ef_search`` applies to an existing one.

        Raises:
            CollectionNotFoundError: ``create`` is False and there is no such collection.
            SpaceMismatchError: the collection exists with a space other than ``ip``.
            ModelMismatchError: it was filled by another model or dimension.
        """
        policy = retry_policy(client, retry)
        collection = find_collection(client, name, policy, required=not create)
        probe = probe_vector(encoder)
        if collection is None:
            hold_writer_lock(client)
            theirs = {k: v for k, v in (metadata or {}).items() if not k.startswith(PREFIX)}
            ours = _new_identity(encoder, probe).to_metadata()
            # get_or_create: a collection made meanwhile by another process is kept as it is.
            collection = call_with_retry(
                policy,
                location(client),
                client.get_or_create_collection,
                name,
                configuration=(hnsw or HnswSettings()).configuration(),
                metadata={**theirs, **ours},
                embedding_function=None,
            )
            logger.debug("created collection %s (ip, dim %d)", name, len(probe))
        store = cls(client, collection, policy)
        if store.space != "ip":
            msg = (
                f"Collection {name!r} uses the {store.space!r} distance space; TAS-B-style models "
                "need 'ip' (inner product), or rankings are silently wrong. A collection's "
                "space cannot change: index into a new collection name, or delete this one "
                f"with client.delete_collection({name!r}) and re-index."
            )
            raise SpaceMismatchError(msg)
        identity = ModelIdentity.from_metadata(store.metadata)
        if identity is None:
            if count := store.count():
                msg = (
                    f"Collection {name!r} holds {count} vectors but no langchain-tasb record "
                    "of the model that made them, so they cannot be trusted to match this "
                    "model. Re-index into a new collection name."
                )
                raise ModelMismatchError(msg)
            identity = _new_identity(encoder, probe)
            # modify() replaces metadata rather than merging: merge ourselves.
            store.metadata.update(identity.to_metadata())
            store._call(store.collection.modify, metadata=store.metadata)
        elif (found := identity.mismatch(len(probe), encoder.similarity, probe)) is not None:
            msg = (
                f"Collection {name!r} was filled with {found}; this store's model "
                f"{encoder.model_name!r} gives {len(probe)}-dimensional {encoder.similarity} "
                "vectors. Open it with the model that built it, or index into a new "
                "collection name."
            )
            raise ModelMismatchError(msg)
        if hnsw is not None and store.hnsw.get("ef_search") != hnsw.ef_search:
            update = {"hnsw": {"ef_search": hnsw.ef_search}}
            store._call(store.collection.modify, configuration=update)
        store.identity, store.relevance = identity, identity.relevance
        store.dimension = identity.dimension
        logger.debug("opened collection %s", name)
        return store


def _new_identity(encoder: TextEncoder, probe: list[float]) -> ModelIdentity:
    similarity, name = encoder.similarity, str(encoder.model_name)
    return ModelIdentity(len(probe), similarity, tuple(probe), calibrate(encoder), name)


def recorded_model_name(
    client: Any, collection_name: str, *, retry: RetryPolicy | None = None
) -> str | None:
    """The model name recorded in collection ``collection_name`` (reads only), or None."""
    found = find_collection(client, collection_name, retry)
    identity = ModelIdentity.from_metadata(found.metadata) if found is not None else None
    return (identity.model_name or None) if identity else None
