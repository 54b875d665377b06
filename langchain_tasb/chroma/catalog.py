"""The collections a client holds: checked names, listing, dropping, looking one up."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from langchain_tasb.chroma.client import location, server_url
from langchain_tasb.chroma.retry import NO_RETRY, RetryPolicy, call_with_retry
from langchain_tasb.errors import CollectionNotFoundError

# Chroma's rule (chromadb 1.x), checked here so a bad name fails before a model loads.
_COLLECTION_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,510})[a-zA-Z0-9]")


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


def collection_space(collection: Any) -> str:
    """The distance space of an open chromadb collection ("ip", "l2" or "cosine")."""
    configuration = getattr(collection, "configuration", None) or {}
    for index in ("hnsw", "spann"):
        if space := (configuration.get(index) or {}).get("space"):
            return str(space)
    return str((collection.metadata or {}).get("hnsw:space") or "l2")


def collection_names(client: Any, retry: RetryPolicy | None = None) -> list[str]:
    """The names of the collections a client sees, sorted."""
    listed = call_with_retry(_policy(client, retry), location(client), client.list_collections)
    return sorted(str(getattr(c, "name", c)) for c in listed)


def drop_collection(client: Any, name: str, retry: RetryPolicy | None = None) -> None:
    """Delete collection ``name`` and everything in it."""
    call_with_retry(_policy(client, retry), location(client), client.delete_collection, name)


def not_found(client: Any, name: str) -> CollectionNotFoundError:
    """The error for a missing collection: its name, where, and the collections there."""
    names = collection_names(client)
    there = f"collections there: {', '.join(names)}" if names else "there are no collections there"
    return CollectionNotFoundError(f"no collection {name!r} at {location(client)} ({there})")


def is_not_found(exc: BaseException) -> bool:
    """Whether chromadb raised ``exc`` for a collection that does not exist."""
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError) or (
        isinstance(exc, ValueError) and "does not exist" in str(exc)
    )


def _policy(client: Any, retry: RetryPolicy | None) -> RetryPolicy:
    return retry or (RetryPolicy() if server_url(client) else NO_RETRY)


def _get(client: Any, name: str) -> Any:
    try:
        return client.get_collection(name, embedding_function=None)
    except Exception as exc:
        if is_not_found(exc):
            raise not_found(client, name) from exc
        raise
