"""The MCP server's pieces in process: filter checks, address rules, and the tools themselves."""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="needs the MCP SDK (langchain-tasb[mcp])")

from mcp.types import LATEST_PROTOCOL_VERSION

from langchain_tasb import TasbEmbeddings, TasbRetriever
from langchain_tasb.mcp_server import (
    MAX_K,
    build_server,
    check_exposure,
    check_filter,
    parse_address,
)
from langchain_tasb.mcp_server.filters import MAX_DEPTH, MAX_TERMS
from langchain_tasb.mcp_server.run import is_loopback
from langchain_tasb.mcp_server.sdk import ToolError

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "logs are rotated daily and compressed",
]


# -- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ({}, None),
        ("", None),
        ({"source": "a.md"}, {"source": "a.md"}),
        ('{"source": "a.md"}', {"source": "a.md"}),
        (
            {"source": "a.md", "chunk": {"$lt": 3}},
            {"$and": [{"source": "a.md"}, {"chunk": {"$lt": 3}}]},
        ),
        ({"$or": [{"source": "a.md"}]}, {"source": "a.md"}),
        (
            {"$or": [{"source": {"$in": ["a.md", "b.md"]}}, {"chunk": {"$gte": 2}}]},
            {"$or": [{"source": {"$in": ["a.md", "b.md"]}}, {"chunk": {"$gte": 2}}]},
        ),
        ({"flag": {"$ne": True}}, {"flag": {"$ne": True}}),
    ],
)
def test_valid_filters_are_normalised_to_chroma_where(given: Any, expected: Any) -> None:
    assert check_filter(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"source": {"$like": "a%"}}, "unknown operator '$like'"),
        ({"$not": [{"source": "a.md"}]}, "unknown operator '$not'"),
        ("{source: a.md", "filter is not valid JSON"),
        ([{"source": "a.md"}], "must be a non-empty JSON object"),
        ({"$and": {"source": "a.md"}}, "$and takes a non-empty list"),
        ({"$and": []}, "$and takes a non-empty list"),
        ({"source": {"$in": []}}, "$in takes a non-empty list"),
        ({"source": {"$in": ["a.md", 1]}}, "must all be of one type"),
        ({"chunk": {"$gt": "3"}}, "$gt compares with a number"),
        ({"source": ["a.md"]}, "a field takes a value"),
        ({"source": {"$eq": "a", "$ne": "b"}}, "a field takes a value"),
        ({"$and": [{"source": "a.md"}, 3]}, "filter.$and[1] must be a non-empty JSON object"),
    ],
)
def test_bad_filters_say_what_to_change(given: Any, message: str) -> None:
    with pytest.raises(ValueError, match="filter") as caught:
        check_filter(given)
    assert message in str(caught.value)


def _nested(levels: int) -> dict[str, Any]:
    """``{"$and": [{"$and": [... {"source": "a.md"} ...]}, {"chunk": 1}]}``, ``levels`` deep."""
    condition: dict[str, Any] = {"source": "a.md"}
    for _ in range(levels):
        condition = {"$and": [condition, {"chunk": 1}]}
    return condition


@pytest.mark.parametrize(
    "given",
    [
        _nested(MAX_DEPTH + 1),
        _nested(150),
        _nested(700),
        '{"$and": [' * 100_000,
        {"source": {"$in": [f"doc{i}.md" for i in range(100_000)]}},
        {"$or": [{"chunk": i} for i in range(MAX_TERMS + 1)]},
        {f"field{i}": i for i in range(MAX_TERMS + 1)},
    ],
    ids=["depth-33", "depth-150", "depth-700", "json-100000", "in-100000", "or-1001", "keys-1001"],
)
def test_filters_over_the_bounds_get_one_short_message(given: Any) -> None:
    with pytest.raises(ValueError, match="filter is too large") as caught:
        check_filter(given)
    assert str(caught.value) == (
        f"filter is too large: at most {MAX_DEPTH} levels of $and/$or and {MAX_TERMS} "
        "conditions and list values in all; use fewer values or split the search"
    )


