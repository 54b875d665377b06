"""Server faults for real: a TCP proxy that refuses and cuts connections, and server restarts.

A :class:`FaultProxy` (asyncio, in a thread of the test process) sits between the client and a
real ``chroma run``. It reads each HTTP request whole, names it by what it does (``lookup``,
``write``, ``move``, ``prune-scan``, ...), and at random points (seeded, printed) either drops
the request or forwards it and drops the answer, cuts every open connection, and refuses new
ones for one to two seconds. Every command must then either give exactly the result of a
fault-free run, or end with a one-line error naming the URL, after which a rerun does.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import chromadb
import numpy as np
import pytest

from langchain_tasb import ChromaUnavailableError, TasbEmbeddings, TasbRetriever, TasbVectorStore
from tests.integration_tests.conftest import ChromaServer
from tests.integration_tests.test_cli import RUN_TIMEOUT, paragraph, start, tasb, write_doc

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.server, pytest.mark.slow]

# One paragraph a chunk, so that a paragraph inserted above others moves them.
CHUNKING = ("--batch-size", "8", "--overlap", "0")

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r\n")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request_kind(method: bytes, path: bytes, body: bytes) -> str:
    """What a Chroma HTTP request does, in the words of the indexer's phases."""
    last = path.split(b"?")[0].rstrip(b"/").rsplit(b"/", 1)[-1].decode()
    if last == "get":
        if b'"root"' in body:
            return "prune-scan"
        if b'"path"' in body:
            return "lookup"
        return "read"
    return {
        "upsert": "write",
        "update": "move",
        "delete": "delete",
        "query": "query",
        "count": "count",
    }.get(last, f"{method.decode()} {last}" if last in ("collections",) else "handshake")


class FaultProxy:
    """A TCP proxy to ``127.0.0.1:upstream`` that makes outages at random requests.

    Each kind of request has its own countdown (first fault at its first request, then every
    ``gap`` requests), so every phase that sends requests gets faults, even one that sends a
    single request of its kind (the prune listing of a root's ids is one request per run).
    """

    def __init__(
        self,
        upstream: int,
        seed: int,
        *,
        gap: tuple[int, int] = (3, 10),
        outage: tuple[float, float] = (1.0, 2.0),
    ) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self.rng = random.Random(seed)
        self.gap = gap
        self.outage = outage
        self.armed = False
        self.step = "setup"
        self.hits: Counter[tuple[str, str]] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        self._countdown: dict[str, int] = {}
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._outage_until = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def report(self) -> str:
        rows = [
            f"  {step:<12} {kind:<12} {n:>2} faults in {self.requests[step, kind]:>4} requests"
            for (step, kind), n in sorted(self.hits.items())
        ]
        return "\n".join([f"fault points hit: {sum(self.hits.values())}", *rows])

    # -- asyncio side -----------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()

    def _cut_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._outage_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        muted = asyncio.Event()
        answers = asyncio.ensure_future(self._relay(up_reader, writer, muted))
        try:
            await self._requests(reader, up_writer, muted)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            answers.cancel()
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _relay(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, muted: asyncio.Event
    ) -> None:
        try:
            while data := await source.read(65536):
                if muted.is_set():
                    return
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            return

    async def _requests(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, muted: asyncio.Event
    ) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(head)
            body = await reader.readexactly(int(length.group(1))) if length else b""
            line = _REQUEST_LINE.match(head)
            kind = request_kind(line.group(1), line.group(2), body) if line else "other"
            if self.armed and self._fault_now(kind):
                self.hits[self.step, kind] += 1
                if self.rng.random() < 0.5:  # the server does it; the answer is lost
                    muted.set()
                    upstream.write(head + body)
                    await upstream.drain()
                    await asyncio.sleep(0.2)
                await self._make_outage()
                return
            upstream.write(head + body)
            await upstream.drain()

    def _fault_now(self, kind: str) -> bool:
        self.requests[self.step, kind] += 1
        left = self._countdown.get(kind, 1) - 1
        if left > 0:
            self._countdown[kind] = left
            return False
        self._countdown[kind] = self.rng.randint(*self.gap)
        return True

    async def _make_outage(self) -> None:
        """Cut every connection and refuse new ones for a second or two."""
        seconds = self.rng.uniform(*self.outage)
        self._outage_until = time.monotonic() + seconds
        if self._server is not None:
            self._server.close()
            self._server = None
        self._cut_all()
        await asyncio.sleep(seconds)
        if self._server is None:
            await self._listen()


# -- helpers ----------------------------------------------------------------------------------


def make_corpus(folder: Path, files: int, rng: random.Random) -> None:
    for i in range(files):
        write_doc(folder / f"d{i:03d}.txt", [paragraph(rng) for _ in range(rng.randint(1, 3))])


