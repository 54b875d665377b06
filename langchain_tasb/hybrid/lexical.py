r"""The BM25 side of hybrid retrieval: a BM25 index kept in step with a Chroma collection.

The lexical side is :class:`~langchain_tasb.hybrid.bm25.Bm25Index`: `bm25s
<https://github.com/xhluca/bm25s>`_ (Lucene BM25) over bm25s' tokenizer, stemmed when PyStemmer
is installed (``pip install 'langchain-tasb[hybrid]'``).

Keeping in step: a :class:`LexicalIndex` records the state of the collection it was built from
(a SHA-256 over its sorted ids and the tokenizer settings). Before a search it pages through
the collection's ids (``include=[]``) and rebuilds when the state differs, so an add, delete
or re-index by any process is picked up. Costs, measured on SciFact (5,183 abstracts,
embedded Chroma, 2 shared CPU cores; ``benchmarks/RESULTS_hybrid.md``): the check about 6
microseconds an id (30 ms here, about 6 s for a million records, hence ``check_interval``,
which spaces checks out); a rebuild, which pages every document through
(``include=["documents"]``) and tokenises it, about 2 s; loading a persisted index 40 ms.
Text rewritten in place under an unchanged id is not detected; call ``refresh(force=True)``.
Ids derived from content (this package's default) change whenever the text does.

Indexes persist under ``<persist_directory>/bm25/<collection>/`` for embedded Chroma, under
``<cache root>/bm25/<server>/<collection>/`` for a Chroma server (the cache root is
:func:`langchain_tasb.config.cache_root`: ``$TASB_CACHE_DIR``, else
``$XDG_CACHE_HOME/langchain-tasb``), and stay
in memory for an in-memory client. Each state is written to its own folder, named by the
state, through a temporary folder and a rename, so concurrent processes never read a half
written index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from langchain_tasb.chroma.client import persist_directory, server_url
from langchain_tasb.config import cache_root
from langchain_tasb.hybrid.bm25 import Bm25Index, tokenizer_settings

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from langchain_tasb.chroma.records import Records
    from langchain_tasb.chroma.store import ChromaStore
    from langchain_tasb.search import SearchTarget

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
"""Records per page of the collection's scan when checking or rebuilding."""

_STATE_FILE = "state.json"
_STATE_DIR = re.compile(r"^[0-9a-f]{16}$")
_STALE_BUILD_S = 3600.0  # a ".building-" folder this old was left by a crashed process


def _state_digest(ids: Iterable[str]) -> str:
    digest = hashlib.sha256(json.dumps(tokenizer_settings(), sort_keys=True).encode())
    for id_ in sorted(ids):
        data = id_.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def default_directory(store: SearchTarget) -> Path | None:
    """Where the BM25 index of ``store`` persists by default; None for in-memory Chroma."""
    client, name = store.client, store.collection_name
    url = server_url(client)
    if url:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1]).strip("_")
        return cache_root() / "bm25" / slug / name
    folder = persist_directory(client)
    return Path(folder) / "bm25" / name if folder else None


