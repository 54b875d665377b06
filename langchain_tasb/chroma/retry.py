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
    """Exponential backoff with jitter (``initial * 2**n`` seconds, capped at ``maximum``).

    Tries stop at ``attempts`` or when the next sleep would end past ``deadline``.
    """

    attempts: int = 8
    """Tries in all, the first included; 1 disables retrying."""
    initial: float = 0.5
    """Delay before the second try, in seconds."""
    maximum: float = 8.0
    """Longest delay between two tries, in seconds."""
    deadline: float | None = 45.0
    """Seconds after the first try began beyond which no new try starts; None: no limit."""

    def delays(self) -> list[float]:
        """The sleeps between tries, jittered by up to 10% so that writers don't stampede."""
        return [
            min(self.maximum, self.initial * 2**n) * (1.0 + 0.1 * random.random())  # noqa: S311
            for n in range(max(0, self.attempts - 1))
        ]


NO_RETRY = RetryPolicy(attempts=1, deadline=None)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception stands for, when it stands for one."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    from chromadb.errors import ChromaError

    if isinstance(exc, ChromaError):
        return int(exc.code())
    return None


def is_transient(exc: BaseException) -> bool:
    """Connection refused or reset, a timeout, a 5xx or a 429 answer: worth another try.

    Client errors and a collection-creation race ("already exists") are never retried.
    """
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    status = status_of(exc)
    if status is None or status not in RETRYABLE_STATUS:
        return False
    return "already exists" not in str(exc)


def one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception on one line, at most 300 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the server was not reached or did not answer as Chroma.

    A transport error, or an HTTP status without a Chroma error body (a proxy answering).
    """
    import httpx

    return isinstance(exc, httpx.TransportError | httpx.HTTPStatusError)


def call_with_retry(
    policy: RetryPolicy, where: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """``fn(*args, **kwargs)``, retried on transient errors; ``where`` names the server.

    Raises:
        ChromaUnavailableError: the server was not reached by the last try or the deadline.
        ValueError: Chroma itself kept answering with a retryable error.
    """
    delays = policy.delays()
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.attempts)
    if policy.deadline is not None:
        stop |= tenacity.stop_before_delay(policy.deadline)

    def log_retry(state: tenacity.RetryCallState) -> None:
        logger.warning(
            "Chroma server at %s: %s; retrying in %.1fs",
            where,
            one_line(_failure(state)),
            state.upcoming_sleep,
        )

    def give_up(state: tenacity.RetryCallState) -> T:
        exc, tries = _failure(state), state.attempt_number
        tries_text = (
            f"{tries} tr{'y' if tries == 1 else 'ies'} over {state.seconds_since_start:.0f}s"
        )
        if not is_unreachable(exc):
            after = f" on each of {tries_text}" if tries > 1 else ""
            subject = f"Chroma server at {where}" if "://" in where else where
            msg = f"{subject} answered with an error{after}: {one_line(exc)}"
            raise ValueError(msg) from exc
        msg = (
            f"Chroma server at {where} still failing after {tries_text} ({one_line(exc)}); "
            "is it running and reachable?"
        )
        raise ChromaUnavailableError(msg) from exc

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=stop,
        wait=lambda state: delays[min(state.attempt_number, len(delays)) - 1] if delays else 0.0,
        before_sleep=log_retry,
        retry_error_callback=give_up,
    )
    return retrying(fn, *args, **kwargs)


def _failure(state: tenacity.RetryCallState) -> BaseException:
    """What the last try raised: tenacity retries and gives up only on exceptions here."""
    return cast("BaseException", cast("Future[Any]", state.outcome).exception())
