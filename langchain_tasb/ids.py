"""Stable, content-derived document ids."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def content_id(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """An id derived from the text and, when present, ``metadata["source"]``.

    The same text from the same source is stored once; from two sources, twice. 32 hex
    characters of a SHA-256 digest.
    """
    source = "" if metadata is None else str(metadata.get("source", ""))
    digest = hashlib.sha256()
    digest.update(source.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]
