"""The corpus embedding cache of ``tasb eval``: document vectors kept on disk between runs."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from langchain_tasb.chroma.store import probe_vector
from langchain_tasb.config import CACHE_ENV_VAR, cache_root
from langchain_tasb.encoding.selection import resolve_backend
from langchain_tasb.ingest.beir import BeirDataset, corpus_hash

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from langchain_tasb.encoding.model import TasbModel

logger = logging.getLogger(__name__)

_CACHE_FORMAT = 1
_ENCODE_SLICE = 256


def default_cache_dir() -> Path:
    """``embeddings`` under :func:`langchain_tasb.config.cache_root`."""
    return cache_root() / "embeddings"


def embedding_cache_key(dataset: BeirDataset, embeddings: TasbModel) -> str:
    """The cache key of a corpus's document vectors under one model and its settings.

    The model counts by its probe vector too, so another model (even one retrained at the same
    path), setting or corpus misses the cache rather than reading wrong vectors.
    """
    identity = {
        "format": _CACHE_FORMAT,
        # + 0.0 turns -0.0 into 0.0, so a probe component rounding to zero keys one way.
        "probe": [round(x, 4) + 0.0 for x in probe_vector(embeddings)],
        "model_name": embeddings.model_name,
        "document_max_tokens": embeddings.document_max_tokens,
        "similarity": embeddings.similarity,
        "backend": backend_label(embeddings),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8"))
    digest.update(corpus_hash(dataset).encode("ascii"))
    return digest.hexdigest()


def backend_label(embeddings: TasbModel) -> str:
    """The concrete backend and precision, e.g. "torch-float32" or "onnx-int8"."""
    kind, _, precision = resolve_backend(
        embeddings.backend, embeddings.device, embeddings.precision
    )
    return "onnx-int8" if kind == "onnx-int8" else f"{kind}-{precision}"


def _load_cached(path: Path, shape: tuple[int, int]) -> NDArray[np.float32] | None:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("Embedding cache %s is unreadable (%s); re-encoding.", path, exc)
        return None
    if array.shape != shape or array.dtype != np.float32 or not np.isfinite(array).all():
        msg = "Embedding cache %s holds a %s %s array, expected finite float32 of shape %s; "
        logger.warning(msg + "re-encoding.", path, array.dtype, array.shape, shape)
        return None
    return np.asarray(array, dtype=np.float32)


def _save_atomic(path: Path, array: NDArray[np.float32]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # no fsync: a damaged file is re-encoded on load
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def encode_corpus(
    dataset: BeirDataset, embeddings: TasbModel, *, progress: bool = False
) -> NDArray[np.float32]:
    """Encode ``dataset.doc_texts`` (longest first, to pad little) into ``(n_docs, dim)`` float32.

    Rows come back in corpus order; ``progress`` shows a tqdm bar on stderr.
    """
    texts = dataset.doc_texts
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = np.empty((len(texts), embeddings.dimension), dtype=np.float32)
    desc = f"encoding {dataset.name}"
    with tqdm(total=len(order), desc=desc, unit="docs", disable=not progress) as bar:
        for start in range(0, len(order), _ENCODE_SLICE):
            picked = order[start : start + _ENCODE_SLICE]
            out[picked] = np.asarray(
                embeddings.embed_documents([texts[i] for i in picked]), dtype=np.float32
            )
            bar.update(len(picked))
    return out


def cached_corpus_vectors(
    dataset: BeirDataset,
    embeddings: TasbModel,
    *,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[NDArray[np.float32], Path | None, bool]:
    """Document vectors from the cache, or encoded and cached (written atomically).

    An unreadable or misshapen cache file is re-encoded and replaced, with a warning.
    ``cache_dir`` None means :func:`default_cache_dir`; ``use_cache=False`` skips the cache.

    Returns:
        ``(vectors, cache file or None, whether the cache was hit)``.
    """
    if not use_cache:
        return encode_corpus(dataset, embeddings, progress=progress), None, False
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.name) or "corpus"
    path = folder / f"{name}-{embedding_cache_key(dataset, embeddings)[:32]}.npy"
    shape = (len(dataset.doc_ids), embeddings.dimension)
    if path.exists() and (cached := _load_cached(path, shape)) is not None:
        logger.info("Embedding cache hit: %s", path)
        return cached, path, True
    vectors = encode_corpus(dataset, embeddings, progress=progress)
    try:
        _save_atomic(path, vectors)
    except OSError as exc:
        msg = "Could not write the embedding cache %s (%s); the next run will encode again. "
        logger.warning(msg + "Pass another cache_dir (or set $%s).", path, exc, CACHE_ENV_VAR)
        return vectors, None, False
    logger.info("Embedding cache written: %s", path)
    return vectors, path, False
