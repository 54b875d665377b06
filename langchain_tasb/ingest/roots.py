"""Roots: their identity, which stored chunks belong to one, and which of its files are gone."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tasb.chroma.collection import Collection
    from langchain_tasb.ingest.files import FileEntry
    from langchain_tasb.ingest.manifest import Manifest

__all__ = ["default_root_id", "gone_chunks", "prune_root", "stored_records"]

logger = logging.getLogger(__name__)

_PAGE_SIZE = 1000  # records per page when scanning a collection's metadata for prune


def default_root_id(root: str | os.PathLike[str]) -> str:
    """The identity a root gets unless one is given: ``"<hostname>:<resolved path>"``.

    The host keeps two machines indexing the same path into one server collection apart.
    """
    return f"{socket.gethostname()}:{Path(root).expanduser().resolve()}"


def _of_root(
    root_id: str, root: str, ids: list[str], metadatas: list[Any]
) -> dict[str, dict[str, Any]]:
    """The records (id -> metadata) among ``ids`` indexed under this root.

    Records without ``root_id`` (older ones) count when their ``root`` path matches. The root
    is filtered here, not in Chroma: an ``$and`` of root and path collects the whole root per
    file, which makes indexing quadratic.
    """
    return {
        id_: dict(meta or {})
        for id_, meta in zip(ids, metadatas, strict=True)
        if _is_of_root(meta or {}, root_id, root)
    }


def _is_of_root(metadata: Any, root_id: str, root: str) -> bool:
    stored_id = metadata.get("root_id")
    if stored_id is None:
        return bool(metadata.get("root") == root)
    return bool(stored_id == root_id)


def _gone(root: str, source: str) -> bool:
    """Whether ``source`` is verifiably gone from ``root``: only "no such file" counts."""
    folder = Path(root)
    location = folder / source if folder.is_dir() else folder
    try:
        location.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def gone_chunks(
    chroma: Collection, root: str, root_id: str, seen: set[str]
) -> dict[str, list[str]]:
    """The ids of this root's chunks whose file is verifiably gone, by source.

    ``seen`` holds the ``source`` of every file found in this run; unseen ones are checked once.
    """
    gone: dict[str, list[str]] = {}
    verdicts: dict[str, bool] = {}
    where = {"$or": [{"root_id": root_id}, {"root": root}]}
    for page in chroma.scan(where, include=["metadatas"], page_size=_PAGE_SIZE):
        for id_, metadata in zip(page.ids, page.metadatas, strict=True):
            meta = metadata or {}
            source = str(meta.get("source", ""))
            if not _is_of_root(meta, root_id, root) or source in seen:
                continue
            if source not in verdicts:
                verdicts[source] = _gone(root, source)
            if verdicts[source]:
                gone.setdefault(source, []).append(id_)
    return gone


def stored_records(
    chroma: Collection, entries: Sequence[FileEntry], limit: int
) -> dict[str, tuple[list[str], list[Any]]]:
    """What the collection holds for each of these files' paths (ids, metadatas), in one query.

    A group holding ``limit`` records or more comes back empty: the caller then looks each
    file up alone, so memory stays bounded.
    """
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


def prune_root(
    chroma: Collection, root: str, root_id: str, seen: set[str], manifest: Manifest
) -> tuple[int, int]:
    """Delete chunks of this root whose file is verifiably gone, and forget it in ``manifest``.

    Returns:
        How many chunks were deleted, and of how many files.
    """
    chunks = files = 0
    for source, ids in gone_chunks(chroma, root, root_id, seen).items():
        logger.info("pruning %d chunks of %s: no longer under %s", len(ids), source, root)
        chroma.delete(ids=ids)
        manifest.forget(source)
        chunks += len(ids)
        files += 1
    for source in manifest.sources() - seen:  # gone files that left no chunks (empty)
        if _gone(root, source):
            manifest.forget(source)
    return chunks, files
