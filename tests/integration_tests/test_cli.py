"""The ``tasb`` command through its real entry point, on real files and real Chroma stores."""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient

from langchain_tasb.cli.search import build_where, snippet
from langchain_tasb.testing import tiny_vocabulary

# Whole words of the tiny model's vocabulary: one token each.
WORDS = [w for w in tiny_vocabulary() if w.isalpha() and len(w) > 2]
GUIDE = (
    "How to rotate the logs.\n\n"
    "To rotate the logs, run logrotate with the daily schedule; old logs are compressed.\n\n"
    "Disk usage of the log files is reported by the disk tool."
)
RUN_TIMEOUT = 120  # seconds for one command; model loading dominates


def tasb_command() -> list[str]:
    """The installed ``tasb`` console script, or the same entry point through ``-c``."""
    script = Path(sys.executable).with_name("tasb")
    if script.is_file():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from langchain_tasb.cli import main; sys.exit(main())",
    ]


def tasb(
    cwd: Path, env: dict[str, str], *args: str | Path, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*tasb_command(), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stderr}"
    return result


def start(cwd: Path, env: dict[str, str], *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*tasb_command(), *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored(db: Path, collection: str = "tasb") -> dict[str, dict[str, Any]]:
    """id -> {"text", "metadata", "vector"} as another process sees the database now."""
    SharedSystemClient.clear_system_cache()  # no cached view of an earlier state
    client = chromadb.PersistentClient(path=str(db))
    got = client.get_collection(collection).get(include=["documents", "metadatas", "embeddings"])
    out = {
        id_: {"text": doc, "metadata": meta, "vector": np.asarray(vec)}
        for id_, doc, meta, vec in zip(
            got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
        )
    }
    SharedSystemClient.clear_system_cache()
    return out


def paragraph(rng: random.Random, words: int = 80) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def write_doc(path: Path, paragraphs: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs))


