"""``tasb mcp`` as a real process, through real MCP clients (the SDK's, and LangChain's adapters).

One stdio server serves the module's stdio tests; HTTP tests start their own on 127.0.0.1.
Everything runs in this one environment, on the MCP SDK 1.x or 2.x; the LangChain-adapter
tests need ``langchain-mcp-adapters`` (the test extra has it; through 0.3.2 it requires
``mcp<2``, so beside mcp 2.x they skip and say so).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("mcp", reason="needs the MCP SDK (langchain-tasb[mcp])")

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import LATEST_PROTOCOL_VERSION

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.cli.info import describe, for_clients
from langchain_tasb.mcp_server import MAX_K
from langchain_tasb.mcp_server.sdk import SDK_VERSION
from langchain_tasb.testing import tiny_vocabulary
from tests.integration_tests.test_cli import tasb_command

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

ROOT = Path(__file__).resolve().parents[2]
WORDS = [w for w in tiny_vocabulary() if w.isalpha() and len(w) > 2]
QUERIES = ["logs rotate daily", "city population", "disk usage report"]
START_TIMEOUT = 180.0  # seconds for a server to load the model and listen
TOKEN = "s3cret-token-for-tests"  # noqa: S105


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """An embedded Chroma folder holding collection "tasb": 24 chunks from 4 sources."""
    folder = tmp_path_factory.mktemp("mcp-db")
    rng = random.Random(7)
    texts = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(20)]
    texts += ["logs rotate daily", "city population", "disk usage report", "train timetable"]
    store = TasbVectorStore(
        embedding=TasbEmbeddings(model_name=str(tiny_model_path)),
        collection_name="tasb",
        persist_directory=str(folder),
    )
    store.add_texts(
        texts, metadatas=[{"source": f"doc{i % 4}.md", "chunk": i} for i in range(len(texts))]
    )
    return folder


@pytest.fixture(scope="module")
def retriever(db: Path, tiny_model_path: Path) -> TasbRetriever:
    store = TasbVectorStore(
        embedding=TasbEmbeddings(model_name=str(tiny_model_path)),
        collection_name="tasb",
        persist_directory=str(db),
    )
    return TasbRetriever(vectorstore=store)


def wire(model: Any) -> dict[str, Any]:
    """An SDK model as sent (camelCase keys), whichever SDK version (1.x or 2.x) made it."""
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


class Client:
    """A synchronous face on an MCP ``ClientSession`` running in a portal thread.

    Results and tools come back as they went over the wire (:func:`wire`).
    """

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return wire(self.portal.call(self.session.call_tool, name, arguments or {}))

    def tools(self) -> list[dict[str, Any]]:
        return [wire(tool) for tool in self.portal.call(self.session.list_tools).tools]


@asynccontextmanager
async def _stdio_session(params: StdioServerParameters, errlog: Any) -> AsyncIterator[Any]:
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def _http_session(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@pytest.fixture(scope="module")
def stdio(
    db: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    """One ``tasb mcp --db DB`` over stdio for the module, through the SDK's client."""
    command = tasb_command()
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], "mcp", "--db", str(db)],
        env=env,
        cwd=str(tmp_path_factory.mktemp("mcp-cwd")),
    )
    log = tmp_path_factory.mktemp("mcp-log") / "stderr.log"
    with (
        log.open("w") as errlog,
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_stdio_session(params, errlog)) as session,
    ):
        yield Client(portal, session)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_http(
    db: Path, env: dict[str, str], cwd: Path, *extra: str, host: str = "127.0.0.1"
) -> tuple[Any, str]:
    """``tasb mcp --http HOST:PORT`` (HOST as given, e.g. ``[::1]``) and its URL once up."""
    port = _free_port()
    process = subprocess.Popen(
        [*tasb_command(), "mcp", "--db", str(db), "--http", f"{host}:{port}", *extra],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT
    address = host.strip("[]")
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return process, f"http://{host}:{port}/mcp"
        except OSError:
            time.sleep(0.3)
    process.kill()
    _, err = process.communicate(timeout=30)
    pytest.fail(f"tasb mcp --http never listened on {port}:\n{err[-3000:]}")


def _stop(process: Any) -> str:
    process.terminate()
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=30)
    return str(err)


