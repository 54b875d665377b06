"""Retrieval experiments on BEIR-format data: exact search against the Chroma HNSW index.

:func:`run_evaluation` encodes a corpus (cached on disk) and its queries with
:class:`~langchain_tasb.embeddings.TasbEmbeddings`, then scores two searches on the same vectors:

* **exact**: every query against every document by dot product (:func:`exact_top_k`);
* **index**: the same vectors upserted into an inner-product Chroma collection
  (:class:`~langchain_tasb.vectorstore.TasbVectorStore`) and searched through HNSW.

Both report nDCG@10, Recall@100, MRR@10 and MAP@100 as trec_eval / pytrec_eval define them
(graded gain, log2 discount, ideal ranking from the qrels; ties ranked by document id
descending; averaged over every judged query; see :mod:`langchain_tasb.evaluation`). The index
also reports recall@10 against exact search (the share of each query's exact top 10 it finds).
Latencies are wall-clock milliseconds per query of the search alone: a numpy matrix-vector
product plus top-k selection for exact search, one ``ChromaStore.query`` (what the vector
store searches with, documents and metadata included) for the index.

An optional sweep re-measures the index for several HNSW search breadths (``ef_search``) with
``k = 10``. hnswlib explores ``max(ef_search, k)`` candidates, so a sweep at ``k = 100`` would
make every ``ef_search`` below 100 look alike; the sweep therefore measures the top 10, which
is what a retriever asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.chroma.client import close_client, persistent_client
from langchain_tasb.chroma.collection import HnswSettings, drop_collection
from langchain_tasb.chroma.identity import probe_vector
from langchain_tasb.encoding.encoder import resolve_backend
from langchain_tasb.evaluation import (
    BeirDataset,
    Run,
    corpus_hash,
    evaluate,
    exact_top_k,
    recall_against_exact,
    run_from_top_k,
)
from langchain_tasb.vectorstore import TasbVectorStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from langchain_tasb.chroma.store import ChromaStore
    from langchain_tasb.embeddings import TasbEmbeddings

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "TASB_CACHE_DIR"
"""Environment variable naming langchain-tasb's cache folder (embeddings go in ``embeddings/``)."""

SEARCH_K = 100
"""Documents retrieved per query for the metrics (Recall@100 and MAP@100 need 100)."""

SWEEP_K = 10
"""Documents retrieved per query in an ``ef_search`` sweep (see the module docstring)."""

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("ndcg@10", "nDCG@10"),
    ("recall@100", "Recall@100"),
    ("mrr@10", "MRR@10"),
    ("map@100", "MAP@100"),
)
"""The metrics of the report's table, as (key in ``metrics``, column title)."""

_CACHE_FORMAT = 1
_ENCODE_SLICE = 256
_VERSIONED_PACKAGES = (
    "langchain-tasb",
    "chromadb",
    "numpy",
    "torch",
    "sentence-transformers",
    "transformers",
)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Per-query wall-clock time of a search, in milliseconds."""

    mean_ms: float
    p50_ms: float
    p95_ms: float

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> Latency:
        """Summarise per-query timings given in seconds."""
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        if ms.size == 0:
            return cls(0.0, 0.0, 0.0)
        return cls(float(ms.mean()), float(np.percentile(ms, 50)), float(np.percentile(ms, 95)))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready figures."""
        return {"mean_ms": self.mean_ms, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms}


@dataclass(frozen=True)
class SearchResult:
    """How one search (exact or index) did on every judged query.

    Attributes:
        metrics: :func:`~langchain_tasb.evaluation.evaluate` output: nDCG, Recall, MRR and MAP
            at 10 and 100.
        recall_at_10_vs_exact: Mean share of each query's exact top 10 this search returned
            (1.0 for exact search itself).
        latency: Per-query search time.
        k: Documents retrieved per query.
    """

    metrics: dict[str, float]
    recall_at_10_vs_exact: float
    latency: Latency
    k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "metrics": dict(self.metrics),
            "recall@10_vs_exact": self.recall_at_10_vs_exact,
            "latency": self.latency.to_dict(),
            "k": self.k,
        }


@dataclass(frozen=True)
class SweepPoint:
    """The index measured at one ``ef_search``, retrieving ``k`` (10) documents per query."""

    ef_search: int
    recall_at_10_vs_exact: float
    ndcg_at_10: float
    latency: Latency
    k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "ef_search": self.ef_search,
            "recall@10_vs_exact": self.recall_at_10_vs_exact,
            "ndcg@10": self.ndcg_at_10,
            "latency": self.latency.to_dict(),
            "k": self.k,
        }


