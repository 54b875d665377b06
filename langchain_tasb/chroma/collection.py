"""The gateway to one Chroma collection: every read and write, through the retry policy."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from langchain_tasb.chroma.client import (
    find_collection,
    hold_writer_lock,
    location,
    retry_policy,
)
from langchain_tasb.chroma.records import (
    ChangeFeed,
    Hit,
    Records,
    WriteObserver,
    unique_ids,
    validate_records,
)
from langchain_tasb.chroma.retry import RetryPolicy, call_with_retry, one_line
from langchain_tasb.scoring import dot_from_distance
from langchain_tasb.validation import echo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from numpy.typing import NDArray

    from langchain_tasb.chroma.records import Metadata, MetadataValue

Field = Literal["documents", "metadatas", "embeddings"]  # what a read may include besides ids
PAGE_SIZE = 1000  # records per page of Collection.scan
ID_PAGE = 100_000  # ids listed per call by Collection.scan before their fields are read by id


class Collection:
    """One Chroma collection: reads, paged scans, batched writes, all retried for a server.

    Writes are by id, so a retry is harmless. The first write to an embedded folder takes its
    writer lock for this process (StoreLockedError while another process holds it).
    """

    dimension: int | None = None
    """Vector dimension an upsert must have; None accepts any."""

    def __init__(self, client: Any, collection: Any, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.collection = collection
        self.name = str(collection.name)
        self.id = str(collection.id)
        """The collection's id (a new one when a collection is deleted and made again)."""
        self.metadata: dict[str, Any] = dict(collection.metadata or {})
        """As read when the collection was opened."""
        configuration = collection.configuration or {}
        self.hnsw: dict[str, Any] = dict(configuration.get("hnsw") or {})
        self.space = str((self.hnsw or configuration.get("spann") or {}).get("space", "l2"))
        """The distance space: "ip", "l2" or "cosine"."""
        self.where = location(client)
        self.retry = retry_policy(client, retry)
        self.observers: list[WriteObserver] = []
        """Told of every upsert, update and delete (e.g. a side index kept in step)."""

    @cached_property
    def changes(self) -> ChangeFeed:
        """The collection's change marker and the ids written since one."""
        return ChangeFeed(self)

    @classmethod
    def open_existing(cls, client: Any, name: str, retry: RetryPolicy | None = None) -> Collection:
        """Open collection ``name`` as it is: never creates one, checks nothing about it.

        Raises:
            CollectionNotFoundError: there is no such collection.
        """
        return cls(client, find_collection(client, name, retry, required=True), retry)

    def _call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return call_with_retry(self.retry, self.where, fn, *args, **kwargs)

    def count(self) -> int:
        """Number of stored records."""
        return int(self._call(self.collection.count))

    def max_batch_size(self) -> int:
        """The most records one write may carry (asked of the server once, then cached)."""
        return max(1, int(self._call(self.client.get_max_batch_size)))

    def get(
        self,
        ids: Sequence[str],
        *,
        where: Mapping[str, Any] | None = None,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """Stored records for ``ids`` that match ``where``, in the order asked, skipping missing."""
        include: list[Field] = ["documents", "metadatas", "embeddings"]
        got = self.get_where(where, ids=ids, include=include if with_vectors else include[:2])
        found = {hit.id: hit for hit in got.hits()}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def get_where(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        ids: Sequence[str] | None = None,
        where_document: Mapping[str, Any] | None = None,
        include: Sequence[Field] = ("metadatas",),
        limit: int | None = None,
        offset: int | None = None,
    ) -> Records:
        """Records matching ``ids`` and/or the filters, in one call (at most ``limit``)."""
        if ids is not None and not (ids := unique_ids(ids)):
            return Records([], [], [])
        result = self._call(
            self.collection.get,
            ids=ids,
            where=dict(where) if where else None,
            where_document=dict(where_document) if where_document else None,
            include=list(include),
            limit=limit,
            offset=offset,
        )
        return Records.from_chroma(result)

    def scan(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        include: Sequence[Field] = ("metadatas",),
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Records]:
        """Every record (matching ``where``), page by page; the one paged loop of the package.

        Ids are listed first (ids only, by offset) and fields read by id, since paging the
        fields by offset re-reads every skipped record. A caller that deletes what it finds
        collects first and deletes after: deletions during a scan may shift ids out of it.
        """
        if page_size < 1:
            msg = f"page_size must be at least 1, got {page_size}"
            raise ValueError(msg)
        step = min(page_size, self.max_batch_size()) if include else page_size
        offset = 0
        while True:
            listed = self.get_where(where, include=(), limit=ID_PAGE, offset=offset).ids
            for start in range(0, len(listed), step):
                page = Records.from_chroma({"ids": listed[start : start + step]})
                if include:
                    page = self.get_where(ids=page.ids, include=include)
                if page.ids:
                    yield page
            if len(listed) < ID_PAGE:
                return
            offset += len(listed)

    def existing_ids(
        self,
        ids: Sequence[str],
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
    ) -> set[str]:
        """Which of ``ids`` are stored (and pass the filters, when given)."""
        return set(self.get_where(where, ids=ids, where_document=where_document, include=()).ids)

    def query(
        self,
        vector: Sequence[float] | NDArray[np.float32],
        k: int,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        with_vectors: bool = False,
        ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` records with the largest dot product (among ``ids``, if given), best first."""
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            msg = f"k must be a positive integer, got {k!r}"
            raise ValueError(msg)
        from chromadb.errors import InvalidArgumentError

        include = ["documents", "metadatas", "distances", "embeddings"]
        try:
            result = self._call(
                self.collection.query,
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=k,
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=include if with_vectors else include[:3],
                ids=None if ids is None else unique_ids(ids),
            )
        except InvalidArgumentError as exc:
            msg = (
                f"Chroma refused the filter (where={echo(where)}, where_document="
                f"{echo(where_document)}): {one_line(exc)}. See Chroma's metadata filtering syntax."
            )
            raise ValueError(msg) from exc
        first = {k: v[0] for k in (*include, "ids") if (v := result.get(k)) is not None}
        hits, distances = Records.from_chroma(first).hits(), first["distances"]
        return [replace(h, dot=dot_from_distance(d)) for h, d in zip(hits, distances, strict=True)]

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: NDArray[np.float32] | Sequence[Sequence[float]],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Insert or replace records (metadata replaced, not merged), in the client's batch size."""
        metas = validate_records(ids, texts, metadatas or [None] * len(ids))
        array = np.asarray(vectors, dtype=np.float32)
        width = self.dimension if self.dimension is not None else array.shape[-1]
        if len(ids) and (array.ndim != 2 or array.shape != (len(ids), width)):
            msg = f"Expected {len(ids)} vectors of dimension {width}, got shape {array.shape}"
            raise ValueError(msg)
        if not np.isfinite(array).all():
            msg = "Some vectors contain NaN or infinity; nothing was written"
            raise ValueError(msg)
        for batch, part in self._batches(ids):
            self._write(
                self.collection.upsert,
                batch,
                embeddings=array[part],
                documents=list(texts[part]),
                metadatas=self._replacing(batch, metas[part]),
            )

    def _replacing(
        self, ids: list[str], metadatas: list[Metadata | None]
    ) -> list[dict[str, MetadataValue | None] | None]:
        # Chroma's upsert merges keys: each old key missing from the new metadata is sent as None.
        existing = self.get_where(ids=ids, include=["metadatas"])
        old = dict(zip(existing.ids, existing.metadatas, strict=True))
        return [
            {**(new or {}), **dict.fromkeys(set(old.get(id_) or {}) - set(new or {}))} or None
            for id_, new in zip(ids, metadatas, strict=True)
        ]

    def update(self, metadatas: Mapping[str, Mapping[str, Any]]) -> None:
        """Merge each id's metadata into its stored record (a key set to None is removed)."""
        for batch, _ in self._batches(list(metadatas)):
            metas = [dict(metadatas[i]) for i in batch]
            self._write(self.collection.update, batch, metadatas=metas)

    def clear(self) -> int:
        """Delete every record, keeping the collection and its metadata; returns how many."""
        ids = [i for page in self.scan(include=()) for i in page.ids]
        self.delete(ids)
        return len(ids)

    def delete(
        self, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None
    ) -> None:
        """Delete by ids and/or a metadata filter, in the client's batch size."""
        if ids is None and where is None:
            msg = "delete() needs ids or a where filter; to drop everything, delete the collection"
            raise ValueError(msg)
        if ids is None:  # listed first, so that observers are told which ids go
            ids = self.get_where(where, include=()).ids
        filters = dict(where) if where else None
        for batch, _ in self._batches(unique_ids(ids)):
            self._write(self.collection.delete, batch, deleted=True, where=filters)

    def _batches(self, ids: Sequence[str]) -> Iterator[tuple[list[str], slice]]:
        """``ids`` in slices of the client's batch size, this process's writer lock held."""
        if len(ids):
            hold_writer_lock(self.client)
            step = self.max_batch_size()
            for start in range(0, len(ids), step):
                yield list(ids[start : start + step]), slice(start, start + step)

    def _write(
        self, write: Callable[..., Any], ids: list[str], *, deleted: bool = False, **columns: Any
    ) -> None:
        """One Chroma write of ``ids``, the observers told before and after (or of a failure)."""
        told: list[WriteObserver] = []
        try:
            for observer in self.observers:
                observer.before_write(ids)
                told.append(observer)
            self._call(write, ids=ids, **columns)
        except BaseException:
            for observer in told:
                observer.write_failed(ids)
            raise
        for observer in told:
            observer.after_write(ids, columns.get("documents"), deleted=deleted)
