"""What :func:`~langchain_tasb.ingest.index_paths` reports: the run's outcome and its progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from langchain_tasb.ingest.files import ScanStats


@dataclass(frozen=True)
class FileFailure:
    """A file, or a folder that could not be listed, not indexed (its chunks are left as they were).

    ``path`` is resolved, ``source`` relative to its root; ``reason`` says what went wrong and,
    where known, how to fix it.
    """

    path: str
    source: str
    reason: str


@dataclass
class IndexReport:
    """What :func:`index_paths` did.

    Attributes:
        roots: The resolved roots indexed.
        files_seen: Files found under the roots (after include/exclude and skips).
        files_indexed: Files whose chunks were written, updated or deleted.
        files_unchanged: Files whose chunks were all stored already: nothing was written.
        files_not_read: Of those, files the manifest vouched for: not read at all.
        failures: Files that could not be read (and folders not listed), with the reason.
        chunks_written: Chunks embedded and written (new or changed text).
        chunks_unchanged: Chunks already stored with the same metadata.
        chunks_moved: Chunks already stored whose position changed: metadata updated only.
        chunks_deleted: Stale chunks of files that changed.
        chunks_pruned: Chunks of files no longer under the roots (``prune`` only).
        files_pruned: Files those pruned chunks belonged to.
        skipped: What the scan left out (hidden, binary, unsupported, excluded...).
        seconds: Wall-clock time of the run.
        root_ids: The identity of each root, in the order of ``roots`` (chunks' ``root_id``).
        prune_skipped: Roots not pruned because a folder under them could not be listed.
        metadata_keys_dropped: Reserved keys (``_tasb_...``, ``score``...) dropped from ``.jsonl``.
        workers: Chunks written by each Ray worker (``"host:pid"``), with ``ray`` only.
    """

    roots: list[str] = field(default_factory=list)
    root_ids: list[str] = field(default_factory=list)
    prune_skipped: list[str] = field(default_factory=list)
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_not_read: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    chunks_written: int = 0
    chunks_unchanged: int = 0
    chunks_moved: int = 0
    chunks_deleted: int = 0
    chunks_pruned: int = 0
    files_pruned: int = 0
    skipped: ScanStats = field(default_factory=ScanStats)
    seconds: float = 0.0
    metadata_keys_dropped: int = 0
    workers: dict[str, int] = field(default_factory=dict)

    @property
    def files_failed(self) -> int:
        """How many files could not be read (or folders listed)."""
        return len(self.failures)

    @property
    def changed(self) -> bool:
        """Whether the run wrote, updated or deleted anything."""
        return bool(
            self.chunks_written or self.chunks_moved or self.chunks_deleted or self.chunks_pruned
        )


@dataclass(frozen=True)
class IndexProgress:
    """A snapshot of a running :func:`index_paths`, passed to the progress callback.

    Attributes:
        files_total: Files the scan will yield (counted before indexing starts).
        files_done: Files finished: written, unchanged or failed.
        chunks_done: Chunks finished: written, unchanged or moved.
        chunks_written: Of those, chunks embedded and written.
        current: ``source`` of the file last finished ("" before the first).
        finished: True on the last call, once everything is written (and pruned).
        files_read: Files read and chunked so far (with Ray workers, ahead of files done).
        workers: Chunks written by each Ray worker so far; empty without Ray.
    """

    files_total: int
    files_done: int
    chunks_done: int
    chunks_written: int
    current: str = ""
    finished: bool = False
    files_read: int = 0
    workers: dict[str, int] = field(default_factory=dict)


ProgressCallback = Callable[[IndexProgress], None]
"""Type of the ``progress`` argument: called with an :class:`IndexProgress` after each file and
each batch, from the calling thread or the writer thread, never from two at once."""
