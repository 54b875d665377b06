"""Index folders into a vector store: incremental, resumable, pipelined, memory-bounded.

The store is the core :class:`~langchain_tasb.collection.TasbCollection`.

:func:`index_paths` walks the roots with :func:`~langchain_tasb.ingest.files.iter_files`, reads
each file into records, cuts them into chunks that fit the model's token limit, and brings the
collection in line with the files:

* Every root has an identity, ``root_id``: ``"<hostname>:<resolved path>"`` unless one is
  given, so that two machines indexing the same path into one server collection keep apart.
* Every chunk gets a content-derived id: a hash of its ``root_id``, its root-relative
  ``source``, the record key, its text and how many identical chunks came before it in the
  same file. The position is not part of the id, so a chunk that only moved keeps its id and
  its vector; only its metadata (``chunk``, ``start``, ``end``) is updated.
* Each file is compared with what the collection already holds for it (``root_id`` +
  ``path``; chunks stored before roots had ids count by ``root`` and are replaced once):
  chunks already stored with the same metadata are left alone, so re-running on unchanged
  files embeds and writes nothing.
* A file's new chunks are written first, then moved chunks are updated and its stale chunks
  deleted. Whatever point a run is killed at, the next run finds the difference and finishes
  the job: no duplicates (ids are deterministic), nothing missing.
* With ``prune``, chunks of a root being indexed whose file is verifiably gone (not seen in
  this run, and no such path under the root any more) are deleted. Files filtered out by
  ``include``/``exclude`` or a ``.gitignore``, skipped (binary, hidden...) or failed are
  kept, a root with a folder that could not be listed is not pruned at all, and chunks of
  other roots are never touched.
* A manifest per root (beside an embedded database, else under the cache root) records each
  file's size, ``mtime_ns``, content hash and chunk count once all its chunks are written; a
  rerun skips files that match it without reading them. A file changed within the same
  clock tick, a changed model or chunker, a damaged or foreign manifest, or a collection
  holding fewer chunks than the manifests record all mean reading again; ``full`` reads
  every file. See :mod:`langchain_tasb.ingest.manifest`.
* Any error reading, chunking or checking one file is that file's failure, with its reason in
  the report; the other files are indexed. Files over ``max_file_bytes`` or cut into more than
  ``max_chunks_per_file`` chunks are failures too.

Files are read, chunked, encoded and written in batches of ``batch_size`` chunks; a writer
thread writes batch N while batch N + 1 is being encoded, through a bounded queue, so memory
holds a few batches (and one file's chunk list) whatever the size of the corpus.

Chunk metadata: ``source`` (POSIX path relative to its root, what users filter on), ``root``
(resolved root), ``root_id`` (the root's identity), ``path`` (resolved file path), ``chunk``
(index within the record), ``start`` and ``end`` (character offsets of the chunk in the
record's extracted text), ``record`` (the record key, for JSON Lines), plus the record's own
metadata (``line``, ``doc_id``, ``title``, ``pages``...). These keys win over a record's own
keys of the same name.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tasb.ingest.pipeline import _IndexRun
from langchain_tasb.ingest.ray_writer import RayIndexing, ray_writer
from langchain_tasb.ingest.rows import DEFAULT_OVERLAP_TOKENS, make_chunker

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.ingest.chunking import TokenChunker
    from langchain_tasb.ingest.report import IndexReport, ProgressCallback

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CHUNKS_PER_FILE",
    "DEFAULT_MAX_FILE_BYTES",
    "index_paths",
]

DEFAULT_BATCH_SIZE = 128
"""Chunks encoded and written together: a larger batch encodes a little faster, a smaller one
loses less work to an interruption and holds less memory."""

DEFAULT_MAX_FILE_BYTES = 256 * 2**20
"""Larger files are not read: each is a failure named with its size. Bounds the memory and
time one file can take; ``None`` lifts the limit."""
DEFAULT_MAX_CHUNKS_PER_FILE = 100_000
"""A file cut into more chunks than this is a failure (chunking stops there): bounds the chunk
list held for one file; ``None`` lifts the limit."""


def index_paths(
    store: TasbCollection,
    roots: Sequence[str | os.PathLike[str]],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = False,
    gitignore: bool = True,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    prune: bool = False,
    progress: ProgressCallback | None = None,
    chunker: TokenChunker | None = None,
    root_id: str | None = None,
    max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
    max_chunks_per_file: int | None = DEFAULT_MAX_CHUNKS_PER_FILE,
    manifest: bool = True,
    full: bool = False,
    ray: RayIndexing | None = None,
) -> IndexReport:
    """Bring ``store`` in line with the files under ``roots``; see the module docstring.

    Args:
        store: The collection to fill; its encoder encodes the chunks.
        roots: Folders or files to index, recursively.
        include: Keep only files whose root-relative path matches one of these globs.
        exclude: Leave out files and folders matching one of these globs.
        follow_symlinks: Also follow symlinks that lead outside every root.
        gitignore: Leave out what ``.gitignore`` files under the roots ignore (git's rules,
            see :func:`~langchain_tasb.ingest.files.iter_files`); False indexes everything.
        overlap_tokens: Tokens shared by consecutive chunks of one text.
        batch_size: Chunks encoded and written together.
        prune: Delete chunks recorded under these roots whose file is verifiably gone: not
            seen in this run and no longer there. Files filtered out (``include``,
            ``exclude``, ``.gitignore``), skipped or failed are kept, and a root with a
            folder that could not be listed is not pruned at all.
        progress: Called with an :class:`IndexProgress` after each file and each batch.
        chunker: Chunker to use instead of one built from the store's model tokenizer.
        root_id: The identity of the (one) root, instead of :func:`default_root_id`'s
            ``"<hostname>:<resolved path>"``; chunk ids and ``prune`` are keyed on it.
        max_file_bytes: Files larger than this are not read but reported as failures;
            ``None`` for no limit.
        max_chunks_per_file: A file cut into more chunks is reported as a failure; ``None``
            for no limit.
        manifest: Keep a manifest per root (see :mod:`langchain_tasb.ingest.manifest`) and
            skip, without reading them, files whose size and mtime (or content hash) match
            it. False neither reads nor writes one. An in-memory Chroma keeps none.
        full: Read every file, whatever the manifest says, and write the manifest anew: for
            a collection whose chunks were deleted behind the indexer's back.
        ray: Encode and write on Ray Data workers, as :class:`RayIndexing` says (the store
            must be on a Chroma server). Listing, reading, chunking, the manifest and
            ``prune`` stay here and give the same ids and metadata as without Ray; every
            write is confirmed before a file is recorded done. See
            :mod:`langchain_tasb.ingest.ray_writer`.

    Returns:
        What was seen, written, kept, updated, deleted and skipped, and which files failed.

    Raises:
        FileNotFoundError: If a root does not exist (before anything is written).
        ValueError: If ``batch_size`` is below 1, ``overlap_tokens`` does not fit, or a
            ``root_id`` is given for several roots or is empty, or a limit is below 1.
        TypeError: If no chunker is given and the store's encoder has no tokenizer.
        ImportError: With ``ray``, if Ray Data is not installed.
    """
    if isinstance(roots, str | Path):
        roots = [roots]
    if batch_size < 1:
        msg = f"batch_size must be at least 1, got {batch_size}"
        raise ValueError(msg)
    for name, limit in (
        ("max_file_bytes", max_file_bytes),
        ("max_chunks_per_file", max_chunks_per_file),
    ):
        if limit is not None and limit < 1:
            msg = f"{name} must be at least 1, got {limit}: pass None for no limit"
            raise ValueError(msg)
    if root_id is not None and not root_id.strip():
        msg = f"root_id must name the root, got {root_id!r}"
        raise ValueError(msg)
    if chunker is None:
        chunker = make_chunker(store.encoder, overlap_tokens)
    make_run = functools.partial(
        _IndexRun,
        store=store,
        roots=list(roots),
        scan={
            "include": list(include),
            "exclude": list(exclude),
            "follow_symlinks": follow_symlinks,
            "gitignore": gitignore,
        },
        batch_size=batch_size,
        chunker=chunker,
        progress=progress,
        root_id=root_id,
        limits=(max_file_bytes, max_chunks_per_file),
        manifest=(manifest, full),
    )
    if ray is None:
        return make_run().run(prune=prune)
    with ray_writer(store, ray, batch_size) as writer:
        return make_run(writer=writer).run(prune=prune)
