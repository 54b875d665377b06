"""The chunks of one file, ready to embed and write: their content-derived ids and metadata.

See :mod:`langchain_tasb.ingest.indexer` for how ids are derived and which metadata a chunk
carries.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from langchain_tasb.chroma.records import validate_records
from langchain_tasb.ingest.chunking import TokenChunker
from langchain_tasb.ingest.readers import UnreadableFileError, read_records
from langchain_tasb.metadata import drop_refused_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import numpy as np

    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.ingest.files import FileEntry
    from langchain_tasb.ingest.manifest import Fingerprint, Manifest
    from langchain_tasb.ingest.readers import Record

__all__ = ["DEFAULT_OVERLAP_TOKENS", "BatchWriter", "chunk_id", "make_chunker", "read_rows"]

logger = logging.getLogger(__name__)

DEFAULT_OVERLAP_TOKENS = 32
"""Tokens shared by consecutive chunks of one text."""


@dataclass(frozen=True)
class _Row:
    """One chunk ready to embed and write."""

    id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class _Finish:
    """What is left to do for a file once its new chunks are written."""

    source: str
    moved_ids: list[str]
    moved_metadatas: list[dict[str, Any]]
    stale_ids: list[str]
    manifest: Manifest | None = None
    mark: Fingerprint | None = None  # recorded in the manifest once the file is written
    chunks: int = 0


@dataclass
class _Write:
    """A batch of chunks to write: embedded already, or (no vectors) by a :class:`BatchWriter`."""

    rows: list[_Row]
    vectors: np.ndarray[Any, np.dtype[np.float32]] | None


class BatchWriter(Protocol):
    """The encode-and-write stage run elsewhere (Ray workers) instead of in this process.

    The indexer gathers up to :attr:`wave_chunks` new chunks, hands them to :meth:`write`,
    and only once it returns updates moved chunks, deletes stale ones and records the files
    in the manifest: every chunk of a file is confirmed written before the file counts as done.
    """

    wave_chunks: int
    """New chunks gathered before one call of :meth:`write`."""

    def write(self, rows: list[_Row], confirmed: Callable[[int, str], None]) -> None:
        """Encode and write every row; return only once all are written.

        ``confirmed(count, worker)`` is called as each batch is confirmed written, with a
        label of the worker that wrote it. Raise if any row could not be written.
        """


_DONE = object()


def _reason(exc: Exception) -> str:
    """Why a file failed, for the report: the reader's own reason, else the error itself."""
    if isinstance(exc, UnreadableFileError):
        return exc.reason
    if isinstance(exc, ImportError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def chunk_id(root: str, source: str, key: str, text: str, occurrence: int) -> str:
    """The id of a chunk: derived from where it comes from and what it says, not its position.

    Args:
        root: The identity (``root_id``) of the root the file was found under.
        source: The file's POSIX path relative to ``root``.
        key: The record's key within the file ("" for one-record formats).
        text: The chunk's text.
        occurrence: How many chunks with the same key and text came before it in the file, so
            that repeated identical chunks get distinct ids.

    Returns:
        32 hex characters of a SHA-256 digest.
    """
    digest = hashlib.sha256(b"tasb-chunk-v1")
    for part in (root, source, key, str(occurrence), text):
        digest.update(b"\x00")
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def make_chunker(
    embeddings: TextEncoder, overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
) -> TokenChunker:
    """A chunker with the model's own tokenizer, sized to the document token limit.

    The limit is ``min(document_max_tokens, max_seq_length) - 2`` (room for ``[CLS]`` and
    ``[SEP]``), so that no chunk is truncated when it is encoded.

    Args:
        embeddings: A :class:`~langchain_tasb.encoding.model.TasbModel` (anything with
            ``encoder.tokenizer``, ``document_max_tokens`` and ``info.max_seq_length``).
        overlap_tokens: Tokens shared by consecutive chunks.

    Returns:
        The chunker.

    Raises:
        TypeError: If ``embeddings`` has no tokenizer to chunk with.
        ValueError: If ``overlap_tokens`` does not fit below the chunk size.
    """
    try:
        tokenizer = embeddings.encoder.tokenizer  # type: ignore[attr-defined]
        limit = min(
            int(embeddings.document_max_tokens),  # type: ignore[attr-defined]
            int(embeddings.info.max_seq_length),  # type: ignore[attr-defined]
        )
    except AttributeError as exc:
        msg = (
            f"cannot chunk with {type(embeddings).__name__}: it has no model tokenizer. Use "
            "TasbModel (TasbEmbeddings), or pass chunker=TokenChunker(tokenizer, max_tokens) "
            "yourself."
        )
        raise TypeError(msg) from exc
    return TokenChunker(tokenizer, max_tokens=limit - 2, overlap_tokens=overlap_tokens)


def _rows(
    entry: FileEntry,
    records: Sequence[Record],
    chunker: TokenChunker,
    root_id: str,
    max_chunks: int | None = None,
) -> Iterator[_Row]:
    """The chunks of one file with their ids and metadata.

    Raises:
        UnreadableFileError: Once the file gives more than ``max_chunks`` chunks.
    """
    root = str(entry.root)
    path = str(entry.path)
    seen: Counter[tuple[str, str]] = Counter()
    count = 0
    for record in records:
        for chunk in chunker.iter_chunks(record.text):
            count += 1
            if max_chunks is not None and count > max_chunks:
                reason = (
                    f"more than {max_chunks} chunks, over the limit per file: split the file, "
                    "or raise the limit (--max-chunks-per-file, max_chunks_per_file)"
                )
                raise UnreadableFileError(entry.path, reason)
            occurrence = seen[record.key, chunk.text]
            seen[record.key, chunk.text] += 1
            metadata: dict[str, Any] = {
                **record.metadata,
                "source": entry.relpath,
                "root": root,
                "root_id": root_id,
                "path": path,
                "chunk": chunk.index,
                "start": chunk.start,
                "end": chunk.end,
            }
            if record.key:
                metadata["record"] = record.key
            yield _Row(
                id=chunk_id(root_id, entry.relpath, record.key, chunk.text, occurrence),
                text=chunk.text,
                metadata=metadata,
            )


def read_rows(
    entry: FileEntry,
    chunker: TokenChunker,
    root_id: str,
    limits: tuple[int | None, int | None],
) -> tuple[list[_Row], list[Any], int]:
    """Read, chunk and check one file.

    Args:
        entry: The file.
        chunker: Cuts its records into chunks.
        root_id: The identity of its root.
        limits: ``(max_file_bytes, max_chunks_per_file)``; None for no limit.

    Returns:
        Its rows, their metadata as Chroma stores it, and how many reserved metadata keys
        were dropped from its records.

    Raises:
        UnreadableFileError: The file is too large, gives too many chunks or cannot be read.
    """
    max_file_bytes, max_chunks = limits
    if max_file_bytes is not None:
        try:
            size = entry.path.stat().st_size
        except OSError as exc:
            raise UnreadableFileError(entry.path, exc.strerror or str(exc)) from exc
        if size > max_file_bytes:
            reason = (
                f"{size} bytes, over the limit of {max_file_bytes} bytes per file: "
                "raise it (--max-file-bytes, max_file_bytes) or --exclude the file"
            )
            raise UnreadableFileError(entry.path, reason)
    records = read_records(entry)
    dropped = [key for record in records for key in drop_refused_keys(record.metadata)]
    if dropped:
        logger.info("%s: dropped reserved metadata keys %s", entry.path, sorted(set(dropped)))
    rows = list(_rows(entry, records, chunker, root_id, max_chunks))
    cleaned = validate_records(
        [r.id for r in rows], [r.text for r in rows], [r.metadata for r in rows]
    )
    return rows, cleaned, len(dropped)
