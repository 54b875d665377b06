"""Every request read is answered before the server stops, even when its input ends first.

The SDK cancels running requests at the end of its input (``tasb mcp < requests.jsonl``), so
the end is passed on only once every request read is answered or cancelled by the client.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio

from langchain_tasb.mcp_server.sdk import (
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message,
)

if TYPE_CHECKING:
    from types import TracebackType

logger = logging.getLogger(__name__)

CANCELLED = "notifications/cancelled"


def _key(request_id: Any) -> Any:
    """A request id as the SDK correlates it: ``"7"`` and ``7`` are one id."""
    if isinstance(request_id, str):
        try:
            return int(request_id)
        except ValueError:
            return request_id
    return request_id


class Ledger:
    """The ids of requests read and not yet answered."""

    def __init__(self) -> None:
        self._open: Counter[Any] = Counter()
        self._changed = anyio.Event()

    def opened(self, request_id: Any) -> None:
        """A request with this id was read."""
        self._open[_key(request_id)] += 1

    def closed(self, request_id: Any) -> None:
        """The request with this id was answered or cancelled."""
        key = _key(request_id)
        if self._open[key] > 1:
            self._open[key] -= 1
        else:
            self._open.pop(key, None)
        self._changed.set()

    def __len__(self) -> int:
        return sum(self._open.values())

    async def all_answered(self) -> None:
        """Return once every request read has been answered or cancelled."""
        while self._open:
            self._changed = anyio.Event()
            await self._changed.wait()


class LedgerReadStream:
    """The session's input, recording requests; its end waits for their answers."""

    def __init__(self, inner: Any, ledger: Ledger) -> None:
        self._inner = inner
        self._ledger = ledger

    @property
    def last_context(self) -> Any:
        """The sender's context of the last item (the SDK reads it where a stream has it)."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        """The next message; at the end of the input, once every request is answered."""
        try:
            item = await self._inner.receive()
        except anyio.EndOfStream:
            if self._ledger:
                logger.debug("input ended; answering %d requests first", len(self._ledger))
            await self._ledger.all_answered()
            raise
        message = jsonrpc_message(item)
        if isinstance(message, JSONRPCRequest):
            self._ledger.opened(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == CANCELLED:
            self._ledger.closed((message.params or {}).get("requestId"))
        return item

    def __aiter__(self) -> LedgerReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Close the input."""
        await self._inner.aclose()

    async def __aenter__(self) -> LedgerReadStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class LedgerWriteStream:
    """The session's output, striking off each request as its answer is sent."""

    def __init__(self, inner: Any, ledger: Ledger) -> None:
        self._inner = inner
        self._ledger = ledger

    async def send(self, item: Any, /) -> None:
        """Send ``item``; an answer strikes its request off once handed to the writer."""
        await self._inner.send(item)
        message = jsonrpc_message(item)
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._ledger.closed(message.id)

    async def aclose(self) -> None:
        """Close the output."""
        await self._inner.aclose()

    async def __aenter__(self) -> LedgerWriteStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def answering_all(
    read_stream: Any, write_stream: Any
) -> tuple[LedgerReadStream, LedgerWriteStream]:
    """The session's streams, wrapped so that the input ends only when all is answered."""
    ledger = Ledger()
    return LedgerReadStream(read_stream, ledger), LedgerWriteStream(write_stream, ledger)