@dataclass(frozen=True)
class EvalReport:
    """Everything one :func:`run_evaluation` measured, and the settings it ran with.

    ``exact_run`` and ``index_run`` hold the rankings the metrics were computed from (query id
    -> document id -> dot product); they are not part of :meth:`to_dict`.
    """

    dataset: str
    split: str
    n_docs: int
    n_queries: int
    n_judgments: int
    corpus_sha256: str
    model_name: str
    dimension: int
    similarity: str
    backend: str
    document_max_tokens: int
    query_max_tokens: int
    hnsw: HnswSettings
    exact: SearchResult
    index: SearchResult
    sweep: tuple[SweepPoint, ...]
    cache_path: str | None
    cache_hit: bool
    encode_docs_s: float
    encode_query_ms: float
    index_build_s: float
    versions: dict[str, str]
    exact_run: Run = field(repr=False, compare=False, default_factory=dict)
    index_run: Run = field(repr=False, compare=False, default_factory=dict)

    @property
    def ndcg_at_10_loss(self) -> float:
        """nDCG@10 of exact search minus that of the index (positive: the index lost)."""
        return self.exact.metrics["ndcg@10"] - self.index.metrics["ndcg@10"]

    def to_dict(self) -> dict[str, Any]:
        """Every figure and the run's settings, JSON-ready."""
        return {
            "dataset": {
                "name": self.dataset,
                "split": self.split,
                "n_docs": self.n_docs,
                "n_queries": self.n_queries,
                "n_judgments": self.n_judgments,
                "corpus_sha256": self.corpus_sha256,
            },
            "model": {
                "name": self.model_name,
                "dimension": self.dimension,
                "similarity": self.similarity,
                "backend": self.backend,
                "document_max_tokens": self.document_max_tokens,
                "query_max_tokens": self.query_max_tokens,
            },
            "hnsw": {
                "space": "ip",
                "ef_search": self.hnsw.ef_search,
                "ef_construction": self.hnsw.ef_construction,
                "max_neighbors": self.hnsw.max_neighbors,
            },
            "exact": self.exact.to_dict(),
            "index": self.index.to_dict(),
            "ndcg@10_loss": self.ndcg_at_10_loss,
            "sweep": [point.to_dict() for point in self.sweep],
            "encoding": {
                "cache_path": self.cache_path,
                "cache_hit": self.cache_hit,
                "docs_s": self.encode_docs_s,
                "query_ms": self.encode_query_ms,
            },
            "index_build_s": self.index_build_s,
            "versions": dict(self.versions),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        """The figures as markdown: a heading line, the exact-versus-index table, the sweep."""
        h = self.hnsw
        lines = [
            f"**{self.dataset}** ({self.split}): {self.n_queries:,} queries, "
            f"{self.n_docs:,} docs; model `{self.model_name}` ({self.dimension}-d, "
            f"{self.similarity}, {self.backend}, documents cut at {self.document_max_tokens} "
            "tokens); "
            f"HNSW ef_search={h.ef_search}, ef_construction={h.ef_construction}, "
            f"max_neighbors={h.max_neighbors}",
            "",
            "| search | "
            + " | ".join(title for _, title in HEADLINE_METRICS)
            + " | recall@10 vs exact | ms/query | p95 ms |",
            "|---|" + "---:|" * (len(HEADLINE_METRICS) + 3),
        ]
        for label, result in (
            ("exact", self.exact),
            (f"index (ef_search={h.ef_search})", self.index),
        ):
            cells = [f"{result.metrics[key]:.4f}" for key, _ in HEADLINE_METRICS]
            cells += [
                f"{result.recall_at_10_vs_exact:.4f}",
                f"{result.latency.mean_ms:.3f}",
                f"{result.latency.p95_ms:.3f}",
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", f"Index nDCG@10 loss against exact search: {self.ndcg_at_10_loss:+.4f}"]
        if h.ef_search < self.index.k:
            lines += [
                "",
                f"Note: the index row retrieves k={self.index.k}, and HNSW explores "
                f"max(ef_search, k) = {self.index.k} candidates; the sweep (k={SWEEP_K}) "
                "shows what ef_search itself gives.",
            ]
        if self.sweep:
            lines += [
                "",
                f"ef_search sweep (k={self.sweep[0].k}):",
                "",
                "| ef_search | recall@10 vs exact | nDCG@10 | ms/query | p95 ms |",
                "|---:|---:|---:|---:|---:|",
            ]
            lines += [
                f"| {p.ef_search} | {p.recall_at_10_vs_exact:.4f} | {p.ndcg_at_10:.4f} | "
                f"{p.latency.mean_ms:.3f} | {p.latency.p95_ms:.3f} |"
                for p in self.sweep
            ]
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Write a PNG of quality against per-query latency.

        Two panels, recall@10 against exact search and nDCG@10, each against mean
        milliseconds per query: one point per ``ef_search`` of the sweep (the configured index
        alone when there was no sweep), and exact search as a star.

        Args:
            path: Where to write the PNG.

        Returns:
            The path written.

        Raises:
            ImportError: If matplotlib is not installed.
        """
        require_matplotlib()
        # matplotlib is an optional extra: mypy may run where it is not installed.
        from matplotlib.backends.backend_agg import (  # type: ignore[import-not-found,unused-ignore]
            FigureCanvasAgg,
        )
        from matplotlib.figure import Figure  # type: ignore[import-not-found,unused-ignore]

        if self.sweep:
            points = [
                (p.ef_search, p.latency.mean_ms, p.recall_at_10_vs_exact, p.ndcg_at_10)
                for p in self.sweep
            ]
            label = f"HNSW index, k={self.sweep[0].k}"
        else:
            points = [
                (
                    self.hnsw.ef_search,
                    self.index.latency.mean_ms,
                    self.index.recall_at_10_vs_exact,
                    self.index.metrics["ndcg@10"],
                )
            ]
            label = f"HNSW index, k={self.index.k}"
        figure = Figure(figsize=(10, 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        panels = (
            (2, "recall@10 against exact search", self.exact.recall_at_10_vs_exact),
            (3, "nDCG@10", self.exact.metrics["ndcg@10"]),
        )
        for position, (column, ylabel, exact_value) in enumerate(panels, start=1):
            axes = figure.add_subplot(1, 2, position)
            xs = [p[1] for p in points]
            ys = [p[column] for p in points]
            axes.plot(xs, ys, marker="o", label=label)
            for ef, x, y in zip((p[0] for p in points), xs, ys, strict=True):
                axes.annotate(f"ef={ef}", (x, y), textcoords="offset points", xytext=(4, 4))
            axes.plot(
                [self.exact.latency.mean_ms],
                [exact_value],
                marker="*",
                markersize=12,
                linestyle="none",
                label="exact (numpy)",
            )
            axes.set_xlabel("ms per query (mean)")
            axes.set_ylabel(ylabel)
            axes.grid(visible=True, alpha=0.3)
            axes.legend(loc="best")
        figure.suptitle(
            f"{self.dataset} ({self.split}), {_short_model_name(self.model_name)}: "
            "quality against latency"
        )
        out = Path(path)
        figure.savefig(out, format="png", dpi=120)
        return out


def _short_model_name(name: str) -> str:
    """A model name fit for a title: the last two parts of a path, or the hub name."""
    parts = Path(name).parts
    return "/".join(parts[-2:]) if len(parts) > 2 else name


def require_matplotlib() -> None:
    """Raise an ``ImportError`` naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError as exc:
        msg = (
            "Plotting needs matplotlib, which is not installed: "
            "pip install 'langchain-tasb[plot]' (or pip install matplotlib)."
        )
        raise ImportError(msg) from exc


# --------------------------------------------------------------------------------------------
# Embedding cache
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``embeddings`` under ``$TASB_CACHE_DIR``, else under ``$XDG_CACHE_HOME/langchain-tasb``.

    ``$XDG_CACHE_HOME`` defaults to ``~/.cache``. The root is the one the ONNX exports use.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser() / "embeddings"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "langchain-tasb" / "embeddings"


def embedding_cache_key(dataset: BeirDataset, embeddings: TasbEmbeddings) -> str:
    """The cache key of a corpus's document vectors under one model and its settings.

    SHA-256 of the model's identity (its probe vector rounded to 4 decimals, its name, its
    document token limit and similarity, and the concrete backend and precision that encode,
    since int8 or half-precision vectors are not the fp32 ones) and of :func:`corpus_hash`.
    The probe vector makes two different models at one path, or one model retrained, miss
    the cache.

    Args:
        dataset: The loaded dataset.
        embeddings: The embedding model (loaded if it was not yet).

    Returns:
        A 64-character lowercase hex string.
    """
    identity = {
        "format": _CACHE_FORMAT,
        # + 0.0 turns -0.0 into 0.0, so a probe component rounding to zero keys one way.
        "probe": [round(x, 4) + 0.0 for x in probe_vector(embeddings)],
        "model_name": embeddings.model_name,
        "document_max_tokens": embeddings.document_max_tokens,
        "similarity": embeddings.similarity,
        "backend": _backend_label(embeddings),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8"))
    digest.update(corpus_hash(dataset).encode("ascii"))
    return digest.hexdigest()


def _backend_label(embeddings: TasbEmbeddings) -> str:
    """The concrete backend and precision, e.g. "torch-float32" or "onnx-int8"."""
    kind, _, precision = resolve_backend(
        embeddings.backend, embeddings.device, embeddings.precision
    )
    return "onnx-int8" if kind == "onnx-int8" else f"{kind}-{precision}"


def _cache_file(cache_dir: Path, dataset: BeirDataset, key: str) -> Path:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.name) or "corpus"
    return cache_dir / f"{name}-{key[:32]}.npy"


def _load_cached(path: Path, shape: tuple[int, int]) -> NDArray[np.float32] | None:
    """The cached vectors, or None (with a warning) when the file is unusable."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("Embedding cache %s is unreadable (%s); re-encoding.", path, exc)
        return None
    if array.shape != shape or array.dtype != np.float32 or not np.isfinite(array).all():
        logger.warning(
            "Embedding cache %s holds a %s %s array, expected finite float32 of shape %s; "
            "re-encoding.",
            path,
            array.dtype,
            array.shape,
            shape,
        )
        return None
    return np.asarray(array, dtype=np.float32)


def _save_atomic(path: Path, array: NDArray[np.float32]) -> None:
    """Write ``array`` to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def encode_corpus(
    dataset: BeirDataset,
    embeddings: TasbEmbeddings,
    *,
    progress: bool = False,
) -> NDArray[np.float32]:
    """Encode ``dataset.doc_texts`` (title + " " + text) as documents, in corpus order.

    Texts are encoded longest first, a slice at a time, so that padding stays small and
    progress can be shown; rows come back in corpus order.

    Args:
        dataset: The loaded dataset.
        embeddings: The embedding model.
        progress: Write a progress line to stderr.

    Returns:
        A ``(n_docs, dimension)`` float32 array.
    """
    texts = dataset.doc_texts
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = np.empty((len(texts), embeddings.dimension), dtype=np.float32)
    for start in range(0, len(order), _ENCODE_SLICE):
        picked = order[start : start + _ENCODE_SLICE]
        out[picked] = np.asarray(
            embeddings.embed_documents([texts[i] for i in picked]), dtype=np.float32
        )
        if progress:
            done = min(start + _ENCODE_SLICE, len(order))
            print(
                f"\rencoding {dataset.name}: {done:,}/{len(order):,} docs", end="", file=sys.stderr
            )
    if progress and order:
        print(file=sys.stderr)
    return out


def cached_corpus_vectors(
    dataset: BeirDataset,
    embeddings: TasbEmbeddings,
    *,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[NDArray[np.float32], Path | None, bool]:
    """Document vectors from the cache, or encoded (and then cached).

    A cache file that is unreadable or has the wrong shape is re-encoded and replaced, with a
    warning. Files are written atomically, so an interrupted run leaves no partial file.

    Args:
        dataset: The loaded dataset.
        embeddings: The embedding model.
        cache_dir: The cache folder; None means :func:`default_cache_dir`.
        use_cache: False encodes without reading or writing the cache.
        progress: Write encoding progress to stderr.

    Returns:
        ``(vectors, cache file or None, whether the cache was hit)``.
    """
    if not use_cache:
        return encode_corpus(dataset, embeddings, progress=progress), None, False
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = _cache_file(folder, dataset, embedding_cache_key(dataset, embeddings))
    shape = (len(dataset.doc_ids), embeddings.dimension)
    if path.exists():
        cached = _load_cached(path, shape)
        if cached is not None:
            logger.info("Embedding cache hit: %s", path)
            return cached, path, True
    vectors = encode_corpus(dataset, embeddings, progress=progress)
    try:
        _save_atomic(path, vectors)
    except OSError as exc:
        logger.warning(
            "Could not write the embedding cache %s (%s); the next run will encode again. "
            "Pass another cache_dir (or set $%s).",
            path,
            exc,
            CACHE_DIR_ENV,
        )
        return vectors, None, False
    logger.info("Embedding cache written: %s", path)
    return vectors, path, False


# --------------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------------


def _exact_latencies(
    query_vectors: NDArray[np.float32], doc_vectors: NDArray[np.float32], k: int
) -> list[float]:
    """Seconds per query of a numpy matrix-vector product and top-``k`` selection."""
    times: list[float] = []
    kk = min(k, doc_vectors.shape[0])
    for query in query_vectors:
        start = time.perf_counter()
        scores = doc_vectors @ query
        top = np.argpartition(-scores, kk - 1)[:kk] if kk < scores.shape[0] else np.arange(kk)
        top = top[np.argsort(-scores[top], kind="stable")]
        times.append(time.perf_counter() - start)
    return times


def _index_search(
    store: ChromaStore, query_vectors: NDArray[np.float32], query_ids: Sequence[str], k: int
) -> tuple[Run, list[list[str]], list[float]]:
    """Query the index once per query: the run, ranked ids per query and seconds per query."""
    store.query(query_vectors[0], k)  # warm-up: loads the index, not timed
    run: Run = {}
    ranked: list[list[str]] = []
    times: list[float] = []
    for query_id, vector in zip(query_ids, query_vectors, strict=True):
        start = time.perf_counter()
        hits = store.query(vector, k)
        times.append(time.perf_counter() - start)
        run[query_id] = {hit.id: hit.dot for hit in hits}
        ranked.append([hit.id for hit in hits])
    return run, ranked, times


def _temporary_client(path: str) -> Any:
    return persistent_client(path, telemetry=False)


def _close(client: Any) -> None:
    close_client(client)  # raises RuntimeError when chromadb cannot close (no sweep then)


def _drop_collection(client: Any, name: str) -> None:
    """Delete the evaluation's collection from a caller's client; a failure is only logged."""
    try:
        drop_collection(client, name)
    except Exception as exc:  # cleanup must not hide the error that got us here
        logger.warning("Could not delete evaluation collection %r: %s", name, exc)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _check_sweep(values: Sequence[int]) -> tuple[int, ...]:
    sweep: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"ef_search_sweep values must be positive integers such as 64, got {value!r}."
            raise ValueError(msg)
        if value not in sweep:
            sweep.append(value)
    return tuple(sweep)


def run_evaluation(
    dataset: BeirDataset,
    embeddings: TasbEmbeddings,
    *,
    hnsw: HnswSettings | None = None,
    ef_search_sweep: Sequence[int] = (),
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    client: Any = None,
    progress: bool = False,
) -> EvalReport:
    """Evaluate exact search and the Chroma HNSW index on a BEIR dataset.

    Encodes the corpus (title + " " + text; from the embedding cache when possible) and the
    queries, ranks the top 100 documents per query exactly and through an inner-product
    Chroma collection built from the same vectors, and scores both against the qrels.

    Args:
        dataset: A dataset from :func:`~langchain_tasb.evaluation.load_beir`.
        embeddings: The model to encode documents and queries with.
        hnsw: HNSW settings of the index (default: :class:`HnswSettings`'s defaults).
        ef_search_sweep: ``ef_search`` values to re-measure the index at (k = 10), in order.
        cache_dir: Embedding cache folder (default: :func:`default_cache_dir`).
        use_cache: False neither reads nor writes the embedding cache.
        client: A Chroma client to build the index in. Default: a ``PersistentClient`` in a
            temporary folder, removed afterwards. Chroma applies ``ef_search`` only when it
            loads an index, so a sweep reopens the index and needs the default client.
        progress: Write progress lines to stderr.

    Returns:
        The report; its ``exact_run`` and ``index_run`` hold the rankings.

    Raises:
        ValueError: If a sweep value is not a positive integer, a sweep is asked for with a
            given ``client``, or the dataset has no documents.
    """
    sweep = _check_sweep(ef_search_sweep)
    if sweep and client is not None:
        msg = (
            "ef_search_sweep needs an index that run_evaluation can close and reopen (Chroma "
            "applies ef_search only when it loads an index); leave client=None to sweep."
        )
        raise ValueError(msg)
    if not dataset.doc_ids:
        msg = f"Dataset {dataset.name!r} has no documents; check its corpus.jsonl."
        raise ValueError(msg)
    settings = hnsw or HnswSettings()

    start = time.perf_counter()
    doc_vectors, cache_path, cache_hit = cached_corpus_vectors(
        dataset, embeddings, cache_dir=cache_dir, use_cache=use_cache, progress=progress
    )
    encode_docs_s = 0.0 if cache_hit else time.perf_counter() - start

    query_ids = list(dataset.queries)
    start = time.perf_counter()
    query_vectors = np.asarray(
        [embeddings.embed_query(dataset.queries[q]) for q in query_ids], dtype=np.float32
    ).reshape(len(query_ids), embeddings.dimension)
    encode_query_ms = (time.perf_counter() - start) * 1000.0 / max(len(query_ids), 1)

    k = min(SEARCH_K, len(dataset.doc_ids))
    indices, scores = exact_top_k(query_vectors, doc_vectors, k)
    exact_run = run_from_top_k(query_ids, dataset.doc_ids, indices, scores)
    exact_ids = [[dataset.doc_ids[i] for i in row] for row in indices.tolist()]
    exact = SearchResult(
        metrics=evaluate(exact_run, dataset.qrels),
        recall_at_10_vs_exact=1.0,
        latency=Latency.from_seconds(_exact_latencies(query_vectors, doc_vectors, k)),
        k=k,
    )
    logger.info("exact search: nDCG@10 %.4f", exact.metrics["ndcg@10"])

    name = f"tasb-eval-{uuid.uuid4().hex[:12]}"
    tmp = None if client is not None else tempfile.TemporaryDirectory(prefix="tasb-eval-")
    active = client if tmp is None else _temporary_client(tmp.name)
    try:
        if progress:
            print(f"building the index ({len(dataset.doc_ids):,} docs)", file=sys.stderr)
        store = TasbVectorStore(
            embedding=embeddings, collection_name=name, client=active, hnsw=settings
        )
        start = time.perf_counter()
        store.store.upsert(dataset.doc_ids, dataset.doc_texts, doc_vectors)
        index_build_s = time.perf_counter() - start
        index_run, index_ids, index_times = _index_search(store.store, query_vectors, query_ids, k)
        index = SearchResult(
            metrics=evaluate(index_run, dataset.qrels),
            recall_at_10_vs_exact=recall_against_exact(index_ids, exact_ids, k=SWEEP_K),
            latency=Latency.from_seconds(index_times),
            k=k,
        )
        logger.info("index search: nDCG@10 %.4f", index.metrics["ndcg@10"])
        points: list[SweepPoint] = []
        for ef_search in sweep:
            if tmp is None:  # pragma: no cover - a sweep with a given client is refused above
                break
            if progress:
                print(f"sweep: ef_search={ef_search}", file=sys.stderr)
            # The loaded index keeps the ef_search it was loaded with: close the client so
            # that reopening loads it again, and set ef_search before the first query.
            _close(active)
            active = _temporary_client(tmp.name)
            reopened = TasbVectorStore(
                embedding=embeddings,
                collection_name=name,
                client=active,
                hnsw=HnswSettings(ef_search, settings.ef_construction, settings.max_neighbors),
            )
            kk = min(SWEEP_K, k)
            run, ids, times = _index_search(reopened.store, query_vectors, query_ids, kk)
            points.append(
                SweepPoint(
                    ef_search=ef_search,
                    recall_at_10_vs_exact=recall_against_exact(ids, exact_ids, k=SWEEP_K),
                    ndcg_at_10=evaluate(run, dataset.qrels)["ndcg@10"],
                    latency=Latency.from_seconds(times),
                    k=kk,
                )
            )
    finally:
        if tmp is None:
            _drop_collection(active, name)
        else:
            _close(active)
            tmp.cleanup()

    return EvalReport(
        dataset=dataset.name,
        split=dataset.split,
        n_docs=len(dataset.doc_ids),
        n_queries=len(query_ids),
        n_judgments=sum(len(rels) for rels in dataset.qrels.values()),
        corpus_sha256=corpus_hash(dataset),
        model_name=embeddings.model_name,
        dimension=embeddings.dimension,
        similarity=embeddings.similarity,
        backend=_backend_label(embeddings),
        document_max_tokens=embeddings.document_max_tokens,
        query_max_tokens=embeddings.query_max_tokens,
        hnsw=settings,
        exact=exact,
        index=index,
        sweep=tuple(points),
        cache_path=str(cache_path) if cache_path is not None else None,
        cache_hit=cache_hit,
        encode_docs_s=encode_docs_s,
        encode_query_ms=encode_query_ms,
        index_build_s=index_build_s,
        versions=_versions(),
        exact_run=exact_run,
        index_run=index_run,
    )
