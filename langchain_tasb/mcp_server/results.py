"""What the MCP tools return: the models that are also the tools' output schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SearchHit(BaseModel):
    """One chunk found by ``search``."""

    id: str = Field(description="The chunk's id; pass it to `fetch` to read the chunk again.")
    source: str | None = Field(description="The file (or other source) the chunk comes from.")
    chunk: int | str | None = Field(description="The chunk's position within its source.")
    score: float = Field(
        description="Dot product of the query and chunk embeddings: higher is better. "
        "Comparable between results of this collection, not across models."
    )
    relevance: float = Field(
        description="The score mapped to 0..1 by a curve calibrated for the model: 0.5 is as "
        "likely relevant as not, higher is more likely relevant. Same order as score."
    )
    text: str = Field(description="The chunk's full text.")
    metadata: dict[str, Any] = Field(description="The chunk's stored metadata (filterable).")
    fused_score: float | None = Field(
        default=None, description='search_type="hybrid" only: the fused dense + BM25 score.'
    )
    bm25_score: float | None = Field(
        default=None, description='search_type="hybrid" only: the BM25 score (0 if absent).'
    )


class SearchResults(BaseModel):
    """What ``search`` found, best first."""

    query: str
    search_type: str
    k: int
    filter: dict[str, Any] | None = Field(description="The filter applied, as normalised.")
    results: list[SearchHit]


class Chunk(BaseModel):
    """One stored chunk, as ``fetch`` returns it."""

    id: str
    source: str | None
    chunk: int | str | None
    text: str
    metadata: dict[str, Any]


class CollectionInfo(BaseModel):
    """What ``tasb info --json`` reports about the collection."""

    model_config = ConfigDict(extra="allow")

    collection: str | None = None
    model: str | None = Field(default=None, description="The model that filled the collection.")
    dimension: int | None = None
    similarity: str | None = Field(
        default=None, description='"dot" (scores are dot products) or "cosine".'
    )
    space: str | None = Field(default=None, description='Chroma distance space, "ip".')
    chunks: int | None = Field(default=None, description="How many chunks it holds.")
    sources: int | None = Field(default=None, description="How many distinct sources.")
