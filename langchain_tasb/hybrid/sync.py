"""Keeping a :class:`Bm25Index` in step with a gateway: state, lock, journal, catch-up, observer.

The contract is in :mod:`langchain_tasb.hybrid.lexical`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from langchain_tasb.chroma.records import Marker
from langchain_tasb.hybrid.bm25 import Bm25Index, tokenizer_settings

if TYPE_CHECKING:
    from langchain_tasb.chroma.collection import Collection
    from langchain_tasb.collection import TasbCollection

logger = logging.getLogger(__name__)

PAGE_SIZE = 5000
"""Records per page of the collection's scan when rebuilding."""

STATE_FILE = "state.json"
_INDEX_DIR = "tantivy"
_LOCK_FILE = ".lock"
_OLD_LAYOUT = re.compile(r"^([0-9a-f]{16}|\.building-.*)$")
_POLL_S = 0.05
_WRITE_LOCK_TIMEOUT = 120.0  # seconds a write waits for another process's BM25 update

Refresh = Literal["current", "updated", "built"]


@dataclass
class _State:
    """What ``state.json`` records: the gateway, the marker caught up to, the journal."""

    collection_id: str
    marker: Marker | None = None
    pending: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, path: Path, collection_id: str) -> _State | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("BM25 state %s is unreadable (%s); rebuilding the index", path, exc)
            return None
        if (
            not isinstance(data, dict)
            or data.get("settings") != tokenizer_settings()
            or data.get("collection") != collection_id
            or not isinstance(data.get("pending"), list)
        ):
            return None  # another collection or other settings: rebuild
        return cls(collection_id, Marker.from_json(data.get("marker")), set(data["pending"]))

    def write(self, path: Path, *, durable: bool = True) -> None:
        # A journal entry must be on disk before Chroma is written; one that only clears
        # entries need not be: if lost, the entries are re-read, which is harmless.
        data = {"settings": tokenizer_settings(), "collection": self.collection_id}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data | {"marker": self.marker, "pending": sorted(self.pending)}, f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)


class Core:
    """One BM25 index and its state, shared by every :class:`LexicalIndex` on it in a process."""

    def __init__(self, directory: Path | None, collection_id: str) -> None:
        self.directory = directory
        self.collection_id = collection_id
        self.lock = threading.RLock()
        self._fd: int | None = None  # the folder's lock file, while held
        self._holds = 0
        self.state = _State(collection_id) if directory is None else self._open(directory)
        self.bm25 = Bm25Index(None if directory is None else directory / _INDEX_DIR)
        self._stamp = self._disk_stamp()

    def _open(self, directory: Path) -> _State:
        directory.mkdir(parents=True, exist_ok=True)
        state = _State.read(directory / STATE_FILE, self.collection_id)
        if state is None:  # new, or built by other settings or for another collection
            with self.exclusive(wait=True):
                state = _State.read(directory / STATE_FILE, self.collection_id)
                if state is None:
                    shutil.rmtree(directory / _INDEX_DIR, ignore_errors=True)
                    for old in directory.iterdir():  # bm25s-format index files
                        if _OLD_LAYOUT.match(old.name) and old.is_dir():
                            shutil.rmtree(old, ignore_errors=True)
                    state = _State(self.collection_id)
                    state.write(directory / STATE_FILE)
        return state

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        if self.directory is None:
            return None
        try:
            st = (self.directory / STATE_FILE).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def sync_from_disk(self) -> None:
        """Take up what another process committed since this one last looked."""
        stamp = self._disk_stamp()
        if self.directory is None or stamp == self._stamp:
            return
        state = _State.read(self.directory / STATE_FILE, self.collection_id)
        self._stamp = stamp
        if state is not None:
            self.state = state
            self.bm25.reload()

    def save(self, *, durable: bool = True) -> None:
        """Write the state to disk (a no-op in memory); see :meth:`_State.write`."""
        if self.directory is not None:
            self.state.write(self.directory / STATE_FILE, durable=durable)
            self._stamp = self._disk_stamp()

    def acquire(self, timeout: float) -> bool:
        """Take :attr:`lock`, then the folder's ``flock`` (both re-entrant); False if busy."""
        self.lock.acquire()
        if self.directory is None or self._holds:
            self._holds += 1
            return True
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            if time.monotonic() >= deadline:
                os.close(fd)
                self.lock.release()
                return False
            time.sleep(_POLL_S)
        self._fd, self._holds = fd, 1
        return True

    def release(self) -> None:
        """Give back one hold of :meth:`acquire`'s locks (the last closes the folder's)."""
        self._holds -= 1
        if self._holds == 0 and self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        self.lock.release()

    @contextlib.contextmanager
    def exclusive(self, *, wait: bool) -> Iterator[bool]:
        """Hold :meth:`acquire`'s locks; yields False when busy and not waiting."""
        got = self.acquire(_WRITE_LOCK_TIMEOUT if wait else 0.0)
        try:
            yield got
        finally:
            if got:
                self.release()

    def catch_up(self, gateway: Collection, *, force: bool = False) -> Refresh:
        """Bring the index in step with ``gateway``'s collection (holding :meth:`exclusive`)."""
        self.sync_from_disk()
        now = gateway.changes.marker()
        state = self.state
        if not force and state.marker == now and not state.pending:
            return "current"
        changed = None
        if not force and state.marker is not None:
            changed = gateway.changes.changed_since(state.marker, now)
        if changed is None and state.marker is not None and now.kind == "count" and state.pending:
            changed = set()  # a server: re-read the journal, then check the count below
        if changed is None:
            self.rebuild(gateway, now)
            return "built"
        self.reconcile(gateway, changed | state.pending)
        if now.kind == "count" and len(self.bm25) != gateway.count():
            self.rebuild(gateway, gateway.changes.marker())
            return "built"
        state.marker, state.pending = now, set()
        self.save()
        return "updated"

    def reconcile(self, gateway: Collection, ids: set[str]) -> None:
        """Apply what Chroma holds now for ``ids``: present ones re-indexed, the rest dropped."""
        if not ids:
            return
        ordered = sorted(ids)
        step = gateway.max_batch_size()
        upserts: list[tuple[str, str]] = []
        for start in range(0, len(ordered), step):
            found = gateway.get_where(ids=ordered[start : start + step], include=["documents"])
            upserts.extend(zip(found.ids, found.texts, strict=True))
        present = {id_ for id_, _ in upserts}
        self.bm25.apply(upserts, [i for i in ordered if i not in present])
        logger.debug("BM25 index: re-read %d changed ids", len(ordered))

    def rebuild(self, gateway: Collection, marker: Marker) -> None:
        """Index every record afresh; ``marker`` was read before the scan."""
        start = time.perf_counter()
        self.state.pending = set()
        self.state.marker = None
        self.save()  # a crash mid-build leaves "unknown", hence another build
        pages = gateway.scan(include=["documents"], page_size=PAGE_SIZE)
        count = self.bm25.replace_all((page.ids, page.texts) for page in pages)
        self.state.marker = marker
        self.save()
        elapsed = time.perf_counter() - start
        logger.info("built BM25 index of %s: %d records in %.1f s", gateway.name, count, elapsed)


