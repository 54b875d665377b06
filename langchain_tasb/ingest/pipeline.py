"""One run of :func:`~langchain_tasb.ingest.indexer.index_paths`: a reading thread and a writer.

The calling thread reads, chunks and (without Ray) encodes; through a bounded queue the writer
thread writes each batch (with Ray: each wave) while the next is made, then finishes files.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.ingest.manifest import Fingerprint, Manifest, fingerprint, open_manifests
from langchain_tasb.ingest.readers import UnreadableFileError
from langchain_tasb.ingest.report import FileFailure, IndexProgress, IndexReport
from langchain_tasb.ingest.rows import of_root, prune_root, read_rows, stored_records

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from langchain_tasb.chroma.collection import Collection
    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.ingest.chunking import TokenChunker
    from langchain_tasb.ingest.files import FileEntry
    from langchain_tasb.ingest.report import ProgressCallback
    from langchain_tasb.ingest.rows import _Row

    WriteRows = Callable[[list[_Row], Callable[[int, str], None]], None]
    """Encodes and writes rows elsewhere (on Ray), confirming each batch's count and worker."""

logger = logging.getLogger(__name__)

_QUEUE_BATCHES = 2  # batches encoded ahead of the writer; bounds memory
_POLL_SECONDS = 0.2  # how often blocked threads look for an error or an abort
_LOOKUP_FILES = 64  # files whose stored records are fetched with one Chroma query
_LOOKUP_RECORDS = 20_000  # beyond this many records, a group's files are looked up one by one


@dataclass
class _Finish:
    """What is left to do for a file once its new chunks are written."""

    source: str
    manifest: Manifest
    mark: Fingerprint | None  # recorded in the manifest once the file is written
    chunks: int
    moved: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> its new metadata
    stale_ids: list[str] = field(default_factory=list)


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnreadableFileError):
        return exc.reason
    return str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"