def _http_search(url: str, headers: dict[str, str], query: str) -> Any:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_http_session(url, headers)) as session,
    ):
        return wire(portal.call(session.call_tool, "search", {"query": query, "k": 3}))


def _post_status(url: str, headers: dict[str, str]) -> int:
    params = {
        "protocolVersion": LATEST_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    request = urllib.request.Request(  # noqa: S310  (http on 127.0.0.1)
        url,
        data=body.encode(),
        headers={
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _expected(
    retriever: TasbRetriever, query: str, **kwargs: Any
) -> list[tuple[str, float, float]]:
    return [
        (d.id or "", d.metadata["score"], d.metadata["relevance"])
        for d in retriever.invoke(query, **kwargs)
    ]


def _got(result: dict[str, Any]) -> list[tuple[str, float, float]]:
    assert not result["isError"], result["content"]
    return [(h["id"], h["score"], h["relevance"]) for h in result["structuredContent"]["results"]]


# -- stdio --------------------------------------------------------------------------------------


def test_stdio_lists_three_read_only_tools_with_schemas(stdio: Client) -> None:
    tools = {tool["name"]: tool for tool in stdio.tools()}
    assert set(tools) == {"search", "fetch", "collection_info"}
    assert all(tool["annotations"]["readOnlyHint"] for tool in tools.values())
    search = tools["search"]
    assert "24 text chunks" in search["description"]
    assert search["inputSchema"]["required"] == ["query"]
    assert search["outputSchema"]["properties"]["results"]["type"] == "array"


@pytest.mark.parametrize(
    "settings",
    [
        {"k": 5},
        {"k": 3, "search_type": "mmr"},
        {"k": 4, "filter": {"source": "doc1.md"}},
        {"k": 3, "filter": {"$or": [{"source": "doc2.md"}, {"chunk": {"$gte": 20}}]}},
    ],
    ids=["similarity", "mmr", "filter", "or-filter"],
)
def test_stdio_search_equals_the_retriever(
    stdio: Client, retriever: TasbRetriever, settings: dict[str, Any]
) -> None:
    for query in QUERIES:
        result = stdio.call("search", {"query": query, **settings})
        kwargs = {**settings, "fetch_k": max(20, 4 * settings["k"])}
        assert _got(result) == _expected(retriever, query, **kwargs)
        for hit in result["structuredContent"]["results"]:
            if settings.get("filter") == {"source": "doc1.md"}:
                assert hit["source"] == "doc1.md"
            elif "filter" in settings:
                assert hit["source"] == "doc2.md" or hit["chunk"] >= 20
        first = result["structuredContent"]["results"][0]
        assert result["content"][0]["text"].startswith(
            f"[1] {first['source']} #{first['chunk']} (score {first['score']:.1f}, relevance "
            f"{first['relevance']:.2f}) id {first['id']}\n{first['text']}"
        )


def test_stdio_hybrid_search_equals_the_retriever(stdio: Client, retriever: TasbRetriever) -> None:
    result = stdio.call("search", {"query": "disk usage report", "k": 3, "search_type": "hybrid"})
    expected = retriever.invoke("disk usage report", k=3, search_type="hybrid", fetch_k=20)
    hits = result["structuredContent"]["results"]
    assert [h["id"] for h in hits] == [d.id for d in expected]
    assert [h["fused_score"] for h in hits] == [d.metadata["fused_score"] for d in expected]


def test_stdio_fetch_and_collection_info_agree_with_the_library(
    stdio: Client, retriever: TasbRetriever, db: Path
) -> None:
    [doc] = retriever.invoke("train timetable", k=1)
    fetched = stdio.call("fetch", {"id": doc.id})
    assert not fetched["isError"]
    [stored] = retriever.store.get_by_ids([doc.id or ""])
    assert fetched["structuredContent"] == {
        "id": stored.id,
        "source": stored.metadata["source"],
        "chunk": stored.metadata["chunk"],
        "text": stored.page_content,
        "metadata": stored.metadata,
    }
    info = stdio.call("collection_info")["structuredContent"]
    args = argparse.Namespace(db=str(db), chroma_url=None, header=[], collection="tasb", model=None)
    expected = for_clients(describe(args))
    for key in ("collection", "model", "dimension", "similarity", "space", "chunks", "sources"):
        assert info[key] == expected[key], key
    assert (info["space"], info["chunks"], info["sources"]) == ("ip", 24, None)
    assert str(db) not in json.dumps(info)


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("search", {"query": ""}, "query is empty"),
        ("search", {"query": "logs", "k": 0}, f"k must be a whole number from 1 to {MAX_K}"),
        ("search", {"query": "logs", "k": 1_000_000}, "got 1000000"),
        ("search", {"query": "logs", "filter": {"chunk": {"$near": 3}}}, "unknown operator"),
        ("search", {"query": "logs", "filter": {"$and": "doc1.md"}}, "$and takes a non-empty"),
        ("search", {"query": "logs", "filter": "{oops"}, "filter is not valid JSON"),
        ("fetch", {"id": "no-such-id"}, "no chunk with id 'no-such-id'"),
    ],
)
def test_stdio_bad_input_is_a_tool_error_and_the_next_call_succeeds(
    stdio: Client, retriever: TasbRetriever, name: str, arguments: dict[str, Any], message: str
) -> None:
    bad = stdio.call(name, arguments)
    assert bad["isError"]
    assert message in bad["content"][0]["text"]
    assert _got(stdio.call("search", {"query": "logs", "k": 2})) == _expected(
        retriever, "logs", k=2
    )


def _raw_session(calls: list[dict[str, Any]]) -> bytes:
    """JSON-RPC lines a client would send: initialize, initialized, then ``calls`` (ids 2..)."""
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    for n, arguments in enumerate(calls, start=2):
        params = {"name": "search", "arguments": arguments}
        messages.append({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params})
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def _answers(out: bytes) -> dict[int, Any]:
    return {m["id"]: m for m in map(json.loads, out.splitlines()) if "id" in m}


@pytest.mark.parametrize("stdout", ["pipe", "file"])
def test_stdio_answers_over_pipes_and_regular_files(
    db: Path, env: dict[str, str], tmp_path: Path, retriever: TasbRetriever, stdout: str
) -> None:
    """A pipe takes the event-loop transport, a regular file the SDK's; both answer the same.

    One request line is over a megabyte, far past asyncio's default 64 KiB line limit. Stdin
    stays open until every answer is in, as a client keeps it (at EOF the server stops).
    """
    long_query = " ".join(["logs rotate daily"] * 70_000)
    calls = [{"query": "city population", "k": 3}, {"query": long_query, "k": 2}]
    requests = _raw_session(calls)
    assert len(requests) > 1_000_000
    out_file = tmp_path / "out.jsonl"
    with out_file.open("wb") as sink:
        process = subprocess.Popen(
            [*tasb_command(), "mcp", "--db", str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if stdout == "pipe" else sink,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        assert process.stdin is not None
        process.stdin.write(requests)
        process.stdin.flush()
        out = b""
        deadline = time.monotonic() + START_TIMEOUT
        while len(_answers(out)) < 3 and time.monotonic() < deadline and process.poll() is None:
            if process.stdout is not None:
                out += process.stdout.readline()
            else:
                time.sleep(0.2)
                out = out_file.read_bytes().rpartition(b"\n")[0]
        process.stdin.close()
        assert process.wait(timeout=60) == 0
        err = process.stderr.read() if process.stderr else b""
    assert b"Traceback" not in err, err.decode()[-3000:]
    answers = _answers(out)
    assert sorted(answers) == [1, 2, 3], out[:2000]
    for n, arguments in enumerate(calls, start=2):
        result = answers[n]["result"]
        assert not result.get("isError"), result
        hits = result["structuredContent"]["results"]
        got = [(h["id"], h["score"], h["relevance"]) for h in hits]
        assert got == _expected(retriever, arguments["query"], k=arguments["k"])


@pytest.mark.parametrize("stdin", ["pipe", "file"])
def test_stdio_answers_every_request_sent_before_stdin_closes(
    db: Path, env: dict[str, str], tmp_path: Path, retriever: TasbRetriever, stdin: str
) -> None:
    """Requests written and stdin closed at once: all answered, then exit 0.

    A pipe takes the event-loop transport, a regular file the SDK's threaded one.
    """
    calls = [{"query": query, "k": 2} for query in [*QUERIES, "train timetable", "logs"]]
    requests = _raw_session(calls)
    command = [*tasb_command(), "mcp", "--db", str(db)]
    if stdin == "pipe":
        result = subprocess.run(
            command, input=requests, capture_output=True, env=env, cwd=tmp_path, timeout=300
        )
    else:
        (tmp_path / "requests.jsonl").write_bytes(requests)
        with (tmp_path / "requests.jsonl").open("rb") as source:
            result = subprocess.run(
                command, stdin=source, capture_output=True, env=env, cwd=tmp_path, timeout=300
            )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"Traceback" not in result.stderr
    answers = _answers(result.stdout)
    assert sorted(answers) == list(range(1, len(calls) + 2))
    for n, arguments in enumerate(calls, start=2):
        hits = answers[n]["result"]["structuredContent"]["results"]
        got = [(h["id"], h["score"], h["relevance"]) for h in hits]
        assert got == _expected(retriever, arguments["query"], k=2)


# -- Streamable HTTP ----------------------------------------------------------------------------


def test_http_on_loopback_serves_without_a_token(
    db: Path, env: dict[str, str], tmp_path: Path, retriever: TasbRetriever
) -> None:
    process, url = _start_http(db, env, tmp_path)
    try:
        result = _http_search(url, {}, "city population")
        assert _got(result) == _expected(retriever, "city population", k=3)
    finally:
        err = _stop(process)
    assert f"serving collection 'tasb' on {url}" in err


def test_http_with_token_env_answers_401_without_the_token(
    db: Path, env: dict[str, str], tmp_path: Path, retriever: TasbRetriever
) -> None:
    process, url = _start_http(
        db, {**env, "TASB_TEST_TOKEN": TOKEN}, tmp_path, "--token-env", "TASB_TEST_TOKEN"
    )
    try:
        assert _post_status(url, {}) == 401
        assert _post_status(url, {"authorization": "Bearer wrong"}) == 401
        assert _post_status(url, {"authorization": TOKEN}) == 401
        assert _post_status(url, {"authorization": f"bearer {TOKEN}"}) == 200
        evil = {"authorization": f"Bearer {TOKEN}", "origin": "http://evil.example"}
        assert _post_status(url, evil) == 403
        result = _http_search(url, {"authorization": f"Bearer {TOKEN}"}, "logs rotate daily")
        assert _got(result) == _expected(retriever, "logs rotate daily", k=3)
    finally:
        err = _stop(process)
    assert "bearer token required" in err
    assert TOKEN not in err


@pytest.mark.parametrize("host", ["127.0.0.2", "LOCALHOST", "[0:0:0:0:0:0:0:1]"])
def test_http_on_any_loopback_spelling_refuses_a_rebound_host_or_origin(
    db: Path, env: dict[str, str], tmp_path: Path, retriever: TasbRetriever, host: str
) -> None:
    """DNS rebinding: a page on evil.example whose name now points at loopback gets nothing."""
    process, url = _start_http(db, env, tmp_path, host=host)
    try:
        assert _post_status(url, {"host": "evil.example"}) == 421
        assert _post_status(url, {"origin": "http://evil.example"}) == 403
        assert _post_status(url, {}) == 200
        result = _http_search(url, {}, "city population")
        assert _got(result) == _expected(retriever, "city population", k=3)
    finally:
        _stop(process)


def test_http_refuses_a_non_loopback_bind_without_a_token(
    db: Path, env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [*tasb_command(), "mcp", "--db", str(db), "--http", "0.0.0.0:8765"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0" in result.stderr
    assert "--token-env NAME" in result.stderr


def test_token_env_that_is_unset_is_named(db: Path, env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [*tasb_command(), "mcp", "--db", str(db), "--http", "8765", "--token-env", "NO_SUCH_VAR"],
        cwd=tmp_path,
        env={k: v for k, v in env.items() if k != "NO_SUCH_VAR"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "environment variable NO_SUCH_VAR is not set" in result.stderr


# -- LangChain, through langchain-mcp-adapters --------------------------------------------------


def _adapters() -> None:
    """Skip, saying why, where ``langchain-mcp-adapters`` cannot be installed beside this SDK."""
    try:
        import langchain_mcp_adapters.tools  # noqa: F401
    except ImportError as exc:
        pytest.skip(
            f"langchain-mcp-adapters does not import here ({exc}); through 0.3.2 it needs mcp<2 "
            f"and this environment has mcp {SDK_VERSION}: pip install -e '.[test]' resolves both"
        )


def _tool_call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"type": "tool_call", "name": name, "args": args, "id": f"call_{n}"}


async def _through_adapters(command: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Load the server's tools as LangChain tools over stdio and call each as a model would."""
    from langchain_mcp_adapters.client import MultiServerMCPClient
    from langchain_mcp_adapters.tools import load_mcp_tools

    connection = {
        "transport": "stdio",
        "command": command[0],
        "args": command[1:],
        "env": env,
        "cwd": str(cwd),
    }
    client = MultiServerMCPClient({"tasb": connection})
    out: dict[str, Any] = {"searches": []}
    async with client.session("tasb") as session:
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        out["tools"] = sorted(tools)
        for n, query in enumerate(QUERIES):
            message = await tools["search"].ainvoke(
                _tool_call("search", {"query": query, "k": 3}, n)
            )
            out["searches"].append(
                {
                    "text": message.content[0]["text"],
                    "results": message.artifact["structured_content"]["results"],
                }
            )
        first = out["searches"][0]["results"][0]["id"]
        fetched = await tools["fetch"].ainvoke(_tool_call("fetch", {"id": first}, 90))
        out["fetch"] = fetched.artifact["structured_content"]
        info = await tools["collection_info"].ainvoke(_tool_call("collection_info", {}, 91))
        out["info"] = info.artifact["structured_content"]
        bad = await tools["search"].ainvoke(_tool_call("search", {"query": "x", "k": 0}, 92))
        out["bad"] = {"status": bad.status, "text": str(bad.content)}
    return out


def test_langchain_mcp_adapters_tools_return_the_retrievers_results(
    db: Path, env: dict[str, str], tmp_path: Path, retriever: TasbRetriever
) -> None:
    _adapters()
    command = [*tasb_command(), "mcp", "--db", str(db)]
    out = anyio.run(_through_adapters, command, env, tmp_path)
    assert out["tools"] == ["collection_info", "fetch", "search"]
    for query, search in zip(QUERIES, out["searches"], strict=True):
        got = [(h["id"], h["score"], h["relevance"]) for h in search["results"]]
        assert got == _expected(retriever, query, k=3)
        assert search["text"].startswith(f"[1] {search['results'][0]['source']} #")
    assert out["fetch"]["id"] == out["searches"][0]["results"][0]["id"]
    assert (out["info"]["chunks"], out["info"]["space"]) == (24, "ip")
    assert out["bad"]["status"] == "error"
    assert "k must be a whole number" in out["bad"]["text"]


def test_example_mcp_agent_runs_against_the_tiny_model(env: dict[str, str], tmp_path: Path) -> None:
    _adapters()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mcp_agent.py")],
        cwd=tmp_path,
        env={**env, "TASB_COMMAND": shlex.join(tasb_command())},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "search (call_1)" in out
    assert "[1] " in out
    assert ".md #0 (score " in out
    assert out.rstrip().endswith("About 9 million people live in London [1].")