def test_filters_at_the_bounds_pass() -> None:
    assert check_filter(_nested(MAX_DEPTH - 1)) is not None
    values = [f"doc{i}.md" for i in range(MAX_TERMS - 1)]
    assert check_filter({"source": {"$in": values}}) == {"source": {"$in": values}}


@pytest.mark.parametrize(
    "given",
    [
        {"chunk": {"$gt": "x" * 1_000_000}},
        {"source": ["x" * 1_000_000]},
        {"$and": [{"source": "a.md"}, "x" * 1_000_000]},
        {"source": {"$in": ["a.md", 1, *(["x" * 1000] * 900)]}},
        {"y" * 1_000_000: {"$regex": "z" * 1_000_000}},
        {"$and": [_nested(100), 3]},
    ],
    ids=["gt", "list", "and", "in", "key-and-operator", "deep"],
)
def test_filter_errors_repeat_little_of_a_huge_input(given: Any) -> None:
    with pytest.raises(ValueError, match="filter") as caught:
        check_filter(given)
    assert len(str(caught.value)) < 700, str(caught.value)[:1000]


# -- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8765", ("127.0.0.1", 8765)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),  # noqa: S104  (parsing only)
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_http_address_defaults_to_loopback(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "http", "0", "70000", ":8765", "host:port"])
def test_bad_http_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"--http expects \[HOST:\]PORT"):
        parse_address(text)


def test_only_loopback_serves_without_a_token() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.2", "::", "example.org"]))  # noqa: S104
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "secret")  # noqa: S104
    with pytest.raises(ValueError, match=r"refusing to serve on 0\.0\.0\.0.*--token-env NAME"):
        check_exposure("0.0.0.0", None)  # noqa: S104


# -- who may talk to the HTTP server (the real app, in process) --------------------------------

TOKEN = "s3cret"  # noqa: S105
AUTH = {"authorization": f"Bearer {TOKEN}"}


def _http_status(app: Any, headers: dict[str, str]) -> int:
    """The status ``app`` answers an ``initialize`` POST to /mcp carrying ``headers``."""
    from starlette.testclient import TestClient

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    with TestClient(app) as client:
        response = client.post(
            "/mcp",
            json=initialize,
            headers={"accept": "application/json, text/event-stream", **headers},
        )
        return response.status_code


EVIL_HOST = {"host": "evil.example"}
EVIL_ORIGIN = {"origin": "http://evil.example"}


@pytest.mark.parametrize(
    ("bound", "token", "headers", "status"),
    [
        ("127.0.0.1", None, EVIL_HOST, 421),
        ("127.0.0.2", None, EVIL_HOST, 421),
        ("127.0.0.2", None, {"host": "127.0.0.2:8765", **EVIL_ORIGIN}, 403),
        ("127.0.0.2", None, {"host": "127.0.0.2:8765"}, 200),
        ("127.0.0.2", None, {"host": "localhost:8765", "origin": "http://localhost:3000"}, 200),
        ("LOCALHOST", None, EVIL_HOST, 421),
        ("LOCALHOST", None, {"host": "localhost:8765", **EVIL_ORIGIN}, 403),
        ("LOCALHOST", None, {"host": "LocalHost:8765"}, 200),
        ("0:0:0:0:0:0:0:1", None, EVIL_HOST, 421),
        ("0:0:0:0:0:0:0:1", None, {"host": "[::1]:8765", **EVIL_ORIGIN}, 403),
        ("0:0:0:0:0:0:0:1", None, {"host": "[0:0:0:0:0:0:0:1]:8765"}, 200),
        ("192.168.1.2", TOKEN, {**EVIL_HOST, **AUTH}, 421),
        (
            "192.168.1.2",
            TOKEN,
            {"host": "192.168.1.2:8765", **AUTH},
            200,
        ),
        ("0.0.0.0", TOKEN, {"host": "box.lan:8765", **AUTH}, 200),  # noqa: S104
        ("0.0.0.0", TOKEN, {**AUTH, **EVIL_ORIGIN}, 403),  # noqa: S104
        ("127.0.0.1", TOKEN, {"host": "127.0.0.1:1", "authorization": f"bearer {TOKEN}"}, 200),
        ("127.0.0.1", TOKEN, {"host": "127.0.0.1:1", "authorization": f"BEARER {TOKEN}"}, 200),
        ("127.0.0.1", TOKEN, {"host": "127.0.0.1:1", "authorization": f"Basic {TOKEN}"}, 401),
        ("127.0.0.1", TOKEN, {"host": "127.0.0.1:1", "authorization": "Bearer wrong"}, 401),
        ("127.0.0.1", TOKEN, {"host": "127.0.0.1:1"}, 401),
        ("127.0.0.1", TOKEN, {"host": "127.0.0.1:1", "authorization": TOKEN}, 401),
    ],
)
def test_http_checks_host_and_origin_on_every_bind_and_the_token_scheme_case_insensitively(
    retriever: TasbRetriever, bound: str, token: str | None, headers: dict[str, str], status: int
) -> None:
    from langchain_tasb.mcp_server.run import http_app

    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    assert _http_status(http_app(server, bound, token=token), headers) == status


