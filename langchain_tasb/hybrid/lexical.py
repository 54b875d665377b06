r"""The BM25 side of hybrid retrieval: a :class:`Bm25Index` kept in step with a collection.

Writes through this package update it in the same step; others' writes are caught by the
next search through the collection's change marker. Crash safety: a write's ids are journalled
(fsynced) in ``state.json`` before it reaches Chroma, and re-read on open.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_tasb.chroma.client import side_folder
from langchain_tasb.hybrid.sync import STATE_FILE, Refresh, attach, core_for

if TYPE_CHECKING:
    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.hybrid.bm25 import Bm25Index

logger = logging.getLogger(__name__)


def default_directory(store: TasbCollection) -> Path | None:
    """Where the BM25 index of ``store`` persists by default; None for in-memory Chroma."""
    return side_folder(store.client, "bm25", store.collection_name)


class LexicalIndex:
    """A BM25 index over a store's collection, kept in step by writes and checked per search.

    ``directory`` defaults to :func:`default_directory`; ``False`` keeps the index in memory.
    ``check_interval``: seconds between checks for writes made outside this package (0: every
    search).
    """

    def __init__(
        self,
        store: TasbCollection,
        directory: str | Path | Literal[False] | None = None,
        *,
        check_interval: float = 0.0,
    ) -> None:
        _check_interval(check_interval)
        self.store = store
        self.gateway = store.store
        if directory is None:
            directory = default_directory(store)
        self.directory = Path(directory).expanduser() if directory else None
        self.check_interval = check_interval
        self._core = core_for(self.directory, self.gateway.id)
        self._checked = -math.inf
        attach(store, self._core)

    @property
    def bm25(self) -> Bm25Index:
        """The BM25 index as it is (call :meth:`refresh` first to bring it in step)."""
        return self._core.bm25

    def refresh(self, *, force: bool = False) -> Refresh:
        """Bring the index in step with the collection.

        Returns:
            "current" when nothing changed (or another process is writing it), "updated" when
            changed records were re-read, "built" when the whole collection was indexed afresh.
        """
        core = self._core
        with core.lock:
            now = time.monotonic()
            if not force and now - self._checked < self.check_interval:
                return "current"
            core.sync_from_disk()
            unforced = not force and not core.state.pending
            if unforced and core.state.marker == self.gateway.changes.marker():
                self._checked = now
                return "current"
            with core.exclusive(wait=force or core.state.marker is None) as got:
                if not got:  # another process is writing: it brings the index in step
                    return "current"
                result = core.catch_up(self.gateway, force=force)
            self._checked = now
            return result

    def search(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, BM25 score)`` pairs with a query term, filters applied."""
        self.refresh()
        bm25 = self._core.bm25
        if not filter and not where_document:
            return bm25.top(query, k)
        out: list[tuple[str, float]] = []
        offset, step = 0, max(4 * k, 100)
        while len(out) < k:
            window = bm25.top(query, step, offset=offset)
            if not window:
                break
            passed = self.gateway.existing_ids(
                [i for i, _ in window], where=filter, where_document=where_document
            )
            out.extend(hit for hit in window if hit[0] in passed)
            offset += len(window)
            if len(window) < step:
                break
            step *= 2
        return out[:k]


def _check_interval(value: float) -> None:
    if not math.isfinite(value) or value < 0:
        msg = f"check_interval must be seconds >= 0, got {value!r}"
        raise ValueError(msg)


_INDEXES: weakref.WeakKeyDictionary[TasbCollection, LexicalIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def lexical_index(store: TasbCollection, *, check_interval: float | None = None) -> LexicalIndex:
    """The shared :class:`LexicalIndex` of ``store``; ``check_interval`` replaces its interval."""
    with _INDEXES_LOCK:
        if (index := _INDEXES.get(store)) is None:
            index = _INDEXES[store] = LexicalIndex(store)
    if check_interval is not None:
        _check_interval(check_interval)
        index.check_interval = check_interval
    return index


def attach_persisted(store: TasbCollection) -> None:
    """Keep a persisted BM25 index of ``store``'s collection in step with its writes, if any."""
    directory = default_directory(store)
    if directory is None or not (directory / STATE_FILE).is_file():
        return
    try:
        lexical_index(store)
    except ImportError as exc:  # built where the [hybrid] extra was installed, not here
        logger.warning("The BM25 index at %s is not kept in step: %s", directory, exc)
