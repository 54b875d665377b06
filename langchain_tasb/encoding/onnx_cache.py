"""The on-disk cache of ONNX exports: where it is, how an export is keyed, how one appears.

An export, keyed by its model files' SHA-256 and every setting and version that shapes it, is
written to a temporary folder, fsynced and published by one atomic rename; a damaged one is
exported again, with a warning; a cache folder other users can write is refused.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from langchain_tasb.config import CACHE_ENV_VAR, cache_root
from langchain_tasb.encoding.onnx_export import (
    EXPORT_FORMAT,
    MODEL_FILE,
    QUERY_MODEL_FILE,
    OnnxSettings,
    write_export,
)
from langchain_tasb.encoding.torch_backend import load_sentence_transformer
from langchain_tasb.encoding.types import ModelInfo, Role, Similarity

logger = logging.getLogger(__name__)

_STALE_TMP_SECONDS = 6 * 3600
_HASHES_FILE = "hashes.json"
_META_FILE = "meta.json"
# A digest is remembered only for a file unchanged this long before it was hashed: a change
# within the timestamps' resolution (up to 2 s) could otherwise keep every stat field.
_SETTLED_SECONDS = 2.0


@dataclass(frozen=True)
class ExportedModel:
    """A complete export in the cache: where it is and what it computes."""

    directory: Path
    info: ModelInfo
    prompts: dict[str, str]
    """Prompt prepended per role ("query", "document")."""
    query_graph: bool = False
    """Whether queries have their own graph."""
    digests: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each file, recorded when the export was written."""

    @property
    def model_file(self) -> Path:
        """The ONNX graph that encodes documents (and queries, without a query graph)."""
        return self.directory / MODEL_FILE

    def graph_for(self, role: Role) -> Path:
        """The ONNX graph that encodes texts of ``role``."""
        if role == "query" and self.query_graph:
            return self.directory / QUERY_MODEL_FILE
        return self.model_file


def json_digest(value: Any) -> str:
    """SHA-256 of ``value`` as JSON with sorted keys."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    """What :func:`write_json` stored in ``path``; empty when absent, unreadable or altered."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.debug("ignoring unreadable %s: %s", path, exc)
        return {}
    entries = stored.get("entries") if isinstance(stored, dict) else None
    if not isinstance(entries, dict) or stored.get("sha256") != json_digest(entries):
        logger.warning("ignoring %s: it does not verify; computing its entries again", path)
        return {}
    return entries


def write_json(path: Path, entries: dict[str, Any]) -> None:
    """Replace ``path`` whole with ``entries`` and their digest; a failed write only logs."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"entries": entries, "sha256": json_digest(entries)}
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        logger.debug("cannot write %s: %s", path, exc)
        temporary.unlink(missing_ok=True)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_meta(directory: Path, description: dict[str, Any]) -> None:
    # Written last: a folder with meta.json is a finished export.
    files = [f for f in sorted(directory.rglob("*")) if f.is_file()]
    digests = {f.relative_to(directory).as_posix(): file_digest(f) for f in files}
    (directory / _META_FILE).write_text(json.dumps({**description, "sha256": digests}, indent=2))


def read_export(directory: Path) -> ExportedModel | None:
    """The finished export in ``directory``, or None when absent or its graphs are unrecorded."""
    try:
        meta = json.loads((directory / _META_FILE).read_text())
        exported = ExportedModel(
            directory=directory,
            info=ModelInfo(**meta["info"]),
            prompts=dict(meta["prompts"]),
            query_graph=bool(meta.get("query_graph", False)),
            digests={str(k): str(v) for k, v in dict(meta["sha256"]).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    graphs = {exported.model_file.name, exported.graph_for("query").name}
    return exported if graphs <= exported.digests.keys() else None


def verify_export(exported: ExportedModel) -> str | None:
    """Why the export's files are not the ones written (None when every digest matches)."""
    for name, recorded in sorted(exported.digests.items()):
        try:
            actual = file_digest(exported.directory / name)
        except OSError as exc:
            return f"cannot read {name} ({exc.strerror or exc})"
        if actual != recorded:
            return f"has a {name} that is not the file written there (its SHA-256 differs)"
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _local_model_dir(name: str) -> Path | None:
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name, local_files_only=True))
    except Exception:  # not cached, or not a repo id: the caller loads the model first
        return None


def _check_private(folder: Path) -> None:
    # Refuse a cache folder another user can write: a graph planted there would be run.
    stat = folder.stat()
    if stat.st_uid == os.getuid() and not stat.st_mode & 0o022:
        return
    msg = (
        f"the ONNX cache folder {folder} can be written by other users (owner uid "
        f"{stat.st_uid}, mode {stat.st_mode & 0o777:o}), so a model planted there would be "
        f"used: make it yours and private (chown $USER {folder}; chmod go-w {folder}), or "
        f"set ${CACHE_ENV_VAR} to a folder only you can write"
    )
    raise PermissionError(msg)


