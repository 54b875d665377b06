"""Printing text that came from indexed files without letting it drive the terminal.

Stored text, file names, sources and ids come from files the user may not have written. A
terminal reading them raw obeys any control sequence inside: ``ESC ] 0 ; ... BEL`` retitles
the window, ``ESC [ 2 J`` clears the screen, others rewrite lines or what a later paste
sends. Everything the CLI prints for people goes through :func:`safe_text`; JSON goes
through :func:`dumps_json`.
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

    Tab and newline are kept (newline only when ``multiline``); carriage return, escape, bell,
    the other C0 and C1 controls, DEL and the bidi overrides are replaced by their Python
    escape, so the text shows what is there and the terminal obeys none of it. Printable text
    in any script is unchanged.

    Args:
        text: What to print (anything; it is turned into a string).
        multiline: Keep newlines; False escapes them too, for one-line fields.

    Returns:
        The printable string.
    """
    pattern = _UNSAFE if multiline else _UNSAFE_ONE_LINE
    return pattern.sub(_escape, str(text))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps_json(value: Any) -> str:
    r"""``value`` as indented JSON, non-ASCII text readable, no control character raw.

    ``json.dumps`` escapes U+0000 to U+001F itself; DEL, the C1 controls and the bidi
    overrides, which it leaves raw with ``ensure_ascii=False``, are written as ``\uXXXX``
    here. They can only occur inside strings, so the JSON means the same.
    """
    return _UNSAFE_IN_JSON.sub(_json_escape, json.dumps(value, ensure_ascii=False, indent=2))
