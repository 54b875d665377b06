"""MCP over stdin/stdout read and written by the event loop, with no thread hop per message.

The SDK's ``stdio_server()`` wraps the standard streams with ``anyio.wrap_file``: every line
read, every write and every flush goes to a worker thread and back, three thread handoffs per
tool call on top of the one that runs the tool. Here the asyncio loop watches the pipes
itself: a request wakes the loop directly, and an answer is written at once (whatever the
pipe cannot take yet is sent as the client reads, with the SDK's flow control). JSON-RPC
framing and parsing stay the SDK's: its ``stdio_server`` takes the two streams as arguments.

As the SDK does, the protocol takes private duplicates of descriptors 0 and 1 and points
those at the null device and at stderr while serving, so that a stray ``print`` or a child
process cannot corrupt the channel; both are restored on exit. Where this cannot apply (the
streams are regular files, not pipes, sockets or terminals; another event loop than
asyncio; an SDK without the hooks used), the SDK's own ``run_stdio_async`` serves instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger(__name__)

_LINE_LIMIT = 1 << 28
"""Longest request line accepted (the SDK's own reader has no limit); memory grows as needed."""


class PipeLines:
    """Lines of a pipe, decoded as UTF-8: what the SDK's stdio transport iterates over."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
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
async def _pipe_streams(wire_in: int, wire_out: int) -> AsyncIterator[tuple[PipeLines, PipeWriter]]:
    """The protocol's input lines and output writer over the two private descriptors."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    # The transports own (and close) these file objects, hence the descriptors.
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    try:
        yield PipeLines(reader), PipeWriter(writer)
    finally:
        read_transport.close()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        write_transport.close()


def _lowlevel(server: MCPServer[Any]) -> Any:
    """The SDK's low-level server inside ``server``, or None if this SDK has none."""
    lowlevel = getattr(server, "_lowlevel_server", None)
    has_run = callable(getattr(lowlevel, "run", None))
    if not has_run or not callable(getattr(lowlevel, "create_initialization_options", None)):
        return None
    return lowlevel


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over stdin/stdout until the client closes stdin.

    Uses the event-loop transport described in the module docstring where it applies, and
    the SDK's ``run_stdio_async`` elsewhere.
    """
    from mcp.server.stdio import stdio_server

    lowlevel = _lowlevel(server)
    applies = lowlevel is not None and os.name == "posix" and _streamable(0) and _streamable(1)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio)
        applies = False
    if not applies:
        logger.debug("serving stdio through the SDK's threaded transport")
        await server.run_stdio_async()
        return
    with _claimed_std_streams() as (wire_in, wire_out):
        async with (
            _pipe_streams(wire_in, wire_out) as (lines, out),
            stdio_server(stdin=lines, stdout=out) as (read_stream, write_stream),  # type: ignore[arg-type]
        ):
            options = lowlevel.create_initialization_options()
            await lowlevel.run(read_stream, write_stream, options)
