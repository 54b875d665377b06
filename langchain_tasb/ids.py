"""Stable, content-derived document ids."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def content_id(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """An id derived from the text and, when present, ``metadata["source"]``.

    Adding the same text from the same source twice yields the same id, so it is stored
    once; the same text from two sources is stored twice. The id is 32 hex characters of a
    SHA-256 digest (128 bits: collisions are not a practical concern).
    """
    source = "" if metadata is None else str(metadata.get("source", ""))
    digest = hashlib.sha256()
    digest.update(source.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]
