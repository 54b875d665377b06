"""The MCP tools over one collection: ``search``, ``fetch`` and ``collection_info``, read-only.

Each tool answers with structured content and a numbered text rendering. Input the agent can
fix comes back as a tool error that says what to change; the server keeps serving.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from mcp.types import CallToolResult
from pydantic import BeforeValidator, Field, WithJsonSchema

from langchain_tasb.config import DEFAULT_K
from langchain_tasb.mcp_server.filters import EXAMPLE, OPERATORS, check_filter
from langchain_tasb.mcp_server.results import Chunk, CollectionInfo, SearchResults
from langchain_tasb.mcp_server.sdk import McpServer, ToolError, new_server, read_only, tool_result
from langchain_tasb.search import SearchSettings
from langchain_tasb.validation import echo, user_metadata

if TYPE_CHECKING:
    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.search import ScoredHit

logger = logging.getLogger(__name__)

MAX_K = 50
"""Most results one ``search`` call returns; each carries a whole chunk of text."""
SEARCH_TYPES = ("similarity", "mmr", "hybrid")

Query = Annotated[
    str,
    Field(
        description="What to look for: a question or a few descriptive words, in natural "
        "language. The search is by meaning, so paraphrases match.",
        json_schema_extra={"minLength": 1},
    ),
]


def _k_message(shown: str) -> str:
    return (
        f"k must be a whole number from 1 to {MAX_K}, got {shown}: ask for fewer results "
        "and narrow the search with a filter or a more specific query"
    )


def _not_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` for ``k``, which pydantic would otherwise read as 1/0."""
    if isinstance(value, bool):
        msg = _k_message(f"the boolean {str(value).lower()}")
        raise ValueError(msg)  # pydantic reports a ValueError with its message
    return value


K = Annotated[
    int,
    BeforeValidator(_not_bool),
    Field(
        description=f"How many chunks to return, best first (1 to {MAX_K}).",
        json_schema_extra={"minimum": 1, "maximum": MAX_K},
    ),
]
Filter = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "object"}, {"type": "null"}],
            "default": None,
            "description": (
                "Only chunks whose metadata matches, in Chroma `where` syntax: "
                '{"source": "guide.md"} for equality; {"FIELD": {"OP": VALUE}} with OP one of '
                f"{', '.join(op for op in OPERATORS if op not in ('$and', '$or'))} "
                '($in/$nin take a list); {"$and": [...]} / {"$or": [...]} to combine; '
                f"several fields in one object all have to match. Example: {EXAMPLE}. "
                "Metadata fields include source and chunk (see `fetch` for a chunk's fields)."
            ),
        }
    ),
]
SearchType = Annotated[
    str,
    Field(
        description='"similarity" (the k best by score), "mmr" (best but diverse: fewer '
        'near-duplicates), or "hybrid" (dense and BM25 keyword results fused; helps with '
        "exact names, codes and rare words).",
        json_schema_extra={"enum": list(SEARCH_TYPES)},
    ),
]
ChunkId = Annotated[str, Field(description="A chunk id from a `search` result.")]