@dataclass
class _IndexRun:
    """One call of :func:`index_paths`: the reading thread's state and the writer thread."""

    store: TasbCollection
    scan: Callable[..., Iterator[FileEntry]]  # iter_files on the roots, with their filters
    root_ids: dict[str, str]  # resolved root -> its root id
    chunker: TokenChunker
    limits: tuple[int | None, int | None]  # max_file_bytes, max_chunks_per_file
    progress: ProgressCallback | None
    flush_at: int  # chunks handed to the writer together: a batch, or a wave for Ray
    ray_write: WriteRows | None  # None: encode here, upsert from the writer thread
    report: IndexReport = field(default_factory=IndexReport)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    files_total: int = 0
    files_done: int = 0
    files_read: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: queue.Queue[Callable[[], None] | None] = field(
        default_factory=lambda: queue.Queue(_QUEUE_BATCHES)
    )
    abort: threading.Event = field(default_factory=threading.Event)
    writer_error: BaseException | None = None
    pending: list[_Row] = field(default_factory=list)
    pending_finishes: list[_Finish] = field(default_factory=list)

    @property
    def chroma(self) -> Collection:
        return self.store.store

    # -- reading side -------------------------------------------------------------------------

    def run(self, *, prune: bool, manifest: bool, full: bool) -> IndexReport:
        began = time.monotonic()
        self.report.roots, self.report.root_ids = list(self.root_ids), list(self.root_ids.values())
        # Raises FileNotFoundError for a missing root now, before any write.
        files = self.scan(stats=self.report.skipped)
        self.manifests = open_manifests(
            self.store,
            self.root_ids,
            self.chunker,
            self.limits,
            enabled=manifest,
            full=full,
        )
        if self.progress is not None:
            self.files_total = sum(1 for _ in self.scan())
            self._notify("")
        seen: dict[str, set[str]] = {root: set() for root in self.root_ids}
        thread = threading.Thread(target=self._write_loop, name="tasb-index-writer", daemon=True)
        thread.start()
        try:
            while group := list(itertools.islice(files, _LOOKUP_FILES)):
                for entry in group:
                    seen[str(entry.root)].add(entry.relpath)
                todo = [entry for entry in group if not self._skip_unchanged(entry)]
                stored = stored_records(self.chroma, todo, _LOOKUP_RECORDS) if todo else {}
                for entry in todo:
                    self._index_file(entry, stored)
            self._flush()
            self._put(None)
            while thread.is_alive():
                thread.join(_POLL_SECONDS)
            if self.writer_error is not None:
                raise self.writer_error
            unlisted = self.report.skipped.unlisted
            for folder in unlisted:
                reason = f"cannot list this folder ({folder.reason}): its files were not indexed"
                self.report.failures.append(FileFailure(str(folder.path), folder.relpath, reason))
            for root, root_id in self.root_ids.items() if prune else ():
                if any(str(folder.root) == root for folder in unlisted):
                    logger.warning("not pruning %s: a folder under it could not be listed", root)
                    self.report.prune_skipped.append(root)
                    continue
                kept = self.manifests[root]
                chunks, files_pruned = prune_root(self.chroma, root, root_id, seen[root], kept)
                self.report.chunks_pruned += chunks
                self.report.files_pruned += files_pruned
        except BaseException:
            self.abort.set()
            thread.join()
            raise
        finally:
            for kept in self.manifests.values():  # each holds only files fully written
                kept.save()
        self.report.files_seen = self.report.skipped.files
        self.report.seconds = time.monotonic() - began
        self._notify("", finished=True)
        return self.report

    def _skip_unchanged(self, entry: FileEntry) -> bool:
        """Whether the manifest vouches for ``entry``: then it is counted and not read."""
        chunks = self.manifests[str(entry.root)].unchanged(entry)
        if chunks is not None:
            self._file_done(
                entry.relpath, files_unchanged=1, files_not_read=1, chunks_unchanged=chunks
            )
        return chunks is not None

    def _index_file(self, entry: FileEntry, stored: dict[str, tuple[list[str], list[Any]]]) -> None:
        manifest = self.manifests[str(entry.root)]
        root_id = self.root_ids[str(entry.root)]
        mark = fingerprint(entry.path) if manifest.path is not None else None  # before reading
        try:
            rows, cleaned, dropped = read_rows(entry, self.chunker, root_id, self.limits)
        except Exception as exc:  # any error in one file is that file's failure
            manifest.forget(entry.relpath)
            reason = _reason(exc)
            logger.info("skipping %s: %s", entry.path, reason)  # the report carries it
            logger.debug("%s failed", entry.path, exc_info=True)
            with self.lock:
                self.report.failures.append(FileFailure(str(entry.path), entry.relpath, reason))
            self._file_done(entry.relpath)
            return
        if str(entry.path) in stored:
            ids, metadatas = stored[str(entry.path)]
        else:  # the group held too many records to fetch at once
            alone = self.chroma.get_where({"path": str(entry.path)}, include=["metadatas"])
            ids, metadatas = alone.ids, list(alone.metadatas)
        existing = of_root(root_id, str(entry.root), ids, metadatas)
        finish = _Finish(entry.relpath, manifest, mark, len(rows))
        new: list[_Row] = []
        unchanged = 0
        for row, clean in zip(rows, cleaned, strict=True):
            old = existing.pop(row.id, None)
            if old is None:
                new.append(row)
            elif old == (clean or {}):
                unchanged += 1
            else:  # Chroma merges metadata on update: a key set to None is deleted
                finish.moved[row.id] = {**dict.fromkeys(old), **(clean or {})}
        finish.stale_ids = list(existing)
        with self.lock:
            self.files_read += 1
            self.report.metadata_keys_dropped += dropped
            self.report.chunks_unchanged += unchanged
        if new:
            for row in new:
                self.pending.append(row)
                if len(self.pending) >= self.flush_at:
                    self._flush()
            self.pending_finishes.append(finish)
        elif finish.moved or finish.stale_ids:
            self._put(functools.partial(self._finish, finish))
        else:
            manifest.record(entry.relpath, mark, len(rows))
            self._file_done(entry.relpath, files_unchanged=1)

    def _flush(self) -> None:
        """Embed the pending chunks and hand them to the writer, followed by the files done."""
        if self.pending:
            rows, self.pending = self.pending, []
            if self.ray_write is not None:  # Ray encodes where it writes, confirming each batch
                self._put(functools.partial(self.ray_write, rows, self._confirmed))
            else:
                embedded = self.store.encoder.embed_documents([r.text for r in rows])
                self._put(functools.partial(self._upsert, rows, np.asarray(embedded, np.float32)))
        finishes, self.pending_finishes = self.pending_finishes, []
        for finish in finishes:
            self._put(functools.partial(self._finish, finish))

    def _put(self, item: Callable[[], None] | None) -> None:
        """Queue a write for the writer, waiting while the queue is full; re-raise its error."""
        while True:
            if self.writer_error is not None:
                raise self.writer_error
            with contextlib.suppress(queue.Full):
                self.batches.put(item, timeout=_POLL_SECONDS)
                return

    # -- writing side -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self.abort.is_set():
            with contextlib.suppress(queue.Empty):
                if (item := self.batches.get(timeout=_POLL_SECONDS)) is None:
                    return
                try:
                    item()
                except BaseException as exc:  # handed to the reading thread, which re-raises
                    self.writer_error = exc
                    return

    def _upsert(self, rows: list[_Row], vectors: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        self.chroma.upsert(
            [r.id for r in rows], [r.text for r in rows], vectors, [r.metadata for r in rows]
        )
        self._confirmed(len(rows), "", rows[-1].metadata["source"])

    def _confirmed(self, count: int, worker: str, current: str = "") -> None:
        if self.abort.is_set():
            msg = "indexing was interrupted: the chunks written so far are kept"
            raise InterruptedError(msg)
        with self.lock:
            self.report.chunks_written += count
            if worker:
                self.report.workers[worker] = self.report.workers.get(worker, 0) + count
            total = self.report.chunks_written
        logger.debug("wrote %d chunks (%d in this run) %s", count, total, worker)
        self._notify(current)

    def _finish(self, item: _Finish) -> None:
        self.chroma.update(item.moved)
        if item.stale_ids:
            self.chroma.delete(ids=item.stale_ids)
        item.manifest.record(item.source, item.mark, item.chunks)  # all of the file is written
        moved, stale = len(item.moved), len(item.stale_ids)
        self._file_done(item.source, files_indexed=1, chunks_moved=moved, chunks_deleted=stale)

    def _file_done(self, source: str, **counts: int) -> None:
        """Count a file as done, add ``counts`` to the report's fields of those names, notify."""
        with self.lock:
            for name, count in counts.items():
                setattr(self.report, name, getattr(self.report, name) + count)
            self.files_done += 1
        self._notify(source)

    def _notify(self, current: str, *, finished: bool = False) -> None:
        if self.progress is None:
            return
        with self.lock:
            report = self.report
            done = report.chunks_written + report.chunks_unchanged + report.chunks_moved
            self.progress(
                IndexProgress(
                    files_total=self.files_total,
                    files_done=self.files_done,
                    chunks_done=done,
                    chunks_written=report.chunks_written,
                    current=current,
                    files_read=self.files_read,
                    workers=dict(report.workers),
                    finished=finished,
                )
            )
