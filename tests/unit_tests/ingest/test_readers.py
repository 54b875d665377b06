from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from langchain_tasb.ingest.files import FileEntry, ScanStats, iter_files
from langchain_tasb.ingest.readers import (
    MAX_DEPTH,
    MalformedRecordError,
    Record,
    UnreadableFileError,
    read_records,
)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A folder with one of everything; an ``outside`` folder next to it."""
    root = tmp_path / "root"
    write(root / "a.txt", "alpha")
    write(root / "b.md", "# beta")
    write(root / "c.rst", "gamma\n=====")
    write(root / "page.html", "<p>page</p>")
    write(root / "data.jsonl", '{"text": "one"}\n')
    write(root / "docs" / "d.md", "delta")
    write(root / "docs" / "sub" / "e.txt", "epsilon")
    write(root / "docs" / "sub" / "f.htm", "<p>phi</p>")
    write(root / ".hidden" / "x.txt", "hidden folder")
    write(root / ".secret.txt", "hidden file")
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(root / "notes.docx", "unsupported")
    write(root / "bin.txt", b"text\x00with a NUL")
    write(tmp_path / "outside" / "o.txt", "outside")
    (root / "link_out.txt").symlink_to(tmp_path / "outside" / "o.txt")
    (root / "linkdir_out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "docs" / "loop").symlink_to(root / "docs", target_is_directory=True)
    (root / "up").symlink_to(root, target_is_directory=True)
    (root / "self.txt").symlink_to(root / "self.txt")
    (root / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    (root / "alias.txt").symlink_to(root / "a.txt")
    return root


INSIDE = [
    "a.txt",
    "b.md",
    "c.rst",
    "data.jsonl",
    "docs/d.md",
    "docs/sub/e.txt",
    "docs/sub/f.htm",
    "page.html",
]


def relpaths(
    roots: list[str | Path], stats: ScanStats | None = None, **kwargs: object
) -> list[str]:
    return [entry.relpath for entry in iter_files(roots, stats=stats, **kwargs)]  # type: ignore[arg-type]


def test_walks_sorted_and_counts_what_it_leaves_out(tree: Path) -> None:
    stats = ScanStats()
    entries = list(iter_files([tree], stats=stats))
    assert [e.relpath for e in entries] == INSIDE
    assert all(e.root == tree.resolve() for e in entries)
    assert all(e.path == (tree / e.relpath).resolve() for e in entries)
    assert stats == ScanStats(
        files=8,
        hidden=2,
        unsupported=2,  # image.png, notes.docx
        binary=1,
        outside_symlinks=2,  # link_out.txt, linkdir_out
        excluded=0,
        broken_symlinks=2,  # self.txt, dangling.txt
        duplicates=3,  # alias.txt -> a.txt, and the loops docs/loop -> docs and up -> root
    )


def test_follow_symlinks_reaches_outside(tree: Path) -> None:
    stats = ScanStats()
    found = relpaths([tree], stats, follow_symlinks=True)
    # linkdir_out/o.txt is the file link_out.txt already gave.
    assert found == sorted([*INSIDE, "link_out.txt"])
    assert stats.outside_symlinks == 0
    assert stats.duplicates == 4


def test_scan_is_deterministic(tree: Path) -> None:
    assert relpaths([tree]) == relpaths([tree])


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (["**/*.md"], [], ["b.md", "docs/d.md"]),
        (["*.md"], [], ["b.md", "docs/d.md"]),  # .gitignore: no "/", any depth
        (["docs/*"], [], ["docs/d.md", "docs/sub/e.txt", "docs/sub/f.htm"]),
        (["docs/**/*.txt"], [], ["docs/sub/e.txt"]),
        (["docs"], [], ["docs/d.md", "docs/sub/e.txt", "docs/sub/f.htm"]),
        ([], ["docs"], ["a.txt", "b.md", "c.rst", "data.jsonl", "page.html"]),
        ([], ["**/sub"], ["a.txt", "b.md", "c.rst", "data.jsonl", "docs/d.md", "page.html"]),
        ([], ["*.txt", "*.htm?"], ["b.md", "c.rst", "data.jsonl", "docs/d.md", "docs/sub/f.htm"]),
        (["docs/*"], ["**/e.txt"], ["docs/d.md", "docs/sub/f.htm"]),
        (["[ab].*"], [], ["a.txt", "b.md"]),
        (["[!ab].*"], [], ["c.rst", "docs/d.md", "docs/sub/e.txt", "docs/sub/f.htm"]),
        (["/[!ab].*"], [], ["c.rst"]),  # a leading "/" anchors at the root
        (["docs/*.md"], [], ["docs/d.md"]),  # with a "/", anchored; "*" stops at "/"
        ([], ["docs/", "!docs/d.md"], ["a.txt", "b.md", "c.rst", "data.jsonl", "page.html"]),
        (
            [],
            ["*.md", "!b.md"],
            [
                "a.txt",
                "b.md",
                "c.rst",
                "data.jsonl",
                "docs/sub/e.txt",
                "docs/sub/f.htm",
                "page.html",
            ],
        ),
    ],
)
def test_include_and_exclude_globs(
    tree: Path, include: list[str], exclude: list[str], expected: list[str]
) -> None:
    stats = ScanStats()
    assert relpaths([tree], stats, include=include, exclude=exclude) == expected
    assert stats.excluded > 0


def test_file_root_and_several_roots(tree: Path, tmp_path: Path) -> None:
    entries = list(iter_files([tree / "docs", tree / "a.txt", tmp_path / "outside"]))
    assert [(e.root.name, e.relpath) for e in entries] == [
        ("docs", "d.md"),
        ("docs", "sub/e.txt"),
        ("docs", "sub/f.htm"),
        ("a.txt", "a.txt"),
        ("outside", "o.txt"),
    ]
    # A root that is a file is yielded even if include does not name it... unless excluded.
    assert relpaths([str(tree / "a.txt")], exclude=["*.txt"]) == []
    # A bare path works as a single root; overlapping roots give each file once.
    stats = ScanStats()
    assert relpaths([tree, tree / "docs"], stats) == INSIDE
    assert [e.relpath for e in iter_files(tree / "docs")] == ["d.md", "sub/e.txt", "sub/f.htm"]  # type: ignore[arg-type]


def test_symlink_inside_the_roots_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "real" / "x.md", "x")
    (root / "a_link").symlink_to(root / "real", target_is_directory=True)
    # The link sorts first, so the file is found through it, once.
    assert relpaths([root]) == ["a_link/x.md"]


def test_symlinks_to_hidden_or_excluded_targets_are_left_out(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / ".aws" / "credentials", "aws_secret_access_key = SECRET")
    write(home / "secrets" / "key.txt", "private key")
    write(home / "notes.txt", "notes")
    pkg = home / "Downloads" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "README.txt").symlink_to("../../.aws/credentials")
    (pkg / "KEY.txt").symlink_to("../../secrets/key.txt")
    (pkg / "cfg").symlink_to("../../.aws", target_is_directory=True)
    stats = ScanStats()
    assert relpaths([home], stats, exclude=["**/.aws/**", "secrets"]) == ["notes.txt"]
    assert stats.hidden == 1 + 2  # .aws itself, and the two links that lead into it
    assert stats.excluded == 1 + 1  # secrets itself, and KEY.txt that leads into it
    assert relpaths([home]) == ["Downloads/pkg/KEY.txt", "notes.txt"]  # hidden without exclude
    # Outside the roots (followed on request), the target's own path is checked too.
    outside = tmp_path / "docs"
    (outside / "sub").mkdir(parents=True)
    write(outside / "ok.txt", "fine")
    (outside / "creds.txt").symlink_to(home / ".aws" / "credentials")
    (outside / "sub" / "k.txt").symlink_to(home / "secrets" / "key.txt")
    (outside / "n.txt").symlink_to(home / "notes.txt")
    found = relpaths([outside], follow_symlinks=True, exclude=["**/secrets/**"])
    assert found == ["n.txt", "ok.txt"]


def deep_chain(folder: Path, levels: int = 20, width: int = 250) -> None:
    """Folders nested past PATH_MAX (made relative to a descriptor), a file at the bottom."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        for level in range(levels):
            name = chr(ord("a") + level) * width
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("f.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(out, b"too deep to reach")
        os.close(out)
    finally:
        os.close(fd)


def test_a_folder_that_cannot_be_listed_is_counted_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a.txt", "alpha")
    write(root / "z.txt", "zeta")
    (root / "deep").mkdir()
    deep_chain(root / "deep")
    stats = ScanStats()
    assert relpaths([root], stats) == ["a.txt", "z.txt"]
    [unlisted] = stats.unlisted
    assert unlisted.root == root.resolve()
    assert unlisted.relpath.startswith("deep/")
    assert "File name too long" in unlisted.reason


def test_missing_root_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        iter_files([tmp_path / "nope"])


# -- reading ----------------------------------------------------------------------------------


def entry_for(path: Path) -> FileEntry:
    return FileEntry(path=path.resolve(), root=path.parent.resolve(), relpath=path.name)


def test_text_formats_are_one_record(tmp_path: Path) -> None:
    for name in ("a.txt", "b.md", "c.rst"):
        path = write(tmp_path / name, "\ufeff  Some text.\n\nMore text.\n")
        [record] = read_records(entry_for(path))
        # Only the BOM goes: the text is not stripped, so chunk offsets point into the file.
        assert record == Record(
            text="  Some text.\n\nMore text.\n",
            metadata={"source": str(path.resolve())},
            key="",
        )


def test_blank_file_gives_no_record(tmp_path: Path) -> None:
    assert read_records(entry_for(write(tmp_path / "empty.txt", " \n"))) == []


def test_latin1_is_guessed_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "old.txt", "café crème".encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="langchain_tasb.ingest.readers"):
        [record] = read_records(entry_for(path))
    assert record.text == "café crème"
    assert "not valid UTF-8" in caplog.text
    assert "decoding it as cp1252" in caplog.text


