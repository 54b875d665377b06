"""MCP over stdin/stdout read and written by the asyncio loop, with no thread hop per message.

Fds 0 and 1 are privately duplicated and pointed at the null device and stderr while serving, so
a stray ``print`` cannot corrupt the channel. Regular files and non-asyncio loops fall back to the
SDK's threaded ``stdio_server``. Lines over :data:`LINE_LIMIT` get a JSON-RPC error, unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import stat
from typing import TYPE_CHECKING, Any

from langchain_tasb.mcp_server.pending import answering_all
from langchain_tasb.mcp_server.sdk import McpServer, lowlevel_server, stdio_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

logger = logging.getLogger(__name__)

LINE_LIMIT = 1 << 28
"""Longest request line read over a pipe, in bytes (the SDK's own reader has no limit)."""

_HEAD = 256
"""Bytes kept of an over-long line, to find its id."""
_LEADING_ID = re.compile(
    r'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"[^"\\]{0,128}")\s*[,}]'
)


class LineTooLongError(Exception):
    """A line over the limit was skipped; ``head`` holds its first bytes."""

    def __init__(self, head: bytes) -> None:
        super().__init__("line over the limit")
        self.head = head


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """The next line (``b""`` at the end); an over-long one is skipped without being kept.

    Raises:
        LineTooLongError: The line was longer than the reader's limit; it has been consumed.
    """
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:  # the end, maybe after a last unended line
        return exc.partial
    except asyncio.LimitOverrunError as exc:
        head = (await reader.readexactly(exc.consumed))[:_HEAD]
    while True:  # drop the rest of the line, a buffer at a time
        try:
            await reader.readuntil(b"\n")
            break
        except asyncio.IncompleteReadError:
            break
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
    raise LineTooLongError(head)


def line_too_long_error(head: bytes, limit: int) -> str:
    """The JSON-RPC error line answering a request line over ``limit`` bytes."""
    match = _LEADING_ID.match(head.decode("latin-1"))
    request_id = json.loads(match.group(1)) if match else None
    logger.warning("skipped a request line over %d bytes (id %r)", limit, request_id)
    message = (
        f"request line over {limit} bytes, the most tasb mcp reads over stdio: not read; "
        "send a smaller request"
    )
    error = {"code": -32600, "message": message}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}) + "\n"


class PipeLines:
    """Lines of a pipe, decoded as UTF-8; one over the limit goes to ``on_too_long``."""

    def __init__(
        self, reader: asyncio.StreamReader, on_too_long: Callable[[bytes], Awaitable[None]]
    ) -> None:
        self._reader = reader
        self._on_too_long = on_too_long

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                line = await read_line(self._reader)
            except LineTooLongError as exc:
                await self._on_too_long(exc.head)
                continue
            if not line:
                raise StopAsyncIteration
            return line.decode("utf-8", errors="replace")


class PipeWriter:
    """Text written to a pipe without blocking: ``write`` sends, ``flush`` waits for room."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        """Send ``text`` now; what the pipe cannot take yet is buffered."""
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        """Wait until the buffered output is below the transport's high-water mark."""
        await self._writer.drain()


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


@contextlib.asynccontextmanager
async def _pipe_streams(
    wire_in: int, wire_out: int, line_limit: int
) -> AsyncIterator[tuple[PipeLines, PipeWriter]]:
    """The protocol's input lines and output writer over the two private descriptors."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=line_limit)
    # The transports own (and close) these file objects, hence the descriptors.
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    out = PipeWriter(writer)

    async def answer_too_long(head: bytes) -> None:
        await out.write(line_too_long_error(head, line_limit))
        await out.flush()

    try:
        yield PipeLines(reader, answer_too_long), out
    finally:
        read_transport.close()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        write_transport.close()


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
    async with (
        _pipe_streams(wire_in, wire_out, line_limit) as (lines, out),
        stdio_server(stdin=lines, stdout=out) as (read_stream, write_stream),  # type: ignore[arg-type]
    ):
        await _serve(lowlevel, read_stream, write_stream)


async def _serve(lowlevel: Any, read_stream: Any, write_stream: Any) -> None:
    """Run the session, answering every request read before its input ends (:mod:`.pending`)."""
    reading, writing = answering_all(read_stream, write_stream)
    await lowlevel.run(reading, writing, lowlevel.create_initialization_options())
