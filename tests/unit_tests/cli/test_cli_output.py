"""Terminal control sequences in stored text, sources and file names are printed escaped."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.cli import main
from langchain_tasb.cli.common import dumps_json, safe_text

if TYPE_CHECKING:
    from pathlib import Path

TITLE = "\x1b]0;pwned\x07"  # sets the terminal window title
CLEAR = "\x1b[2J"  # clears the screen
CSI8 = "\x9b2J"  # the same with the 8-bit C1 introducer
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what must never reach the terminal raw


def test_safe_text_escapes_control_characters_and_keeps_the_rest() -> None:
    assert safe_text(f"a{TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert safe_text(f"{CLEAR}x{CSI8}\x7f") == "\\x1b[2Jx\\x9b2J\\x7f"
    assert safe_text("tab\tand\nline, café, 東京 \u200f") == "tab\tand\nline, café, 東京 \u200f"
    assert safe_text("over\rwrite") == "over\\rwrite"
    assert safe_text("two\nlines", multiline=False) == "two\\nlines"
    assert safe_text("left\u202eright") == "left\\u202eright"  # a bidi override


def test_dumps_json_escapes_c1_and_del_and_round_trips() -> None:
    value = {"text": f"{TITLE}{CLEAR}{CSI8}\x7f café"}
    out = dumps_json(value)
    assert not RAW.search(out)
    assert "café" in out
    assert json.loads(out) == value


@pytest.fixture
def hostile_db(tiny_embeddings: TasbEmbeddings, tmp_path: Path) -> Path:
    db = tmp_path / "db"
    store = TasbVectorStore(
        embedding=tiny_embeddings, collection_name="tasb", persist_directory=str(db)
    )
    store.add_texts(
        [f"the logs {TITLE} rotate daily {CLEAR} and {CSI8} more", "plain text about logs"],
        [
            {"source": f"evil{TITLE}.md", "root": f"/r{CLEAR}", "chunk": 0},
            {"source": "fine.md", "root": "/r", "chunk": 0},
        ],
        ids=[f"id{CLEAR}", "id2"],
    )
    return db


@pytest.mark.parametrize(
    "command",
    [
        ["search", "logs", "-k", "2"],
        ["search", "logs", "-k", "2", "--json"],
        ["search", "logs", "-k", "2", "--mmr"],
        ["info", "--sources"],
        ["info", "--sources", "--json"],
    ],
)
def test_search_and_info_print_no_raw_control_characters(
    hostile_db: Path,
    tiny_embeddings: TasbEmbeddings,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    argv = [*command, "--db", str(hostile_db), "--model", tiny_embeddings.model_name]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not RAW.search(out), out
    if "--json" in command:
        payload = json.loads(out)
        text = json.dumps(payload)
        assert "\\u001b]0;pwned\\u0007" in text  # the data is kept, only escaped
    else:
        assert "\\x1b]0;pwned\\x07" in out  # shown, visibly


def test_index_prints_hostile_file_names_escaped(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / f"bad{TITLE}.jsonl").write_text("{not json\n")
    (docs / "good.md").write_text("some text about logs")
    db = tmp_path / f"db{CLEAR}"
    argv = ["index", str(docs), "--db", str(db), "--model", tiny_embeddings.model_name]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert not RAW.search(captured.out + captured.err), captured
    assert "bad\\x1b]0;pwned\\x07.jsonl" in captured.err
    assert "db\\x1b[2J" in captured.out


def test_index_honours_gitignore_unless_no_gitignore(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    (docs / "vendor").mkdir(parents=True)
    (docs / "guide.md").write_text("how to rotate the logs")
    (docs / "vendor" / "lib.md").write_text("third party text")
    (docs / ".gitignore").write_text("vendor/\n")
    argv = ["index", str(docs), "--db", str(tmp_path / "db"), "--model", tiny_embeddings.model_name]
    assert main(argv) == 0
    assert "1 gitignored" in capsys.readouterr().out
    assert main([*argv, "--no-gitignore"]) == 0
    out = capsys.readouterr().out
    assert "gitignored" not in out
    assert "2 files" in out
