"""LlamaIndex nodes to and from collection records (id, text, metadata).

Text and the node's metadata are stored as LangChain writes them; what else rebuilds the node
goes into reserved keys (:data:`NODE_KEY`, only when not a plain ``TextNode``'s defaults, and
:data:`REF_DOC_ID_KEY`), which LangChain reads never show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llama_index.core.schema import BaseNode, ImageNode, IndexNode, MetadataMode, Node, TextNode

from langchain_tasb.metadata import RESERVED_PREFIX, RESULT_KEYS, is_refused, user_metadata

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


@dataclass(frozen=True)
class Record:
    """One node as the collection stores it."""

    id: str
    text: str
    metadata: dict[str, Any]


def node_to_record(node: BaseNode, position: int = 0) -> Record:
    """The record that stores ``node``: its id, its text, its metadata plus reserved keys.

    Raises:
        ValueError: a metadata key uses the reserved prefix, or is one a query result sets.
    """
    refused = sorted(key for key in node.metadata if is_refused(key))
    if refused:
        msg = (
            f"nodes[{position}] (id {node.node_id!r}) has metadata keys {refused}; keys "
            f"starting with {RESERVED_PREFIX!r} are reserved for langchain-tasb, and "
            f"{SCORE_KEYS} are set on query results to the hit's scores: rename them"
        )
        raise ValueError(msg)
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
    return Record(node.node_id, node.get_content(metadata_mode=MetadataMode.NONE), metadata)


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
    if scores:
        hidden = [key for key in scores if key not in node.excluded_llm_metadata_keys]
        node.excluded_llm_metadata_keys = [*node.excluded_llm_metadata_keys, *hidden]
        hidden = [key for key in scores if key not in node.excluded_embed_metadata_keys]
        node.excluded_embed_metadata_keys = [*node.excluded_embed_metadata_keys, *hidden]
    return node