@pytest.mark.parametrize("name", ["quotes.txt", "quotes.html"])
def test_windows_1252_quotes_read_as_quotes(tmp_path: Path, name: str) -> None:
    # Decoded as Latin-1, these bytes (0x93 0x94 0x92 0x96) were C1 control characters.
    text = "He said \u201cyes\u201d \u2013 it\u2019s the caf\xe9\u2019s."
    path = write(tmp_path / name, text.encode("cp1252"))
    [record] = read_records(entry_for(path))
    assert record.text == text
    assert not any("\x80" <= ch <= "\x9f" for ch in record.text)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_with_or_without_bom_is_not_guessed(
    tmp_path: Path, bom: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    text = "He said \u201cyes\u201d \u2013 \u041f\u0440\u0438\u0432\u0435\u0442 \U0001f642"
    path = write(tmp_path / "new.txt", bom + text.encode("utf-8"))
    with caplog.at_level(logging.WARNING, logger="langchain_tasb.ingest.readers"):
        [record] = read_records(entry_for(path))
    assert record.text == text
    assert not caplog.records


def test_utf8_is_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "new.txt", "café crème")
    with caplog.at_level(logging.WARNING, logger="langchain_tasb.ingest.readers"):
        [record] = read_records(entry_for(path))
    assert record.text == "café crème"
    assert not caplog.records


