"""Read the files :func:`~langchain_tasb.ingest.files.iter_files` finds into text records.

Text is strict UTF-8, else charset-normalizer's guess (logged). Metadata values are scalars, as
Chroma requires: JSON Lines lists and objects are stored as JSON text, nulls dropped; ``source``,
``line``, ``doc_id`` (and BEIR ``title``) win over a record's own keys. HTML is parsed by Lexbor
(selectolax), unless nested too deep for that (see :data:`MAX_DEPTH`).
"""

from __future__ import annotations

import html
import importlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import charset_normalizer
from selectolax.lexbor import LexborHTMLParser

from langchain_tasb.ingest.beir import corpus_doc, json_field, record_id
from langchain_tasb.ingest.files import HTML_EXTENSIONS, TEXT_EXTENSIONS

if TYPE_CHECKING:
    from pathlib import Path

    from selectolax.lexbor import LexborNode

    from langchain_tasb.ingest.files import FileEntry

logger = logging.getLogger(__name__)

MetadataValue = str | int | float | bool

MAX_DEPTH = 512
"""Pages nested deeper (quadratic for HTML5 parsers) are stripped of tags, linearly, instead."""

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
_PARAGRAPH_BREAK = "\x00P"  # markers, resolved once the whole text is known
_LINE_BREAK = "\x00L"
_ENTER = dict.fromkeys(_LINE_TAGS, _LINE_BREAK) | dict.fromkeys(_PARAGRAPH_TAGS, _PARAGRAPH_BREAK)
_LEAVE = _ENTER | {"td": " ", "th": " "}
_BREAKS = re.compile(r"(?<![ \t])[ \t]*(?:\x00[PL][ \t]*)+")  # the lookbehind keeps it linear
# A script or style runs to its end tag's ">", or to the end of the page; both scans stay linear.
_RAW_TEXT = re.compile(r"<(script|style).*?(?:</\1[^>]*>?|\Z)", re.IGNORECASE | re.DOTALL)
_TAG_SOUP = re.compile(r"<[^<>]*>")  # [^<>] keeps it linear on unclosed tags


@dataclass(frozen=True)
class Record:
    """One text to index, its scalar metadata, and its ``key`` within its file.

    ``key`` is ``""`` for one-record formats; for JSON Lines, ``_id``/``id`` or ``"line:N"``.
    """

    text: str
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    key: str = ""


class UnreadableFileError(ValueError):
    """A file (``path``) could not be read (``reason``); the caller can go on with the others."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


class MalformedRecordError(UnreadableFileError):
    """A JSON Lines line (``line``, 1-based) is not a record this package understands."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(path, f"line {line}: {reason}")
        self.line = line


def read_records(entry: FileEntry) -> list[Record]:
    """Read a file found by ``iter_files``: one record, one per JSON Lines line; none if blank.

    Raises:
        UnreadableFileError: If the file cannot be read (permissions, a folder, a broken PDF).
        MalformedRecordError: If a JSON Lines line is not a record (a ``UnreadableFileError``).
        ImportError: For a PDF, if ``pypdf`` is not installed.
        ValueError: For an unsupported extension.
    """
    reader = _READERS.get(entry.suffix)
    if reader is None:
        msg = f"unsupported file type {entry.suffix!r}: {entry.path}"
        raise ValueError(msg)
    return [record for record in reader(entry.path) if record.text.strip()]


