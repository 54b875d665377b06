"""Chroma clients (embedded, in-memory or a timed server client) and the collections they hold."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langchain_tasb.chroma import writer_lock
from langchain_tasb.chroma.retry import NO_RETRY, RetryPolicy, call_with_retry, one_line
from langchain_tasb.config import cache_root
from langchain_tasb.errors import ChromaUnavailableError, CollectionNotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping

# Connecting rides out a few seconds of a restarting server, but a wrong URL (or a server
# that accepts and never answers) fails in seconds, not minutes.
CONNECT_RETRY = RetryPolicy(attempts=4, initial=0.5, maximum=2.0, deadline=5.0)

# Seconds one HTTP request to a Chroma server may take; chromadb's own client waits forever.
DEFAULT_TIMEOUT = 60.0

# Chroma's rule (chromadb 1.x), checked here so a bad name fails before a model loads.
_COLLECTION_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,510})[a-zA-Z0-9]")


@dataclass(frozen=True)
class ServerAddress:
    """A Chroma server's host, port, TLS, headers and timeout; picklable, ``repr`` hides headers."""

    host: str
    port: int
    ssl: bool = False
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float | None = DEFAULT_TIMEOUT

    @property
    def url(self) -> str:
        """``http(s)://host:port``."""
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    @classmethod
    def of(cls, client: Any) -> ServerAddress:
        """A server client's address, to reach it from other processes (ValueError if embedded)."""
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

    def connect(self) -> Any:
        """A client whose every request times out; ChromaUnavailableError after some retries."""
        from langchain_tasb.chroma.timed_api import TimedClient

        try:
            return call_with_retry(CONNECT_RETRY, self.url, TimedClient, self)
        except ChromaUnavailableError as exc:
            why = one_line(exc.__cause__ or exc)
            msg = (
                f"Could not reach a Chroma server at {self.url} ({why}): "
                "is `chroma run` up there, and reachable from here?"
            )
            raise ChromaUnavailableError(msg) from exc


def connect(
    *,
    client: Any = None,
    persist_directory: str | None = None,
    host: str | None = None,
    port: int | None = None,
    ssl: bool = False,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Any:
    """A Chroma client: the given one, a server (host/port), a directory, or in-memory.

    A server client gets a per-request ``timeout`` in seconds (None waits forever).

    Raises:
        ChromaUnavailableError: the server did not answer; the message names its URL.
    """
    if sum(x is not None for x in (client, persist_directory, host)) > 1:
        msg = "Pass only one of client=, persist_directory= or host=/port=, not several."
        raise ValueError(msg)
    if client is not None:
        return client
    if host is not None:
        return ServerAddress(host, port or 8000, ssl, dict(headers or {}), timeout).connect()
    if persist_directory is not None:
        return persistent_client(str(persist_directory))
    import chromadb

    return chromadb.EphemeralClient()


def persistent_client(path: str, *, telemetry: bool | None = None) -> Any:
    """An embedded Chroma client on folder ``path``; ``telemetry=None`` keeps Chroma's default."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings() if telemetry is None else Settings(anonymized_telemetry=telemetry)
    return chromadb.PersistentClient(path=path, settings=settings)


def close_client(client: Any) -> None:
    """Release a client's resources and this process's writer lock (RuntimeError: old chromadb)."""
    folder = persist_directory(client)
    close = getattr(client, "close", None)
    if close is None:
        msg = (
            "This chromadb has no Client.close(), so an index cannot be reloaded with another "
            "ef_search in-process; upgrade chromadb (pip install -U chromadb)."
        )
        raise RuntimeError(msg)
    close()
    if folder is not None:
        writer_lock.release(folder)


def hold_writer_lock(client: Any, *, wait: float = writer_lock.DEFAULT_WAIT) -> None:
    """Take the writer lock of an embedded client's folder (StoreLockedError after ``wait`` s)."""
    folder = persist_directory(client)
    if folder is not None:
        writer_lock.acquire(folder, wait=wait)


def server_url(client: Any) -> str | None:
    """The API URL of a Chroma server client; None for embedded and in-memory clients."""
    url = getattr(getattr(client, "_server", None), "_api_url", None)
    return str(url) if url else None


def persist_directory(client: Any) -> str | None:
    """The folder of an embedded client; None for a server or in-memory client."""
    if server_url(client) or not hasattr(client, "get_settings"):
        return None
    settings = client.get_settings()
    persistent = getattr(settings, "is_persistent", False) and settings.persist_directory
    return str(settings.persist_directory) if persistent else None


def location(client: Any) -> str:
    """Where a client's data lives, for messages: the server URL, the folder, or memory."""
    if url := server_url(client):
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"  # as the user wrote it, without /api/v2
    folder = persist_directory(client)
    return f"embedded Chroma at {folder}" if folder else "in-memory Chroma"


def side_folder(client: Any, kind: str, collection: str) -> Path | None:
    """Where ``kind`` ("bm25", "manifests") of ``collection`` lives; None for in-memory Chroma."""
    if url := server_url(client):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1]).strip("_")
        return cache_root() / kind / slug / collection
    folder = persist_directory(client)
    return Path(folder) / kind / collection if folder else None


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """``http(s)://host[:port]`` to ``(host, port, ssl)``; the port defaults to 8000 / 443."""
    parsed = urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        msg = f"Chroma URL must look like http://HOST:PORT or https://HOST, got {url!r}"
        raise ValueError(msg)
    ssl = parsed.scheme == "https"
    try:
        port = parsed.port or (443 if ssl else 8000)
    except ValueError as exc:
        msg = f"Chroma URL {url!r} has an invalid port"
        raise ValueError(msg) from exc
    return parsed.hostname, port, ssl


