"""How a collection changed since a point: the write log of embedded Chroma, or its count.

Embedded Chroma's ``embeddings_queue`` (read-only SQLite) gives the ids written since a
position; a server has no such log, so its marker is the record count and changed ids are
unknown (a text replaced under the same id is not seen there).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from langchain_tasb.chroma.client import persist_directory

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tasb.chroma.collection import Collection

logger = logging.getLogger(__name__)

_DB_FILE = "chroma.sqlite3"
_SEGMENT_SEQ = (
    "SELECT m.seq_id FROM max_seq_id AS m JOIN segments AS s ON s.id = m.segment_id "
    "WHERE s.collection = ? AND s.scope = 'METADATA'"
)
# Topics read "persistent://<namespace>/<collection id>": matched by the id, the one stable part.
_LOGGED_SINCE = (
    "SELECT id FROM embeddings_queue WHERE seq_id > ? AND seq_id <= ? AND topic LIKE ? ESCAPE '\\'"
)
_OLDEST_LOGGED = "SELECT MIN(seq_id) FROM embeddings_queue"


@dataclass(frozen=True)
class Marker:
    """A point in a collection's history: a write-log position, or a record count."""

    kind: Literal["seq", "count"]
    value: int

    def to_json(self) -> list[Any]:
        """``[kind, value]``, for a state file."""
        return [self.kind, self.value]

    @classmethod
    def from_json(cls, data: Any) -> Marker | None:
        """The marker :meth:`to_json` wrote; None for anything else."""
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
        if folder is not None and (path := Path(folder) / _DB_FILE).is_file():
            self._id = collection.id
            self._topic = "%/" + re.sub(r"([\\%_])", r"\\\1", self._id)
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
                rows = self._read(_SEGMENT_SEQ, self._id)
            except sqlite3.Error as exc:
                logger.debug("cannot read Chroma's write log (%s); counting records", exc)
            else:
                return Marker("seq", int(rows[0][0]) if rows and rows[0][0] is not None else 0)
        return Marker("count", self._collection.count())

    def changed_since(self, since: Marker, now: Marker) -> set[str] | None:
        """Ids written after ``since`` up to ``now``; None when that cannot be known."""
        if since == now:
            return set()
        if self._db is None or since.kind != "seq" or now.kind != "seq":
            return None
        if now.value < since.value:
            return None  # the database was replaced
        try:
            oldest = self._read(_OLDEST_LOGGED)
            if not oldest or oldest[0][0] is None or int(oldest[0][0]) > since.value + 1:
                return None  # purged past the point we need
            rows = self._read(_LOGGED_SINCE, since.value, now.value, self._topic)
        except sqlite3.Error as exc:
            logger.debug("cannot read Chroma's write log (%s)", exc)
            return None
        if not rows:
            return None  # the collection moved on but logged nothing we can find
        return {str(row[0]) for row in rows}


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
