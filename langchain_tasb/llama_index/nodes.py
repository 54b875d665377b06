"""LlamaIndex in the core's terms: nodes as records, ``MetadataFilters`` as ``where`` filters.

:class:`TasbLlamaEmbedding` is a core ``TasbModel`` as a LlamaIndex embed model. Text and the
node's metadata are stored as LangChain writes them; what else rebuilds the node goes into
reserved keys (:data:`NODE_KEY`, only when not a plain ``TextNode``'s defaults, and
:data:`REF_DOC_ID_KEY`), which LangChain reads never show.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import (
    BaseNode,
    ImageNode,
    IndexNode,
    Node,
    NodeWithScore,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from pydantic import Field, PrivateAttr

from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.validation import (
    RESERVED_PREFIX,
    RESULT_KEYS,
    check_user_metadata,
    user_metadata,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tasb.search import ScoredHit

NODE_KEY = f"{RESERVED_PREFIX}llama_node"
"""Record key holding the JSON LlamaIndex needs to rebuild a node beyond text and metadata."""
REF_DOC_ID_KEY = f"{RESERVED_PREFIX}ref_doc_id"
"""Record key holding the node's ``ref_doc_id`` (the id of its source document)."""

SCORE_KEYS = list(RESULT_KEYS)
"""Metadata keys a query result adds (the hit's scores), hidden from the LLM and embedding."""

# Fields stored elsewhere in the record (id, text, metadata) or never (the vector).
_ELSEWHERE = {"id_", "embedding", "metadata", "text", "text_resource"}
_PLAIN = {"class_name": TextNode.class_name()}
_CLASSES: dict[str, type[BaseNode]] = {
    cls.class_name(): cls for cls in (TextNode, Node, IndexNode, ImageNode)
}

Where = dict[str, Any]

_OPERATORS = {  # Chroma's name is "$" and the lower-case name
    FilterOperator[name]: f"${name.lower()}"
    for name in ("EQ", "NE", "GT", "GTE", "LT", "LTE", "IN", "NIN", "CONTAINS")
}
_CONDITIONS = {cond: f"${cond.value}" for cond in (FilterCondition.AND, FilterCondition.OR)}
_SUPPORTED = [op.name for op in (*_OPERATORS, FilterOperator.ANY, FilterOperator.ALL)]


def record_metadata(node: BaseNode, position: int = 0) -> dict[str, Any]:
    """The metadata of the record that stores ``node``: its own plus reserved keys.

    Raises:
        ValueError: a metadata key uses the reserved prefix, or is one a query result sets.
    """
    check_user_metadata(node.metadata, f"nodes[{position}] (id {node.node_id!r})")
    metadata = dict(node.metadata)
    extra = {
        key: value
        for key, value in node.model_dump(mode="json", exclude_defaults=True).items()
        if key not in _ELSEWHERE
    }
    if extra != _PLAIN:
        metadata[NODE_KEY] = json.dumps(extra, ensure_ascii=False, sort_keys=True)
    if node.ref_doc_id is not None:
        metadata[REF_DOC_ID_KEY] = node.ref_doc_id
    return metadata


def record_to_node(
    id_: str, text: str, metadata: dict[str, Any] | None, scores: dict[str, float] | None = None
) -> BaseNode:
    """Rebuild the node a record stores; ``scores`` are added to its metadata, hidden."""
    fields: dict[str, Any] = json.loads((metadata or {}).get(NODE_KEY) or "{}")
    cls = _CLASSES.get(str(fields.pop("class_name", "")), TextNode)
    fields["id_"] = id_
    fields["metadata"] = {**user_metadata(metadata), **(scores or {})}
    node = cls.model_validate(fields)
    node.set_content(text)
    for attr in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
        excluded = getattr(node, attr)
        setattr(node, attr, [*excluded, *(key for key in scores or {} if key not in excluded)])
    return node


def to_node(hit: ScoredHit) -> NodeWithScore:
    """A search hit as a LlamaIndex node scored by its dot product, its scores in metadata."""
    node = record_to_node(hit.id, hit.text, {**hit.metadata, **hit.reserved}, hit.scores())
    return NodeWithScore(node=node, score=hit.score)


def to_where(filters: MetadataFilters | None) -> Where | None:
    """The Chroma ``where`` equivalent to ``filters``; None when there is nothing to filter.

    ANY and ALL become an ``$or`` or ``$and`` of ``$contains``; nested filters recurse.

    Raises:
        ValueError: an operator or condition Chroma cannot express (NOT, TEXT_MATCH, ...),
            or a None value.
    """
    if filters is None:
        return None
    condition = filters.condition or FilterCondition.AND
    if condition not in _CONDITIONS:
        msg = (
            f"MetadataFilters condition {condition.value!r} has no Chroma equivalent; use "
            "'and' or 'or' (negate each filter instead: EQ -> NE, IN -> NIN)"
        )
        raise ValueError(msg)
    clauses = [
        to_where(item) if isinstance(item, MetadataFilters) else _clause(item)
        for item in filters.filters
    ]
    return combine(clauses, _CONDITIONS[condition])


def combine(clauses: Sequence[Where | None], operator: str = "$and") -> Where | None:
    """Clauses joined by ``operator``; Chroma wants two or more, so one stands alone."""
    kept = [clause for clause in clauses if clause]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else {operator: kept}


def _clause(item: MetadataFilter) -> Where:
    if item.value is None:
        msg = f"Filter on {item.key!r} has value None; Chroma stores no nulls, so nothing matches"
        raise ValueError(msg)
    if item.operator in (FilterOperator.ANY, FilterOperator.ALL):
        values = item.value if isinstance(item.value, list) else [item.value]
        contains = [{item.key: {"$contains": value}} for value in values]
        joined = combine(contains, "$or" if item.operator == FilterOperator.ANY else "$and")
        if joined is None:
            msg = f"Filter {item.operator.name} on {item.key!r} needs at least one value"
            raise ValueError(msg)
        return joined
    operator = _OPERATORS.get(item.operator)
    if operator is None:
        msg = (
            f"Filter operator {item.operator.name} on {item.key!r} has no Chroma equivalent; "
            f"use one of {_SUPPORTED}"
        )
        raise ValueError(msg)
    return {item.key: {operator: item.value}}


class TasbLlamaEmbedding(BaseEmbedding):
    """LlamaIndex embedding model backed by a ``TasbModel`` (``TasbEmbeddings`` is one).

    Vectors are returned as the model makes them: TAS-B's are not normalised, and must be
    compared by dot product.
    """

    embed_batch_size: int = Field(default=256, gt=0, le=2048)
    """Texts LlamaIndex hands over per call (the model batches again inside)."""

    _embeddings: TasbModel = PrivateAttr()

    def __init__(self, embeddings: TasbModel | None = None, **kwargs: Any) -> None:
        model = embeddings if embeddings is not None else TasbModel()
        kwargs.setdefault("model_name", model.model_name)
        super().__init__(**kwargs)
        self._embeddings = model

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's serialisation name."""
        return "TasbLlamaEmbedding"

    @property
    def embeddings(self) -> TasbModel:
        """The wrapped model."""
        return self._embeddings

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embeddings.embed_query(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await self._embeddings.aembed_query(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embeddings.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embeddings.embed_documents(texts)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._embeddings.aembed_documents([text]))[0]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._embeddings.aembed_documents(texts)