def _text_of(path: Path) -> str:
    """The file's text: strict UTF-8, else charset-normalizer's guess (a declared charset first)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(path, exc.strerror or str(exc)) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        error = exc
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:  # no code page fits: keep every byte
        logger.warning("%s is not valid UTF-8 (%s); decoding it as Latin-1", path, error.reason)
        return data.decode("latin-1")
    # Short texts fit many code pages equally well: prefer Windows-1252, the commonest.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    guess = next((m for m in tied if "cp1252" in m.could_be_from_charset), best)
    encoding = "cp1252" if guess is not best else best.encoding
    logger.warning("%s is not valid UTF-8 (%s); decoding it as %s", path, error.reason, encoding)
    return str(guess)


def _read_text(path: Path) -> list[Record]:
    # Not stripped: chunk offsets must point into the file's own text.
    return [Record(text=_text_of(path), metadata={"source": str(path)})]


def _read_html(path: Path) -> list[Record]:
    # Blocks apart by blank lines, list items and <br> by line breaks, whitespace collapsed
    # outside <pre>; <head>, scripts and styles left out; the <title> goes to the metadata.
    page = _text_of(path).replace("\x00", "")
    metadata: dict[str, MetadataValue] = {"source": str(path)}
    if _nesting_depth(page) > MAX_DEPTH:
        return [Record(text=_strip_tags(page), metadata=metadata)]
    tree = LexborHTMLParser(page)
    parts: list[str] = []
    if tree.root is not None:
        _collect(tree.root, parts)
    joined = _BREAKS.sub(lambda m: "\n\n" if _PARAGRAPH_BREAK in m[0] else "\n", "".join(parts))
    if (title := tree.css_first("title")) is not None and (name := " ".join(title.text().split())):
        metadata["title"] = name
    return [Record(text=re.sub(r"\n{3,}", "\n\n", joined).strip(), metadata=metadata)]


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
            parts.append(_ENTER.get(node.tag or "", ""))
            if node.first_child is not None:
                node = node.first_child
                continue
            parts.append(_LEAVE.get(node.tag or "", ""))
        while node is not root and node.next is None:  # climb out of finished elements
            node = node.parent
            if node is None:
                return
            pre -= node.tag == "pre"
            parts.append(_LEAVE.get(node.tag or "", ""))
        node = None if node is root else node.next


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
    text = _TAG_SOUP.sub(" ", _RAW_TEXT.sub("", page))
    return " ".join(html.unescape(text).split())


def _read_jsonl(path: Path) -> list[Record]:
    records: list[Record] = []
    keys: set[str] = set()
    # Only "\n" ends a line: U+2028, U+2029 and U+0085 (where str.splitlines() also splits)
    # are valid inside JSON strings; a "\r" before the "\n" is whitespace to the JSON parser.
    for number, line in enumerate(_text_of(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = _parse_line(line, number, str(path))
        except ValueError as exc:  # what is wrong with the line: a MalformedRecordError
            raise MalformedRecordError(path, number, str(exc)) from None
        if record.key in keys:
            logger.warning("%s, line %d: the id %r is used twice", path, number, record.key)
        keys.add(record.key)
        records.append(record)
    return records


def _parse_line(line: str, number: int, source: str) -> Record:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        msg = f"not valid JSON ({exc.msg}, column {exc.colno})"
        raise ValueError(msg) from exc
    except RecursionError:
        msg = "nested too deeply to parse (thousands of levels of arrays or objects)"
        raise ValueError(msg) from None
    if not isinstance(obj, dict):
        msg = f"expected a JSON object, got {type(obj).__name__}"
        raise ValueError(msg)
    for name in ("_id", "id", "title", "text"):
        _check_unicode(obj.get(name), f'"{name}"')
    record = _beir_record(obj) if "_id" in obj else _plain_record(obj, number)
    for key, value in record.metadata.items():
        _check_unicode(key, '"metadata"', " in a key")
        _check_unicode(value, '"metadata"', f" in the value of {key!r}")
    record.metadata.update({"source": source, "line": number})
    return record


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_unicode(value: object, field: str, where: str = "") -> None:
    r"""Refuse a string holding a lone surrogate (a ``\ud800`` escape JSON lets through)."""
    found = _SURROGATE.search(value) if isinstance(value, str) else None
    if found is not None:
        msg = (
            f"{field} holds a lone surrogate (\\u{ord(found.group()):04x}){where} at character "
            f"{found.start()}: not valid Unicode text; fix or drop that \\u escape"
        )
        raise ValueError(msg)


def _beir_record(obj: dict[str, Any]) -> Record:
    doc_id, doc = corpus_doc(obj)
    metadata = _flat_metadata(doc.metadata)
    metadata.update({"doc_id": doc_id, "title": doc.title})
    return Record(text=doc.full_text, metadata=metadata, key=doc_id)


def _plain_record(obj: dict[str, Any], number: int) -> Record:
    # {"text", "metadata"?, "id"?}; other keys are ignored
    text = json_field(obj, "text", str, required=True)
    metadata = _flat_metadata(json_field(obj, "metadata", dict))
    key = f"line:{number}"
    if obj.get("id") is not None:
        key = record_id(obj["id"], "id")
        metadata["doc_id"] = key
    return Record(text=text.strip(), metadata=metadata, key=key)


def _flat_metadata(value: dict[str, Any]) -> dict[str, MetadataValue]:
    return {
        key: item
        if isinstance(item, str | int | float | bool)
        else json.dumps(item, sort_keys=True, ensure_ascii=False)
        for key, item in value.items()
        if item is not None
    }


def _read_pdf(path: Path) -> list[Record]:
    try:
        pypdf = importlib.import_module("pypdf")
    except ImportError as exc:
        msg = "reading PDF files needs pypdf: pip install langchain-tasb[pdf]"
        raise ImportError(msg) from exc
    try:
        reader = pypdf.PdfReader(str(path))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except OSError as exc:
        raise UnreadableFileError(path, exc.strerror or str(exc)) from exc
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files
        raise UnreadableFileError(path, f"not a readable PDF ({exc})") from exc
    metadata: dict[str, MetadataValue] = {"source": str(path), "pages": len(pages)}
    return [Record(text="\n\n".join(page for page in pages if page), metadata=metadata)]


_READERS: dict[str, Callable[[Path], list[Record]]] = {
    **dict.fromkeys(TEXT_EXTENSIONS, _read_text),
    **dict.fromkeys(HTML_EXTENSIONS, _read_html),
    ".jsonl": _read_jsonl,
    ".pdf": _read_pdf,
}