def edit_corpus(folder: Path, rng: random.Random) -> None:
    """Reorder paragraphs (moves), rewrite some (new + stale chunks), delete files (prune)."""
    files = sorted(folder.glob("*.txt"))
    for path in files[0:30:3]:
        parts = path.read_text().split("\n\n")
        write_doc(path, [paragraph(rng), *parts])  # a new first chunk moves the others
    for path in files[1:30:4]:
        write_doc(path, [paragraph(rng)])
    for path in files[-8:]:
        path.unlink()


def contents(url: str, collection: str) -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    host, port = url.removeprefix("http://").split(":")
    got = (
        chromadb.HttpClient(host=host, port=int(port))
        .get_collection(collection)
        .get(include=["documents", "metadatas", "embeddings"])
    )
    return {
        i: (d, m, np.asarray(v))
        for i, d, m, v in zip(
            got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
        )
    }


def assert_same_records(got: dict[str, Any], expected: dict[str, Any], seed: int) -> None:
    assert sorted(got) == sorted(expected), f"seed {seed}"
    for id_, (text, metadata, vector) in expected.items():
        assert got[id_][0] == text, f"seed {seed}"
        assert got[id_][1] == metadata, f"seed {seed}"
        np.testing.assert_allclose(got[id_][2], vector, rtol=1e-5, atol=1e-5)


def until_done(
    cwd: Path, env: dict[str, str], url: str, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """Run ``tasb ARGS``; a failure must be one line naming ``url``, and a rerun must pass."""
    for _ in range(3):
        result = tasb(cwd, env, *args, check=None)
        if result.returncode == 0:
            return result
        lines = [line for line in result.stderr.splitlines() if not line.startswith("WARNING")]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ") and url in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    pytest.fail(f"tasb {args} failed three times under faults")


T = TypeVar("T")


def until_opened(url: str, opener: Callable[[], T]) -> T:
    """``opener()``; connecting during an outage may fail with one line naming ``url``, once or
    twice, after which a retry (what a user would do) must succeed."""
    for _ in range(3):
        try:
            return opener()
        except ChromaUnavailableError as exc:
            assert url in str(exc), exc
            assert "\n" not in str(exc), exc
    pytest.fail(f"could not open a collection at {url} three times under faults")


# -- the fault proxy --------------------------------------------------------------------------


def test_every_command_rides_through_refused_and_cut_connections(
    tmp_path: Path,
    env: dict[str, str],
    chroma_server: str,
    tiny_embeddings: TasbEmbeddings,
) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 70, rng)
    upstream = int(chroma_server.rsplit(":", 1)[1])
    clean = ("--chroma-url", chroma_server, "--collection", "clean", *CHUNKING)
    with FaultProxy(upstream, seed) as proxy:
        faulty = ("--chroma-url", proxy.url, "--collection", "faulty", *CHUNKING)
        proxy.armed = True

        # Index, then edit and prune: the same records as a clean run.
        tasb(tmp_path, env, "index", "corpus", *clean, "--quiet")
        proxy.step = "index"
        until_done(tmp_path, env, proxy.url, "index", "corpus", *faulty, "--quiet")
        assert_same_records(
            contents(chroma_server, "faulty"), contents(chroma_server, "clean"), seed
        )
        edit_corpus(corpus, rng)
        tasb(tmp_path, env, "index", "corpus", "--prune", *clean, "--quiet")
        proxy.step = "edit+prune"
        until_done(tmp_path, env, proxy.url, "index", "corpus", "--prune", *faulty, "--quiet")
        assert_same_records(
            contents(chroma_server, "faulty"), contents(chroma_server, "clean"), seed
        )

        # Search and info: what the same commands print without the proxy.
        for query in ("data model",):
            proxy.step = "search"
            args = ("search", query, "--json", "-k", "5", "--collection", "faulty")
            got = until_done(tmp_path, env, proxy.url, *args, "--chroma-url", proxy.url)
            expected = tasb(tmp_path, env, *args, "--chroma-url", chroma_server)
            assert json.loads(got.stdout)["results"] == json.loads(expected.stdout)["results"]
        proxy.step = "info"
        args = ("info", "--json", "--collection", "faulty")
        got_info = json.loads(
            until_done(tmp_path, env, proxy.url, *args, "--chroma-url", proxy.url).stdout
        )
        expected_info = json.loads(tasb(tmp_path, env, *args, "--chroma-url", chroma_server).stdout)
        assert got_info.pop("server") == proxy.url
        expected_info.pop("server")
        assert got_info == expected_info

        # A retriever invoke loop, in this process: the answers of a direct retriever.
        host, port = "127.0.0.1", proxy.port
        proxy.step = "retriever"
        through = until_opened(
            proxy.url,
            lambda: TasbRetriever(
                collection_name="faulty", host=host, port=port, embedding=tiny_embeddings, k=4
            ),
        )
        direct = TasbRetriever(
            collection_name="faulty",
            host=host,
            port=upstream,
            embedding=tiny_embeddings,
            k=4,
        )
        for i in range(25):
            query = paragraph(random.Random(i), 6)
            got_docs = [(d.id, d.metadata["score"]) for d in through.invoke(query)]
            assert got_docs == [(d.id, d.metadata["score"]) for d in direct.invoke(query)]

        # Delete through the proxy: the same ids remain as after a direct delete on "clean".
        proxy.step = "delete"
        victims = sorted(contents(chroma_server, "clean"))[::5]
        store = until_opened(
            proxy.url,
            lambda: TasbVectorStore(
                embedding=tiny_embeddings, collection_name="faulty", host=host, port=port
            ),
        )
        for start_ in range(0, len(victims), 4):
            store.delete(victims[start_ : start_ + 4])
        TasbVectorStore(
            embedding=tiny_embeddings, collection_name="clean", host=host, port=upstream
        ).delete(victims)
        proxy.armed = False
        assert sorted(contents(chroma_server, "faulty")) == sorted(contents(chroma_server, "clean"))
        print(proxy.report())
        kinds = {kind for _, kind in proxy.hits}
        assert {"lookup", "write", "move", "delete", "prune-scan", "query"} <= kinds, proxy.report()
        assert sum(proxy.hits.values()) >= 20, proxy.report()