def _stamp(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]


def _fingerprint_files(directory: Path, memo: Path | None = None) -> list[tuple[str, str]]:
    # (relative path, SHA-256) of every model file, from ``memo`` when its stat is unchanged:
    # any change to a file changes its ctime, which nobody can set back.
    remembered = read_json(memo) if memo is not None else {}
    changed = False
    files = []
    for file in sorted(directory.rglob("*")):
        relative = file.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        resolved = str(file.resolve())
        before = _stamp(file.stat())
        entry = remembered.get(resolved)
        if isinstance(entry, dict) and entry.get("stat") == before:
            digest = str(entry["sha256"])
        else:
            digest = file_digest(file)
            after = file.stat()
            if after.st_ctime < time.time() - _SETTLED_SECONDS and _stamp(after) == before:
                remembered[resolved] = {"stat": before, "sha256": digest}
                changed = True
        files.append((relative.as_posix(), digest))
    if changed and memo is not None:  # a memo that cannot be written only costs hashing again
        write_json(memo, {k: v for k, v in remembered.items() if Path(k).exists()})
    return files


def cache_key(
    name: str, model_dir: Path, settings: OnnxSettings, *, memo: Path | None = None
) -> str:
    """Hex digest naming one export: model files, settings, and the versions that shape it.

    ``memo`` is the file that remembers the model files' digests (none: hash every time).
    """
    packages = ("torch", "onnxruntime", "onnx", "onnxscript", "transformers")
    material = {
        "format": EXPORT_FORMAT,
        "name": name,
        "directory": str(model_dir),
        "files": _fingerprint_files(model_dir, memo),
        "settings": asdict(settings),
        "versions": {p: _version(p) for p in (*packages, "sentence-transformers")},
    }
    return json_digest(material)[:32]


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the files still were
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _set_aside(final: Path, reason: str) -> None:
    logger.warning("The ONNX export in %s %s; exporting it again.", final, reason)
    aside = final.parent / f".tmp-broken-{final.name}-{os.getpid()}-{time.monotonic_ns()}"
    with contextlib.suppress(FileNotFoundError):  # another process set it aside first
        shutil.rmtree(final.rename(aside))


def _verified(final: Path, *, rebuild: bool = False) -> ExportedModel | None:
    # The export in ``final`` when its files are the ones written; any other is set aside.
    exported = read_export(final)
    if exported is not None:
        _check_private(final)
        reason = "does not load" if rebuild else verify_export(exported)
        if reason is None:
            return exported
        _set_aside(final, reason)
    elif final.exists():
        _set_aside(final, "is incomplete or damaged")
    return None


def ensure_exported(
    name: str,
    *,
    settings: OnnxSettings | None = None,
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
    similarity_override: Similarity | None = None,
    rebuild: bool = False,
) -> ExportedModel:
    """The cached export of model ``name``, exporting it first if there is none.

    A broken export, or any with ``rebuild`` (its graph did not load), is set aside and
    exported anew.
    """
    settings = settings or OnnxSettings()
    root = Path(cache_dir).expanduser() if cache_dir else cache_root() / "onnx"
    load = functools.partial(
        load_sentence_transformer, name, "cpu", trust_remote_code=trust_remote_code, share=False
    )
    model_dir = _local_model_dir(name)
    model = None
    if model_dir is None:  # a hub model not downloaded yet: loading it downloads it
        model = load()
        model_dir = _local_model_dir(name)
        if model_dir is None:
            msg = f"Model {name!r} loaded, but its files cannot be found to key the ONNX cache."
            raise OSError(msg)
    if root.exists():
        _check_private(root)
    final = root / cache_key(name, model_dir, settings, memo=root / _HASHES_FILE)
    exported = _verified(final, rebuild=rebuild)
    if exported is not None:
        return exported
    if model is None:
        model = load()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(root)
    for leftover in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
    logger.info("exporting %s to ONNX (%s) in %s, once", name, settings.quantization, final)
    started = time.perf_counter()
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        _write_meta(temporary, write_export(model, name, temporary, settings, similarity_override))
        # Every file and folder on disk before the rename publishes it.
        for path in [*sorted(temporary.rglob("*"), key=lambda p: -len(p.parts)), temporary]:
            _sync(path)
        if _verified(final) is None:  # else another process finished first: keep its export
            try:
                os.replace(temporary, final)
            except OSError:  # another process finished just before us
                if read_export(final) is None:
                    raise
            _sync(root)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    exported = read_export(final)
    if exported is None:
        msg = f"ONNX export of {name!r} in {final} is incomplete; delete that folder and retry."
        raise OSError(msg)
    logger.debug("exported %s in %.1f s", name, time.perf_counter() - started)
    return exported
