"""What ``tasb eval`` reports: per-search figures, the report, its markdown tables and plot."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tasb.chroma.store import HnswSettings
    from langchain_tasb.evaluation.metrics import Run

SWEEP_K = 10
"""Documents retrieved per query in an ``ef_search`` sweep (a larger ``k`` hides small ones)."""

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("ndcg@10", "nDCG@10"),
    ("recall@100", "Recall@100"),
    ("mrr@10", "MRR@10"),
    ("map@100", "MAP@100"),
)
"""The metrics of the report's table, as (key in ``metrics``, column title)."""
_AT_10 = ("ndcg@10", "mrr@10")  # hybrid search returns k=10: deeper cut-offs do not apply


_VERSIONED_PACKAGES = (
    "langchain-tasb", "chromadb", "numpy", "torch", "sentence-transformers", "transformers"
)  # fmt: skip
_JSON_KEYS = {"recall_at_10_vs_exact": "recall@10_vs_exact", "ndcg_at_10": "ndcg@10"}


def _json_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """``asdict``'s factory: JSON key names, and no rankings (``run`` and ``*_run`` fields)."""
    return {_JSON_KEYS.get(k, k): v for k, v in items if k != "run" and not k.endswith("_run")}


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


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


@dataclass(frozen=True)
class SearchResult:
    """How one search (exact or index) did on every judged query, retrieving ``k`` per query.

    ``metrics`` is :func:`~langchain_tasb.evaluation.evaluate`'s output; ``run``, the ranking
    it scored, is left out of :meth:`EvalReport.to_dict`.
    """

    metrics: dict[str, float]
    recall_at_10_vs_exact: float
    latency: Latency
    k: int
    run: Run = field(repr=False, compare=False, default_factory=dict)

    def at(self, ef_search: int) -> SweepPoint:
        """These figures as a sweep point at ``ef_search``."""
        ndcg = self.metrics["ndcg@10"]
        return SweepPoint(ef_search, self.recall_at_10_vs_exact, ndcg, self.latency, self.k)


