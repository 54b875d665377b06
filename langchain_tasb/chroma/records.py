"""Records as Chroma stores them: checks before a write, the shapes reads return, changes."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, cast

import numpy as np

from langchain_tasb.chroma.client import persist_directory
from langchain_tasb.validation import check_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from numpy.typing import NDArray

    from langchain_tasb.chroma.collection import Collection

logger = logging.getLogger(__name__)

MetadataValue = str | int | float | bool | list[str] | list[int] | list[float] | list[bool]
Metadata = dict[str, MetadataValue]


@dataclass(frozen=True)
class Hit:
    """One stored record: id, text, metadata, dot product with the query (if queried)."""

    id: str
    text: str
    metadata: dict[str, Any] | None
    dot: float = math.nan
    vector: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Records:
    """A page of stored records, column by column.

    A field not asked for reads "" per text, None per metadata, or None for all ``vectors``.
    """

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any] | None]
    vectors: list[NDArray[np.float32]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def hits(self) -> list[Hit]:
        """The records one by one."""
        vectors: Sequence[NDArray[np.float32] | None] = self.vectors or [None] * len(self.ids)
        return [
            Hit(id=i, text=t, metadata=m, vector=v)
            for i, t, m, v in zip(self.ids, self.texts, self.metadatas, vectors, strict=True)
        ]

    @classmethod
    def from_chroma(cls, result: Mapping[str, Any]) -> Records:
        """From the dict a chromadb ``collection.get`` returns."""
        ids = [str(i) for i in result["ids"]]
        docs = result.get("documents") or [""] * len(ids)
        metas = result.get("metadatas") or [None] * len(ids)
        vectors = result.get("embeddings")
        vectors = None if vectors is None else [np.asarray(v, dtype=np.float32) for v in vectors]
        return cls(ids, [d or "" for d in docs], list(metas), vectors)


def validate_records(
    ids: Sequence[str],
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None],
) -> list[Metadata | None]:
    """Check a write before any of it happens; return metadata cleaned for Chroma.

    ``None`` values are dropped and an empty dict becomes ``None``; anything Chroma would
    reject or silently drop raises ``ValueError`` or ``TypeError`` naming the position.
    """
    if not len(ids) == len(texts) == len(metadatas):
        msg = (
            f"ids, texts and metadatas differ in length: {len(ids)}, {len(texts)}, {len(metadatas)}"
        )
        raise ValueError(msg)
    if len(unique_ids(ids)) != len(ids):
        msg = "ids contain duplicates within one write; merge them first"
        raise ValueError(msg)
    for i, text in enumerate(texts):
        check_text(text, f"texts[{i}]")
    return [_clean_metadata(metadata, i) for i, metadata in enumerate(metadatas)]


def _clean_metadata(metadata: Mapping[str, Any] | None, i: int) -> Metadata | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        msg = f"metadatas[{i}] must be a dict or None, got {type(metadata).__name__}"
        raise TypeError(msg)
    out: Metadata = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            msg = f"metadatas[{i}] has key {key!r}: keys must be non-empty strings"
            raise ValueError(msg)
        # "#document" in Chroma's Rust schema, "chroma:document" in its Python one
        if key.startswith("#") or key == "chroma:document":
            msg = (
                f"metadatas[{i}] has key {key!r}, which Chroma reserves for its own use (keys "
                "starting with '#', and 'chroma:document'); rename it"
            )
            raise ValueError(msg)
        if value is not None:
            out[key] = _check_value(value, f"metadatas[{i}][{key!r}]")
    return out or None


def _check_value(value: object, where: str) -> MetadataValue:
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        msg = f"{where} = {value} does not fit in a 64-bit integer"
        raise ValueError(msg)
    elif isinstance(value, float) and not math.isfinite(value):
        msg = f"{where} is {value!r}; Chroma would drop it silently, so it is refused"
        raise ValueError(msg)
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) and {type(v) for v in value} in ({str}, {int}, {float}, {bool}):
        for v in value:
            _check_value(v, where)
        return value
    msg = (
        f"{where} has type {type(value).__name__}; Chroma stores str, int, float, bool or a "
        "non-empty list of one of those. Flatten it or store json.dumps(value)."
    )
    raise TypeError(msg)


def unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` without repeats, in order; each must be a non-empty string."""
    if isinstance(ids, str):
        msg = f"ids must be a list of strings, got the single string {ids!r}; wrap it: [id]"
        raise TypeError(msg)
    for i, id_ in enumerate(ids):
        if not isinstance(id_, str) or not id_:
            msg = f"ids[{i}] must be a non-empty string, got {id_!r}"
            raise ValueError(msg)
    return list(dict.fromkeys(ids))


