"""What the MCP tools return: the models that are also the tools' output schemas.

An MCP 1.x client checks a tool's output schema against its metaschema on every call, at a cost
that grows with every subschema and keyword. So the schemas declare draft-07 (its metaschema is
cheaper than 2020-12's, and every keyword here means the same in both), a nullable field is one
``type`` list rather than an ``anyOf``, titles are dropped, and a search's fields other than its
results, and each result's fields, are described in text rather than typed one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

if TYPE_CHECKING:
    from collections.abc import Callable

DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def output_schema(*typed: str) -> Callable[[dict[str, Any]], None]:
    """The ``json_schema_extra`` that makes a tool's output schema cheap for a client to check.

    Fields not in ``typed`` (if any is given) are named, with their descriptions, in the
    schema's description instead of keeping a schema of their own.
    """

    def cheapen(schema: dict[str, Any]) -> None:
        schema.pop("title", None)
        fields = schema["properties"]
        for name, field in list(fields.items()):
            field.pop("title", None)
            if typed and name not in typed:
                schema["description"] += f" `{name}`: {fields.pop(name)['description']}"
                continue
            branches = field.get("anyOf")
            if branches and all(map(_bare_type, branches)):
                del field["anyOf"]
                field["type"] = [branch["type"] for branch in branches]
        schema["$schema"] = DRAFT_07

    return cheapen


def _bare_type(branch: dict[str, Any]) -> bool:
    """Whether ``branch`` says no more than its one ``type`` (objects: any properties)."""
    return (
        isinstance(branch.get("type"), str)
        and set(branch) <= {"type", "additionalProperties"}
        and branch.get("additionalProperties", True) is True
    )


_OUTPUT = ConfigDict(json_schema_extra=output_schema())


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


HIT_SCHEMA = {
    "type": "object",
    "required": [name for name, field in SearchHit.model_fields.items() if field.is_required()],
    "description": "One chunk found, with its fields: "
    + " ".join(f"`{name}`: {field.description}" for name, field in SearchHit.model_fields.items()),
}


class SearchResults(BaseModel):
    """What ``search`` found, best first."""

    model_config = ConfigDict(json_schema_extra=output_schema("results"))

    query: str = Field(description="The query searched for.")
    search_type: str = Field(description='"similarity", "mmr" or "hybrid".')
    k: int = Field(description="How many results were asked for.")
    filter: dict[str, Any] | None = Field(
        description="The filter applied, as normalised (null for none)."
    )
    results: list[Annotated[SearchHit, WithJsonSchema(HIT_SCHEMA)]]


class Chunk(BaseModel):
    """One stored chunk, as ``fetch`` returns it."""

    model_config = _OUTPUT

    id: str
    source: str | None
    chunk: int | str | None
    text: str
    metadata: dict[str, Any]


class CollectionInfo(BaseModel):
    """What ``tasb info --json`` reports about the collection."""

    model_config = ConfigDict(extra="allow", json_schema_extra=output_schema())

    collection: str | None = None
    model: str | None = Field(default=None, description="The model that filled the collection.")
    dimension: int | None = None
    similarity: str | None = Field(
        default=None, description='"dot" (scores are dot products) or "cosine".'
    )
    space: str | None = Field(default=None, description='Chroma distance space, "ip".')
    chunks: int | None = Field(default=None, description="How many chunks it holds.")
    sources: int | None = Field(default=None, description="How many distinct sources.")