def sources(chunks: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    return {(Path(c["metadata"]["root"]).name, c["metadata"]["source"]) for c in chunks.values()}


# -- pure helpers -----------------------------------------------------------------------------


def test_filters_map_to_chroma_where() -> None:
    assert build_where([]) is None
    assert build_where(["source=guide.md"]) == {"source": "guide.md"}
    assert build_where(["source=a.md", "source=b.md", "chunk=0"]) == {
        "$and": [
            {"$or": [{"source": "a.md"}, {"source": "b.md"}]},
            {"$or": [{"chunk": "0"}, {"chunk": 0}]},
        ]
    }
    assert build_where(["flag=true"]) == {"$or": [{"flag": "true"}, {"flag": True}]}
    with pytest.raises(ValueError, match=r"KEY=VALUE.*'nokey'"):
        build_where(["nokey"])


def test_snippet_shows_the_part_with_the_query_words() -> None:
    text = "Filler words here. " * 20 + GUIDE + " More filler text." * 20
    shown = snippet(text, "how do I rotate the logs?", width=120)
    assert "rotate the logs, run logrotate" in shown
    assert shown.startswith("…")
    assert shown.endswith("…")
    assert len(shown) <= 122
    assert snippet("short\n\ntext", "x") == "short text"


# -- index, rerun, edit, prune, search, info --------------------------------------------------


def test_index_rerun_edit_prune_search_and_info(
    tmp_path: Path, env: dict[str, str], other_model_path: Path
) -> None:
    rng = random.Random(1)
    docs, other = tmp_path / "docs", tmp_path / "other"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text(GUIDE)
    kept = [paragraph(rng) for _ in range(3)]
    dropped = "The xylophone paragraph. " + paragraph(rng)
    write_doc(docs / "a.md", [kept[0], kept[1], dropped, kept[2]])
    write_doc(docs / "b.md", [paragraph(rng)])
    beir = {"_id": "d1", "title": "Heat", "text": "heat flow in the wing"}
    (docs / "sub" / "corpus.jsonl").write_text(json.dumps(beir) + "\n")
    write_doc(docs / ".hidden" / "secret.md", ["hidden text"])
    (docs / "blob.txt").write_bytes(b"binary\x00data")
    write_doc(other / "o.md", [paragraph(rng)])

    # 1. First run: into ./.tasb by default.
    first_run = tasb(tmp_path, env, "index", "docs", "other", "--overlap", "0")
    assert "indexed 5 files" in first_run.stdout
    assert "1 hidden" in first_run.stdout
    assert "1 binary" in first_run.stdout
    db = tmp_path / ".tasb"
    first = stored(db)
    assert sources(first) == {
        ("docs", "guide.md"),
        ("docs", "a.md"),
        ("docs", "b.md"),
        ("docs", "sub/corpus.jsonl"),
        ("other", "o.md"),
    }
    for chunk in first.values():
        meta = chunk["metadata"]
        assert meta["path"] == str(Path(meta["root"], meta["source"]))
        if meta["source"].endswith(".md"):
            text = Path(meta["path"]).read_text()
            assert text[meta["start"] : meta["end"]] == chunk["text"]
    assert {c["text"] for c in first.values() if c["metadata"]["source"] == "a.md"} == {
        *kept,
        dropped,
    }

    # 2. Rerun on unchanged files: nothing written, and it says so.
    rerun = tasb(tmp_path, env, "index", "docs", "other", "--overlap", "0")
    assert rerun.stdout.startswith("nothing to write: 5 files")
    assert stored(db).keys() == first.keys()

    # 3. Edit a.md (new first paragraph, one dropped), delete b.md, prune under docs only.
    added = paragraph(rng)
    write_doc(docs / "a.md", [added, *kept])
    (docs / "b.md").unlink()
    edit = tasb(tmp_path, env, "index", "docs", "--prune", "--overlap", "0")
    assert "chunks: 1 written" in edit.stdout
    assert "3 moved, 1 deleted" in edit.stdout
    assert "pruned: 1 chunk of 1 file" in edit.stdout
    after = stored(db)
    a_chunks = {i: c for i, c in after.items() if c["metadata"]["source"] == "a.md"}
    assert sorted(c["text"] for c in a_chunks.values()) == sorted([added, *kept])
    new_text = (docs / "a.md").read_text()
    for id_, chunk in a_chunks.items():
        meta = chunk["metadata"]
        assert new_text[meta["start"] : meta["end"]] == chunk["text"]
        if chunk["text"] in kept:  # moved: same id and vector as before
            np.testing.assert_array_equal(chunk["vector"], first[id_]["vector"])
    assert ("docs", "b.md") not in sources(after)
    other_before = {i: c["metadata"] for i, c in first.items() if c["metadata"]["source"] == "o.md"}
    other_after = {i: c["metadata"] for i, c in after.items() if c["metadata"]["source"] == "o.md"}
    assert other_after == other_before  # another root: untouched by --prune

    # 4. Search, as JSON, filtered to one source; meanwhile, another model is refused.
    refused = start(tmp_path, env, "search", "logs", "--model", other_model_path)
    found = tasb(
        tmp_path,
        env,
        "search",
        "how do I rotate the logs?",
        "--json",
        "--filter",
        "source=guide.md",
    )
    _, refused_err = refused.communicate(timeout=RUN_TIMEOUT)
    assert refused.returncode == 2, refused_err
    assert "--model" in refused_err
    assert "Traceback" not in refused_err
    payload = json.loads(found.stdout)
    results = payload["results"]
    assert payload["filter"] == {"source": "guide.md"}
    assert [r["rank"] for r in results] == list(range(1, len(results) + 1))
    assert results
    assert {r["source"] for r in results} == {"guide.md"}
    scores = [r["score"] for r in results]
    relevances = [r["relevance"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all("dot" not in r for r in results)
    assert relevances == sorted(relevances, reverse=True)
    assert all(0.0 <= r <= 1.0 for r in relevances)
    for result in results:
        assert after[result["id"]]["text"] == result["text"]
        assert result["metadata"]["source"] == "guide.md"
        assert result["snippet"].strip("…").split()[0] in result["text"]

    # 5. Info: no model needed.
    info = json.loads(tasb(tmp_path, env, "info", "--json", "--sources").stdout)
    assert info["chunks"] == len(after)
    assert info["sources"] == 4
    assert info["space"] == "ip"
    assert info["dimension"] == 32
    assert info["similarity"] == "dot"
    assert info["size_bytes"] > 0
    text_info = tasb(tmp_path, env, "info").stdout
    assert re.search(rf"^chunks\s+{len(after)}$", text_info, re.MULTILINE)


# -- interrupted runs -------------------------------------------------------------------------


def kill_after_writes(process: subprocess.Popen[str], writes: int) -> int:
    """SIGKILL ``process`` once it has logged ``writes`` batch writes; return writes seen."""
    assert process.stderr is not None
    seen = 0
    for line in process.stderr:
        if "langchain_tasb.ingest.pipeline: wrote" in line:
            seen += 1
            if seen >= writes:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(timeout=RUN_TIMEOUT)
    return seen


def test_sigkill_mid_index_then_rerun_equals_a_clean_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    corpus = tmp_path / "corpus"
    for i in range(30):
        write_doc(corpus / f"d{i:02d}.txt", [paragraph(rng, 60) for _ in range(3)])
    index = ("-vv", "index", "corpus", "--batch-size", "2", "--prune")

    # Killed on the first version of the corpus...
    first_kill = rng.randint(1, 30)
    killed = start(tmp_path, env, *index, "--db", "resumed")
    assert kill_after_writes(killed, first_kill) == first_kill, f"seed {seed}"
    assert killed.returncode == -signal.SIGKILL

    # ...then on an edited one (edited, deleted and new files), while a clean run indexes
    # the same version into another database.
    for i in range(0, 30, 3):
        write_doc(corpus / f"d{i:02d}.txt", [paragraph(rng, 60) for _ in range(3)])
    for i in (1, 4, 7):
        (corpus / f"d{i:02d}.txt").unlink()
    for i in range(30, 35):
        write_doc(corpus / f"d{i:02d}.txt", [paragraph(rng, 60) for _ in range(2)])
    clean = start(tmp_path, env, *index, "--db", "clean")
    second_kill = rng.randint(1, 12)
    killed = start(tmp_path, env, *index, "--db", "resumed")
    assert kill_after_writes(killed, second_kill) == second_kill, f"seed {seed}"
    assert killed.returncode == -signal.SIGKILL
    _, clean_err = clean.communicate(timeout=RUN_TIMEOUT)
    assert clean.returncode == 0, clean_err

    tasb(tmp_path, env, "index", "corpus", "--prune", "--db", "resumed", "--quiet")

    resumed, expected = stored(tmp_path / "resumed"), stored(tmp_path / "clean")
    assert resumed.keys() == expected.keys(), f"seed {seed}"
    for id_, chunk in expected.items():
        assert resumed[id_]["text"] == chunk["text"]
        assert resumed[id_]["metadata"] == chunk["metadata"], f"seed {seed}"
        np.testing.assert_allclose(resumed[id_]["vector"], chunk["vector"], rtol=1e-4, atol=1e-4)


# -- errors a user can act on -----------------------------------------------------------------


def test_unreadable_files_are_reported_and_fail_the_run_unless_keep_going(
    tmp_path: Path, env: dict[str, str]
) -> None:
    docs = tmp_path / "docs"
    write_doc(docs / "good.md", ["the data model"])
    (docs / "bad.jsonl").write_text('{"text": "fine"}\n{"text": \n')
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    strict = start(tmp_path, env, "index", "docs", "--db", "strict")
    lenient = start(tmp_path, env, "index", "docs", "--db", "lenient", "--keep-going")
    strict_out, strict_err = strict.communicate(timeout=RUN_TIMEOUT)
    lenient_out, lenient_err = lenient.communicate(timeout=RUN_TIMEOUT)

    assert strict.returncode == 1, strict_err
    assert lenient.returncode == 0, lenient_err
    for out, err in ((strict_out, strict_err), (lenient_out, lenient_err)):
        assert "1 changed, 0 unchanged, 2 failed" in out
        assert re.search(r"failed: \S*bad\.jsonl: line 2: not valid JSON", err)
        assert re.search(r"failed: \S*broken\.pdf: ", err)
    assert "--keep-going" in strict_err
    assert "--keep-going" not in lenient_err
    assert {c["text"] for c in stored(tmp_path / "strict").values()} == {"the data model"}


HOSTILE = {
    "surrogate.jsonl": b'{"text": "hello \\ud800 world"}\n',
    "deep.jsonl": b"[" * 100_000 + b"\n",
    "metadata.jsonl": b'{"text": "hi", "metadata": {"k": "\\udc00"}}\n',
}


def test_hostile_files_fail_alone_and_keep_going_exits_zero(
    tmp_path: Path, env: dict[str, str]
) -> None:
    docs = tmp_path / "docs"
    write_doc(docs / "good.txt", ["the data model"])
    (docs / "parser.html").write_bytes(b"<![<![")  # once an AssertionError; now no text
    for name, content in HOSTILE.items():
        (docs / name).write_bytes(content)
    strict = tasb(tmp_path, env, "index", "docs", "--db", "strict", check=1)
    lenient = tasb(tmp_path, env, "index", "docs", "--db", "lenient", "--keep-going")
    for result in (strict, lenient):
        assert "Traceback" not in result.stderr
        assert "1 changed, 1 unchanged, 3 failed" in result.stdout
        for name in HOSTILE:
            assert re.search(rf"failed: \S*{re.escape(name)}: \S", result.stderr), name
    assert "lone surrogate" in lenient.stderr
    assert "nested too deeply" in lenient.stderr
    for db in ("strict", "lenient"):
        assert {c["text"] for c in stored(tmp_path / db).values()} == {"the data model"}


def test_missing_index_and_unreachable_server_are_named(
    tmp_path: Path, env: dict[str, str]
) -> None:
    missing = tasb(tmp_path, env, "search", "logs", "--db", "nowhere", check=2)
    assert "no index at nowhere: run `tasb index" in missing.stderr
    assert not (tmp_path / "nowhere").exists()

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = tasb(tmp_path, env, "index", tmp_path, "--chroma-url", url, check=2)
    assert url in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    for command in ("index", "search"):
        bad = tasb(tmp_path, env, command, tmp_path, "--collection", "x", check=2)
        assert "argument --collection: invalid collection name 'x'" in bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (tmp_path / ".tasb").exists()  # refused before anything was created


# -- a Chroma server --------------------------------------------------------------------------


@pytest.mark.server
def test_index_and_search_on_a_chroma_server(
    tmp_path: Path, env: dict[str, str], chroma_server: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(GUIDE)
    write_doc(docs / "other.md", [paragraph(random.Random(3))])
    server = ("--chroma-url", chroma_server, "--collection", "handbook")

    indexed = tasb(tmp_path, env, "index", "docs", *server)
    assert "indexed 2 files into collection 'handbook' at http://127.0.0.1:" in indexed.stdout
    assert not (tmp_path / ".tasb").exists()
    written = re.search(r"chunks: (\d+) written", indexed.stdout)
    assert written is not None

    found = tasb(tmp_path, env, "search", "how do I rotate the logs?", "-k", "2", *server)
    lines = found.stdout.splitlines()
    assert len(lines) == 4
    assert re.fullmatch(r" 1\. \S+\.md #\d+  score -?\d+\.\d{3}  relevance [01]\.\d{3}", lines[0])
    assert re.fullmatch(r" 2\. \S+\.md #\d+  score -?\d+\.\d{3}  relevance [01]\.\d{3}", lines[2])
    assert lines[1].startswith("    ")

    # Without --model or $TASB_MODEL, the model recorded in the collection is used, and said.
    no_model = {key: value for key, value in env.items() if key != "TASB_MODEL"}
    question = "how do I rotate the logs?"
    recorded = tasb(tmp_path, no_model, "-v", "search", question, "-k", "2", *server)
    assert recorded.stdout == found.stdout
    assert f"using model {env['TASB_MODEL']} recorded in collection handbook" in recorded.stderr

    missing = tasb(
        tmp_path, env, "info", "--chroma-url", chroma_server, "--collection", "nope", check=2
    )
    assert "no collection 'nope'" in missing.stderr
    assert "handbook" in missing.stderr
    info = json.loads(tasb(tmp_path, env, "info", "--json", "--sources", *server).stdout)
    assert info["server"] == chroma_server
    assert info["chunks"] == int(written.group(1)) >= 2
    assert info["sources"] == 2
