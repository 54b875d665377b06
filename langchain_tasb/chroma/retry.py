"""Retrying Chroma calls through transient server trouble, and only through that."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_tasb.errors import ChromaUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``initial * 2**n`` seconds, capped at ``maximum``.

    The defaults ride out a server restart of about 20 seconds (0.5 + 1 + 2 + 4 + 8 + 8).
    """

    attempts: int = 7
    """Tries in all, the first included; 1 disables retrying."""
    initial: float = 0.5
    """Delay before the second try, in seconds."""
    maximum: float = 8.0
    """Longest delay between two tries, in seconds."""

    def delays(self) -> list[float]:
        """The sleeps between tries, jittered by up to 10% so that writers don't stampede."""
        return [
            min(self.maximum, self.initial * 2**n) * (1.0 + 0.1 * random.random())  # noqa: S311
            for n in range(max(0, self.attempts - 1))
        ]


NO_RETRY = RetryPolicy(attempts=1)


def is_transient(exc: BaseException) -> bool:
    """Connection refused or reset, a timeout, or a 5xx answer: worth another try.

    Client errors (bad input, a missing collection, 4xx) are never retried: trying again
    cannot change their answer.
    """
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    from chromadb.errors import ChromaError

    if isinstance(exc, ChromaError):
        return exc.code() >= 500 and "already exists" not in str(exc)
    return False


def call_with_retry(
    policy: RetryPolicy, where: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """``fn(*args, **kwargs)``, retried on transient errors; ``where`` names the server.

    Raises:
        ChromaUnavailableError: still failing after the last try; names ``where``.
    """
    delays = policy.delays()
    attempt = 0
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == len(delays):
                msg = (
                    f"Chroma server at {where} still failing after {policy.attempts} tries "
                    f"over {sum(delays):.0f}s: {exc!r}. Is it running and reachable?"
                )
                raise ChromaUnavailableError(msg) from exc
            logger.warning(
                "Chroma server at %s: %r; retrying in %.1fs", where, exc, delays[attempt]
            )
            time.sleep(delays[attempt])
            attempt += 1
