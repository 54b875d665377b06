"""Writes to one collection (the bodies of ``Collection``'s write methods): batched, observed."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.chroma.changes import observed_write
from langchain_tasb.chroma.client import hold_writer_lock
from langchain_tasb.chroma.records import unique_ids, validate_records

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from numpy.typing import NDArray

    from langchain_tasb.chroma.collection import Collection
    from langchain_tasb.chroma.records import Metadata, MetadataValue


def upsert(
    collection: Collection,
    ids: Sequence[str],
    texts: Sequence[str],
    vectors: NDArray[np.float32] | Sequence[Sequence[float]],
    metadatas: Sequence[Mapping[str, Any] | None] | None = None,
) -> None:
    """Insert or replace records, validated first, written in the client's batch size.

    Raises:
        StoreLockedError: another process writes this embedded folder.
    """
    metas = validate_records(ids, texts, metadatas or [None] * len(ids))
    array = np.asarray(vectors, dtype=np.float32)
    width = collection.dimension if collection.dimension is not None else array.shape[-1]
    if len(ids) and (array.ndim != 2 or array.shape != (len(ids), width)):
        msg = f"Expected {len(ids)} vectors of dimension {width}, got shape {array.shape}"
        raise ValueError(msg)
    if not np.isfinite(array).all():
        msg = "Some vectors contain NaN or infinity; nothing was written"
        raise ValueError(msg)
    if len(set(ids)) != len(ids):
        msg = "ids contain duplicates within one write; merge them first"
        raise ValueError(msg)
    if len(ids):
        hold_writer_lock(collection.client)
    step = collection.max_batch_size() if len(ids) else 1
    for start in range(0, len(ids), step):
        end = start + step
        batch_ids = list(ids[start:end])
        batch_texts = list(texts[start:end])
        replacing = replacing_metadata(collection, batch_ids, metas[start:end])
        observed_write(
            collection.observers,
            batch_ids,
            partial(
                collection._call,
                collection.collection.upsert,
                ids=batch_ids,
                embeddings=array[start:end],
                documents=batch_texts,
                metadatas=replacing,
            ),
            texts=batch_texts,
        )


def replacing_metadata(
    collection: Collection, ids: list[str], metadatas: list[Metadata | None]
) -> list[dict[str, MetadataValue | None] | None]:
    """Metadata that replaces, rather than merges into, what ``ids`` already hold.

    Chroma's upsert merges keys, so every old key missing from the new metadata is sent as None.
    """
    existing = collection.get_where(ids=ids, include=["metadatas"])
    old = dict(zip(existing.ids, existing.metadatas, strict=True))
    out: list[dict[str, MetadataValue | None] | None] = []
    for id_, new in zip(ids, metadatas, strict=True):
        stale = set(old.get(id_) or {}) - set(new or {})
        if stale:
            out.append({**(new or {}), **dict.fromkeys(stale)})
        else:
            out.append(dict(new) if new else None)
    return out


def update(
    collection: Collection, ids: Sequence[str], metadatas: Sequence[Mapping[str, Any] | None]
) -> None:
    """Merge ``metadatas`` into stored records (a key set to None is removed), batched."""
    if len(ids) != len(metadatas):
        msg = f"update got {len(ids)} ids but {len(metadatas)} metadatas; pass one per id"
        raise ValueError(msg)
    if not ids:
        return
    hold_writer_lock(collection.client)
    step = collection.max_batch_size()
    for start in range(0, len(ids), step):
        batch = list(ids[start : start + step])
        observed_write(
            collection.observers,
            batch,
            partial(
                collection._call,
                collection.collection.update,
                ids=batch,
                metadatas=[dict(m) if m is not None else None for m in metadatas[start:][:step]],
            ),
        )


def clear(collection: Collection) -> int:
    """Delete every record, keeping the collection and its metadata; returns how many."""
    hold_writer_lock(collection.client)
    step = collection.max_batch_size()
    removed = 0
    while ids := collection.get_where(include=(), limit=step).ids:
        delete(collection, ids=ids)
        removed += len(ids)
    return removed


def delete(
    collection: Collection, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None
) -> None:
    """Delete by ids and/or a metadata filter, in the client's batch size."""
    if ids is None and where is None:
        msg = "delete() needs ids or a where filter; to drop everything, delete the collection"
        raise ValueError(msg)
    hold_writer_lock(collection.client)
    if ids is None and not collection.observers:
        collection._call(collection.collection.delete, where=dict(where or {}))
        return
    if ids is None:  # observers are told ids: find them first
        ids = collection.get_where(where, include=()).ids
    unique = unique_ids(ids)
    if not unique:
        return
    step = collection.max_batch_size()
    for start in range(0, len(unique), step):
        batch = unique[start : start + step]
        observed_write(
            collection.observers,
            batch,
            partial(
                collection._call,
                collection.collection.delete,
                ids=batch,
                where=dict(where) if where else None,
            ),
            deleted=True,
        )
