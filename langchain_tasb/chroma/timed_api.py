"""chromadb's server client with a timeout on every request, the first ones included.

chromadb builds its ``httpx.Client`` with ``timeout=None`` and sends requests (the user
identity, the tenant, the database) while a client is being built, so a timeout set on the
finished client leaves those waiting forever on a server that accepts and never answers.
:class:`TimedClient` sets the timeout just before the first of them.
"""

from __future__ import annotations

from typing import Any

import httpx
from chromadb.api.client import Client
from chromadb.config import Settings

from langchain_tasb.chroma.retry import RETRYABLE_STATUS


class TimedClient(Client):
    """A chromadb server client whose every request times out after ``timeout`` seconds."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: bool,
        headers: dict[str, str],
        timeout: float | None,
    ) -> None:
        self._tasb_timeout = timeout
        settings = Settings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=host,
            chroma_server_http_port=port,
            chroma_server_ssl_enabled=ssl,
            chroma_server_headers=headers or None,
        )
        super().__init__(settings=settings)

    def get_user_identity(self) -> Any:
        """The first request chromadb sends: the session gets its timeout and hook first."""
        session: httpx.Client = self._server._session  # type: ignore[attr-defined]
        session.timeout = httpx.Timeout(self._tasb_timeout)
        if _raise_retryable_status not in session.event_hooks["response"]:
            session.event_hooks["response"].append(_raise_retryable_status)
        return super().get_user_identity()


def _raise_retryable_status(response: httpx.Response) -> None:
    # chromadb turns a status without a Chroma error body (from a proxy or load balancer in
    # front of Chroma) into a plain Exception; raise an HTTPStatusError the retry policy
    # knows instead. A 500 is left to chromadb, which maps Chroma's own errors.
    if response.status_code in RETRYABLE_STATUS and response.status_code != 500:
        response.raise_for_status()
