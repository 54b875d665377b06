"""What ``tasb eval`` reports: per-search figures, the report, its markdown table and plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tasb.chroma.store import HnswSettings
    from langchain_tasb.evaluation.metrics import Run
    from langchain_tasb.evaluation.product import HybridReport

SWEEP_K = 10
"""Documents retrieved per query in an ``ef_search`` sweep (a larger ``k`` hides small ones)."""

HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("ndcg@10", "nDCG@10"),
    ("recall@100", "Recall@100"),
    ("mrr@10", "MRR@10"),
    ("map@100", "MAP@100"),
)
"""The metrics of the report's table, as (key in ``metrics``, column title)."""


_JSON_KEYS = {"recall_at_10_vs_exact": "recall@10_vs_exact", "ndcg_at_10": "ndcg@10"}


def _to_dict(figures: SearchResult | SweepPoint) -> dict[str, Any]:
    return {_JSON_KEYS.get(key, key): value for key, value in asdict(figures).items()}


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
    """How one search (exact or index) did on every judged query.

    Attributes:
        metrics: :func:`~langchain_tasb.evaluation.evaluate` output.
        recall_at_10_vs_exact: Mean share of each query's exact top 10 this search returned.
        latency: Per-query search time.
        k: Documents retrieved per query.
    """

    metrics: dict[str, float]
    recall_at_10_vs_exact: float
    latency: Latency
    k: int

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
class EvalReport:
    """Everything one :func:`run_evaluation` measured, and the settings it ran with.

    ``exact_run`` and ``index_run`` hold the rankings; they are not part of :meth:`to_dict`.
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
    hybrid: HybridReport | None = None
    """BM25 alone and hybrid search through the product path, when asked for."""

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
            "hnsw": self.hnsw.configuration()["hnsw"],
            "exact": _to_dict(self.exact),
            "index": _to_dict(self.index),
            "ndcg@10_loss": self.ndcg_at_10_loss,
            "sweep": [_to_dict(point) for point in self.sweep],
            "encoding": {
                "cache_path": self.cache_path,
                "cache_hit": self.cache_hit,
                "docs_s": self.encode_docs_s,
                "query_ms": self.encode_query_ms,
            },
            "index_build_s": self.index_build_s,
            "versions": dict(self.versions),
            **({"hybrid": self.hybrid.to_dict()} if self.hybrid is not None else {}),
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
            axes.plot(
                [exact.latency.mean_ms],
                [getattr(exact, column)],
                marker="*",
                markersize=12,
                linestyle="none",
                label="exact (numpy)",
            )
            axes.set_xlabel("ms per query (mean)")
            axes.set_ylabel(ylabel)
            axes.grid(visible=True, alpha=0.3)
            axes.legend(loc="best")
        parts = Path(self.model_name).parts  # the last two parts of a path, or the hub name
        model = "/".join(parts[-2:]) if len(parts) > 2 else self.model_name
        figure.suptitle(f"{self.dataset} ({self.split}), {model}: quality against latency")
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
