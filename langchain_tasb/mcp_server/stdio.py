"""MCP over stdin/stdout, a line of JSON-RPC per message, every request read answered.

Fds 0 and 1 are privately duplicated and pointed at the null device and stderr while serving, so
a stray ``print`` cannot corrupt the channel. Pipes, sockets and terminals are read and written
by the asyncio loop, regular files in worker threads. Pipe lines over :data:`LINE_LIMIT` get a
JSON-RPC error, unread. The SDK cancels running requests at the end of its input, so the end is
passed on only once every request read is answered or cancelled by the client.
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
import anyio.to_thread
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from langchain_tasb.mcp_server.sdk import (
    McpServer,
    jsonrpc_message,
    lowlevel_server,
    message_line,
    read_message,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator

    Send = Callable[[str], Awaitable[None]]

logger = logging.getLogger(__name__)

LINE_LIMIT = 1 << 28
"""Longest request line read over a pipe, in bytes (the SDK's own reader has no limit)."""

_HEAD = 256  # bytes kept of an over-long line, to find its id
_LEADING_ID = re.compile(
    r'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"[^"\\]{0,128}")\s*[,}]'
)


def serve_stdio(server: McpServer) -> None:
    """Serve ``server`` over stdin/stdout until the client closes stdin."""
    anyio.run(_serve_std_streams, server)


async def _serve_std_streams(server: McpServer) -> None:
    with _claimed_std_streams() as (wire_in, wire_out):
        if os.name == "posix" and _streamable(wire_in) and _streamable(wire_out):
            await serve_pipes(server, wire_in, wire_out)
            return
        logger.debug("serving stdio through worker threads")
        with (
            os.fdopen(wire_in, encoding="utf-8", errors="replace") as source,
            os.fdopen(wire_out, "w", buffering=1, encoding="utf-8") as sink,
        ):

            async def send(line: str) -> None:  # each line ends in "\n", so is flushed
                await anyio.to_thread.run_sync(sink.write, line)

            await serve_lines(server, anyio.wrap_file(source), send)


async def serve_pipes(
    server: McpServer, wire_in: int, wire_out: int, *, line_limit: int = LINE_LIMIT
) -> None:
    """Serve ``server`` over two pipe descriptors, owned (and closed) here, until ``wire_in`` ends.

    A request line over ``line_limit`` bytes gets an error answer.
    """
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

    async def send(line: str) -> None:
        writer.write(line.encode("utf-8"))
        await writer.drain()

    try:
        await serve_lines(server, _pipe_lines(reader, send, line_limit), send)
    finally:
        read_transport.close()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        write_transport.close()


async def serve_lines(server: McpServer, lines: AsyncIterable[str], send: Send) -> None:
    """Run ``server``'s session over request lines and a line sender until the lines end.

    The end of the lines waits until every request read is answered or cancelled.
    """
    lowlevel = lowlevel_server(server)
    to_session, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, from_session = anyio.create_memory_object_stream[Any](0)
    unanswered: Counter[Any] = Counter()
    answered = anyio.Condition()

    async def strike(request_id: Any) -> None:
        nonlocal unanswered
        unanswered -= Counter([_key(request_id)])  # drops the ids no longer pending
        async with answered:
            answered.notify_all()

    async def read() -> None:
        async with to_session:
            async for line in lines:
                try:
                    item = read_message(line)
                except ValueError as exc:  # passed on, as the SDK's transport does
                    await to_session.send(exc)
                    continue
                message = jsonrpc_message(item)
                if isinstance(message, JSONRPCRequest):
                    unanswered[_key(message.id)] += 1
                elif (
                    isinstance(message, JSONRPCNotification)
                    and message.method == "notifications/cancelled"
                ):
                    await strike((message.params or {}).get("requestId"))
                await to_session.send(item)
            if unanswered:
                logger.debug("input ended; answering %d requests first", unanswered.total())
            async with answered:
                while unanswered:
                    await answered.wait()

    async def write() -> None:
        async with from_session:
            async for item in from_session:
                await send(message_line(item))
                message = jsonrpc_message(item)
                if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
                    await strike(message.id)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


async def _pipe_lines(reader: asyncio.StreamReader, send: Send, limit: int) -> AsyncIterator[str]:
    """Lines of a pipe, decoded as UTF-8; one over ``limit`` is skipped and answered."""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:  # the end, maybe after a last unended line
            line = exc.partial
        except asyncio.LimitOverrunError as exc:
            head = (await reader.readexactly(exc.consumed))[:_HEAD]
            with contextlib.suppress(asyncio.IncompleteReadError):
                while True:  # drop the rest of the line, a buffer at a time
                    try:
                        await reader.readuntil(b"\n")
                        break
                    except asyncio.LimitOverrunError as more:
                        await reader.readexactly(more.consumed)
            await send(_line_too_long_error(head, limit))
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
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


@contextlib.contextmanager
def _claimed_std_streams() -> Iterator[tuple[int, int]]:
    """Private duplicates of fds 0 and 1, with 0 on the null device and 1 on stderr meanwhile."""
    if os.name != "posix":  # no fcntl: the streams as they are
        yield os.dup(0), os.dup(1)
        return
    import fcntl

    wire_in, wire_out, *saved = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (0, 1, 0, 1))
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(null)
        for fd, copy in enumerate(saved):
            os.dup2(copy, fd)
            os.close(copy)


def _key(request_id: Any) -> Any:
    """A request id as the SDK correlates it: ``"7"`` and ``7`` are one id."""
    try:
        return int(request_id) if isinstance(request_id, str) else request_id
    except ValueError:
        return request_id
