"""Two ``tasb index`` runs on one embedded ``--db``: the second waits or is refused (#30)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chromadb
from chromadb.api.shared_system_client import SharedSystemClient

from langchain_tasb.chroma import writer_lock
from tests.integration_tests.test_cli import RUN_TIMEOUT, WORDS, tasb, tasb_command

CHUNKS = 3000  # per run: one short JSON Lines record is one chunk


def write_corpus(path: Path, prefix: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(CHUNKS):
            words = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6))
            out.write(json.dumps({"id": f"{prefix}{i}", "text": f"{prefix} {i} {words}"}) + "\n")


def start(cwd: Path, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [*tasb_command(), *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err
        )


def wait_for(condition: object, what: str, seconds: float = RUN_TIMEOUT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_index_runs_on_one_db_are_serialised_and_the_db_stays_whole(
    tmp_path: Path, env: dict[str, str]
) -> None:
    write_corpus(tmp_path / "a" / "a.jsonl", "alpha")
    write_corpus(tmp_path / "b" / "b.jsonl", "beta")
    db = tmp_path / "db"
    first = start(tmp_path, env, tmp_path / "first.err", "index", "a", "--db", "db", "-q")
    wait_for(
        lambda: (writer_lock.holder(db) or writer_lock.Holder(0, "", "", "")).pid == first.pid,
        "the first run's lock",
    )
    second = start(
        tmp_path, env, tmp_path / "second.err", "index", "b", "--db", "db", "-q", "--wait", "300"
    )
    waiting = f"waiting up to 300s for pid {first.pid} on host "
    wait_for(lambda: waiting in (tmp_path / "second.err").read_text(), "the second to wait")
    assert first.poll() is None, "the first run ended before the second asked for the lock"

    refused = tasb(tmp_path, env, "index", "b", "--db", "db", "-q", check=2)

    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"error: embedded Chroma at {db.resolve()} is being written by pid ")
    assert lines[0].endswith("or pass --wait SECONDS")
    assert first.wait(RUN_TIMEOUT) == 0, (tmp_path / "first.err").read_text()
    assert second.wait(RUN_TIMEOUT) == 0, (tmp_path / "second.err").read_text()

    tasb(tmp_path, env, "index", "a", "--db", "reference", "-q")
    tasb(tmp_path, env, "index", "b", "--db", "reference", "-q")
    ids = health(db)
    assert ids == health(tmp_path / "reference")  # as if run one after the other
    assert len(ids) == 2 * CHUNKS
    searched = tasb(tmp_path, env, "search", "alpha", "--db", "db", "--json")
    assert json.loads(searched.stdout)["results"]


def health(db: Path) -> set[str]:
    """The stored ids, after checking every vector reads back and the vector index answers."""
    SharedSystemClient.clear_system_cache()
    collection = chromadb.PersistentClient(path=str(db)).get_collection("tasb")
    got = collection.get(include=["embeddings"])
    assert collection.count() == len(got["ids"])
    assert all(len(vector) == 32 for vector in got["embeddings"])  # every embedding readable
    probe = got["embeddings"][got["ids"].index(min(got["ids"]))]
    found = collection.query(query_embeddings=[probe], n_results=10, include=[])
    assert len(found["ids"][0]) == 10
    SharedSystemClient.clear_system_cache()
    return set(got["ids"])


def test_index_takes_over_a_lock_left_by_a_killed_writer(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("the data model")
    db = tmp_path / "db"
    hold = (
        "import sys, time; from langchain_tasb.chroma import writer_lock; "
        "writer_lock.acquire(sys.argv[1], wait=0); print('locked', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(db)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    refused = tasb(tmp_path, env, "index", "docs", "--db", "db", check=2)
    assert f"is being written by pid {holder.pid} on host " in refused.stderr

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    taken = tasb(tmp_path, env, "index", "docs", "--db", "db")

    assert f"taking over the writer lock of {db.resolve()} from pid {holder.pid}" in taken.stderr
    assert "indexed 1 file" in taken.stdout
    assert writer_lock.holder(db) is None  # released when the run ended
