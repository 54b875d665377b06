"""The visible text of an HTML page, parsed by Lexbor (selectolax), an HTML5 parser in C.

Block elements left open very deep cost HTML5 parsers quadratic time, so a page nested deeper
than :data:`MAX_DEPTH` is read by a linear tag stripper instead.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from selectolax.lexbor import LexborHTMLParser

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

MAX_DEPTH = 512
"""Pages whose tags nest deeper than this are stripped of tags instead of parsed."""

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")
# Void tags, or closed by their next sibling: no depth of their own.
_VOID_TAGS = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "p", "li", "dd", "dt", "option", "tr", "td", "th",
    }
)  # fmt: skip

_SKIPPED_TAGS = frozenset({"script", "style", "head", "noscript", "template"})
_PARAGRAPH_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "details", "dialog", "div", "dl",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "ul",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"br", "dd", "dt", "li", "tr", "caption", "option"})
_CELL_TAGS = frozenset({"td", "th"})
_PARAGRAPH_BREAK = "\x00P"  # markers, resolved once the whole text is known
_LINE_BREAK = "\x00L"
_BREAKS = re.compile(r"(?<![ \t])[ \t]*(?:\x00[PL][ \t]*)+")  # the lookbehind keeps it linear


def extract_text(page: str) -> tuple[str, str]:
    """The visible text of an HTML page and its ``<title>``.

    Args:
        page: The decoded page.

    Returns:
        ``(text, title)``: blocks separated by blank lines, list items and ``<br>`` by line
        breaks, whitespace collapsed outside ``<pre>``, ``<head>``, scripts and styles left
        out; the title ("" if none).
    """
    page = page.replace("\x00", "")
    if _nesting_depth(page) > MAX_DEPTH:
        return _strip_tags(page), ""
    tree = LexborHTMLParser(page)
    title = tree.css_first("title")
    parts: list[str] = []
    if tree.root is not None:
        _collect(tree.root, parts)
    joined = _BREAKS.sub(lambda m: "\n\n" if _PARAGRAPH_BREAK in m[0] else "\n", "".join(parts))
    text = re.sub(r"\n{3,}", "\n\n", joined).strip()
    return text, " ".join(title.text().split()) if title is not None else ""


def _collect(root: LexborNode, parts: list[str]) -> None:
    """Append the text under ``root`` to ``parts``, with break markers around blocks."""
    pre = 0
    node: LexborNode | None = root
    while node is not None:
        if node.is_text_node:
            data = node.text_content or ""
            parts.append(data if pre else re.sub(r"\s+", " ", data))
        elif node.is_element_node and node.tag not in _SKIPPED_TAGS:
            pre += node.tag == "pre"
            parts.append(_break(node.tag))
            if node.first_child is not None:
                node = node.first_child
                continue
            parts.append(_leave(node.tag))
        while node is not root and node.next is None:  # climb out of finished elements
            node = node.parent
            if node is None:
                return
            pre -= node.tag == "pre"
            parts.append(_leave(node.tag))
        node = None if node is root else node.next


def _break(tag: str | None) -> str:
    if tag in _PARAGRAPH_TAGS:
        return _PARAGRAPH_BREAK
    return _LINE_BREAK if tag in _LINE_TAGS else ""


def _leave(tag: str | None) -> str:
    return (" " if tag in _CELL_TAGS else "") + _break(tag)


def _nesting_depth(page: str) -> int:
    """How deep the page's start tags nest, counted in one linear pass (an upper bound)."""
    depth = deepest = 0
    for match in _TAG.finditer(page):
        if match.group(1):
            depth = max(0, depth - 1)
        elif match.group(2).lower() not in _VOID_TAGS:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def _strip_tags(page: str) -> str:
    """The text of a page without parsing it: scripts and styles cut, tags dropped, linear."""
    kept: list[str] = []
    lower = page.lower()
    at = 0
    while (start := _next_raw_text(lower, at)) >= 0:
        kept.append(page[at:start])
        tag = "script" if lower.startswith("<script", start) else "style"
        end = lower.find(f"</{tag}", start)
        if end < 0:
            at = len(page)
            break
        at = lower.find(">", end)
        at = len(page) if at < 0 else at + 1
    kept.append(page[at:])
    text = re.sub(r"<[^<>]*>", " ", "".join(kept))  # [^<>] keeps it linear on unclosed tags
    return " ".join(html.unescape(text).split())


def _next_raw_text(lower: str, at: int) -> int:
    found = [i for i in (lower.find("<script", at), lower.find("<style", at)) if i >= 0]
    return min(found, default=-1)
