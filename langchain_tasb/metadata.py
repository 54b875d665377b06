"""Record metadata: the user's keys, and the reserved keys a framework keeps beside them.

One collection serves LangChain and LlamaIndex. LlamaIndex needs more than text and metadata
to rebuild a node (its relationships, its templates, the id of the document it came from);
that is stored in keys starting with :data:`RESERVED_PREFIX`, which every read that hands
metadata to a user strips with :func:`user_metadata`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

RESERVED_PREFIX = "_tasb_"
"""Metadata keys starting with this belong to langchain-tasb, not to the user."""


def is_reserved(key: str) -> bool:
    """Whether ``key`` is one of langchain-tasb's own record keys."""
    return key.startswith(RESERVED_PREFIX)


def user_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``metadata`` without langchain-tasb's reserved keys (a new dict; ``{}`` for None)."""
    return {key: value for key, value in (metadata or {}).items() if not is_reserved(key)}


def reserved_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only langchain-tasb's reserved keys of ``metadata`` (what :func:`user_metadata` drops)."""
    return {key: value for key, value in (metadata or {}).items() if is_reserved(key)}
