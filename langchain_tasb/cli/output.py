"""Printing text that came from indexed files without letting it drive the terminal.

Indexed text may hold control sequences a terminal obeys; everything the CLI prints for people
goes through :func:`safe_text`, JSON through :func:`dumps_json`.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, the C1 controls (U+0080 to U+009F: some terminals
# read U+009B as CSI), and the bidi embeddings/overrides/isolates that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What json.dumps(..., ensure_ascii=False) leaves raw: it escapes only U+0000 to U+001F.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


_NAMED = {"\r": "\\r", "\n": "\\n"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, *, multiline: bool = True) -> str:
    r"""``str(text)`` with terminal control characters shown as escapes (``\x1b``, ``\u202e``).

    Tab and newline are kept (newline only when ``multiline``); other C0/C1 controls, DEL
    and the bidi overrides are replaced by their Python escape.

    Args:
        text: What to print (anything; it is turned into a string).
        multiline: Keep newlines; False escapes them too, for one-line fields.
    """
    pattern = _UNSAFE if multiline else _UNSAFE_ONE_LINE
    return pattern.sub(_escape, str(text))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps_json(value: Any) -> str:
    r"""``value`` as indented JSON, non-ASCII text readable, no control character raw.

    DEL, the C1 controls and the bidi overrides, which ``json.dumps`` leaves raw, are
    written as ``\uXXXX`` (only inside strings, so the JSON means the same).
    """
    return _UNSAFE_IN_JSON.sub(_json_escape, json.dumps(value, ensure_ascii=False, indent=2))
