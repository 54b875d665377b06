"""The chunks of one file, ready to embed and write: their content-derived ids and metadata.

See :mod:`langchain_tasb.ingest.indexer` for how ids are derived and which metadata a chunk
carries.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_tasb.ingest.chunking import TokenChunker
from langchain_tasb.ingest.readers import UnreadableFileError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy as np

    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.ingest.files import FileEntry
    from langchain_tasb.ingest.manifest import Fingerprint, Manifest
    from langchain_tasb.ingest.readers import Record

__all__ = ["DEFAULT_OVERLAP_TOKENS", "chunk_id", "make_chunker"]

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
    """A batch of embedded chunks to write."""

    rows: list[_Row]
    vectors: np.ndarray[Any, np.dtype[np.float32]]


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
