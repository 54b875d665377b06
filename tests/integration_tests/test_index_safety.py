"""``tasb index`` on hostile inputs: real processes, real files, a real Chroma server (#20)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import chromadb
import pytest

from tests.integration_tests.test_cli import (
    RUN_TIMEOUT,
    WORDS,
    kill_after_writes,
    start,
    stored,
    tasb,
    tasb_command,
    write_doc,
)


def deep_chain(folder: Path, levels: int, width: int = 250) -> Path:
    """Nest ``levels`` folders of ``width``-character names under ``folder``; a file inside.

    Made relative to a descriptor, so the chain may reach past PATH_MAX. Returns the file's
    path (which may be too long to use).
    """
    fd = os.open(folder, os.O_RDONLY)
    names = []
    try:
        for level in range(levels):
            name = chr(ord("a") + level) * width
            names.append(name)
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("f.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(out, b"the deep data model")
        os.close(out)
    finally:
        os.close(fd)
    return folder.joinpath(*names, "f.txt")


def failed_paths(stderr: str) -> dict[str, str]:
    """path -> reason of each ``failed: PATH: REASON`` line."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith("failed: "):
            path, _, reason = line.removeprefix("failed: ").partition(": ")
            found[path] = reason
    return found


def test_prune_skips_a_root_with_a_folder_that_cannot_be_listed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    docs = tmp_path / "docs"
    write_doc(docs / "a.txt", ["the data model"])
    write_doc(docs / "gone.txt", ["an old file"])
    (docs / "deep").mkdir()
    # Just short enough to be indexed; renaming "deep" longer pushes it past PATH_MAX, a
    # fault that holds even for root (chmod 000 does not stop root from listing).
    levels = (4095 - len(str(docs.resolve() / "deep" / "f.txt"))) // 251  # 250 + "/" each
    deep_chain(docs / "deep", levels)
    tasb(tmp_path, env, "index", "docs", "--quiet")
    assert len(stored(tmp_path / ".tasb")) == 3
    (docs / "gone.txt").unlink()
    (docs / "deep").rename(docs / ("d" * 255))

    pruned = tasb(tmp_path, env, "index", "docs", "--prune", check=1)

    assert "Traceback" not in pruned.stderr
    failures = failed_paths(pruned.stderr)
    assert len(failures) == 1
    [(folder, reason)] = failures.items()
    assert folder.startswith(str(docs.resolve() / ("d" * 255)))
    assert "cannot list this folder (File name too long)" in reason, reason
    assert f"not pruned: {docs.resolve()}: a folder under it could not be listed" in pruned.stderr
    assert {c["metadata"]["source"] for c in stored(tmp_path / ".tasb").values()} == {
        "a.txt",
        "gone.txt",
        "/".join(["deep", *(chr(ord("a") + i) * 250 for i in range(levels)), "f.txt"]),
    }


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-u", "sh", "-c", "hostname tasb-probe"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.server
def test_two_hosts_indexing_one_path_into_one_server_collection_keep_their_chunks(
    tmp_path: Path, env: dict[str, str], chroma_server: str
) -> None:
    if not _unshare_works():
        pytest.skip("needs `unshare -u` (root or user namespaces) to run as another hostname")
    docs = tmp_path / "docs"
    write_doc(docs / "a.md", ["the data model"])
    write_doc(docs / "b.md", ["only on alpha"])
    server = ("--chroma-url", chroma_server, "--collection", "shared-path")

    def index_as(host: str, *args: str) -> str:
        script = 'hostname "$0" && exec "$@"'
        command = ["unshare", "-u", "sh", "-c", script, host]
        result = subprocess.run(
            [*command, *tasb_command(), "index", "docs", "--prune", *server, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    index_as("alpha")
    (docs / "b.md").unlink()  # the same path on beta holds other files
    write_doc(docs / "c.md", ["only on beta"])
    index_as("beta")

    def by_host() -> set[tuple[str, str]]:
        client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
        got = client.get_collection("shared-path").get(include=["metadatas"])
        metadatas: list[Any] = got["metadatas"]
        return {(m["root_id"].split(":", 1)[0], m["source"]) for m in metadatas}

    assert by_host() == {("alpha", "a.md"), ("alpha", "b.md"), ("beta", "a.md"), ("beta", "c.md")}
    index_as("alpha")  # alpha's b.md is gone now: pruned from alpha's root only
    assert by_host() == {("alpha", "a.md"), ("alpha", "c.md"), ("beta", "a.md"), ("beta", "c.md")}


# -- fuzz: 1,000+ generated hostile files through `tasb index --keep-going` --------------------

FUZZ_FILES = 1100
FUZZ_MAX_FILE_BYTES = 200_000


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _garbage(rng: random.Random, size: int) -> str:
    pieces = ["<", ">", "'", '"', "<!--", "-->", "<a", "</", "<script>", "<![CDATA[", "&#",
              "&amp", "\x00", "\ufeff", "\u2028", "\u202e", "\U0001f600", "[", "{", "\\", "\n",
              "<p>", "<pre>", "  ", "é", "#", "*", "`", ">" * 3]  # fmt: skip
    return "".join(rng.choice(pieces) for _ in range(size))


def _good(rng: random.Random, i: int) -> tuple[str, bytes]:
    """A file that must be indexed: its marker word ends up in a chunk."""
    marker = f"{_words(rng, 20)} {i}"
    kind = rng.randrange(8)
    if kind == 0:
        return f"g{i}.txt", marker.encode()
    if kind == 1:  # NULs after the binary sniff window, CRLF lines
        return f"g{i}.txt", (marker + "\r\n" + "x" * 9000 + "\x00\x00 tail").encode()
    if kind == 2:  # a huge token: cut between word pieces
        return f"g{i}.md", (marker + "\n\n" + "a" * rng.randint(500, 3_000)).encode()
    if kind == 3:  # deep Markdown nesting, mixed scripts
        nested = "".join(">" * d * 20 + " - " * d + "مرحبا 🙂\n" for d in range(8))
        return f"g{i}.md", (marker + "\n\n" + nested).encode()
    if kind == 4:  # visible text first, hostile markup after
        hidden = rng.choice(["", "<script>", "<!--", "<a b='"])  # what follows shows no text
        size = rng.randint(100, 20_000 if hidden else 1_000)
        garbage = _garbage(rng, size).replace("\x00", "&#0;")  # a NUL byte: binary, skipped
        page = f"<html><body><p>{marker}</p>{hidden}{garbage}"
        return f"g{i}.html", page.encode()
    if kind == 5:  # JSON Lines with line separators inside strings
        lines = [
            json.dumps({"text": f"{marker} \u2028 next \u2029 \x85"}, ensure_ascii=False),
            json.dumps({"_id": f"d{i}", "title": "t", "text": _words(rng, 30)}),
        ]
        return f"g{i}.jsonl", "\n".join(lines).encode()
    if kind == 6:  # Latin-1, not UTF-8
        return f"g{i}.rst", (marker + " caf\xe9").encode("latin-1")
    return f"g{i}.txt", (marker + "\n" + _garbage(rng, 200).replace("\x00", "")).encode()


def _neutral(rng: random.Random, i: int) -> tuple[str, bytes]:
    """A file that must not fail; it may give chunks or none."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"n{i}.html", _garbage(rng, rng.randint(1, 3_000)).encode("utf-8", "replace")
    if kind == 1:
        return f"n{i}.md", _garbage(rng, rng.randint(1, 500)).encode("utf-8", "replace")
    if kind == 2:
        return f"n{i}.txt", b" \n\t " * rng.randint(0, 100)
    pattern = rng.choice(["<a", "<!--", "<a b='", "</", "<?", "<![CDATA["])
    return f"n{i}.html", (pattern * rng.randint(1_000, 15_000)).encode()


def _bad(rng: random.Random, i: int) -> tuple[str, bytes]:
    """A file that must be named as a failure."""
    good_line = json.dumps({"text": _words(rng, 10)}) + "\n"
    kind = rng.randrange(7)
    bad_line = [
        '{"text": "hello \\ud800 world"}',
        '{"text": "x", "metadata": {"k": "\\udc00"}}',
        "[" * rng.randint(50_000, 100_000),
        '{"text": ' * 20_000,
        "{not json" + _garbage(rng, 50).replace("\n", "").replace("\x00", ""),  # no NUL: binary
        json.dumps([1, 2, 3]),
        json.dumps({"text": 7}),
    ][kind]
    return f"b{i}.jsonl", (good_line + bad_line + "\n").encode("utf-8", "surrogatepass")


def _too_big(rng: random.Random, i: int) -> tuple[str, bytes]:
    return f"big{i}.txt", (_words(rng, 10) + " ").encode() * (FUZZ_MAX_FILE_BYTES // 40)


def _skipped(rng: random.Random, i: int) -> tuple[str, bytes]:
    """Binary: a NUL early on; skipped and counted, never read."""
    return f"s{i}.txt", b"\x00" + rng.randbytes(rng.randint(1, 2000))


def test_fuzz_thousand_hostile_files_index_every_good_one_and_name_every_bad_one(
    tmp_path: Path, env: dict[str, str]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    docs = tmp_path / "docs"
    kinds: dict[str, list[str]] = {"good": [], "neutral": [], "bad": [], "skipped": []}
    makers = [("good", _good, 50), ("neutral", _neutral, 20), ("bad", _bad, 25),
              ("skipped", _skipped, 5)]  # fmt: skip
    for i in range(FUZZ_FILES):
        kind, make, _ = rng.choices(makers, weights=[w for _, _, w in makers])[0]
        name, content = make(rng, i)
        folder = docs / f"d{i % 7}" / ("x" * rng.randint(1, 3))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        kinds[kind].append(str((folder / name).resolve()))
    for i in range(5):
        name, content = _too_big(rng, i)
        (docs / name).write_bytes(content)
        kinds["bad"].append(str((docs / name).resolve()))

    began = time.monotonic()
    result = tasb(
        tmp_path,
        env,
        "index",
        "docs",
        "--keep-going",
        "--max-file-bytes",
        str(FUZZ_MAX_FILE_BYTES),
        check=None,
    )
    seconds = time.monotonic() - began

    context = f"seed {seed}, {seconds:.0f}s\n{result.stderr[-3000:]}"
    assert result.returncode == 0, context
    assert "Traceback" not in result.stderr, context
    failures = failed_paths(result.stderr)
    assert set(failures) == set(kinds["bad"]), context
    for path in kinds["bad"]:
        reason = failures[path]
        assert reason.startswith("line 2: ") or "bytes, over the limit" in reason, reason
    chunks = stored(tmp_path / ".tasb")
    paths = {c["metadata"]["path"] for c in chunks.values()}
    assert set(kinds["good"]) <= paths, context
    assert not paths & set(kinds["bad"] + kinds["skipped"]), context
    for path in kinds["good"]:  # each good file's own marker number is in its chunks
        number = re.search(r"/g(\d+)\.[a-z]+$", path)
        assert number is not None
        mine = " ".join(c["text"] for c in chunks.values() if c["metadata"]["path"] == path)
        assert f" {number.group(1)}" in mine, (path, context)
    summary = re.search(r"(\d+) failed", result.stdout)
    assert summary is not None
    assert int(summary.group(1)) == len(kinds["bad"])
    binary = re.search(r"(\d+) binary", result.stdout)  # neutral files with a NUL count too
    assert binary is not None
    assert int(binary.group(1)) >= len(kinds["skipped"])


def test_sigkill_with_a_manifest_then_rerun_equals_a_clean_run_and_reads_nothing_after(
    tmp_path: Path, env: dict[str, str]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    env = {**env, "TASB_MANIFEST_SAVE_SECONDS": "0"}  # a save after every file: kills land late
    corpus = tmp_path / "corpus"
    for i in range(24):
        write_doc(corpus / f"d{i:02d}.txt", [_words(rng, 60) for _ in range(3)])
    index = ("index", "corpus", "--batch-size", "2", "--prune")
    tasb(tmp_path, env, *index, "--db", "resumed", "--quiet")
    manifests = list((tmp_path / "resumed" / "manifests" / "tasb").glob("*.json"))
    assert len(manifests) == 1

    # Edited, deleted and new files, then a run killed part way; a clean run beside it.
    for i in range(0, 24, 3):
        write_doc(corpus / f"d{i:02d}.txt", [_words(rng, 60) for _ in range(3)])
    for i in (1, 4, 7):
        (corpus / f"d{i:02d}.txt").unlink()
    for i in range(24, 28):
        write_doc(corpus / f"d{i:02d}.txt", [_words(rng, 60) for _ in range(2)])
    clean = start(tmp_path, env, *index, "--db", "clean")
    kill_at = rng.randint(1, 10)
    killed = start(tmp_path, env, "-vv", *index, "--db", "resumed")
    assert kill_after_writes(killed, kill_at) == kill_at, f"seed {seed}"
    assert killed.returncode == -signal.SIGKILL
    _, clean_err = clean.communicate(timeout=RUN_TIMEOUT)
    assert clean.returncode == 0, clean_err

    tasb(tmp_path, env, *index, "--db", "resumed", "--quiet")

    resumed, expected = stored(tmp_path / "resumed"), stored(tmp_path / "clean")
    assert resumed.keys() == expected.keys(), f"seed {seed}"
    for id_, chunk in expected.items():
        assert resumed[id_]["metadata"] == chunk["metadata"], f"seed {seed}"
    again = tasb(tmp_path, env, *index, "--db", "resumed")
    assert again.stdout.startswith("nothing to write: 25 files"), again.stdout
    assert "25 unchanged since the manifest, not read" in again.stdout, again.stdout
