"""The visible text of an HTML page, in time linear in its length whatever the markup.

The standard library's ``html.parser`` rescans from the start of an unterminated construct
each time it looks again, so pages such as ``"<a b='" * n`` or ``"<!--" * n`` take time
quadratic in their length. :func:`extract_text` tokenizes with forward searches only: each
search either consumes what it scanned or finds that nothing more of its kind follows, which
it remembers, so the whole page is scanned a bounded number of times.

Tokens follow HTML's rules where they matter for text: comments, ``<!...>`` and ``<?...>``
declarations, start and end tags (quoted attribute values may hold ``>``), raw text inside
``<script>`` and ``<style>``, escaped text inside ``<title>`` and ``<textarea>``. A ``<``
that starts no tag is text; a construct cut off by the end of the file is dropped.
"""

from __future__ import annotations

import html
import re

__all__ = ["extract_text"]

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
_RAW_TEXT_TAGS = frozenset({"script", "style"})  # no markup inside, no character references
_ESCAPED_TEXT_TAGS = frozenset({"title", "textarea"})  # no markup inside
_PARAGRAPH_BREAK = "\x00P"  # markers, resolved once the whole text is known
_LINE_BREAK = "\x00L"

_TAG_NAME = re.compile(r"</?([A-Za-z][^\s/>\x00]*)")
_TAG_STOP = re.compile(r"[>\"']")
_BREAKS = re.compile(r"(?<![ \t])[ \t]*(?:\x00[PL][ \t]*)+")  # the lookbehind keeps it linear


class _Searcher:
    """Forward ``str.find`` over one text that remembers what is not there any more."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.absent: dict[str, int] = {}  # needle -> a position after which it never occurs
        self.closers: dict[str, re.Pattern[str]] = {}

    def find(self, needle: str, start: int) -> int:
        if start >= self.absent.get(needle, len(self.text) + 1):
            return -1
        found = self.text.find(needle, start)
        if found < 0:
            self.absent[needle] = start
        return found

    def find_close_tag(self, tag: str, start: int) -> tuple[int, int]:
        """Where ``</tag ...>`` starts and ends after ``start``, or ``(-1, -1)``."""
        key = f"</{tag}"
        if start >= self.absent.get(key, len(self.text) + 1):
            return -1, -1
        pattern = self.closers.setdefault(tag, re.compile(rf"</{tag}(?=[\s/>])", re.IGNORECASE))
        match = pattern.search(self.text, start)
        if match is None:
            self.absent[key] = start
            return -1, -1
        end = self.find(">", match.end())
        return (match.start(), end + 1) if end >= 0 else (-1, -1)


class _TextExtractor:
    """Collect the visible text of an HTML page, with blocks as line or paragraph breaks."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skipping: dict[str, int] = dict.fromkeys(_SKIPPED_TAGS, 0)
        self._pre = 0
        self._in_title = False

    def start_tag(self, tag: str) -> None:
        if tag == "body":  # a <head> that was never closed ends here
            self._skipping["head"] = 0
        elif tag == "title":
            self._in_title = True
        if tag in _SKIPPED_TAGS:
            self._skipping[tag] += 1
        elif tag == "pre":
            self._pre += 1
        self._break(tag)

    def end_tag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIPPED_TAGS:
            self._skipping[tag] = max(0, self._skipping[tag] - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _CELL_TAGS:
            self.parts.append(" ")
        self._break(tag)

    def data(self, data: str) -> None:
        data = data.replace("\x00", "")
        if self._in_title:
            self.title.append(data)
        if any(self._skipping.values()):
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH_TAGS:
            self.parts.append(_PARAGRAPH_BREAK)
        elif tag in _LINE_TAGS:
            self.parts.append(_LINE_BREAK)

    def text(self) -> str:
        """The collected text, with runs of breaks merged and lines stripped."""
        joined = _BREAKS.sub(_merge_breaks, "".join(self.parts))
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


def _merge_breaks(match: re.Match[str]) -> str:
    return "\n\n" if _PARAGRAPH_BREAK in match.group(0) else "\n"


def extract_text(page: str) -> tuple[str, str]:
    """The visible text of an HTML page and its ``<title>``.

    Args:
        page: The decoded page.

    Returns:
        ``(text, title)``: blocks separated by blank lines, list items and ``<br>`` by line
        breaks, whitespace collapsed outside ``<pre>``; the title with its whitespace
        collapsed ("" if none).
    """
    out = _TextExtractor()
    search = _Searcher(page)
    pos = 0
    while pos < len(page):
        lt = search.find("<", pos)
        if lt < 0:
            out.data(html.unescape(page[pos:]))
            break
        if lt > pos:
            out.data(html.unescape(page[pos:lt]))
        pos = _markup(page, lt, search, out)
    return out.text(), " ".join("".join(out.title).split())


def _markup(page: str, lt: int, search: _Searcher, out: _TextExtractor) -> int:
    """Handle what starts with the ``<`` at ``lt``; return where the text goes on."""
    end = len(page)
    if page.startswith("<!--", lt):
        close = search.find("-->", lt + 4)
        return end if close < 0 else close + 3
    if page.startswith(("<!", "<?"), lt) or (
        page.startswith("</", lt) and not _TAG_NAME.match(page, lt)
    ):
        close = search.find(">", lt + 2)
        return end if close < 0 else close + 1
    name = _TAG_NAME.match(page, lt)
    if name is None:  # "<" then a space, a digit...: text
        out.data("<")
        return lt + 1
    close = _tag_end(page, name.end(), search)
    if close < 0:
        return end
    tag = name.group(1).lower()
    if page[lt + 1] == "/":
        out.end_tag(tag)
        return close
    out.start_tag(tag)
    if tag in _RAW_TEXT_TAGS or tag in _ESCAPED_TEXT_TAGS:
        start, after = search.find_close_tag(tag, close)
        body = page[close:] if start < 0 else page[close:start]
        out.data(body if tag in _RAW_TEXT_TAGS else html.unescape(body))
        if start < 0:
            return end
        out.end_tag(tag)
        return after
    return close


def _tag_end(page: str, pos: int, search: _Searcher) -> int:
    """Just past the ``>`` closing a tag whose attributes start at ``pos``, or -1."""
    start = pos
    while True:
        stop = _TAG_STOP.search(page, pos)
        if stop is None:
            return -1
        if stop.group() == ">":
            return stop.end()
        quote = search.find(stop.group(), stop.end())
        if quote < 0:  # an unclosed quote: the tag ends at its first ">" after all
            close = search.find(">", start)
            return -1 if close < 0 else close + 1
        pos = quote + 1