_SEGMENT_SEQ = (
    "SELECT COALESCE(MAX(m.seq_id), 0) FROM max_seq_id AS m "
    "JOIN segments AS s ON s.id = m.segment_id WHERE s.collection = ? AND s.scope = 'METADATA'"
)
# Topics read "persistent://<namespace>/<collection id>": matched by the id, the one stable part.
_LOGGED_SINCE = (
    "SELECT id FROM embeddings_queue WHERE seq_id > ? AND seq_id <= ? AND topic LIKE ? ESCAPE '\\'"
)
_LOGGED_UP_TO = "SELECT EXISTS (SELECT 1 FROM embeddings_queue WHERE seq_id <= ?)"


class Marker(NamedTuple):
    """A point in a collection's history (a write-log position, or a record count)."""

    kind: Literal["seq", "count"]
    value: int

    @classmethod
    def from_json(cls, data: Any) -> Marker | None:
        """The marker JSON wrote (as ``[kind, value]``); None for anything else."""
        match data:
            case ["seq" | "count" as kind, int(value)] if not isinstance(value, bool):
                return cls(kind, value)
        return None


class ChangeFeed:
    """The change marker of one collection, and the ids written since a marker."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._lock = threading.Lock()  # threads share one read-only connection
        self._db: sqlite3.Connection | None = None
        folder = persist_directory(collection.client)
        if folder is not None and (path := Path(folder) / "chroma.sqlite3").is_file():
            self._topic = "%/" + re.sub(r"([\\%_])", r"\\\1", collection.id)
            uri = f"{path.absolute().as_uri()}?mode=ro"  # a file URI must be absolute
            with contextlib.suppress(sqlite3.Error):  # then the record count stands in
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)

    def _read(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return cast("sqlite3.Connection", self._db).execute(sql, args).fetchall()

    def marker(self) -> Marker:
        """Where the collection is now: its last logged write, else its record count."""
        if self._db is not None:
            try:
                return Marker("seq", int(self._read(_SEGMENT_SEQ, self._collection.id)[0][0]))
            except sqlite3.Error as exc:
                logger.debug("cannot read Chroma's write log (%s); counting records", exc)
        return Marker("count", self._collection.count())

    def changed_since(self, since: Marker, now: Marker) -> set[str] | None:
        """Ids written after ``since`` up to ``now``; None when that cannot be known."""
        if since == now:
            return set()
        # Only between two log positions, and not back in time (the database was replaced).
        if self._db is None or since.kind != "seq" or now.kind != "seq" or now.value < since.value:
            return None
        try:
            if not self._read(_LOGGED_UP_TO, since.value + 1)[0][0]:
                return None  # purged past the point we need
            rows = self._read(_LOGGED_SINCE, since.value, now.value, self._topic)
        except sqlite3.Error as exc:
            logger.debug("cannot read Chroma's write log (%s)", exc)
            return None
        # None if the collection moved on but logged nothing we can find
        return {str(row[0]) for row in rows} or None


class WriteObserver(Protocol):
    """Told of every write through a :class:`~langchain_tasb.chroma.collection.Collection`."""

    def before_write(self, ids: Sequence[str]) -> None:
        """``ids`` are about to be written."""

    def after_write(
        self, ids: Sequence[str], texts: Sequence[str] | None, *, deleted: bool
    ) -> None:
        """``ids`` were upserted with ``texts``, updated (``texts`` None) or deleted."""

    def write_failed(self, ids: Sequence[str]) -> None:
        """The write of ``ids`` raised: some, all or none of it may have been applied (find out)."""