HTML = """<!DOCTYPE html>
<html><head><title>The  Title</title>
<style>body { color: red }</style>
<script>var secret = "script text";</script>
</head>
<body>
<h1>Heading &amp; more</h1>
<p>First   paragraph
   over two lines.</p>
<script>alert("also hidden")</script>
<div>Second <b>bold</b> paragraph &lt;tag&gt; &eacute;t&#233;.</div>
<ul><li>one</li><li>two</li></ul>
<pre>keep
  this   spacing</pre>
<!-- a comment -->
<table><tr><td>a</td><td>b</td></tr></table>
</body></html>
"""


def test_html_visible_text(tmp_path: Path) -> None:
    path = write(tmp_path / "page.html", HTML)
    [record] = read_records(entry_for(path))
    assert record.text == (
        "Heading & more\n\n"
        "First paragraph over two lines.\n\n"
        "Second bold paragraph <tag> été.\n\n"
        "one\ntwo\n\n"
        "keep\n  this   spacing\n\n"
        "a b"
    )
    assert record.metadata == {"source": str(path.resolve()), "title": "The Title"}
    for hidden in ("script text", "also hidden", "color", "a comment", "The Title"):
        assert hidden not in record.text


def test_html_with_unclosed_head_and_declared_charset(tmp_path: Path) -> None:
    html = '<html><head><meta charset="windows-1252"><body><p>caf\xe9 \x93quoted\x94</p>'
    path = write(tmp_path / "old.htm", html.encode("latin-1"))
    [record] = read_records(entry_for(path))
    assert record.text == "café \u201cquoted\u201d"


