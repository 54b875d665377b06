"""The Chroma gateway: the only code of this package that calls chromadb.

- :mod:`~langchain_tasb.chroma.client`: clients from a folder, a URL (with headers and a
  timeout on every request) or memory; names, locations, closing.
- :mod:`~langchain_tasb.chroma.retry`: the one retry policy for server calls.
- :mod:`~langchain_tasb.chroma.records`: validation before a write; the shapes reads return.
- :mod:`~langchain_tasb.chroma.collection`: :class:`Collection`, every read and write of one
  collection (open-existing, count, get, scan, query, upsert, update, delete).
- :mod:`~langchain_tasb.chroma.catalog`: a client's collections: checked names, listing,
  dropping, looking one up; :mod:`~langchain_tasb.chroma.settings`: :class:`HnswSettings`.
- :mod:`~langchain_tasb.chroma.store`: :class:`ChromaStore`, a collection bound to one
  model (created with the ``ip`` space, verified on open).
- :mod:`~langchain_tasb.chroma.identity`: the model identity and relevance calibration.
- :mod:`~langchain_tasb.chroma.remote`: :class:`ServerAddress`, a server client's address that
  other processes (Ray workers) reconnect with.

Importing this package does not import chromadb; its modules do so when first called.
"""

from __future__ import annotations

from langchain_tasb.chroma.client import (
    DEFAULT_TIMEOUT,
    close_client,
    connect,
    location,
    parse_chroma_url,
    persist_directory,
    persistent_client,
    server_url,
)
from langchain_tasb.chroma.collection import (
    Collection,
    HnswSettings,
    check_collection_name,
    collection_names,
    drop_collection,
)
from langchain_tasb.chroma.records import Hit, Records, validate_records
from langchain_tasb.chroma.retry import NO_RETRY, RetryPolicy
from langchain_tasb.chroma.store import ChromaStore

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "ChromaStore",
    "Collection",
    "Hit",
    "HnswSettings",
    "Records",
    "RetryPolicy",
    "check_collection_name",
    "close_client",
    "collection_names",
    "connect",
    "drop_collection",
    "location",
    "parse_chroma_url",
    "persist_directory",
    "persistent_client",
    "server_url",
    "validate_records",
]
