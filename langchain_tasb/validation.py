"""Input checks shared by the embedding and storage sides: errors that name the position."""

from __future__ import annotations

import reprlib
from typing import Any


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


def echo(value: object, limit: int = 200) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters.

    Safe on hostile input: neither deep nesting nor a huge integer can make it fail or grow.
    """
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