@pytest.mark.parametrize(
    ("pattern", "repeat"),
    [
        ("<a", 20_000),
        ("<!--", 20_000),
        ("<a b='", 5_000),
        ('<a b="', 5_000),
        ("<![CDATA[", 20_000),
        ("</", 40_000),
        ("<?", 40_000),
        ("<pre>" + " " * 20_000 + "x", 5),
        ("<div>", 100_000),  # block tags left open: quadratic in any HTML5 tree builder
        ("<span><ul>x", 50_000),
    ],
)
def test_html_reading_stays_linear_on_hostile_markup(
    tmp_path: Path, pattern: str, repeat: int
) -> None:
    # html.parser took seconds on these (and minutes at ten times the size): quadratic.
    path = write(tmp_path / "hostile.html", pattern * repeat)
    began = time.perf_counter()
    records = read_records(entry_for(path))
    assert time.perf_counter() - began < 1.0
    assert all("\x00" not in r.text for r in records)


def test_html_nested_past_max_depth_is_read_as_text(tmp_path: Path) -> None:
    deep = "<div>" * (MAX_DEPTH + 1)
    page = f"<p>a &amp; b</p>{deep}<script>hidden</script>deep <b>text</b><style>x{{}}</style>"
    [record] = read_records(entry_for(write(tmp_path / "deep.html", page)))
    assert record.text == "a & b deep text"
    shallow = "<div>" * MAX_DEPTH + "<p>kept</p><p>apart"
    [record] = read_records(entry_for(write(tmp_path / "shallow.html", shallow)))
    assert record.text == "kept\n\napart"  # parsed: paragraphs stay paragraphs


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("a <b c", "a"),  # a tag cut off at the end of the file: dropped
        ("a <!-- never closed", "a"),
        ("x < y and y > z", "x < y and y > z"),
        ("<p title='a>b'>quoted &gt; kept</p>", "quoted > kept"),
        ("a<p title='unclosed>text</p>", "a"),  # HTML5: the quote runs to the end, as in browsers
        ("<script>if (a < b) { x = '</p>' }</script>after", "after"),
        ("<SCRIPT>hidden</Script >shown", "shown"),
        ("<style>p {}</style><p>one</p><p>two", "one\n\ntwo"),
        ("a<br/>b<br>c", "a\nb\nc"),
        ("<title>T &amp; U</title><p>body", "body"),  # HTML5 puts it in <head>: metadata only
        ("<![CDATA[x]]>visible", "visible"),
        ("<!doctype html><?xml?>text", "text"),
        ("a\x00b<p>c", "ab\n\nc"),
        ("&#0;&#xd800;&amp", "\ufffd\ufffd&"),
    ],
)
def test_html_edge_cases(tmp_path: Path, html: str, text: str) -> None:
    path = write(tmp_path / "edge.html", html)
    assert [r.text for r in read_records(entry_for(path))] == [text]


