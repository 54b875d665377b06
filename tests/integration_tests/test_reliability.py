"""Crashes, server restarts and concurrent writers: nothing lost, nothing duplicated.

Real processes (the ``tasb`` entry point and a reader), a real ``chroma run`` server on
127.0.0.1, every wait bounded.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import chromadb
import pytest

from langchain_tasb import ModelMismatchError, SpaceMismatchError, TasbEmbeddings, TasbVectorStore
from tests.integration_tests.test_cli import (
    RUN_TIMEOUT,
    kill_after_writes,
    paragraph,
    start,
    stored,
    tasb,
    write_doc,
)

pytestmark = pytest.mark.slow


def make_corpus(folder: Path, files: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(files):
        write_doc(folder / f"d{i:03d}.txt", [paragraph(rng, 50) for _ in range(2)])


def server_ids(url: str, collection: str) -> list[str]:
    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    ids: list[str] = client.get_collection(collection).get(include=[])["ids"]
    return ids


def test_sigkill_at_ten_random_points_then_rerun_equals_a_clean_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    make_corpus(tmp_path / "corpus", 40, seed)
    env = {**env, "TASB_MANIFEST_SAVE_SECONDS": "0"}  # the manifest saved after every file
    index = ("index", "corpus", "--batch-size", "2")
    clean = start(tmp_path, env, *index, "--db", "clean", "--quiet")
    for _ in range(10):
        killed = start(tmp_path, env, "-vv", *index, "--db", "resumed")
        writes = rng.randint(1, 6)
        seen = kill_after_writes(killed, writes)
        # A run that finished before the kill point is fine too: it is a point after the end.
        assert killed.returncode in (-signal.SIGKILL, 0), f"seed {seed}"
        assert seen == writes or killed.returncode == 0, f"seed {seed}"
    _, clean_err = clean.communicate(timeout=RUN_TIMEOUT)
    assert clean.returncode == 0, clean_err
    tasb(tmp_path, env, *index, "--db", "resumed", "--quiet")
    resumed, expected = stored(tmp_path / "resumed"), stored(tmp_path / "clean")
    assert sorted(resumed) == sorted(expected), f"seed {seed}"
    assert {i: c["metadata"] for i, c in resumed.items()} == {
        i: c["metadata"] for i, c in expected.items()
    }, f"seed {seed}"
    again = tasb(tmp_path, env, *index, "--db", "resumed")
    assert "40 unchanged since the manifest, not read" in again.stdout, again.stdout


# Server restarts mid-index (ten of them, strict: every run must finish) and refused or cut
# connections during every command are tested in test_faults.py.


READER = """
import json, sys, time
from langchain_tasb import TasbRetriever
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
errors, answered = [], 0
retriever = None
while time.monotonic() < deadline:
    try:
        if retriever is None:
            retriever = TasbRetriever(collection_name="shared", host=host, port=port, k=3)
        retriever.invoke("data model search")
        answered += 1
    except Exception as exc:
        if retriever is None and "no collection 'shared'" in str(exc):
            time.sleep(0.2)  # the indexers have not created the collection yet
            continue
        errors.append(repr(exc))
print(json.dumps({"errors": errors, "answered": answered}))
"""


def test_three_indexers_and_a_reader_on_one_server(
    tmp_path: Path, env: dict[str, str], chroma_server: str, tiny_embeddings: TasbEmbeddings
) -> None:
    for part in range(3):
        make_corpus(tmp_path / "parts" / f"p{part}", 12, seed=part)
    host, port = chroma_server.removeprefix("http://").split(":")
    # A retriever opens and never creates: the (empty) collection exists before it starts.
    TasbVectorStore(embedding=tiny_embeddings, collection_name="shared", host=host, port=int(port))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, host, port, "40"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    target = ("--chroma-url", chroma_server, "--collection", "shared", "--batch-size", "4")
    indexers = [
        start(tmp_path, env, "index", f"parts/p{part}", *target, "--quiet") for part in range(3)
    ]
    for indexer in indexers:
        _, err = indexer.communicate(timeout=RUN_TIMEOUT * 2)
        assert indexer.returncode == 0, err
    out, err = reader.communicate(timeout=RUN_TIMEOUT)
    assert reader.returncode == 0, err
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["answered"] > 0

    for part in range(3):
        tasb(tmp_path, env, "index", f"parts/p{part}", "--db", "clean", "--quiet")
    ids = server_ids(chroma_server, "shared")
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(stored(tmp_path / "clean"))


def test_mismatched_collections_are_refused_over_the_server(
    chroma_server: str, tiny_embeddings: TasbEmbeddings, other_model_path: Path
) -> None:
    host, port = chroma_server.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    client.create_collection(
        "l2-made", configuration={"hnsw": {"space": "l2"}}, embedding_function=None
    )
    with pytest.raises(SpaceMismatchError, match="'l2' distance space"):
        TasbVectorStore(
            embedding=tiny_embeddings, collection_name="l2-made", host=host, port=int(port)
        )
    TasbVectorStore(
        embedding=tiny_embeddings, collection_name="tiny-made", host=host, port=int(port)
    ).add_texts(["some text"])
    with pytest.raises(ModelMismatchError, match="probe sentence"):
        TasbVectorStore(
            embedding=TasbEmbeddings(model_name=str(other_model_path)),
            collection_name="tiny-made",
            host=host,
            port=int(port),
        )
