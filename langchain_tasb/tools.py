"""Agent tools: a retriever as a LangChain tool whose answer cites its sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.tools import BaseTool


class RetrieverToolInput(BaseModel):
    """What the model passes to the tool."""

    query: str = Field(description="What to search for, in natural language or keywords.")


def format_documents(documents: Sequence[Document]) -> str:
    """Numbered blocks ``[n] source (score S, relevance R)`` then the text, blank-line apart.

    The source is ``metadata["source"]`` (with ``#chunk``), else the Document's id.
    """
    if not documents:
        return "No matching documents."
    blocks = []
    for n, doc in enumerate(documents, start=1):
        meta = doc.metadata
        label = str(meta.get("source") or doc.id or "unknown source")
        if meta.get("chunk") is not None:
            label += f" #{meta['chunk']}"
        scores = [
            f"{key} {meta[key]:.{digits}f}"
            for key, digits in (("score", 1), ("relevance", 2))
            if isinstance(meta.get(key), int | float)
        ]
        if scores:
            label += f" ({', '.join(scores)})"
        blocks.append(f"[{n}] {label}\n{doc.page_content}")
    return "\n\n".join(blocks)


def make_retriever_tool(
    retriever: BaseRetriever, name: str, description: str, *, k: int | None = None
) -> BaseTool:
    """A tool that runs ``retriever`` and answers with its Documents, numbered, with sources.

    Invoked with a tool call it returns a ``ToolMessage`` whose ``content`` is
    :func:`format_documents` and whose ``artifact`` is the Documents.

    Args:
        retriever: Any LangChain retriever; a :class:`~langchain_tasb.TasbRetriever` adds
            scores and relevance to each block.
        name: The tool name the model calls (letters, digits, ``_`` and ``-``).
        description: When the model should use the tool.
        k: Documents per call, passed as ``invoke(query, k=k)``.

    Raises:
        ValueError: If ``name`` or ``description`` is empty, or ``k`` is not positive.
    """
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        msg = f"Tool name must be non-empty letters, digits, '_' or '-', got {name!r}"
        raise ValueError(msg)
    if not description.strip():
        msg = "Tool description is empty; say when the model should search with it"
        raise ValueError(msg)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k <= 0):
        msg = f"k must be a positive integer or None, got {k!r}"
        raise ValueError(msg)
    overrides: dict[str, Any] = {} if k is None else {"k": k}

    def search(query: str) -> tuple[str, list[Document]]:
        documents = retriever.invoke(query, **overrides)
        return format_documents(documents), documents

    async def asearch(query: str) -> tuple[str, list[Document]]:
        documents = await retriever.ainvoke(query, **overrides)
        return format_documents(documents), documents

    return StructuredTool(
        name=name,
        description=description,
        func=search,
        coroutine=asearch,
        args_schema=RetrieverToolInput,
        response_format="content_and_artifact",
    )
