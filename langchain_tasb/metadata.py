"""Record metadata: the user's keys, and the reserved keys a framework keeps beside them.

Neither reserved (``_tasb_``: what LlamaIndex rebuilds a node from) nor result keys may come
from a user: a planted one would change a rebuilt node or be replaced by a score. Library writes
refuse them (:func:`check_user_metadata`); the indexer drops them (:func:`drop_refused_keys`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

RESERVED_PREFIX = "_tasb_"
"""Metadata keys starting with this belong to langchain-tasb, not to the user."""

RESULT_KEYS = ("score", "relevance", "fused_score", "bm25_score")
"""Metadata keys a search result sets to its scores; a user's record may not hold them."""


def user_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``metadata`` without langchain-tasb's reserved keys (a new dict; ``{}`` for None)."""
    return {k: v for k, v in (metadata or {}).items() if not k.startswith(RESERVED_PREFIX)}


def reserved_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only langchain-tasb's reserved keys of ``metadata`` (what :func:`user_metadata` drops)."""
    return {k: v for k, v in (metadata or {}).items() if k.startswith(RESERVED_PREFIX)}


def is_refused(key: object) -> bool:
    """Whether a user's metadata may not hold ``key``: a reserved or a result key."""
    return isinstance(key, str) and (key.startswith(RESERVED_PREFIX) or key in RESULT_KEYS)


def check_user_metadata(metadatas: Sequence[Mapping[str, Any] | None]) -> None:
    """Refuse user metadata holding a reserved (``_tasb_``) or result key.

    Raises:
        ValueError: naming the first position and its refused keys, and the fix.
    """
    for i, metadata in enumerate(metadatas):
        refused = sorted(key for key in metadata or {} if is_refused(key))
        if refused:
            msg = (
                f"metadatas[{i}] has metadata keys {refused}: keys starting with "
                f"{RESERVED_PREFIX!r} are reserved for langchain-tasb, and "
                f"{list(RESULT_KEYS)} are set on search results to the hit's scores; "
                "rename them"
            )
            raise ValueError(msg)


def drop_refused_keys(metadata: dict[str, Any]) -> list[str]:
    """Remove refused keys from ``metadata`` in place; returns the keys removed."""
    dropped = [key for key in metadata if is_refused(key)]
    for key in dropped:
        del metadata[key]
    return dropped