@dataclass(frozen=True)
class SweepPoint:
    """The index measured at one ``ef_search``, retrieving ``k`` (10) documents per query."""

    ef_search: int
    recall_at_10_vs_exact: float
    ndcg_at_10: float
    latency: Latency
    k: int


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset evaluated: its name, split, sizes and corpus hash."""

    name: str
    split: str
    n_docs: int
    n_queries: int
    n_judgments: int
    corpus_sha256: str


@dataclass(frozen=True)
class ModelInfo:
    """The model the vectors came from, and its settings."""

    name: str
    dimension: int
    similarity: str
    backend: str
    document_max_tokens: int
    query_max_tokens: int


@dataclass(frozen=True)
class Encoding:
    """Where the corpus vectors came from, and the encoding time."""

    cache_path: str | None
    cache_hit: bool
    docs_s: float
    query_ms: float


@dataclass(frozen=True)
class HybridReport:
    """BM25 alone and hybrid search (fusion settings and metrics), on one dataset's qrels."""

    k: int
    """Results per query of the hybrid run."""
    fetch_k: int
    """Candidates taken from each side before fusing."""
    fusion: str
    alpha: float
    bm25: dict[str, float]
    """Metrics of BM25 alone (``evaluate``'s keys: ``ndcg@10``, ``recall@100``, ...)."""
    hybrid: dict[str, float]
    bm25_run: Run = field(repr=False, compare=False, default_factory=dict)
    hybrid_run: Run = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class EvalReport:
    """Everything one :func:`run_evaluation` measured, and the settings it ran with."""

    dataset: DatasetInfo
    model: ModelInfo
    hnsw: HnswSettings
    exact: SearchResult
    index: SearchResult
    sweep: tuple[SweepPoint, ...]
    encoding: Encoding
    index_build_s: float
    hybrid: HybridReport | None = None
    """BM25 alone and hybrid search through the product path, when asked for."""

    versions: dict[str, str] = field(default_factory=_versions)
    """Python, the platform and the packages that decide the figures."""

    @property
    def ndcg_at_10_loss(self) -> float:
        """nDCG@10 of exact search minus that of the index (positive: the index lost)."""
        return self.exact.metrics["ndcg@10"] - self.index.metrics["ndcg@10"]

    def to_dict(self) -> dict[str, Any]:
        """Every figure and the run's settings, JSON-ready."""
        data = asdict(self, dict_factory=_json_dict)
        data["hnsw"] = self.hnsw.configuration()["hnsw"]
        data["ndcg@10_loss"] = self.ndcg_at_10_loss
        if self.hybrid is None:
            del data["hybrid"]
        return data

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        """The figures as markdown: heading, exact search against the index, sweep, hybrid."""
        h, d, m = self.hnsw, self.dataset, self.model
        titles = " | ".join(title for _, title in HEADLINE_METRICS)
        lines = [
            f"**{d.name}** ({d.split}): {d.n_queries:,} queries, {d.n_docs:,} docs; model "
            f"`{m.name}` ({m.dimension}-d, {m.similarity}, {m.backend}, documents cut at "
            f"{m.document_max_tokens} tokens); HNSW ef_search={h.ef_search}, "
            f"ef_construction={h.ef_construction}, max_neighbors={h.max_neighbors}",
            "",
            f"| search | {titles} | recall@10 vs exact | ms/query | p95 ms |",
            "|---|" + "---:|" * (len(HEADLINE_METRICS) + 3),
        ]
        for label, r in (("exact", self.exact), (f"index (ef_search={h.ef_search})", self.index)):
            cells = [f"{r.metrics[key]:.4f}" for key, _ in HEADLINE_METRICS]
            cells += [f"{r.recall_at_10_vs_exact:.4f}", f"{r.latency.mean_ms:.3f}"]
            lines.append(f"| {label} | {' | '.join(cells)} | {r.latency.p95_ms:.3f} |")
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
        if (hy := self.hybrid) is not None:
            fusion = "RRF" if hy.fusion == "rrf" else f"weighted, alpha {hy.alpha}"
            lines += ["", f"| retrieval | {titles} |", "|---|" + "---:|" * len(HEADLINE_METRICS)]
            keys = [key for key, _ in HEADLINE_METRICS]
            for label, metrics, shown in (
                ("BM25 (the collection's lexical index)", hy.bm25, keys),
                ("dense, exact", self.exact.metrics, keys),
                (f"hybrid search ({fusion}, k={hy.k}, fetch_k={hy.fetch_k})", hy.hybrid, _AT_10),
            ):
                row = (f"{metrics[key]:.4f}" if key in shown else "-" for key in keys)
                lines.append(f"| {label} | {' | '.join(row)} |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Write a PNG to ``path`` (returned): recall@10 against exact and nDCG@10, by latency.

        Raises:
            ImportError: If matplotlib is not installed.
        """
        require_matplotlib()
        # matplotlib is an optional extra: mypy may run where it is not installed.
        from matplotlib.backends.backend_agg import (  # type: ignore[import-not-found,unused-ignore]
            FigureCanvasAgg,
        )
        from matplotlib.figure import Figure  # type: ignore[import-not-found,unused-ignore]

        points = self.sweep or (self.index.at(self.hnsw.ef_search),)
        exact = self.exact.at(0)
        figure = Figure(figsize=(10, 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        panels = (
            ("recall_at_10_vs_exact", "recall@10 against exact search"),
            ("ndcg_at_10", "nDCG@10"),
        )
        for position, (column, ylabel) in enumerate(panels, start=1):
            axes = figure.add_subplot(1, 2, position)
            xs = [p.latency.mean_ms for p in points]
            ys = [getattr(p, column) for p in points]
            axes.plot(xs, ys, marker="o", label=f"HNSW index, k={points[0].k}")
            for p, x, y in zip(points, xs, ys, strict=True):
                axes.annotate(
                    f"ef={p.ef_search}", (x, y), textcoords="offset points", xytext=(4, 4)
                )
            x, y = exact.latency.mean_ms, getattr(exact, column)
            axes.plot([x], [y], "*", markersize=12, label="exact (numpy)")
            axes.set_xlabel("ms per query (mean)")
            axes.set_ylabel(ylabel)
            axes.grid(visible=True, alpha=0.3)
            axes.legend(loc="best")
        parts = Path(self.model.name).parts  # the last two parts of a path, or the hub name
        model = "/".join(parts[-2:]) if len(parts) > 2 else self.model.name
        title = f"{self.dataset.name} ({self.dataset.split}), {model}: quality against latency"
        figure.suptitle(title)
        out = Path(path)
        figure.savefig(out, format="png", dpi=120)
        return out


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