def test_a_server_that_accepts_and_never_answers_fails_within_the_timeout(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with socket.socket() as silent:  # the kernel accepts connections; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        result = tasb(tmp_path, env, "info", "--chroma-url", url, "--timeout", "1", check=2)
        elapsed = time.monotonic() - began
    # Each try waits one second, and the connect policy stops trying after about five.
    assert elapsed < 30, elapsed
    lines = [line for line in result.stderr.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1, result.stderr
    assert url in lines[0]
    assert "ReadTimeout" in lines[0]


# -- server restarts --------------------------------------------------------------------------


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    """The process's stderr lines, read by a thread so that the pipe never fills."""
    assert process.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while (line := lines.get(timeout=RUN_TIMEOUT)) is not None:
        yield line


def _index_with_restarts(
    cwd: Path,
    env: dict[str, str],
    server: ChromaServer,
    points: list[int],
    *args: str,
) -> int:
    """``tasb -v index ARGS``, restarting the server at the given request counts.

    Returns:
        How many restarts happened while the indexer was still running.
    """
    indexer = start(cwd, env, "-v", "index", *args)
    requests, done, during = 0, 0, 0
    retries: list[str] = []
    for line in _lines(indexer):
        if "retrying in" in line:
            retries.append(line.strip())
        if "HTTP Request:" not in line:
            continue
        requests += 1
        if done < len(points) and requests >= points[done]:
            during += indexer.poll() is None
            server.stop()
            server.start()
            done += 1
    indexer.wait(timeout=RUN_TIMEOUT)
    assert indexer.returncode == 0, f"restarts at requests {points}"
    print(f"restarts at requests {points}: {during} during the run, {len(retries)} retries")
    assert len(retries) >= during  # each restart during the run made the client retry
    return during


def _requests_of(cwd: Path, env: dict[str, str], *args: str) -> int:
    result = tasb(cwd, env, "-v", "index", *args)
    return sum("HTTP Request:" in line for line in result.stderr.splitlines())


def test_ten_server_restarts_during_index_and_prune_lose_nothing(
    tmp_path: Path, env: dict[str, str], restartable_server: ChromaServer
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 40, rng)
    url = restartable_server.url
    clean = ("corpus", "--chroma-url", url, "--collection", "clean", *CHUNKING)
    target = ("corpus", "--chroma-url", url, "--collection", "restart", *CHUNKING)

    # The clean run says how many requests a run sends; the restarts fall among them.
    first = _requests_of(tmp_path, env, *clean)
    points = sorted(rng.sample(range(3, first - 2), 5))
    assert _index_with_restarts(tmp_path, env, restartable_server, points, *target) == 5
    edit_corpus(corpus, rng)
    second = _requests_of(tmp_path, env, *clean, "--prune")
    points = sorted(rng.sample(range(3, second - 2), 5))
    assert _index_with_restarts(tmp_path, env, restartable_server, points, *target, "--prune") == 5
    assert_same_records(contents(url, "restart"), contents(url, "clean"), seed)