class _Observer:
    """A :class:`~langchain_tasb.chroma.records.WriteObserver` feeding one core from one gateway."""

    def __init__(self, core: Core, gateway: Collection) -> None:
        self.core = core
        self.gateway = weakref.proxy(gateway)
        self._before: Marker | None = None
        self._in_step = False

    def before_write(self, ids: Sequence[str]) -> None:
        """Lock, note whether the index is in step, and journal ``ids``.

        Raises:
            TimeoutError: another process kept the index's lock for two minutes.
        """
        core = self.core
        if not core.acquire(_WRITE_LOCK_TIMEOUT):
            msg = (
                f"Another process has held the BM25 index lock {core.directory}/{_LOCK_FILE} for "
                f"{_WRITE_LOCK_TIMEOUT:.0f} s; nothing was written. Retry when it ends."
            )
            raise TimeoutError(msg)
        try:  # both locks are re-entrant: a nested write holds them once more
            core.sync_from_disk()
            marker = self.gateway.changes.marker()
            self._before = marker
            self._in_step = core.state.marker == marker and not core.state.pending
            core.state.pending.update(ids)
            core.save()
        except BaseException:
            core.release()
            raise

    def after_write(
        self, ids: Sequence[str], texts: Sequence[str] | None, *, deleted: bool
    ) -> None:
        """Apply the confirmed write, move the marker if only this write moved it, unlock.

        Chroma holds the write already: a failing BM25 side is logged and its ids stay journalled.
        """
        core, changes = self.core, self.gateway.changes
        try:
            if deleted:
                core.bm25.apply(deletes=ids)
            elif texts is not None:
                core.bm25.apply(zip(ids, texts, strict=True))
            after = changes.marker()
            if self._in_step and (before := self._before) is not None:
                # A count marker cannot say which ids changed: it is taken as this write's.
                changed = set() if after.kind == "count" else changes.changed_since(before, after)
                if changed is not None and changed <= set(ids):
                    core.state.marker = after
            core.state.pending.difference_update(ids)
            core.save(durable=False)
        except Exception as exc:
            msg = "BM25 index: %d written ids not applied (%s); the next search re-reads them"
            logger.warning(msg, len(ids), exc)
        finally:
            core.release()

    def write_failed(self, ids: Sequence[str]) -> None:
        """Re-read ``ids`` from Chroma (the journal keeps them if that fails too), unlock."""
        core = self.core
        try:
            core.reconcile(self.gateway, set(ids))
        except Exception as exc:  # the journal keeps the ids for the next search
            msg = "BM25 index: %d ids not re-read after a failed write (%s); the next search will"
            logger.warning(msg, len(ids), exc)
        else:
            core.state.pending.difference_update(ids)
            core.save()
        finally:
            core.release()


def attach(store: TasbCollection, core: Core) -> None:
    """Make ``store``'s writes update ``core`` (once per gateway)."""
    gateway = store.store
    if not any(isinstance(o, _Observer) and o.core is core for o in gateway.observers):
        gateway.observers.append(_Observer(core, gateway))


_CORES: weakref.WeakValueDictionary[Path, Core] = weakref.WeakValueDictionary()
_CORES_LOCK = threading.Lock()


def core_for(directory: Path | None, collection_id: str) -> Core:
    """The process's one core for ``directory`` (a new in-memory one when None)."""
    if directory is None:
        return Core(None, collection_id)
    key = directory.resolve()
    with _CORES_LOCK:
        if (core := _CORES.get(key)) is None or core.collection_id != collection_id:
            core = _CORES[key] = Core(key, collection_id)
        return core