class LexicalIndex:
    """A BM25 index over a :class:`TasbVectorStore`'s collection, rebuilt when it changes.

    Args:
        store: The vector store whose collection is indexed.
        directory: Where to persist; default :func:`default_directory`. ``False`` keeps the
            index in memory only.
        check_interval: Seconds between checks of the collection's state; 0 checks before
            every search (see the module docstring for the cost).

    Example:
        .. code-block:: python

            index = LexicalIndex(store)
            index.search("aspirin dosage", k=5)  # [(id, bm25 score), ...]
    """

    def __init__(
        self,
        store: SearchTarget,
        directory: str | Path | Literal[False] | None = None,
        *,
        check_interval: float = 0.0,
    ) -> None:
        if not math.isfinite(check_interval) or check_interval < 0:
            msg = f"check_interval must be seconds >= 0, got {check_interval!r}"
            raise ValueError(msg)
        self.store = store
        self.directory: Path | None = (
            None
            if directory is False
            else default_directory(store)
            if directory is None
            else Path(directory).expanduser()
        )
        self.check_interval = check_interval
        self._index: Bm25Index | None = None
        self._state: str | None = None
        self._checked = -math.inf
        self._lock = threading.RLock()

    @property
    def _chroma(self) -> ChromaStore:
        return self.store.store

    def _pages(self, *, texts: bool) -> Iterable[Records]:
        return self._chroma.scan(include=["documents"] if texts else [], page_size=PAGE_SIZE)

    def state(self) -> str:
        """The collection's current state: a digest of its ids and the tokenizer settings."""
        return _state_digest(i for page in self._pages(texts=False) for i in page.ids)

    def refresh(self, *, force: bool = False) -> Literal["current", "loaded", "built"]:
        """Bring the index in step with the collection.

        Returns:
            "current" when nothing changed, "loaded" when a persisted index for the current
            state was read, "built" when the index was rebuilt from the collection.
        """
        with self._lock:
            now = time.monotonic()
            if not force and self._index is not None and now - self._checked < self.check_interval:
                return "current"
            state = self.state()
            self._checked = now
            if not force and self._index is not None and state == self._state:
                return "current"
            if not force:
                loaded = self._load(state)
                if loaded is not None:
                    self._index, self._state = loaded, state
                    return "loaded"
            self._build(replace=force)
            return "built"

    def _folder(self, state: str) -> Path | None:
        return None if self.directory is None else self.directory / state[:16]

    def _load(self, state: str) -> Bm25Index | None:
        folder = self._folder(state)
        if folder is None or not (folder / _STATE_FILE).is_file():
            return None
        try:
            recorded = json.loads((folder / _STATE_FILE).read_text(encoding="utf-8"))
            if recorded.get("state") != state:
                return None
            index = Bm25Index.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("BM25 index at %s is unreadable (%s); rebuilding it", folder, exc)
            return None
        logger.debug("loaded BM25 index %s (%d records)", folder, len(index))
        return index

    def _build(self, *, replace: bool) -> None:
        seen: list[str] = []

        def pages() -> Iterable[tuple[list[str], list[str]]]:
            for page in self._pages(texts=True):
                seen.extend(page.ids)
                yield page.ids, page.texts

        start = time.perf_counter()
        index = Bm25Index.build(pages())
        state = _state_digest(seen)
        logger.info(
            "built BM25 index of %s: %d records in %.1f s",
            self.store.collection_name,
            len(index),
            time.perf_counter() - start,
        )
        self._index, self._state = index, state
        self._save(index, state, replace=replace)

    def _save(self, index: Bm25Index, state: str, *, replace: bool) -> None:
        folder = self._folder(state)
        if folder is None or self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix=".building-"))
            index.save(tmp)
            record = {"state": state, "records": len(index), **tokenizer_settings()}
            (tmp / _STATE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
            if folder.exists() and replace:  # a forced rebuild replaces a stale copy
                shutil.rmtree(folder, ignore_errors=True)
            if folder.exists():  # another process built this state first: keep its copy
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.rename(folder)
        except OSError as exc:
            logger.warning(
                "Could not save the BM25 index to %s (%s); it will be rebuilt next time. "
                "Pass another directory=.",
                folder,
                exc,
            )
            return
        stale_build = time.time() - _STALE_BUILD_S
        for old in self.directory.iterdir():
            if old != folder and (
                _STATE_DIR.match(old.name)
                or (old.name.startswith(".building-") and old.stat().st_mtime < stale_build)
            ):
                shutil.rmtree(old, ignore_errors=True)

    def current(self) -> Bm25Index:
        """The index, refreshed as :meth:`refresh` does."""
        with self._lock:
            self.refresh()
            assert self._index is not None  # noqa: S101  (refresh always sets it)
            return self._index

    def search(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, BM25 score)`` pairs with a positive score, filters applied."""
        index = self.current()
        return self.filtered(index, index.scores(query), k, filter, where_document)

    def filtered(
        self,
        index: Bm25Index,
        scores: NDArray[np.float32],
        k: int,
        where: Mapping[str, Any] | None,
        where_document: Mapping[str, Any] | None,
    ) -> list[tuple[str, float]]:
        """Best rows of ``scores`` whose records pass Chroma's ``where``/``where_document``."""
        rows = index.ranked_rows(scores)
        if not where and not where_document:
            return [(index.ids[r], float(scores[r])) for r in rows[:k]]
        out: list[tuple[str, float]] = []
        step = max(4 * k, 100)
        for start in range(0, len(rows), step):
            chunk = [index.ids[r] for r in rows[start : start + step]]
            passed = self._chroma.existing_ids(chunk, where=where, where_document=where_document)
            out.extend((i, float(scores[index.row_of[i]])) for i in chunk if i in passed)
            if len(out) >= k:
                break
        return out[:k]


_INDEXES: weakref.WeakKeyDictionary[SearchTarget, LexicalIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def lexical_index(store: SearchTarget, *, check_interval: float | None = None) -> LexicalIndex:
    """The shared :class:`LexicalIndex` of ``store``, which hybrid searches use by default.

    Created with default settings on first use; ``check_interval`` (seconds), when given,
    replaces the shared index's interval between state checks.
    """
    with _INDEXES_LOCK:
        index = _INDEXES.get(store)
        if index is None:
            index = _INDEXES[store] = LexicalIndex(store)
    if check_interval is not None:
        if not math.isfinite(check_interval) or check_interval < 0:
            msg = f"check_interval must be seconds >= 0, got {check_interval!r}"
            raise ValueError(msg)
        index.check_interval = check_interval
    return index
