"""How to reach a Chroma server again from another process (Ray workers): a picklable address."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_tasb.chroma.client import DEFAULT_TIMEOUT, connect, location, server_url
from langchain_tasb.chroma.collection import Collection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerAddress:
    """A Chroma server's host, port, TLS, headers and timeout; ``repr`` hides the headers."""

    host: str
    port: int
    ssl: bool = False
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float | None = DEFAULT_TIMEOUT

    @classmethod
    def of(cls, client: Any) -> ServerAddress:
        """The address of a server client, as it was connected.

        Raises:
            ValueError: ``client`` is an embedded or in-memory client.
        """
        if not server_url(client):
            msg = (
                f"{location(client)} cannot be written from other processes: start a Chroma "
                "server (`chroma run --path DIR`) and pass its URL (--chroma-url)"
            )
            raise ValueError(msg)
        settings = client.get_settings()
        return cls(
            host=str(settings.chroma_server_host),
            port=int(settings.chroma_server_http_port),
            ssl=bool(settings.chroma_server_ssl_enabled),
            headers=dict(settings.chroma_server_headers or {}),
            timeout=getattr(client, "_tasb_timeout", DEFAULT_TIMEOUT),
        )

    def open_collection(self, name: str) -> Collection:
        """Connect and open collection ``name`` as it is (it must exist), with retries.

        Raises:
            ChromaUnavailableError: the server did not answer.
            CollectionNotFoundError: there is no such collection.
        """
        client = connect(**asdict(self))
        logger.debug("opened %s on %s", name, location(client))
        return Collection.open_existing(client, name)
