"""The manifest of one root: which files' chunks are all in the collection, by stat and hash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tasb import __version__
from langchain_tasb.chroma.client import side_folder
from langchain_tasb.config import manifest_save_seconds

if TYPE_CHECKING:
    from langchain_tasb.ingest.files import FileEntry

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
"""Version of the manifest file layout, part of its key: another version is read as none."""

UNSURE_SECONDS = 2.0
"""A file modified this close to when its entry was taken is checked by content hash."""

_HASH_CHUNK = 1 << 20
_ENTRY = [int, int, str, int, int]  # the types of size, mtime_ns, sha256, chunks, taken_ns


@dataclass(frozen=True)
class Fingerprint:
    """A file's size, modification time and content hash, taken before it is read."""

    size: int
    mtime_ns: int
    sha256: str
    taken_ns: int


def open_manifests(
    store: Any,
    root_ids: dict[str, str],
    chunker: Any,
    limits: tuple[int | None, int | None],
    *,
    enabled: bool = True,
    full: bool = False,
) -> dict[str, Manifest]:
    """The manifest of each root (path -> root id) indexed into ``store``'s collection.

    ``enabled=False`` keeps them in memory only (nothing skipped or saved); ``full``, or a
    collection holding fewer chunks than they record, ignores what they hold (then rewritten).
    """
    tokenizer = getattr(chunker, "_tokenizer", None)
    settings = {
        "format": MANIFEST_FORMAT,
        "model": str(store.encoder.model_name),
        "chunker": [
            type(chunker).__name__,
            str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__)),
            getattr(chunker, "max_tokens", None),
            getattr(chunker, "overlap_tokens", None),
            getattr(chunker, "window_chars", None),
        ],
        "limits": list(limits),
        "version": __version__,  # readers and chunking may change with it
    }
    collection = store.collection_name
    directory = side_folder(store.client, "manifests", collection) if enabled else None
    manifests = {}
    for root, root_id in root_ids.items():
        name = hashlib.sha256(root_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        path = directory / f"{name}.json" if directory is not None else None
        key = {"collection": collection, "root_id": root_id, "root": root, **settings}
        files = _load(path, key) if path is not None and not full else {}
        manifests[root] = Manifest(path, key, files, dirty=full)  # full: rewritten
    expected = sum(int(entry[3]) for kept in manifests.values() for entry in kept.files.values())
    stored = store.store.count() if expected else 0
    if stored < expected:
        logger.warning(
            "the collection holds %d chunks, fewer than the %d the manifests of these roots "
            "record (deleted by someone else?): reading every file",
            stored,
            expected,
        )
        for kept in manifests.values():
            kept.files, kept.dirty = {}, True
    return manifests


def fingerprint(path: Path) -> Fingerprint | None:
    """``path``'s fingerprint, or None when it cannot be taken (the file is then not recorded)."""
    taken_ns = time.time_ns()
    try:
        stat = path.stat()
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(_HASH_CHUNK):
                digest.update(block)
    except OSError:
        return None
    return Fingerprint(stat.st_size, stat.st_mtime_ns, digest.hexdigest(), taken_ns)


def _checksum(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _load(path: Path, key: dict[str, Any]) -> dict[str, list[Any]]:
    """The entries of the manifest file at ``path`` if it is intact and was written for ``key``."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        body = {k: v for k, v in data.items() if k != "sha256"}
        shapes = [list(map(type, entry)) for entry in body["files"].values()]
        valid = data.get("sha256") == _checksum(body) and all(s == _ENTRY for s in shapes)
        owner = (body["key"].get("collection"), body["key"].get("root_id"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        logger.warning("cannot read the manifest %s (%s): reading every file", path, exc)
        return {}
    except (ValueError, AttributeError, KeyError, TypeError):
        valid = False
    if not valid:
        logger.warning("the manifest %s is damaged (checksum): reading every file", path)
    elif owner != (key.get("collection"), key.get("root_id")):
        logger.warning(
            "the manifest %s belongs to another collection or root %r: reading every file",
            path,
            owner,
        )
    elif body["key"] != key:  # another model, chunker, limit, version or format
        logger.info("settings changed since %s was written: reading every file", path)
    else:
        return dict(body["files"])
    return {}


@dataclass
class Manifest:
    """The manifest of one root in one collection: relpath -> fingerprint and chunk count.

    ``path`` None keeps it in memory only (nothing is skipped or saved); ``key`` is what the
    entries are valid for (collection, root, model, chunker, version...); each entry of
    ``files`` is ``[size, mtime_ns, sha256, chunks, taken_ns]``.
    """

    path: Path | None
    key: dict[str, Any]
    files: dict[str, list[Any]] = field(default_factory=dict)
    dirty: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    save_lock: threading.Lock = field(default_factory=threading.Lock)  # one save at a time
    save_every: float = field(default_factory=manifest_save_seconds)  # $TASB_MANIFEST_SAVE_SECONDS
    saved_at: float = field(default_factory=time.monotonic)

    def unchanged(self, entry: FileEntry) -> int | None:
        """The chunk count of ``entry`` if its chunks are all stored as recorded, else None."""
        with self.lock:
            recorded = self.files.get(entry.relpath)
        if recorded is None:
            return None
        size, mtime_ns, sha256, chunks, taken_ns = recorded
        try:
            stat = entry.path.stat()
        except OSError:
            return None
        if stat.st_size != size:
            return None
        unsure = stat.st_mtime_ns >= taken_ns - int(UNSURE_SECONDS * 1e9)
        if stat.st_mtime_ns == mtime_ns and not unsure:
            return int(chunks)
        now = fingerprint(entry.path)
        if now is None or now.sha256 != sha256 or now.size != size:
            return None
        self.record(entry.relpath, now, int(chunks))  # same content: trust the new stat
        return int(chunks)

    def record(self, relpath: str, mark: Fingerprint | None, chunks: int) -> None:
        """Record that the chunks of ``mark``'s content (if any) are all written; save if due."""
        if mark is None:
            return
        with self.lock:
            self.files[relpath] = [mark.size, mark.mtime_ns, mark.sha256, chunks, mark.taken_ns]
            self.dirty = True
        if time.monotonic() - self.saved_at >= self.save_every:
            self.save()

    def forget(self, relpath: str) -> None:
        """Drop a file's entry (it failed, or it was pruned)."""
        with self.lock:
            if self.files.pop(relpath, None) is not None:
                self.dirty = True

    def save(self) -> None:
        """Write the manifest atomically (a failure is logged: the next run reads more)."""
        if self.path is None:
            return
        with self.save_lock:
            with self.lock:
                if not self.dirty:
                    return
                body: dict[str, Any] = {"key": self.key, "files": dict(self.files)}
                self.dirty = False
                self.saved_at = time.monotonic()
            body["sha256"] = _checksum(body)
            try:
                _write_atomically(self.path, json.dumps(body, ensure_ascii=True))
            except OSError as exc:
                logger.warning(
                    "cannot save the manifest %s (%s): the next run reads more", self.path, exc
                )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="ascii", dir=path.parent, prefix=".manifest-", delete=False
    ) as handle:
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