def test_jsonl_beir_records(tmp_path: Path) -> None:
    lines = [
        {"_id": "d1", "title": "Title", "text": "Body.", "metadata": {"year": 2020, "x": None}},
        {"_id": 7, "title": "", "text": "No title.", "metadata": {"tags": ["a", "b"]}},
        {"_id": "d3", "text": "No title key."},
    ]
    path = write(tmp_path / "corpus.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    source = str(path.resolve())
    assert read_records(entry_for(path)) == [
        Record(
            text="Title Body.",
            metadata={"year": 2020, "doc_id": "d1", "title": "Title", "source": source, "line": 1},
            key="d1",
        ),
        Record(
            text="No title.",
            metadata={
                "tags": '["a", "b"]',
                "doc_id": "7",
                "title": "",
                "source": source,
                "line": 2,
            },
            key="7",
        ),
        Record(
            text="No title key.",
            metadata={"doc_id": "d3", "title": "", "source": source, "line": 3},
            key="d3",
        ),
    ]


def test_jsonl_plain_records(tmp_path: Path) -> None:
    lines = [
        '{"text": "first", "metadata": {"lang": "en", "nested": {"b": 1, "a": 2}, "ok": true}}',
        "",
        '{"text": "  second  ", "id": "s2", "extra": "ignored"}',
        '{"text": "   "}',
    ]
    path = write(tmp_path / "plain.jsonl", "\n".join(lines))
    source = str(path.resolve())
    assert read_records(entry_for(path)) == [
        Record(
            text="first",
            metadata={
                "lang": "en",
                "nested": '{"a": 2, "b": 1}',
                "ok": True,
                "source": source,
                "line": 1,
            },
            key="line:1",
        ),
        Record(text="second", metadata={"doc_id": "s2", "source": source, "line": 3}, key="s2"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"metadata": {}}', '"text" must be a string, got nothing'),
        ('{"text": 3}', '"text" must be a string, got a number'),
        ('{"text": "x", "metadata": [1]}', '"metadata" must be an object, got an array'),
        ('{"_id": null, "text": "x"}', '"_id" must be a string or an integer, got null'),
        ('{"_id": "a", "title": 1, "text": "x"}', '"title" must be a string, got a number'),
    ],
)
def test_jsonl_bad_line_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n' + line + "\n")
    with pytest.raises(MalformedRecordError) as info:
        read_records(entry_for(path))
    message = str(info.value)
    assert str(path.resolve()) in message
    assert "line 3" in message
    assert reason in message
    assert info.value.line == 3
    assert isinstance(info.value, UnreadableFileError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": "hello \\ud800 world"}', '"text" holds a lone surrogate (\\ud800)'),
        ('{"text": "x", "metadata": {"k": "\\udc00"}}', '"metadata" holds a lone surrogate'),
        ('{"text": "x", "metadata": {"\\udc00": 1}}', '"metadata" holds a lone surrogate'),
        ('{"text": "x", "id": "a\\ud800"}', '"id" holds a lone surrogate'),
        ('{"_id": "d\\ud800", "text": "x"}', '"_id" holds a lone surrogate'),
        ("[" * 100_000, "nested too deeply"),
        ('{"text": ' * 100_000, "nested too deeply"),
    ],
)
def test_jsonl_line_with_surrogates_or_deep_nesting_is_malformed(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n' + line + "\n")
    with pytest.raises(MalformedRecordError) as info:
        read_records(entry_for(path))
    assert str(path.resolve()) in str(info.value)
    assert info.value.line == 2
    assert reason in info.value.reason


def test_jsonl_lines_split_on_newline_only(tmp_path: Path) -> None:
    # U+2028, U+2029 and U+0085 are valid inside JSON strings; str.splitlines() splits on them.
    texts = ["one\u2028two", "three\u2029four", "five\x85six", "seven\x0bx\x0cy\x1cz"]
    body = "\r\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts) + "\n"
    path = write(tmp_path / "seps.jsonl", body)
    records = read_records(entry_for(path))
    assert [r.text for r in records] == texts
    assert [r.metadata["line"] for r in records] == [1, 2, 3, 4]


def test_html_the_old_parser_choked_on_reads_as_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.html", "<![<![")  # an AssertionError in html.parser
    assert read_records(entry_for(path)) == []


def test_folder_named_like_a_file_is_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "x.txt"
    folder.mkdir()
    with pytest.raises(UnreadableFileError, match=r"cannot read .*x\.txt") as info:
        read_records(entry_for(folder))
    assert info.value.path == folder.resolve()


def test_permission_error_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "locked.md", "secret")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(UnreadableFileError, match="Permission denied") as info:
        read_records(entry_for(path))
    assert info.value.reason == "Permission denied"


def test_unsupported_extension_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.docx", "x")
    with pytest.raises(ValueError, match=r"unsupported file type '\.docx'"):
        read_records(entry_for(path))


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF whose pages each show one line of Helvetica text."""
    count = len(pages)
    font = 3 + 2 * count
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    return out + f"startxref\n{xref}\n%%EOF\n".encode()


def test_pdf_without_pypdf_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "doc.pdf", minimal_pdf(["Hello"]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes ``import pypdf`` fail
    with pytest.raises(ImportError, match=r"pip install langchain-tasb\[pdf\]"):
        read_records(entry_for(path))


def test_pdf_is_found_although_binary(tmp_path: Path) -> None:
    write(tmp_path / "doc.pdf", minimal_pdf(["Hello"]) + b"\x00")
    assert relpaths([tmp_path]) == ["doc.pdf"]


def test_pdf_pages_are_joined(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = write(tmp_path / "doc.pdf", minimal_pdf(["First page", "Second page"]))
    [record] = read_records(entry_for(path))
    assert record.text == "First page\n\nSecond page"
    assert record.metadata == {"source": str(path.resolve()), "pages": 2}


def test_damaged_pdf_is_unreadable(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = write(tmp_path / "broken.pdf", b"%PDF-1.4\nthis is not a pdf")
    with pytest.raises(UnreadableFileError, match="not a readable PDF"):
        read_records(entry_for(path))


@pytest.fixture
def ignoring(tmp_path: Path) -> Path:
    """A git-like tree: a root .gitignore, a nested one, an ignored folder, a negation."""
    root = tmp_path / "repo"
    write(root / ".gitignore", "# build output\n*.log.md\nbuild/\ndrafts/*.md\n!drafts/keep.md\n")
    write(root / "a.md", "kept")
    write(root / "debug.log.md", "ignored by *.log.md")
    write(root / "build" / "out.md", "in an ignored folder")
    write(root / "drafts" / "old.md", "ignored by drafts/*.md")
    write(root / "drafts" / "keep.md", "re-included by !drafts/keep.md")
    write(root / "sub" / ".gitignore", "/local.md\nnotes/\n")
    write(root / "sub" / "local.md", "ignored by sub/.gitignore, relative to sub/")
    write(root / "sub" / "notes" / "n.md", "ignored folder of the nested file")
    write(root / "sub" / "deeper" / "local.md", "not ignored: /local.md is anchored at sub/")
    write(root / "local.md", "not ignored: the nested file does not reach up")
    write(root / "sub" / "deeper" / "x.log.md", "ignored by the root's *.log.md")
    return root


def test_gitignore_files_under_a_root_are_honoured(ignoring: Path) -> None:
    stats = ScanStats()
    assert relpaths([ignoring], stats) == [
        "a.md",
        "drafts/keep.md",
        "local.md",
        "sub/deeper/local.md",
    ]
    # debug.log.md, build/, drafts/old.md, sub/local.md, sub/notes/, sub/deeper/x.log.md
    assert stats.ignored == 6
    assert stats.hidden == 2  # the .gitignore files are never documents
    assert stats.excluded == 0


def test_no_gitignore_indexes_everything(ignoring: Path) -> None:
    stats = ScanStats()
    assert relpaths([ignoring], stats, gitignore=False) == [
        "a.md",
        "build/out.md",
        "debug.log.md",
        "drafts/keep.md",
        "drafts/old.md",
        "local.md",
        "sub/deeper/local.md",
        "sub/deeper/x.log.md",
        "sub/local.md",
        "sub/notes/n.md",
    ]
    assert stats.ignored == 0


def test_only_gitignore_files_under_the_root_apply(ignoring: Path) -> None:
    # sub/.gitignore is the root's own; the root's parent's (*.log.md) is not read.
    assert relpaths([ignoring / "sub"]) == ["deeper/local.md", "deeper/x.log.md"]
