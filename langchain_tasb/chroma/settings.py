"""HNSW index settings for a new collection, and the defaults the package chose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_EF_CONSTRUCTION",
    "DEFAULT_EF_SEARCH",
    "DEFAULT_MAX_NEIGHBORS",
    "HnswSettings",
]

# HNSW defaults chosen so that the index loses at most 0.002 nDCG@10 against exact dot-product
# search, with top-10 recall >= 0.99, on SciFact and Cranfield, build after build, for
# normalised and unnormalised vectors alike (benchmarks/RESULTS.md, "Index quality"). Chroma's
# own defaults (ef_search 100, ef_construction 100, max_neighbors 16) miss that bar on SciFact,
# and with unnormalised vectors max_neighbors 16 misses it on some builds.
DEFAULT_EF_SEARCH = 128
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_MAX_NEIGHBORS = 32


@dataclass(frozen=True)
class HnswSettings:
    """HNSW index settings for a new collection (``ef_search`` can change later).

    Chroma reads ``ef_search`` when it loads a collection's index: a change made while the
    index is loaded in this process takes effect for clients opened afterwards.
    """

    ef_search: int = DEFAULT_EF_SEARCH
    """Candidates explored per query: higher is slower and closer to exact search."""
    ef_construction: int = DEFAULT_EF_CONSTRUCTION
    """Candidates explored when inserting: higher builds slower and a better graph."""
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS
    """Graph degree (HNSW's M): higher costs memory and improves recall."""

    def configuration(self) -> dict[str, Any]:
        """Chroma collection configuration for an inner-product HNSW index."""
        return {
            "hnsw": {
                "space": "ip",
                "ef_search": self.ef_search,
                "ef_construction": self.ef_construction,
                "max_neighbors": self.max_neighbors,
            }
        }
