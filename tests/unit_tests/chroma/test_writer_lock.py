"""One writer process per embedded Chroma folder: a lock held by a real second process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_tasb import StoreLockedError, TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma import close_client, writer_lock
from langchain_tasb.chroma.client import hold_writer_lock

HOLD = """
import sys, time
from langchain_tasb.chroma import writer_lock
writer_lock.acquire(sys.argv[1], wait=0)
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A real process holding the writer lock of ``tmp_path / "db"``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_second_writer_is_refused_naming_the_holder_and_readers_keep_working(
    tmp_path: Path, tiny_embeddings: TasbEmbeddings
) -> None:
    db = tmp_path / "db"
    store = TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(db))
    store.add_texts(["the data model", "the logs rotate daily"])
    close_client(store.client)  # this process lets go: another one takes the lock
    assert not writer_lock.holds(db)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        reader = TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(db))
        assert [d.page_content for d in reader.similarity_search("data model", k=1)] == [
            "the data model"
        ]
        with pytest.raises(StoreLockedError) as caught:
            writer_lock.acquire(db, wait=0.5)
        message = str(caught.value)
        assert f"pid {process.pid} on host " in message
        assert str(db.resolve()) in message
        assert "after waiting 0.5s" in message
        assert "\n" not in message
        with pytest.raises(StoreLockedError, match=f"pid {process.pid}"):
            hold_writer_lock(reader.client, wait=0.2)  # what every gateway write calls
        assert reader.store.count() == 2
    finally:
        process.kill()
        process.wait()
    close_client(reader.client)


def test_a_lock_left_by_a_killed_writer_is_taken_over(
    tmp_path: Path, holder: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db"
    found = writer_lock.holder(db)
    assert found is not None
    assert found.pid == holder.pid
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    writer_lock.acquire(db, wait=0)

    try:
        assert writer_lock.holds(db)
        mine = writer_lock.holder(db)
        assert mine is not None
        assert mine.pid == os.getpid()
        assert f"from pid {holder.pid} on host" in caplog.text
        assert "ended without releasing it" in caplog.text
    finally:
        writer_lock.release(db)
    assert writer_lock.holder(db) is None  # a clean release leaves no record behind


def test_one_process_may_open_several_writers_on_one_folder(
    tmp_path: Path, tiny_embeddings: TasbEmbeddings
) -> None:
    db = str(tmp_path / "db")
    first = TasbVectorStore(embedding=tiny_embeddings, persist_directory=db)
    second = TasbVectorStore(
        embedding=tiny_embeddings, persist_directory=db, collection_name="second"
    )
    first.add_texts(["the data model"])
    second.add_texts(["the logs rotate daily"])
    first.add_texts(["the cache is warm"])
    assert (first.store.count(), second.store.count()) == (2, 1)
    assert writer_lock.holds(db)
    close_client(first.client)
    assert not writer_lock.holds(db)
