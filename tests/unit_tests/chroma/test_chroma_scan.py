"""``Collection.scan`` is linear: each record is read a bounded number of times per scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest

from langchain_tasb.chroma import collection as collection_module
from langchain_tasb.chroma.collection import Collection


class _RowCounter:
    """Wraps a chromadb collection's ``get`` to count the rows Chroma walks for each call.

    An offset read walks the skipped rows and then returns its page, so a call costs
    ``offset + len(result)`` rows; that is what an offset-paged scan makes quadratic.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.rows = 0
        self.original = raw.get

    def get(self, *args: Any, **kwargs: Any) -> Any:
        result = self.original(*args, **kwargs)
        self.rows += int(kwargs.get("offset") or 0) + len(result["ids"])
        return result


def _fill(raw: Any, start: int, stop: int) -> None:
    rng = np.random.default_rng(start)
    step = 2000
    for first in range(start, stop, step):
        numbers = range(first, min(stop, first + step))
        raw.add(
            ids=[f"id-{i:06d}" for i in numbers],
            embeddings=rng.standard_normal((len(numbers), 4)).astype(np.float32),
            documents=[f"text {i}" for i in numbers],
            metadatas=[
                {"root": "a" if i % 2 else "b", "path": f"/r/f{i // 10}.md", "chunk": i % 10}
                for i in numbers
            ],
        )


def _rows_read(gateway: Collection, counter: _RowCounter, **kwargs: Any) -> int:
    counter.rows = 0
    seen = [i for page in gateway.scan(**kwargs) for i in page.ids]
    assert len(seen) == len(set(seen)) == gateway.count()
    return counter.rows


@pytest.fixture
def raw_collection(tmp_path: Path) -> Any:
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    return client.create_collection("scan-cost", configuration={"hnsw": {"space": "ip"}})


def test_scan_of_twice_the_records_reads_at_most_two_and_a_half_times_the_rows(
    raw_collection: Any,
) -> None:
    counter = _RowCounter(raw_collection)
    raw_collection.get = counter.get
    gateway = Collection(raw_collection._client, raw_collection)
    _fill(raw_collection, 0, 5000)
    small = _rows_read(gateway, counter, include=["metadatas"])
    _fill(raw_collection, 5000, 10_000)
    large = _rows_read(gateway, counter, include=["metadatas"])
    assert large <= 2.5 * small, f"{small} rows read for 5,000 records, {large} for 10,000"


def test_scan_returns_every_matching_record_once_with_its_fields_across_id_pages(
    raw_collection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collection_module, "ID_PAGE", 700)
    _fill(raw_collection, 0, 2500)
    gateway = Collection(raw_collection._client, raw_collection)
    pages = list(gateway.scan({"root": "a"}, include=["documents", "metadatas"], page_size=300))
    assert max(len(page) for page in pages) == 300
    hits = [hit for page in pages for hit in page.hits()]
    assert sorted(hit.id for hit in hits) == [f"id-{i:06d}" for i in range(1, 2500, 2)]
    assert all(hit.text == f"text {int(hit.id[3:])}" for hit in hits)
    assert all((hit.metadata or {})["root"] == "a" for hit in hits)
    ids_only = [i for page in gateway.scan(include=[]) for i in page.ids]
    assert sorted(ids_only) == [f"id-{i:06d}" for i in range(2500)]


def test_scan_refuses_a_page_size_below_one(raw_collection: Any) -> None:
    gateway = Collection(raw_collection._client, raw_collection)
    with pytest.raises(ValueError, match="page_size must be at least 1, got 0"):
        next(gateway.scan(page_size=0))
