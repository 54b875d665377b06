"""The one search every skin calls: a query (or its vector) and settings to scored hits."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from langchain_tasb.config import DEFAULT_FUSION, DEFAULT_K, default_fetch_k
from langchain_tasb.hybrid import FUSIONS, Fusion
from langchain_tasb.scoring import mmr_select
from langchain_tasb.validation import RESERVED_PREFIX, RESULT_KEYS, user_metadata

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from langchain_tasb.collection import TasbCollection

logger = logging.getLogger(__name__)

SearchType = Literal["similarity", "similarity_score_threshold", "mmr", "hybrid"]
SEARCH_TYPES: tuple[str, ...] = get_args(SearchType)


def check_known(what: str, given: Iterable[str], allowed: Sequence[str]) -> None:
    """Raise TypeError naming the ``given`` names not ``allowed``, and every allowed one."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        msg = f"Unknown {what} {unknown}; expected some of {sorted(allowed)}"
        raise TypeError(msg)


def check_positive_int(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a positive int (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"{name} must be a positive integer, got {value!r}"
        raise ValueError(msg)


def _check_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        msg = f"{name} must be a number from 0 to 1, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class SearchSettings:
    """How to search: checked once, here, whoever builds them.

    Raises:
        ValueError: A setting unknown or out of range, or a threshold search without one.
        TypeError: ``filter`` or ``where_document`` is not a mapping.
    """

    search_type: SearchType = "similarity"
    """"similarity", "similarity_score_threshold", "mmr" or "hybrid" (dense and BM25 fused)."""
    k: int = DEFAULT_K
    """How many hits at most (:data:`~langchain_tasb.config.DEFAULT_K`)."""
    score_threshold: float | None = None
    """Minimum relevance in [0, 1]; applied to every search type when set."""
    filter: Mapping[str, Any] | None = None
    """Chroma ``where`` on metadata, e.g. ``{"source": "guide.md"}``."""
    where_document: Mapping[str, Any] | None = None
    """Chroma ``where_document`` on text, e.g. ``{"$contains": "London"}``."""
    fetch_k: int | None = None
    """Candidates for MMR and for each side of "hybrid"; None is ``default_fetch_k(k)``."""
    lambda_mult: float = 0.5
    """MMR trade-off: 1 is pure relevance, 0 is pure diversity."""
    fusion: Fusion = DEFAULT_FUSION
    """How "hybrid" fuses: "rrf" or "weighted" (min-max normalised, weighted by ``alpha``)."""
    alpha: float = 0.5
    """Dense weight for ``fusion="weighted"``: 1 is dense only, 0 is BM25 only."""
    ids: Sequence[str] | None = None
    """Search only among these record ids (similarity, threshold and MMR; not hybrid)."""

    @property
    def candidates(self) -> int:
        """``fetch_k`` as resolved at construction (``default_fetch_k(k)`` when None)."""
        return self.fetch_k or default_fetch_k(self.k)

    def __post_init__(self) -> None:
        if self.search_type not in SEARCH_TYPES:
            msg = f"search_type must be one of {SEARCH_TYPES}, got {self.search_type!r}"
            raise ValueError(msg)
        check_positive_int("k", self.k)
        if self.fetch_k is None:
            object.__setattr__(self, "fetch_k", default_fetch_k(self.k))
        check_positive_int("fetch_k", self.fetch_k)
        if self.score_threshold is not None:
            _check_unit("score_threshold", self.score_threshold)
        elif self.search_type == "similarity_score_threshold":
            msg = "search_type='similarity_score_threshold' needs score_threshold (0 to 1)"
            raise ValueError(msg)
        _check_unit("lambda_mult", self.lambda_mult)
        _check_unit("alpha", self.alpha)
        if self.ids is not None and (isinstance(self.ids, str) or not self.ids):
            msg = f"ids must be a non-empty list of record ids or None, got {self.ids!r}"
            raise ValueError(msg)
        if self.ids is not None and self.search_type == "hybrid":
            msg = "search_type='hybrid' cannot be narrowed to ids; use a metadata filter"
            raise ValueError(msg)
        if self.fusion not in FUSIONS:
            msg = f"fusion must be one of {FUSIONS}, got {self.fusion!r}"
            raise ValueError(msg)
        for name in ("filter", "where_document"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                msg = f"{name} must be a dict (a Chroma filter) or None, got {value!r}"
                raise TypeError(msg)

    @classmethod
    def from_options(cls, search_type: str = "similarity", /, **options: Any) -> SearchSettings:
        """Settings from keyword options; an unknown option is a TypeError naming them all."""
        check_known("search arguments", options, SETTING_NAMES[1:])
        return cls(search_type, **options)  # type: ignore[arg-type]


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SearchSettings))
"""The names of :class:`SearchSettings`' fields, ``search_type`` first."""


@dataclass(frozen=True)
class ScoredHit:
    """One search result: the stored record and its scores."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    """The stored metadata (empty when none)."""
    score: float = math.nan
    """Dot product with the query; higher is better."""
    relevance: float = math.nan
    """Calibrated relevance of ``score``, in [0, 1] and increasing with it."""
    fused_score: float | None = None
    """Hybrid only: the fused score hits are ordered by."""
    bm25_score: float | None = None
    """Hybrid only: BM25 score for the query (0 when no query term occurs)."""
    reserved: dict[str, Any] = field(default_factory=dict, repr=False)
    """langchain-tasb's own record keys, kept out of ``metadata`` so no skin shows them."""

    def scores(self) -> dict[str, float]:
        """``score`` and ``relevance``, plus ``fused_score`` and ``bm25_score`` when set."""
        return {key: getattr(self, key) for key in RESULT_KEYS if getattr(self, key) is not None}


def search(
    target: TasbCollection,
    settings: SearchSettings,
    *,
    query: str | None = None,
    vector: Sequence[float] | None = None,
) -> list[ScoredHit]:
    """Search ``target`` as ``settings`` say, best first (a threshold may leave fewer than k).

    Raises:
        ValueError: Neither ``query`` nor ``vector`` (which wins when both are given), hybrid
            without ``query``, or a filter Chroma refuses.
    """
    if vector is None:
        if query is None:
            msg = "search needs a query or a vector; got neither"
            raise ValueError(msg)
        vector = target.encoder.embed_query(query)
    chroma, threshold = target.store, settings.score_threshold
    extras: dict[str, dict[str, float]] = {}  # the hybrid scores of each hit
    if settings.search_type == "hybrid":
        if query is None:
            msg = "search_type='hybrid' needs the query text (for BM25), not only a vector"
            raise ValueError(msg)
        from langchain_tasb.hybrid import hybrid_search

        fused = hybrid_search(
            target,
            query,
            settings.k,
            fetch_k=settings.candidates,
            fusion=settings.fusion,
            alpha=settings.alpha,
            filter=settings.filter,
            where_document=settings.where_document,
            query_vector=vector,
        )
        hits = [item.hit for item in fused]
        extras = {
            item.hit.id: {"fused_score": item.fused_score, "bm25_score": item.bm25_score}
            for item in fused
        }
    else:
        mmr = settings.search_type == "mmr"
        hits = chroma.query(
            vector,
            max(settings.candidates, settings.k) if mmr else settings.k,
            where=settings.filter,
            where_document=settings.where_document,
            with_vectors=mmr,
            ids=settings.ids,
        )
        if mmr and hits:
            matrix = np.stack([hit.vector for hit in hits if hit.vector is not None])
            query_vector = np.asarray(vector, dtype=np.float32)
            picks = mmr_select(query_vector, matrix, settings.k, settings.lambda_mult)
            hits = [hits[i] for i in picks]
    scored = [
        ScoredHit(
            id=hit.id,
            text=hit.text,
            metadata=user_metadata(hit.metadata),
            reserved={
                k: v for k, v in (hit.metadata or {}).items() if k.startswith(RESERVED_PREFIX)
            },
            score=hit.dot,
            relevance=chroma.relevance.relevance(hit.dot),
            **extras.get(hit.id, {}),
        )
        for hit in hits
    ]
    out = [hit for hit in scored if threshold is None or hit.relevance >= threshold]
    if threshold is not None and hits and not out:
        logger.info("no hit reached relevance %s in collection %s", threshold, chroma.name)
    return out
