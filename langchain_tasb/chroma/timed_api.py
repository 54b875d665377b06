"""chromadb's server client with a timeout on every request, the first ones included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from chromadb.api.client import Client
from chromadb.config import Settings

from langchain_tasb.chroma.retry import RETRYABLE_STATUS

if TYPE_CHECKING:
    from langchain_tasb.chroma.client import ServerAddress


class TimedClient(Client):
    """A chromadb client of a server whose every request times out after ``address.timeout``."""

    def __init__(self, address: ServerAddress) -> None:
        self._tasb_timeout = address.timeout
        settings = Settings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=address.host,
            chroma_server_http_port=address.port,
            chroma_server_ssl_enabled=address.ssl,
            chroma_server_headers=address.headers or None,
        )
        try:
            super().__init__(settings=settings)
        except ValueError as exc:
            # chromadb turns a refused connection or a timeout of its first request into a
            # ValueError: raise the transport error, which the retry policy knows.
            if isinstance(exc.__context__, httpx.TransportError):
                raise exc.__context__ from None
            if "Could not connect" in str(exc):
                raise httpx.ConnectError(str(exc)) from exc
            raise

    def get_user_identity(self) -> Any:
        """The first request chromadb sends: its session gets our timeout (not None) and hook."""
        session: httpx.Client = self._server._session  # type: ignore[attr-defined]
        session.timeout = httpx.Timeout(self._tasb_timeout)
        if _raise_retryable_status not in session.event_hooks["response"]:
            session.event_hooks["response"].append(_raise_retryable_status)
        return super().get_user_identity()


def _raise_retryable_status(response: httpx.Response) -> None:
    # chromadb turns a proxy's status (no Chroma error body) into a plain Exception: raise one
    # the retry policy knows. A 500 is left to chromadb, which maps Chroma's own errors.
    if response.status_code in RETRYABLE_STATUS and response.status_code != 500:
        response.raise_for_status()
