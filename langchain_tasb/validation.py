"""Input checks shared by every writer: texts, and the metadata keys a user may not set."""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

RESERVED_PREFIX = "_tasb_"
"""Metadata keys starting with this belong to langchain-tasb, not to the user."""

RESULT_KEYS = ("score", "relevance", "fused_score", "bm25_score")
"""Metadata keys a search result sets to its scores; a user's record may not hold them."""


def check_texts(texts: object, argument: str = "texts") -> list[str]:
    """Validate a list of texts; the error names the first bad position and its type."""
    if isinstance(texts, str | bytes):
        kind = type(texts).__name__
        msg = f"{argument} must be a list of str, got a single {kind}; wrap it: [text]"
        raise TypeError(msg)
    try:
        items: list[Any] = list(texts)  # type: ignore[call-overload]
    except TypeError as exc:
        msg = f"{argument} must be a list of str, got {type(texts).__name__}"
        raise TypeError(msg) from exc
    for i, text in enumerate(items):
        check_text(text, f"{argument}[{i}]")
    return items


def check_text(text: object, where: str) -> None:
    """A str that is valid Unicode (no lone surrogates), or a TypeError/ValueError naming it."""
    if not isinstance(text, str):
        hint = "; decode it first" if isinstance(text, bytes) else ""
        msg = f"{where} must be str, got {type(text).__name__}{hint}"
        raise TypeError(msg)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        msg = f"{where} is not valid Unicode text at character {exc.start}: {exc.reason}"
        raise ValueError(msg) from exc


def user_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``metadata`` without langchain-tasb's reserved keys (a new dict; ``{}`` for None)."""
    return {k: v for k, v in (metadata or {}).items() if not k.startswith(RESERVED_PREFIX)}


def is_refused(key: object) -> bool:
    """Whether a user's metadata may not hold ``key``: a reserved or a result key."""
    return isinstance(key, str) and (key.startswith(RESERVED_PREFIX) or key in RESULT_KEYS)


def check_user_metadata(metadata: Mapping[str, Any] | None, where: str) -> None:
    """ValueError naming ``where`` when ``metadata`` holds a reserved (``_tasb_``) or result key."""
    refused = sorted(key for key in metadata or {} if is_refused(key))
    if refused:
        msg = (
            f"{where} has metadata keys {refused}: keys starting with {RESERVED_PREFIX!r} are "
            f"reserved for langchain-tasb, and {list(RESULT_KEYS)} are set on query results to "
            "the hit's scores; rename them"
        )
        raise ValueError(msg)


def drop_refused_keys(metadata: dict[str, Any]) -> list[str]:
    """Remove refused keys from ``metadata`` in place; returns the keys removed."""
    dropped = [key for key in metadata if is_refused(key)]
    for key in dropped:
        del metadata[key]
    return dropped


def echo(value: object, limit: int = 200) -> str:
    """``repr(value)`` cut to about ``limit`` characters; no nesting or huge int can break it."""
    shortener = reprlib.Repr()
    shortener.maxlevel = 3
    shortener.maxstring = shortener.maxother = limit
    shortener.maxlong = min(limit, 600)
    try:
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 2000:
            text = f"<an integer of {value.bit_length()} bits>"
        else:
            text = shortener.repr(value)
    except (ValueError, RecursionError):  # e.g. a huge int inside a list
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"
