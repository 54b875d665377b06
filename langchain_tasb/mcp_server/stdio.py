"""MCP over stdin/stdout read and written by the asyncio loop, with no thread hop per message.

Fds 0 and 1 are privately duplicated and pointed at the null device and stderr while serving, so
a stray ``print`` cannot corrupt the channel. Regular files and non-asyncio loops fall back to the
SDK's threaded ``stdio_server``. Lines over :data:`LINE_LIMIT` get a JSON-RPC error, unread.

Every request read is answered before the server stops, even when its input ends first: the
SDK cancels running requests at the end of its input (``tasb mcp < requests.jsonl``), so the
end is passed on only once every request read is answered or cancelled by the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import stat
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from langchain_tasb.mcp_server.sdk import McpServer, jsonrpc_message, lowlevel_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

logger = logging.getLogger(__name__)

LINE_LIMIT = 1 << 28
"""Longest request line read over a pipe, in bytes (the SDK's own reader has no limit)."""

_CANCELLED = "notifications/cancelled"
_HEAD = 256  # bytes kept of an over-long line, to find its id
_LEADING_ID = re.compile(
    r'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"[^"\\]{0,128}")\s*[,}]'
)


async def run_stdio(server: McpServer) -> None:
    """Serve ``server`` over stdin/stdout until the client closes stdin."""
    lowlevel = lowlevel_server(server)
    applies = os.name == "posix" and _streamable(0) and _streamable(1)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio)
        applies = False
    if not applies:
        logger.debug("serving stdio through the SDK's threaded transport")
        async with stdio_server() as (read_stream, write_stream):
            await _serve(lowlevel, read_stream, write_stream)
        return
    with _claimed_std_streams() as (wire_in, wire_out):
        await serve_pipes(server, wire_in, wire_out)


async def serve_pipes(
    server: McpServer, wire_in: int, wire_out: int, *, line_limit: int = LINE_LIMIT
) -> None:
    """Serve ``server`` over two pipe descriptors until ``wire_in`` ends.

    Args:
        server: The MCP server (:func:`~.tools.build_server`).
        wire_in: Descriptor the requests come from; owned (and closed) from here on.
        wire_out: Descriptor the answers go to; owned (and closed) from here on.
        line_limit: Longest request line read, in bytes; a longer one gets an error answer.
    """
    lowlevel = lowlevel_server(server)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=line_limit)
    # The transports own (and close) these file objects, hence the descriptors.
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
    )
    out = _PipeWriter(asyncio.StreamWriter(write_transport, protocol, None, loop))
    lines = _pipe_lines(reader, out, line_limit)
    try:
        async with stdio_server(lines, out) as (read_stream, write_stream):  # type: ignore[arg-type]
            await _serve(lowlevel, read_stream, write_stream)
    finally:
        read_transport.close()
        with contextlib.suppress(ConnectionError):
            await out.flush()
        write_transport.close()


async def _serve(lowlevel: Any, read_stream: Any, write_stream: Any) -> None:
    reading = _Reading(read_stream)
    writing = _Writing(write_stream, reading)
    await lowlevel.run(reading, writing, lowlevel.create_initialization_options())


class _PipeWriter:
    """Text written to a pipe without blocking: ``write`` sends, ``flush`` waits for room."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:  # what the pipe cannot take yet is buffered
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


async def _pipe_lines(
    reader: asyncio.StreamReader, out: _PipeWriter, limit: int
) -> AsyncIterator[str]:
    """Lines of a pipe, decoded as UTF-8; one over ``limit`` is skipped and answered."""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:  # the end, maybe after a last unended line
            line = exc.partial
        except asyncio.LimitOverrunError as exc:
            head = (await reader.readexactly(exc.consumed))[:_HEAD]
            while True:  # drop the rest of the line, a buffer at a time
                try:
                    await reader.readuntil(b"\n")
                    break
                except asyncio.IncompleteReadError:
                    break
                except asyncio.LimitOverrunError as more:
                    await reader.readexactly(more.consumed)
            await out.write(_line_too_long_error(head, limit))
            await out.flush()
            continue
        if not line:
            return
        yield line.decode("utf-8", errors="replace")


def _line_too_long_error(head: bytes, limit: int) -> str:
    match = _LEADING_ID.match(head.decode("latin-1"))
    request_id = json.loads(match.group(1)) if match else None
    logger.warning("skipped a request line over %d bytes (id %r)", limit, request_id)
    message = (
        f"request line over {limit} bytes, the most tasb mcp reads over stdio: not read; "
        "send a smaller request"
    )
    error = {"code": -32600, "message": message}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}) + "\n"


def _streamable(fd: int) -> bool:
    """Whether asyncio's pipe transports can watch ``fd``: a pipe, socket or terminal."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


@contextlib.contextmanager
def _claimed_std_streams() -> Iterator[tuple[int, int]]:
    """Private duplicates of fds 0 and 1, with 0 on the null device and 1 on stderr meanwhile."""
    import fcntl  # POSIX only; run_stdio checks

    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    saved_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    saved_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(null)
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


def _key(request_id: Any) -> Any:
    """A request id as the SDK correlates it: ``"7"`` and ``7`` are one id."""
    try:
        return int(request_id) if isinstance(request_id, str) else request_id
    except ValueError:
        return request_id


class _Reading(ObjectReceiveStream[Any]):
    """The session's input, counting requests read and not yet answered; its end waits for them."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.open: Counter[Any] = Counter()
        self._changed = anyio.Event()

    @property
    def last_context(self) -> Any:
        """The sender's context of the last item (the SDK reads it where a stream has it)."""
        return getattr(self._inner, "last_context", None)

    def answered(self, request_id: Any) -> None:
        key = _key(request_id)
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]
        self._changed.set()

    async def receive(self) -> Any:
        try:
            item = await self._inner.receive()
        except anyio.EndOfStream:
            if self.open:
                logger.debug("input ended; answering %d requests first", self.open.total())
            while self.open:
                self._changed = anyio.Event()
                await self._changed.wait()
            raise
        message = jsonrpc_message(item)
        if isinstance(message, JSONRPCRequest):
            self.open[_key(message.id)] += 1
        elif isinstance(message, JSONRPCNotification) and message.method == _CANCELLED:
            self.answered((message.params or {}).get("requestId"))
        return item

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Writing(ObjectSendStream[Any]):
    """The session's output, striking off each request as its answer is sent."""

    def __init__(self, inner: Any, reading: _Reading) -> None:
        self._inner = inner
        self._reading = reading

    async def send(self, item: Any, /) -> None:
        await self._inner.send(item)
        message = jsonrpc_message(item)
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._reading.answered(message.id)

    async def aclose(self) -> None:
        await self._inner.aclose()