# -- the tools, called in process ---------------------------------------------------------------


@pytest.fixture
def retriever(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbRetriever:
    return TasbRetriever.from_texts(
        TEXTS,
        tiny_embeddings,
        [{"source": f"doc{i % 2}.md", "chunk": i} for i in range(len(TEXTS))],
        collection_name=collection_name,
    )


def _info(retriever: TasbRetriever) -> dict[str, Any]:
    return {
        "collection": retriever.store.collection_name,
        "model": "tiny",
        "dimension": 32,
        "similarity": "dot",
        "space": "ip",
        "chunks": len(TEXTS),
        "sources": 2,
        "top_sources": [{"source": "doc0.md", "chunks": 2}],
    }


def _wire(model: Any) -> dict[str, Any]:
    """An SDK model as sent (camelCase keys), whichever SDK version (1.x or 2.x) made it."""
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


def _call(server: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async def call() -> Any:
        return await server.call_tool(name, arguments)

    return _wire(anyio.run(call))


def _tools(server: Any) -> dict[str, dict[str, Any]]:
    return {tool.name: _wire(tool) for tool in anyio.run(server.list_tools)}


def test_search_tool_returns_the_retrievers_results_as_structure_and_text(
    retriever: TasbRetriever,
) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    result = _call(server, "search", {"query": "people in London", "k": 3})
    expected = retriever.invoke("people in London", k=3)
    hits = result["structuredContent"]["results"]
    assert [h["id"] for h in hits] == [d.id for d in expected]
    assert [h["score"] for h in hits] == [d.metadata["score"] for d in expected]
    assert [h["relevance"] for h in hits] == [d.metadata["relevance"] for d in expected]
    assert [(h["source"], h["chunk"], h["text"]) for h in hits] == [
        (d.metadata["source"], d.metadata["chunk"], d.page_content) for d in expected
    ]
    first = expected[0]
    assert result["content"][0]["text"].startswith(
        f"[1] {first.metadata['source']} #{first.metadata['chunk']} (score "
        f"{first.metadata['score']:.1f}, relevance {first.metadata['relevance']:.2f}) id "
        f"{first.id}\n{first.page_content}\n\n[2] "
    )


@pytest.mark.parametrize("on_loop", [False, True])
def test_tool_calls_run_in_a_worker_thread_unless_on_loop(
    retriever: TasbRetriever, on_loop: bool
) -> None:
    """Off the loop by default on either SDK line (1.x would run a plain function on the loop)."""
    import threading

    threads: list[int] = []

    def info() -> dict[str, Any]:
        threads.append(threading.get_ident())
        return _info(retriever)

    server = build_server(retriever.store.core, info=info, on_loop=on_loop)
    _call(server, "collection_info", {})
    assert (threads[-1] == threading.get_ident()) is on_loop


def test_tools_on_the_event_loop_answer_as_in_worker_threads(retriever: TasbRetriever) -> None:
    threaded = build_server(retriever.store.core, info=lambda: _info(retriever))
    on_loop = build_server(retriever.store.core, info=lambda: _info(retriever), on_loop=True)
    schemas = [
        {name: (tool["inputSchema"], tool["outputSchema"]) for name, tool in _tools(s).items()}
        for s in (threaded, on_loop)
    ]
    assert schemas[0] == schemas[1]
    for name, arguments in [
        ("search", {"query": "people in London", "k": 3, "search_type": "mmr"}),
        ("search", {"query": ""}),
        ("fetch", {"id": "no-such-id"}),
        ("collection_info", {}),
    ]:
        results = []
        for server in (threaded, on_loop):
            try:
                results.append(_call(server, name, arguments))
            except ToolError as exc:
                results.append(str(exc))
        assert results[0] == results[1], name


def test_output_schemas_are_cheap_to_check_and_name_every_field(retriever: TasbRetriever) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    tools = _tools(server)
    search = tools["search"]["outputSchema"]
    assert search["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in search
    assert "title" not in search
    assert "title" not in json.dumps(search["properties"])
    assert list(search["properties"]) == ["results"]  # the other fields are described
    assert search["required"] == ["query", "search_type", "k", "filter", "results"]
    for name in ("`query`", "`search_type`", "`k`", "`filter`: The filter applied"):
        assert name in search["description"]
    hit = search["properties"]["results"]["items"]
    assert hit["type"] == "object"
    assert "properties" not in hit
    assert hit["required"] == ["id", "source", "chunk", "score", "relevance", "text", "metadata"]
    for name in ("`id`", "`score`: Dot product", "`relevance`", "`fused_score`", "`bm25_score`"):
        assert name in hit["description"]
    fetch = tools["fetch"]["outputSchema"]
    assert fetch["properties"]["source"]["type"] == ["string", "null"]
    assert fetch["properties"]["chunk"]["type"] == ["integer", "string", "null"]
    assert "anyOf" not in json.dumps(fetch)
    result = _call(server, "search", {"query": "people in London", "k": 2})
    assert all("fused_score" not in h for h in result["structuredContent"]["results"])
    hits = result["structuredContent"]["results"]
    assert [set(h) for h in hits] == [set(hit["required"])] * 2


def test_tool_descriptions_say_what_the_collection_holds(retriever: TasbRetriever) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    tools = _tools(server)
    assert set(tools) == {"search", "fetch", "collection_info"}
    description = tools["search"]["description"]
    assert f"{len(TEXTS)} text chunks from 2 sources such as doc0.md" in description
    assert "higher is better" in description
    schema = tools["search"]["inputSchema"]["properties"]
    assert schema["k"]["maximum"] == MAX_K
    assert schema["search_type"]["enum"] == ["similarity", "mmr", "hybrid"]
    assert '{"$and": [{"source": "guide.md"}' in schema["filter"]["description"]
    assert all(tool["annotations"]["readOnlyHint"] for tool in tools.values())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": "  "}, "query is empty"),
        ({"query": "x", "k": 0}, f"k must be a whole number from 1 to {MAX_K}, got 0"),
        ({"query": "x", "k": 1_000_000}, "got 1000000"),
        ({"query": "x", "filter": {"source": {"$regex": "a"}}}, "unknown operator '$regex'"),
        ({"query": "x", "filter": "not json"}, "filter is not valid JSON"),
        ({"query": "x", "search_type": "keyword"}, "search_type must be one of"),
    ],
)
def test_bad_search_input_is_a_tool_error(
    retriever: TasbRetriever, arguments: dict[str, Any], message: str
) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    with pytest.raises(ToolError, match="Error executing tool search") as caught:
        _call(server, "search", arguments)
    assert message in str(caught.value)
    assert _call(server, "search", {"query": "London"})["structuredContent"]["results"]


@pytest.mark.parametrize("k", [True, False])
def test_a_boolean_k_is_refused_not_read_as_a_number(retriever: TasbRetriever, k: bool) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    with pytest.raises(ToolError, match="Error executing tool search") as caught:
        _call(server, "search", {"query": "London", "k": k})
    assert f"k must be a whole number from 1 to {MAX_K}, got the boolean {str(k).lower()}" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("fetch", {"id": "x" * 10_000_000}, "no chunk with id 'xxx"),
        ("search", {"query": "x", "search_type": "y" * 1_000_000}, "search_type must be one of"),
        ("search", {"query": "x", "filter": {"chunk": {"$lt": "z" * 1_000_000}}}, "$lt compares"),
        ("search", {"query": "x", "filter": _nested(700)}, "filter is too large"),
        ("search", {"query": "x", "k": 10**5000}, "k must be a whole number"),
    ],
    ids=["fetch-id", "search-type", "filter-value", "filter-depth", "k-huge"],
)
def test_tool_errors_repeat_little_of_a_huge_input(
    retriever: TasbRetriever, name: str, arguments: dict[str, Any], message: str
) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    with pytest.raises(ToolError) as caught:
        _call(server, name, arguments)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 700, str(caught.value)[:1000]


