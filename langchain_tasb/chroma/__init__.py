"""The Chroma gateway, the only code that calls chromadb (imported only when first called)."""

from __future__ import annotations

from langchain_tasb.chroma.client import (
    DEFAULT_TIMEOUT,
    check_collection_name,
    close_client,
    collection_names,
    connect,
    drop_collection,
    location,
    parse_chroma_url,
    persist_directory,
    persistent_client,
    server_url,
)
from langchain_tasb.chroma.collection import Collection
from langchain_tasb.chroma.records import Hit, Records, validate_records
from langchain_tasb.chroma.retry import NO_RETRY, RetryPolicy
from langchain_tasb.chroma.store import ChromaStore, HnswSettings

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
