"""A Griffe extension that renders the package's reST habits in its docstrings as Markdown.

The docstrings are Google style with two reST habits that mkdocstrings shows verbatim:
cross-reference roles (``:class:`~langchain_tasb.x.Y```) become inline code (``Y``), and
literal blocks (``.. code-block:: python`` or a paragraph ending in ``::``, then an indented
block) become fenced code blocks. Loaded by mkdocs.yml; the docstrings stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def to_markdown(text: str) -> str:
    """``text`` with reST roles as inline code and literal blocks as fenced code."""
    lines = _ROLE.sub(_role, text).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        language = None
        if stripped.startswith(".. code-block::"):
            language = stripped.removeprefix(".. code-block::").strip() or "text"
        elif stripped.endswith("::") and not stripped.startswith(".."):
            out.append(line[:-1])  # "as follows::" reads "as follows:"
            language = "python"
        if language is None:
            out.append(line)
            i += 1
            continue
        base = _indent(line)
        i += 1
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        while block and not block[0].strip():
            block.pop(0)
        if not block:
            continue
        cut = min(_indent(b) for b in block if b.strip())
        pad = " " * base
        if out and out[-1].strip() and _indent(out[-1]) == base:
            out.append("")  # a fence after a paragraph, not right under a section title
        out.append(f"{pad}```{language}")
        out.extend(pad + b[cut:] if b.strip() else "" for b in block)
        out.append(f"{pad}```")
        out.append("")
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring once the object tree is built."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Convert ``obj``'s docstring in place."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