def test_fetch_returns_one_chunk_and_names_an_unknown_id(retriever: TasbRetriever) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    [hit] = retriever.invoke("protein", k=1)
    got = _call(server, "fetch", {"id": hit.id})["structuredContent"]
    assert got["id"] == hit.id
    assert got["text"] == hit.page_content
    assert got["metadata"] == {"source": hit.metadata["source"], "chunk": hit.metadata["chunk"]}
    with pytest.raises(ToolError, match="no chunk with id 'missing'"):
        _call(server, "fetch", {"id": "missing"})


def test_collection_info_reports_what_info_returns(retriever: TasbRetriever) -> None:
    server = build_server(retriever.store.core, info=lambda: _info(retriever))
    got = _call(server, "collection_info", {})["structuredContent"]
    assert got == _info(retriever)


# -- the stdio transport ----------------------------------------------------------------------


def test_stray_output_goes_to_stderr_while_stdio_is_served(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """While serving, fd 1 points at stderr and the protocol writes to a private duplicate."""
    from langchain_tasb.mcp_server.stdio import _claimed_std_streams

    with _claimed_std_streams() as (wire_in, wire_out):
        os.write(1, b"stray print\n")
        os.write(wire_out, b'{"jsonrpc": "2.0"}\n')
    os.close(wire_in)
    os.close(wire_out)
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == '{"jsonrpc": "2.0"}\nafter\n'
    assert err == "stray print\n"


def _jsonrpc_lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def _tool_call(n: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}


def test_an_over_long_stdio_line_gets_an_error_and_serving_goes_on(
    retriever: TasbRetriever,
) -> None:
    """Real pipes, the real transport: a line over the limit is answered, not fatal."""
    import functools
    import threading

    from langchain_tasb.mcp_server.stdio import serve_pipes

    server = build_server(retriever.store.core, info=lambda: _info(retriever), on_loop=True)
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            anyio.run(functools.partial(serve_pipes, server, in_read, out_write, line_limit=4096))
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    huge = "x" * 100_000
    init_params = {
        "protocolVersion": LATEST_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    }
    requests = _jsonrpc_lines(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init_params},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        _tool_call(2, "fetch", {"id": huge}),
        # the id after the arguments: not found in the line's head, answered with id null
        {"method": "tools/call", "params": _tool_call(0, "search", {"query": huge})["params"]}
        | {"jsonrpc": "2.0", "id": 3},
        _tool_call(4, "search", {"query": "London", "k": 2}),
    )
    with os.fdopen(in_write, "wb") as sink:
        sink.write(requests)
    with os.fdopen(out_read, "rb") as source:
        out = source.read()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert not failures, failures
    answers = [json.loads(line) for line in out.splitlines()]
    errors = [a for a in answers if "error" in a]
    assert [e["id"] for e in errors] == [2, None]
    for error in errors:
        assert error["error"]["code"] == -32600
        assert "request line over 4096 bytes" in error["error"]["message"]
        assert len(json.dumps(error)) < 400
    [search] = [a for a in answers if a.get("id") == 4]
    expected = retriever.invoke("London", k=2, fetch_k=20)
    assert [h["id"] for h in search["result"]["structuredContent"]["results"]] == [
        d.id for d in expected
    ]
