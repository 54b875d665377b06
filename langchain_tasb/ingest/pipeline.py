"""One run of :func:`~langchain_tasb.ingest.indexer.index_paths`: a reading thread and a writer.

The reading (calling) thread reads, chunks and encodes files in batches; a writer thread writes
batch N while batch N + 1 is being encoded, through a bounded queue. With a
:class:`~langchain_tasb.ingest.rows.BatchWriter` (Ray workers), the writer thread hands it
waves of chunks to encode and write instead, and finishes their files once it confirms them.
See :mod:`langchain_tasb.ingest.indexer` for the contract.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.ingest.files import iter_files
from langchain_tasb.ingest.manifest import Manifest, fingerprint, manifest_settings, open_manifests
from langchain_tasb.ingest.report import FileFailure, IndexProgress, IndexReport
from langchain_tasb.ingest.roots import _of_root, default_root_id, prune_root, stored_records
from langchain_tasb.ingest.rows import (
    _DONE,
    BatchWriter,
    _Finish,
    _reason,
    _Row,
    _Write,
    read_rows,
)

if TYPE_CHECKING:
    import os

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.ingest.chunking import TokenChunker
    from langchain_tasb.ingest.files import FileEntry

logger = logging.getLogger(__name__)

_QUEUE_BATCHES = 2  # batches encoded ahead of the writer; bounds memory
_POLL_SECONDS = 0.2  # how often blocked threads look for an error or an abort
_LOOKUP_FILES = 64  # files whose stored records are fetched with one Chroma query
_LOOKUP_RECORDS = 20_000  # beyond this many records, a group's files are looked up one by one


class _IndexRun:
    """One call of :func:`index_paths`: the reading thread's state and the writer thread."""

    def __init__(
        self,
        *,
        store: TasbCollection,
        roots: list[str | os.PathLike[str]],
        scan: dict[str, Any],
        batch_size: int,
        chunker: TokenChunker,
        progress: Callable[[IndexProgress], None] | None,
        root_id: str | None,
        limits: tuple[int | None, int | None] = (None, None),
        manifest: tuple[bool, bool] = (True, False),
        writer: BatchWriter | None = None,
    ) -> None:
        self.store = store
        self.chroma = store.store  # the gateway: every Chroma call goes through it
        self.roots = roots
        self.scan = scan  # iter_files' filters: include, exclude, follow_symlinks, gitignore
        self.batch_size = batch_size
        self.chunker = chunker
        self.progress = progress
        self.given_root_id = root_id
        self.max_file_bytes, self.max_chunks = limits
        self.use_manifest, self.full = manifest
        self.manifests: dict[str, Manifest] = {}
        self.root_ids: dict[str, str] = {}
        self.report = IndexReport()
        self.files_total = 0
        self.files_done = 0
        self.chunks_done = 0
        self.lock = threading.Lock()
        self.queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self.abort = threading.Event()
        self.writer_error: BaseException | None = None
        self.pending: list[_Row] = []
        self.pending_finishes: list[_Finish] = []
        self.writer = writer  # None: encode here, write from the writer thread
        self.wave: list[object] = []  # items held for the batch writer's next call
        self.wave_rows = 0
        self.files_read = 0

    # -- reading side -------------------------------------------------------------------------

    def run(self, *, prune: bool) -> IndexReport:
        began = time.monotonic()
        resolved = list(dict.fromkeys(str(Path(r).expanduser().resolve()) for r in self.roots))
        if self.given_root_id is not None and len(resolved) > 1:
            msg = (
                f"root_id names one root, got {len(resolved)} roots ({', '.join(resolved)}): "
                "index them one at a time, each with its own root id"
            )
            raise ValueError(msg)
        self.root_ids = {root: self.given_root_id or default_root_id(root) for root in resolved}
        self.report.roots = resolved
        self.report.root_ids = [self.root_ids[root] for root in resolved]
        # Raises FileNotFoundError for a missing root now, before any write.
        files = iter_files(self.roots, **self.scan, stats=self.report.skipped)
        self._open_manifests(resolved)
        if self.progress is not None:
            self.files_total = sum(1 for _ in iter_files(self.roots, **self.scan))
            self._notify("")
        seen: dict[str, set[str]] = {root: set() for root in resolved}
        writer = threading.Thread(target=self._write_loop, name="tasb-index-writer", daemon=True)
        writer.start()
        try:
            while group := list(itertools.islice(files, _LOOKUP_FILES)):
                for entry in group:
                    seen.setdefault(str(entry.root), set()).add(entry.relpath)
                todo = [entry for entry in group if not self._skip_unchanged(entry)]
                stored = stored_records(self.chroma, todo, _LOOKUP_RECORDS) if todo else {}
                for entry in todo:
                    self._index_file(entry, stored)
            self._flush()
            self._put(_DONE)
            while writer.is_alive():
                writer.join(_POLL_SECONDS)
            self._raise_writer_error()
        except BaseException:
            self.abort.set()
            writer.join()
            self._save_manifests()  # it holds only files whose chunks were all written
            raise
        unlisted = self.report.skipped.unlisted
        for folder in unlisted:
            reason = f"cannot list this folder ({folder.reason}): its files were not indexed"
            self.report.failures.append(FileFailure(str(folder.path), folder.relpath, reason))
        if prune:
            for root in resolved:
                if any(str(folder.root) == root for folder in unlisted):
                    logger.warning("not pruning %s: a folder under it could not be listed", root)
                    self.report.prune_skipped.append(root)
                    continue
                self._prune(root, seen.get(root, set()))
        self._save_manifests()
        self.report.files_seen = self.report.skipped.files
        self.report.seconds = time.monotonic() - began
        self._notify("", finished=True)
        return self.report

    # -- the manifest (see langchain_tasb.ingest.manifest) -----------------------------------

    def _open_manifests(self, roots: list[str]) -> None:
        limits = (self.max_file_bytes, self.max_chunks)
        self.manifests = open_manifests(
            self.store,
            {root: self.root_ids[root] for root in roots},
            manifest_settings(self.store, self.chunker, limits),
            enabled=self.use_manifest,
            full=self.full,
        )

    def _skip_unchanged(self, entry: FileEntry) -> bool:
        """Whether the manifest vouches for ``entry``: then it is counted and not read."""
        chunks = self.manifests[str(entry.root)].unchanged(entry)
        if chunks is None:
            return False
        with self.lock:
            self.report.files_unchanged += 1
            self.report.files_not_read += 1
            self.report.chunks_unchanged += chunks
            self.files_done += 1
            self.chunks_done += chunks
        self._notify(entry.relpath)
        return True

    def _save_manifests(self) -> None:
        for manifest in self.manifests.values():
            manifest.save()

    def _index_file(self, entry: FileEntry, stored: dict[str, tuple[list[str], list[Any]]]) -> None:
        manifest = self.manifests[str(entry.root)]
        mark = fingerprint(entry.path) if manifest.path is not None else None  # before reading
        try:
            rows, cleaned = self._read_file(entry)
            self.files_read += 1
        except Exception as exc:  # any error in one file is that file's failure
            manifest.forget(entry.relpath)
            self._fail(entry, _reason(exc))
            logger.debug("%s failed", entry.path, exc_info=True)
            return
        if str(entry.path) in stored:
            ids, metadatas = stored[str(entry.path)]
        else:  # the group held too many records to fetch at once
            alone = self.chroma.get_where({"path": str(entry.path)}, include=["metadatas"])
            ids, metadatas = alone.ids, list(alone.metadatas)
        existing = _of_root(self.root_ids[str(entry.root)], str(entry.root), ids, metadatas)
        new: list[_Row] = []
        finish = _Finish(entry.relpath, [], [], [], manifest, mark, len(rows))
        unchanged = 0
        for row, clean in zip(rows, cleaned, strict=True):
            old = existing.pop(row.id, None)
            if old is None:
                new.append(row)
                continue
            metadata = clean or {}
            if old == metadata:
                unchanged += 1
                continue
            # Chroma merges metadata on update: keys the chunk no longer has are set to None,
            # which deletes them.
            finish.moved_ids.append(row.id)
            finish.moved_metadatas.append(
                {**dict.fromkeys(old), **metadata},
            )
        finish.stale_ids = list(existing)
        with self.lock:
            self.report.chunks_unchanged += unchanged
            self.chunks_done += unchanged
        if not new and not finish.moved_ids and not finish.stale_ids:
            if mark is not None:
                manifest.record(entry.relpath, mark, len(rows))
                manifest.save_if_due()
            with self.lock:
                self.report.files_unchanged += 1
                self.files_done += 1
            self._notify(entry.relpath)
            return
        if not new:
            self._put(finish)
            return
        for row in new:
            self.pending.append(row)
            if len(self.pending) >= self.batch_size:
                self._flush()
        self.pending_finishes.append(finish)

    def _read_file(self, entry: FileEntry) -> tuple[list[_Row], list[Any]]:
        """Read, chunk and check one file: its rows and their metadata as Chroma stores it."""
        root_id = self.root_ids[str(entry.root)]
        limits = (self.max_file_bytes, self.max_chunks)
        rows, cleaned, dropped = read_rows(entry, self.chunker, root_id, limits)
        if dropped:
            with self.lock:
                self.report.metadata_keys_dropped += dropped
        return rows, cleaned

    def _fail(self, entry: FileEntry, reason: str) -> None:
        """Record a file that could not be indexed; its stored chunks stay as they were."""
        logger.info("skipping %s: %s", entry.path, reason)  # the report carries it
        with self.lock:
            self.report.failures.append(FileFailure(str(entry.path), entry.relpath, reason))
            self.files_done += 1
        self._notify(entry.relpath)

    def _flush(self) -> None:
        """Embed the pending chunks and hand them to the writer, followed by the files done."""
        if self.pending:
            rows, self.pending = self.pending, []  # checked file by file in _read_file
            vectors = None  # a batch writer encodes where it writes
            if self.writer is None:
                embedded = self.store.encoder.embed_documents([r.text for r in rows])
                vectors = np.asarray(embedded, dtype=np.float32)
            self._put(_Write(rows, vectors))
        finishes, self.pending_finishes = self.pending_finishes, []
        for finish in finishes:
            self._put(finish)

    def _put(self, item: object) -> None:
        """Queue an item for the writer, waiting while the queue is full."""
        while True:
            self._raise_writer_error()
            try:
                self.queue.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return

    def _raise_writer_error(self) -> None:
        if self.writer_error is not None:
            raise self.writer_error

    # -- writing side -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self.abort.is_set():
            try:
                item = self.queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            try:
                if item is _DONE:
                    self._run_wave()
                    return
                if self.writer is not None:
                    self._gather(item)
                elif isinstance(item, _Write):
                    self._write(item)
                elif isinstance(item, _Finish):
                    self._finish(item)
            except BaseException as exc:  # handed to the reading thread, which re-raises
                self.writer_error = exc
                return

    def _write(self, item: _Write) -> None:
        rows = item.rows
        assert item.vectors is not None  # noqa: S101  (encoded by _flush when no batch writer)
        self.chroma.upsert(
            [r.id for r in rows], [r.text for r in rows], item.vectors, [r.metadata for r in rows]
        )
        self._confirmed(len(rows), "", rows[-1].metadata["source"])

    def _confirmed(self, count: int, worker: str, current: str = "") -> None:
        """Count ``count`` chunks as written (by ``worker``, for a batch writer)."""
        if self.abort.is_set():
            msg = "indexing was interrupted: the chunks written so far are kept"
            raise InterruptedError(msg)
        with self.lock:
            self.report.chunks_written += count
            self.chunks_done += count
            if worker:
                self.report.workers[worker] = self.report.workers.get(worker, 0) + count
            total = self.report.chunks_written
        logger.debug("wrote %d chunks (%d in this run) %s", count, total, worker)
        self._notify(current)

    def _gather(self, item: object) -> None:
        """Hold an item for the batch writer's next wave; run the wave once it is full."""
        self.wave.append(item)
        if isinstance(item, _Write):
            self.wave_rows += len(item.rows)
        if self.writer is not None and self.wave_rows >= self.writer.wave_chunks:
            self._run_wave()

    def _run_wave(self) -> None:
        """Have the batch writer write the held chunks; then, in order, finish their files."""
        wave, self.wave, self.wave_rows = self.wave, [], 0
        rows = [row for item in wave if isinstance(item, _Write) for row in item.rows]
        if rows and self.writer is not None:
            self.writer.write(rows, self._confirmed)
        for item in wave:
            if isinstance(item, _Finish):
                self._finish(item)

    def _finish(self, item: _Finish) -> None:
        self.chroma.update(item.moved_ids, item.moved_metadatas)
        if item.stale_ids:
            self.chroma.delete(ids=item.stale_ids)
        if item.manifest is not None and item.mark is not None:  # all of the file is written
            item.manifest.record(item.source, item.mark, item.chunks)
            item.manifest.save_if_due()
        with self.lock:
            self.report.files_indexed += 1
            self.report.chunks_moved += len(item.moved_ids)
            self.report.chunks_deleted += len(item.stale_ids)
            self.chunks_done += len(item.moved_ids)
            self.files_done += 1
        self._notify(item.source)

    # -- pruning and progress -----------------------------------------------------------------

    def _prune(self, root: str, seen: set[str]) -> None:
        """Delete chunks of this root whose file is verifiably gone (see :func:`prune_root`)."""
        root_id, manifest = self.root_ids[root], self.manifests[root]
        chunks, files = prune_root(self.chroma, root, root_id, seen, manifest)
        self.report.chunks_pruned += chunks
        self.report.files_pruned += files

    def _notify(self, current: str, *, finished: bool = False) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.progress(
                IndexProgress(
                    files_total=self.files_total,
                    files_done=self.files_done,
                    chunks_done=self.chunks_done,
                    chunks_written=self.report.chunks_written,
                    current=current,
                    files_read=self.files_read,
                    workers=dict(self.report.workers),
                    finished=finished,
                )
            )
