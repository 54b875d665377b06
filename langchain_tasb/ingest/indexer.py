""":func:`index_paths`: its argument checks and Ray writer; the run itself is in ``pipeline``."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tasb.chroma.client import ServerAddress
from langchain_tasb.ingest.files import iter_files
from langchain_tasb.ingest.pipeline import _IndexRun
from langchain_tasb.ingest.rows import DEFAULT_OVERLAP_TOKENS, default_root_id, make_chunker

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Sequence

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.ingest.chunking import TokenChunker
    from langchain_tasb.ingest.pipeline import WriteRows
    from langchain_tasb.ingest.ray_stream import RayStream
    from langchain_tasb.ingest.report import IndexReport, ProgressCallback
    from langchain_tasb.ingest.rows import _Row

DEFAULT_BATCH_SIZE = 128
"""Chunks encoded and written together (a smaller batch holds less memory, loses less work)."""

DEFAULT_MAX_FILE_BYTES = 256 * 2**20
"""Larger files are not read: each is a failure named with its size; ``None`` lifts the limit."""
DEFAULT_MAX_CHUNKS_PER_FILE = 100_000
"""A file cut into more chunks than this is a failure; ``None`` lifts the limit."""

_WAVE_BATCHES = 64  # batches per worker in one wave, unless RayIndexing.wave_chunks says


@dataclass(frozen=True)
class RayIndexing:
    """Where and how ``index_paths(..., ray=RayIndexing(...))`` encodes and writes.

    The driver still lists, reads and chunks the files (same ids, metadata and manifest); a
    pool of Ray Data actors, each loading the model once, encodes and upserts the chunks to the
    Chroma server. Ray restarts a dead worker and retries its batches; content-derived ids make
    a retried batch harmless. The model must load on every node. Example (``store`` on a Chroma
    server; ``examples/ray_index.py``): ``index_paths(store, ["docs/"], ray=RayIndexing("auto"))``.
    """

    address: str = "local"
    """``"local"`` starts Ray on this machine for the run, ``"auto"`` joins the cluster that
    ``ray start`` made, ``"ray://HOST:10001"`` (or a GCS ``HOST:PORT``) joins that one. If Ray
    is already initialised in this process, that session is used and left running."""

    workers: int = 1
    """Ray Data actors, each with one copy of the model."""

    gpus_per_worker: float = 0.0
    """GPUs each actor asks Ray for (a fraction shares one); 0 encodes on CPU."""

    cpus_per_worker: float = 1.0
    """CPUs each actor asks Ray for."""

    wave_chunks: int = 0
    """New chunks gathered before they go to the actors; 0 for 64 batches per worker. A wave's
    files are recorded once all its chunks are confirmed; the driver holds up to two waves of
    chunk text (one written, the next being read)."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {need}, got {value!r}"
            for name, value, need, ok in (
                ("address", self.address, "'local', 'auto' or a Ray address", self.address.strip()),
                ("workers", self.workers, "at least 1", self.workers >= 1),
                ("gpus_per_worker", self.gpus_per_worker, "0 or more", self.gpus_per_worker >= 0),
                ("cpus_per_worker", self.cpus_per_worker, "above 0", self.cpus_per_worker > 0),
                ("wave_chunks", self.wave_chunks, "0 or more", self.wave_chunks >= 0),
            )
            if not ok
        ]
        if problems:
            raise ValueError("; ".join(problems))


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
    """Bring ``store`` in line with the files under ``roots``: what ``tasb index`` calls.

    Files are read into records and cut into chunks that fit the model's token limit. Chunk ids
    are content-derived, so a rerun writes only what changed (new chunks first, stale ones
    deleted last) and a run killed anywhere is finished by the next; a manifest per root skips
    unchanged files unread. One file's error is that file's failure; memory holds a few batches.
    The ``tasb index`` guide (docs/cli.md) covers ids, root ids, manifest, prune and metadata.

    Args:
        store: The collection to fill; its encoder encodes the chunks.
        roots: Folders or files to index, recursively.
        include: Keep only files whose root-relative path matches one of these globs.
        exclude: Leave out files and folders matching one of these globs.
        follow_symlinks: Also follow symlinks that lead outside every root.
        gitignore: Leave out what ``.gitignore`` files under the roots ignore (git's rules).
        overlap_tokens: Tokens shared by consecutive chunks of one text.
        batch_size: Chunks encoded and written together.
        prune: Delete chunks of these roots whose file is verifiably gone: not seen in this
            run and no longer there. Files filtered out, skipped or failed are kept, a root
            with a folder that could not be listed is not pruned, other roots never are.
        progress: Called with an :class:`IndexProgress` after each file and each batch.
        chunker: Chunker to use instead of one built from the store's model tokenizer.
        root_id: The identity of the (one) root, instead of :func:`default_root_id`'s
            (``"<hostname>:<resolved path>"``); chunk ids and ``prune`` are keyed on it.
        max_file_bytes: Larger files are not read but reported as failures (``None``: no limit).
        max_chunks_per_file: A file cut into more chunks is a failure (``None``: no limit).
        manifest: Keep the manifests (see :mod:`langchain_tasb.ingest.manifest`); False
            neither reads nor writes one. An in-memory Chroma keeps none.
        full: Read every file, whatever the manifest says, and write the manifest anew: for
            a collection whose chunks were deleted behind the indexer's back.
        ray: Encode and write on Ray Data workers, as :class:`RayIndexing` says; the rest
            stays here, so ids and metadata are the same.

    Returns:
        What was seen, written, kept, updated, deleted and skipped, and which files failed.

    Raises:
        FileNotFoundError: If a root does not exist (before anything is written).
        ValueError: If ``batch_size`` is below 1, ``overlap_tokens`` does not fit, or a
            ``root_id`` is given for several roots or is empty, or a limit is below 1; with
            ``ray``, if the store is not on a Chroma server.
        TypeError: If no chunker is given and the store's encoder has no tokenizer; with
            ``ray``, if the encoder is not a ``TasbModel``.
        ImportError: With ``ray``, if Ray Data is not installed.
    """
    roots = [roots] if isinstance(roots, str | Path) else list(roots)
    limits = (max_file_bytes, max_chunks_per_file)
    names = ("batch_size", "max_file_bytes", "max_chunks_per_file")
    for name, value in zip(names, (batch_size, *limits), strict=True):
        if value is not None and value < 1:
            hint = "" if name == "batch_size" else ": pass None for no limit"
            msg = f"{name} must be at least 1, got {value}{hint}"
            raise ValueError(msg)
    resolved = list(dict.fromkeys(str(Path(r).expanduser().resolve()) for r in roots))
    if root_id is not None and (len(resolved) > 1 or not root_id.strip()):
        msg = (
            f"root_id names one root, got {root_id!r} for {len(resolved)} root(s) "
            f"({', '.join(resolved)}): index each root alone, with its own non-empty root id"
        )
        raise ValueError(msg)
    root_ids = {root: root_id or default_root_id(root) for root in resolved}
    chunker = chunker or make_chunker(store.encoder, overlap_tokens)
    scan = functools.partial(
        iter_files, roots, list(include), list(exclude), follow_symlinks, gitignore=gitignore
    )
    flush_at = (ray.wave_chunks or batch_size * ray.workers * _WAVE_BATCHES) if ray else batch_size
    writing = _ray_writer(store, ray, batch_size) if ray else contextlib.nullcontext()
    with writing as ray_write:
        run = _IndexRun(store, scan, root_ids, chunker, limits, progress, flush_at, ray_write)
        return run.run(prune=prune, manifest=manifest, full=full)