def check_collection_name(name: object) -> str:
    """``name`` if Chroma accepts it as a collection name, else a ValueError that says why."""
    if not isinstance(name, str):
        msg = f"collection name must be str, got {type(name).__name__}"
        raise TypeError(msg)
    if not _COLLECTION_NAME.fullmatch(name) or ".." in name or _is_ip_address(name):
        msg = (
            f"invalid collection name {name!r}: Chroma wants 3 to 512 characters from "
            "a-z, A-Z, 0-9, '.', '_' and '-', starting and ending with a letter or digit, "
            "with no '..', and not an IP address"
        )
        raise ValueError(msg)
    return name


def _is_ip_address(text: str) -> bool:
    try:
        return bool(ipaddress.ip_address(text))
    except ValueError:
        return False


def retry_policy(client: Any, retry: RetryPolicy | None = None) -> RetryPolicy:
    """``retry``, else the default: retries for a server, none for embedded Chroma."""
    return retry or (RetryPolicy() if server_url(client) else NO_RETRY)


def collection_names(client: Any, retry: RetryPolicy | None = None) -> list[str]:
    """The names of the collections a client sees, sorted."""
    listed = call_with_retry(retry_policy(client, retry), location(client), client.list_collections)
    return sorted(str(getattr(c, "name", c)) for c in listed)


def drop_collection(client: Any, name: str, retry: RetryPolicy | None = None) -> None:
    """Delete collection ``name`` and everything in it."""
    call_with_retry(retry_policy(client, retry), location(client), client.delete_collection, name)


def find_collection(
    client: Any, name: str, retry: RetryPolicy | None = None, *, required: bool = False
) -> Any | None:
    """The chromadb collection ``name`` (retried for a server), or None if there is none.

    Raises:
        ValueError: Chroma would refuse ``name`` (see :func:`check_collection_name`).
        CollectionNotFoundError: ``required`` and there is none; names the collections there.
    """
    where = location(client)
    check_collection_name(name)
    found = call_with_retry(retry_policy(client, retry), where, _get_collection, client, name)
    if found is None and required:
        names = ", ".join(collection_names(client))
        there = f"collections there: {names}" if names else "there are no collections there"
        msg = f"no collection {name!r} at {where} ({there})"
        raise CollectionNotFoundError(msg)
    return found


def _get_collection(client: Any, name: str) -> Any | None:
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name, embedding_function=None)
    except (NotFoundError, ValueError) as exc:
        if isinstance(exc, NotFoundError) or "does not exist" in str(exc):
            return None
        raise
