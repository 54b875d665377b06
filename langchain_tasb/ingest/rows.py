"""A file's chunks with their content-derived ids and metadata, and a root's stored chunks."""

from __future__ import annotations

import functools
import hashlib
import logging
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tasb.chroma.records import validate_records
from langchain_tasb.ingest.chunking import TokenChunker
from langchain_tasb.ingest.readers import UnreadableFileError, read_records
from langchain_tasb.validation import drop_refused_keys

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from langchain_tasb.chroma.collection import Collection
    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.ingest.files import FileEntry
    from langchain_tasb.ingest.manifest import Manifest

logger = logging.getLogger(__name__)

_PAGE_SIZE = 1000  # records per page when scanning a collection's metadata for prune

DEFAULT_OVERLAP_TOKENS = 32
"""Tokens shared by consecutive chunks of one text."""


@dataclass(frozen=True)
class _Row:
    id: str
    text: str
    metadata: dict[str, Any]


def chunk_id(root: str, source: str, key: str, text: str, occurrence: int) -> str:
    """The id of a chunk (32 hex characters of SHA-256): where it comes from and what it says.

    Args:
        root: The ``root_id`` of the root the file was found under.
        source: The file's POSIX path relative to the root.
        key: The record's key within the file ("" for one-record formats).
        text: The chunk's text.
        occurrence: How many chunks of the same key and text came before it in the file.
    """
    digest = hashlib.sha256(b"tasb-chunk-v1")
    for part in (root, source, key, str(occurrence), text):
        digest.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def make_chunker(
    embeddings: TextEncoder, overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
) -> TokenChunker:
    """A chunker with the model's own tokenizer, whose chunks are never truncated when encoded.

    Args:
        embeddings: A :class:`~langchain_tasb.encoding.model.TasbModel` (anything with
            ``encoder.tokenizer``, ``document_max_tokens`` and ``info.max_seq_length``); chunks
            hold at most ``min(document_max_tokens, max_seq_length) - 2`` tokens.
        overlap_tokens: Tokens shared by consecutive chunks.

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


def read_rows(
    entry: FileEntry,
    chunker: TokenChunker,
    root_id: str,
    limits: tuple[int | None, int | None],
) -> tuple[list[_Row], list[Any], int]:
    """Read, chunk and check one file under ``limits`` (max file bytes, max chunks; None: none).

    Returns:
        Its rows, their metadata as Chroma stores it, how many reserved metadata keys it lost.

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
    rows: list[_Row] = []
    seen: Counter[tuple[str, str]] = Counter()  # identical chunks of a record get distinct ids
    for record in records:
        for chunk in chunker.iter_chunks(record.text):
            if max_chunks is not None and len(rows) >= max_chunks:
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
                "root": str(entry.root),
                "root_id": root_id,
                "path": str(entry.path),
                "chunk": chunk.index,
                "start": chunk.start,
                "end": chunk.end,
                **({"record": record.key} if record.key else {}),
            }
            chunk_key = chunk_id(root_id, entry.relpath, record.key, chunk.text, occurrence)
            rows.append(_Row(chunk_key, chunk.text, metadata))
    cleaned = validate_records(
        [r.id for r in rows], [r.text for r in rows], [r.metadata for r in rows]
    )
    return rows, cleaned, len(dropped)


def default_root_id(root: str | os.PathLike[str]) -> str:
    """The identity a root gets unless one is given: ``"<hostname>:<resolved path>"``.

    The host keeps two machines indexing the same path into one server collection apart.
    """
    return f"{socket.gethostname()}:{Path(root).expanduser().resolve()}"


def _is_of_root(metadata: Any, root_id: str, root: str) -> bool:  # older chunks: no root_id
    stored_id = metadata.get("root_id")
    return bool(metadata.get("root") == root if stored_id is None else stored_id == root_id)


def of_root(root_id: str, root: str, ids: list[str], metadatas: list[Any]) -> dict[str, Any]:
    """The records (id -> metadata) among ``ids`` indexed under this root."""
    # Filtered here: a Chroma $and of root and path would collect the whole root per file.
    return {
        id_: dict(meta or {})
        for id_, meta in zip(ids, metadatas, strict=True)
        if _is_of_root(meta or {}, root_id, root)
    }


def stored_records(
    chroma: Collection, entries: Sequence[FileEntry], limit: int
) -> dict[str, tuple[list[str], list[Any]]]:
    """The ids and metadatas stored for each file's path, in one query; ``{}`` past ``limit``."""
    paths = list(dict.fromkeys(str(e.path) for e in entries))
    result = chroma.get_where({"path": {"$in": paths}}, include=["metadatas"], limit=limit)
    if len(result.ids) >= limit:
        return {}
    found: dict[str, tuple[list[str], list[Any]]] = {path: ([], []) for path in paths}
    for id_, metadata in zip(result.ids, result.metadatas, strict=True):
        ids, metadatas = found[str((metadata or {}).get("path"))]
        ids.append(id_)
        metadatas.append(metadata)
    return found


def _gone(root: str, source: str) -> bool:
    # only "no such file" counts: an unreadable path may come back
    folder = Path(root)
    try:
        (folder / source if folder.is_dir() else folder).lstat()
    except OSError as exc:
        return isinstance(exc, FileNotFoundError | NotADirectoryError)
    return False


def prune_root(
    chroma: Collection, root: str, root_id: str, seen: set[str], manifest: Manifest
) -> tuple[int, int]:
    """Delete the chunks of files gone from this root (not in ``seen``); forget them in manifest.

    Returns:
        How many chunks were deleted, and of how many files.
    """
    gone: dict[str, list[str]] = {}
    is_gone = functools.cache(functools.partial(_gone, root))  # one check per file
    where = {"$or": [{"root_id": root_id}, {"root": root}]}
    for page in chroma.scan(where, include=["metadatas"], page_size=_PAGE_SIZE):
        for id_, metadata in zip(page.ids, page.metadatas, strict=True):
            source = str((metadata or {}).get("source", ""))
            mine = source not in seen and _is_of_root(metadata or {}, root_id, root)
            if mine and is_gone(source):
                gone.setdefault(source, []).append(id_)
    for source, ids in gone.items():
        logger.info("pruning %d chunks of %s: no longer under %s", len(ids), source, root)
        chroma.delete(ids=ids)
        manifest.forget(source)
    for source in set(manifest.files) - seen:  # gone files that left no chunks (empty)
        if is_gone(source):
            manifest.forget(source)
    return sum(len(ids) for ids in gone.values()), len(gone)