@contextlib.contextmanager
def _ray_writer(store: TasbCollection, ray: RayIndexing, batch_size: int) -> Iterator[WriteRows]:
    """Checks ``store`` for Ray, then yields the write that starts Ray on its first call."""
    server = ServerAddress.of(store.store.client)  # before starting anything
    # pydantic (TasbModel's base) loads with a run on Ray, not with every import of ingest.
    tasb_model = importlib.import_module("langchain_tasb.encoding.model").TasbModel
    if not isinstance(store.encoder, tasb_model):
        msg = (
            f"Ray workers rebuild the model from TasbModel settings, got "
            f"{type(store.encoder).__name__}: open the store with TasbEmbeddings or TasbModel"
        )
        raise TypeError(msg)
    if importlib.util.find_spec("ray") is None:  # Ray itself is imported on the first wave
        msg = "indexing on Ray needs Ray Data: pip install 'langchain-tasb[ray]'"
        raise ImportError(msg)
    model = store.encoder.model_copy(update={"processes": 0})  # one encoder per actor
    streams: list[RayStream] = []  # one for the whole run, once there is something to write

    def write(rows: list[_Row], confirmed: Callable[[int, str], None]) -> None:
        if not streams:
            ray_stream = importlib.import_module("langchain_tasb.ingest.ray_stream")  # imports Ray
            streams.append(ray_stream.RayStream(ray, model, server, store.collection_name))
        streams[0].write(rows, batch_size, confirmed)

    try:
        yield write
    finally:
        for stream in streams:
            stream.close()
