"""Index folders into a vector store: incremental, resumable, pipelined, memory-bounded."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tasb.ingest.pipeline import _IndexRun
from langchain_tasb.ingest.ray_writer import RayIndexing, RayWriter, ray_writer
from langchain_tasb.ingest.rows import DEFAULT_OVERLAP_TOKENS, make_chunker

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.ingest.chunking import TokenChunker
    from langchain_tasb.ingest.report import IndexReport, ProgressCallback

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
    """Bring ``store`` in line with the files under ``roots``.

    Walks the roots with :func:`~langchain_tasb.ingest.files.iter_files`, reads each file into
    records, cuts them into chunks that fit the model's token limit, and:

    * Gives every root an identity, ``root_id``: ``"<hostname>:<resolved path>"`` unless one
      is given, so two machines indexing the same path into one server collection keep apart.
    * Gives every chunk a content-derived id: a hash of its ``root_id``, its root-relative
      ``source``, the record key, its text and how many identical chunks came before it in
      the file. A chunk that only moved keeps its id and vector; only its metadata (``chunk``,
      ``start``, ``end``) is updated.
    * Compares each file with what the collection holds for it (``root_id`` + ``path``; chunks
      stored before roots had ids count by ``root``): chunks stored with the same metadata are
      left alone, so re-running on unchanged files embeds and writes nothing.
    * Writes a file's new chunks first, then updates moved chunks and deletes stale ones.
      Wherever a run is killed, the next run finds the difference and finishes the job: no
      duplicates, nothing missing.
    * Keeps a manifest per root (beside an embedded database, else under the cache root) of
      each file's size, ``mtime_ns``, content hash and chunk count once all its chunks are
      written; a rerun skips matching files unread. A file changed within the same clock tick,
      a changed model or chunker, a damaged or foreign manifest, or a collection holding fewer
      chunks than the manifests record mean reading again.
    * Makes any error reading, chunking or checking one file that file's failure, with its
      reason in the report; the other files are indexed.

    Chunks are encoded and written in batches; a writer thread writes batch N while batch
    N + 1 is encoded, so memory holds a few batches (and one file's chunks) whatever the
    corpus. Chunk metadata: ``source`` (POSIX path relative to its root, what users filter
    on), ``root``, ``root_id``, ``path`` (resolved file path), ``chunk`` (index within the
    record), ``start`` and ``end`` (character offsets in the record's extracted text),
    ``record`` (the record key, for JSON Lines), plus the record's own metadata (``line``,
    ``doc_id``, ``title``, ``pages``...), over which these keys win.

    Args:
        store: The collection to fill; its encoder encodes the chunks.
        roots: Folders or files to index, recursively.
        include: Keep only files whose root-relative path matches one of these globs.
        exclude: Leave out files and folders matching one of these globs.
        follow_symlinks: Also follow symlinks that lead outside every root.
        gitignore: Leave out what ``.gitignore`` files under the roots ignore (git's rules);
            False indexes everything.
        overlap_tokens: Tokens shared by consecutive chunks of one text.
        batch_size: Chunks encoded and written together.
        prune: Delete chunks of these roots whose file is verifiably gone: not seen in this
            run and no longer there. Files filtered out, skipped or failed are kept, a root
            with a folder that could not be listed is not pruned, other roots never are.
        progress: Called with an :class:`IndexProgress` after each file and each batch.
        chunker: Chunker to use instead of one built from the store's model tokenizer.
        root_id: The identity of the (one) root, instead of :func:`default_root_id`'s; chunk
            ids and ``prune`` are keyed on it.
        max_file_bytes: Larger files are not read but reported as failures; ``None`` for no
            limit.
        max_chunks_per_file: A file cut into more chunks is reported as a failure; ``None``
            for no limit.
        manifest: Keep the manifests (see :mod:`langchain_tasb.ingest.manifest`); False
            neither reads nor writes one. An in-memory Chroma keeps none.
        full: Read every file, whatever the manifest says, and write the manifest anew: for
            a collection whose chunks were deleted behind the indexer's back.
        ray: Encode and write on Ray Data workers, as :class:`RayIndexing` says (the store
            must be on a Chroma server); the rest stays here and gives the same ids and
            metadata. Every write is confirmed before a file is recorded done.

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
    limits = (max_file_bytes, max_chunks_per_file)
    for name, limit in zip(("max_file_bytes", "max_chunks_per_file"), limits, strict=True):
        if limit is not None and limit < 1:
            msg = f"{name} must be at least 1, got {limit}: pass None for no limit"
            raise ValueError(msg)
    if root_id is not None and not root_id.strip():
        msg = f"root_id must name the root, got {root_id!r}"
        raise ValueError(msg)
    if chunker is None:
        chunker = make_chunker(store.encoder, overlap_tokens)
    scan = {
        "include": list(include),
        "exclude": list(exclude),
        "follow_symlinks": follow_symlinks,
        "gitignore": gitignore,
    }
    writing: AbstractContextManager[RayWriter | None] = (
        ray_writer(store, ray, batch_size) if ray else nullcontext()
    )
    with writing as writer:
        run = _IndexRun(store, list(roots), scan, batch_size, chunker, progress, root_id, limits)
        return run.run(prune=prune, manifest=manifest, full=full, writer=writer)
