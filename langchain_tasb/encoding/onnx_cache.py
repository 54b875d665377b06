"""The on-disk cache of ONNX exports: where it is, how an export is keyed, how one appears.

An export is keyed by the model files and every setting and library version that shapes the
graph, so it runs once per model and machine. It is written into a temporary folder and moved
into place with one atomic rename: a crashed or concurrent export never leaves a half-written
model where another process would load it. Writing an export is
:mod:`langchain_tasb.encoding.onnx_export`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

# ONNX exports go in ``cache_root() / "onnx"``; both names stay importable from here.
from langchain_tasb.config import CACHE_ENV_VAR as CACHE_ENV_VAR
from langchain_tasb.config import cache_root as cache_root
from langchain_tasb.encoding.loading import load_sentence_transformer
from langchain_tasb.encoding.onnx_export import (
    EXPORT_FORMAT,
    ExportedModel,
    OnnxSettings,
    read_export,
    write_export,
)

logger = logging.getLogger(__name__)

_STALE_TMP_SECONDS = 6 * 3600


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _local_model_dir(name: str) -> Path | None:
    """The folder holding the model's files: the path itself, or its Hugging Face cache copy."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name, local_files_only=True))
    except Exception:  # not cached, or not a repo id: the caller loads the model first
        return None


def _fingerprint_files(directory: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every model file: a changed weight changes the key."""
    files = []
    for file in sorted(directory.rglob("*")):
        relative = file.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        stat = file.stat()
        files.append((relative.as_posix(), stat.st_size, stat.st_mtime_ns))
    return files


def cache_key(name: str, model_dir: Path, settings: OnnxSettings) -> str:
    """Hex digest naming one export: model files, settings, and the versions that shape it."""
    material = {
        "format": EXPORT_FORMAT,
        "name": name,
        "directory": str(model_dir),
        "files": _fingerprint_files(model_dir),
        "settings": asdict(settings),
        "versions": {
            package: _version(package)
            for package in (
                "torch",
                "onnxruntime",
                "onnx",
                "onnxscript",
                "transformers",
                "sentence-transformers",
            )
        },
    }
    encoded = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def _remove_stale_temporaries(root: Path) -> None:
    now = time.time()
    for leftover in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


def ensure_exported(
    name: str,
    *,
    settings: OnnxSettings | None = None,
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
) -> ExportedModel:
    """The cached export of model ``name``, exporting it first if there is none.

    A finished export is a folder ``<cache>/onnx/<key>`` holding ``meta.json``; it appears in
    one ``os.replace``. A broken folder (files deleted by hand) is set aside and exported anew.
    """
    settings = settings or OnnxSettings()
    root = Path(cache_dir).expanduser() if cache_dir else cache_root() / "onnx"
    model_dir = _local_model_dir(name)
    model = None
    if model_dir is None:  # a hub model not downloaded yet: loading it downloads it
        model = load_sentence_transformer(
            name, "cpu", trust_remote_code=trust_remote_code, share=False
        )
        model_dir = _local_model_dir(name)
        if model_dir is None:
            msg = f"Model {name!r} loaded, but its files cannot be found to key the ONNX cache."
            raise OSError(msg)
    final = root / cache_key(name, model_dir, settings)
    exported = read_export(final)
    if exported is not None:
        return exported

    if model is None:  # used for the export only: not kept in the process afterwards
        model = load_sentence_transformer(
            name, "cpu", trust_remote_code=trust_remote_code, share=False
        )
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    logger.info(
        "exporting %s to ONNX (%s) in %s (once; later loads reuse it)",
        name,
        settings.quantization,
        final,
    )
    started = time.perf_counter()
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        write_export(model, name, temporary, settings)
        if final.exists() and read_export(final) is None:  # broken leftover: set it aside
            shutil.rmtree(final.rename(root / f".tmp-broken-{final.name}-{os.getpid()}"))
        try:
            os.replace(temporary, final)
        except OSError:  # another process finished first; its export is as good as ours
            if read_export(final) is None:
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    exported = read_export(final)
    if exported is None:
        msg = f"ONNX export of {name!r} in {final} is incomplete; delete that folder and retry."
        raise OSError(msg)
    logger.debug("exported %s in %.1f s", name, time.perf_counter() - started)
    return exported