def build_server(
    core: TasbCollection,
    *,
    info: Callable[[], Mapping[str, Any]],
    name: str = "tasb",
    on_loop: bool = False,
) -> McpServer:
    """An MCP server, not yet running, whose tools search, read and describe ``core``.

    ``info`` returns what ``tasb info --json`` reports; it is called once now (for the tool
    descriptions) and on each ``collection_info`` call. ``on_loop`` runs tool calls on the
    event loop's thread (two thread switches fewer, but a call holds the loop: for stdio,
    which serves one client); otherwise each runs in a worker thread.
    """
    holds = describe_contents(info())
    server = new_server(
        name,
        f"Read-only retrieval over {holds}. Use `search` to find passages, `fetch` to "
        "reread one by id, `collection_info` to see what is indexed. Cite sources.",
    )

    def search(
        query: Query,
        k: K = DEFAULT_K,
        filter: Filter = None,
        search_type: SearchType = "similarity",
    ) -> Annotated[CallToolResult, SearchResults]:
        if not query.strip():  # pydantic has checked the types
            msg = "query is empty: pass the question or words to search for"
            raise ToolError(msg)
        if not 1 <= k <= MAX_K:  # a boolean k is refused by _not_bool
            raise ToolError(_k_message(echo(k)))
        if search_type not in SEARCH_TYPES:
            msg = f"search_type must be one of {', '.join(SEARCH_TYPES)}, got {echo(search_type)}"
            raise ToolError(msg)
        try:
            where = check_filter(filter)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        settings = SearchSettings.from_options(search_type, k=k, filter=where)
        hits = [to_hit(hit) for hit in core.search(settings, query=query)]
        found = {"query": query, "search_type": search_type, "k": k, "filter": where}
        return tool_result(render_hits(hits, where), {**found, "results": hits})

    def fetch(id: ChunkId) -> Annotated[CallToolResult, Chunk]:
        if not id.strip():
            msg = "id is empty: pass the id of a search result"
            raise ToolError(msg)
        found = core.get([id])
        if not found:
            msg = (
                f"no chunk with id {echo(id)} in collection {core.collection_name!r}: pass "
                "an id exactly as a search result gives it"
            )
            raise ToolError(msg)
        chunk = _chunk(found[0].id or id, found[0].text, user_metadata(found[0].metadata))
        text = f"[{_label(chunk)}] id {chunk['id']}\n{chunk['text']}"
        if chunk["metadata"]:
            text += f"\n\nmetadata: {json.dumps(chunk['metadata'], ensure_ascii=False)}"
        return tool_result(text, chunk)

    def collection_info() -> Annotated[CallToolResult, CollectionInfo]:
        details = dict(info())
        report = CollectionInfo.model_validate(details)
        return tool_result(
            json.dumps(details, indent=2, default=str), report.model_dump(mode="json")
        )

    tools: dict[str, tuple[Callable[..., Any], str]] = {
        "Search the collection": (
            search,
            f"Search {holds} by meaning with a dense retriever. Returns the k best chunks, best "
            "first, each numbered with its source, chunk number, id, `score` (the dot product "
            "of query and chunk embeddings; higher is better, and only comparable within this "
            "collection) and `relevance` (the score mapped to 0..1, calibrated for the model: "
            "0.5 is as likely relevant as not; above 0.5 is probably on topic). Narrow with "
            f'`filter`, e.g. {{"source": "guide.md"}}. Bad arguments return an error that says '
            "what to change.",
        ),
        "Read one chunk": (
            fetch,
            "Read one chunk of the collection in full, with all its metadata, by the id a "
            "`search` result gave. Use it to reread a passage or to see which metadata fields "
            "a filter can use.",
        ),
        "Describe the collection": (
            collection_info,
            "Describe the collection: the embedding model, its dimension and similarity, the "
            "distance space, how many chunks and sources it holds, and the largest sources.",
        ),
    }
    for title, (fn, description) in tools.items():
        server.add_tool(
            _as_coroutine(fn, in_thread=not on_loop),
            title=title,
            description=description,
            annotations=read_only(),
        )
    return server


def _as_coroutine(fn: Callable[..., Any], in_thread: bool) -> Callable[..., Any]:
    """``fn`` as a coroutine function with its signature, run in a worker thread if told.

    mcp 1.x would run a plain function on the loop, holding other HTTP clients' calls. A
    store, model or input error becomes a tool error naming the tool, cut short.
    """

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            if in_thread:
                return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
            return fn(*args, **kwargs)
        except (ValueError, ImportError, OSError) as exc:
            msg = f"{fn.__name__} failed: {_capped(exc)}"
            raise ToolError(msg) from exc

    return call


def describe_contents(summary: Mapping[str, Any]) -> str:
    """A phrase for tool descriptions: the collection, its size, and some of its sources."""
    name = f"the collection {summary.get('collection') or 'the collection'!r}"
    chunks, sources = summary.get("chunks"), summary.get("sources")
    if chunks is None:
        return name
    size = f"{chunks} text chunks" + (f" from {sources} sources" if sources else "")
    tops = [str(t.get("source")) for t in summary.get("top_sources") or [] if t.get("source")]
    if tops:
        size += f" such as {', '.join(tops[:3])}"
    return f"{name} ({size})"


def to_hit(hit: ScoredHit) -> dict[str, Any]:
    """A core search hit as a :class:`SearchHit`'s JSON (hybrid-only scores only when set)."""
    return {**_chunk(hit.id, hit.text, hit.metadata), **hit.scores()}


def render_hits(hits: list[dict[str, Any]], where: Mapping[str, Any] | None = None) -> str:
    """Numbered blocks ``[n] source #chunk (score S, relevance R) id ID`` then the text."""
    if not hits:
        return "No matching chunks" + (" for this filter." if where else ".")
    return "\n\n".join(
        f"[{n}] {_label(hit)} (score {hit['score']:.1f}, relevance {hit['relevance']:.2f}) "
        f"id {hit['id']}\n{hit['text']}"
        for n, hit in enumerate(hits, start=1)
    )


def _label(chunk: Mapping[str, Any]) -> str:
    """Where a chunk came from: its source (with ``#chunk``), else its id."""
    label = chunk["source"] or chunk["id"] or "unknown source"
    return label if chunk["chunk"] is None else f"{label} #{chunk['chunk']}"


def _capped(exc: BaseException, limit: int = 1_000) -> str:
    """An error's message for the agent, cut short should it repeat a large input."""
    text = str(exc)
    return text if len(text) <= limit else f"{text[: limit - 4]} ..."


def _chunk(id_: str, text: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A :class:`Chunk`'s JSON: ``source`` a string, ``chunk`` a string unless an int."""
    source, chunk = metadata.get("source"), metadata.get("chunk")
    return {
        "id": id_,
        "source": None if source is None else str(source),
        "chunk": chunk if chunk is None or isinstance(chunk, int | str) else str(chunk),
        "text": text,
        "metadata": dict(metadata),
    }
