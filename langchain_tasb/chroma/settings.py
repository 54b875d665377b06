"""HNSW index settings for a new collection, and the defaults the package chose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        return {
            "hnsw": {
                "space": "ip",
                "ef_search": self.ef_search,
                "ef_construction": self.ef_construction,
                "max_neighbors": self.max_neighbors,
            }
        }
