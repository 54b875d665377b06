"""The one retry policy for Chroma server calls: transient trouble only, within a deadline."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import tenacity

from langchain_tasb.errors import ChromaUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Overloaded, restarting or behind a proxy that lost it; any other 4xx cannot be fixed by retrying.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``initial * 2**n`` seconds, capped at ``maximum``."""

    attempts: int = 8
    """Tries in all, the first included; 1 disables retrying."""
    initial: float = 0.5
    """Delay before the second try, in seconds."""
    maximum: float = 8.0
    """Longest delay between two tries, in seconds."""
    deadline: float | None = 45.0
    """Seconds from the first try within which the next try must start; None: no limit."""

    def delays(self) -> list[float]:
        """The sleeps between tries, jittered by up to 10% so that writers don't stampede."""
        return [
            min(self.maximum, self.initial * 2**n) * (1.0 + 0.1 * random.random())  # noqa: S311
            for n in range(max(0, self.attempts - 1))
        ]


NO_RETRY = RetryPolicy(attempts=1, deadline=None)


def is_transient(exc: BaseException) -> bool:
    """Transport errors and 429/5xx answers, but never a creation race ("already exists")."""
    import httpx
    from chromadb.errors import ChromaError

    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    elif isinstance(exc, ChromaError):
        status = int(exc.code())
    else:
        return isinstance(exc, httpx.TransportError)
    return status in RETRYABLE_STATUS and "already exists" not in str(exc)


def one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception on one line, at most 300 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def call_with_retry(
    policy: RetryPolicy, where: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """``fn(*args, **kwargs)``, retried on transient errors; ``where`` names the server.

    Raises:
        ChromaUnavailableError: the server was not reached by the last try or the deadline.
        ValueError: Chroma itself kept answering with a retryable error.
    """
    import httpx

    delays = policy.delays()
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.attempts)
    if policy.deadline is not None:
        stop |= tenacity.stop_before_delay(policy.deadline)

    def failure(state: tenacity.RetryCallState) -> BaseException:
        # tenacity retries and gives up only on exceptions here
        return cast("BaseException", cast("Future[Any]", state.outcome).exception())

    def log_retry(state: tenacity.RetryCallState) -> None:
        why, sleep = one_line(failure(state)), state.upcoming_sleep
        logger.warning("Chroma server at %s: %s; retrying in %.1fs", where, why, sleep)

    def give_up(state: tenacity.RetryCallState) -> T:
        exc, tries = failure(state), state.attempt_number
        tried = f"{tries} tr{'y' if tries == 1 else 'ies'} over {state.seconds_since_start:.0f}s"
        # Not reached, or an HTTP status without a Chroma error body (a proxy answering).
        if isinstance(exc, httpx.TransportError | httpx.HTTPStatusError):
            msg = (
                f"Chroma server at {where} still failing after {tried} ({one_line(exc)}); "
                "is it running and reachable?"
            )
            raise ChromaUnavailableError(msg) from exc
        after = f" on each of {tried}" if tries > 1 else ""
        subject = f"Chroma server at {where}" if "://" in where else where
        msg = f"{subject} answered with an error{after}: {one_line(exc)}"
        raise ValueError(msg) from exc

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=stop,
        wait=lambda state: delays[min(state.attempt_number, len(delays)) - 1] if delays else 0.0,
        before_sleep=log_retry,
        retry_error_callback=give_up,
    )
    return retrying(fn, *args, **kwargs)
