"""Retrieval experiments on BEIR-format data: exact search, the Chroma index, BM25 and hybrid.

Exact and index search use the same vectors; the index also reports recall against exact
search. A sweep over ``ef_search`` uses ``k = 10``: hnswlib explores ``max(ef_search, k)``
candidates, so a larger ``k`` would hide small ``ef_search`` values.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.chroma.client import close_client, drop_collection, persistent_client
from langchain_tasb.chroma.store import HnswSettings
from langchain_tasb.collection import Connection, TasbCollection
from langchain_tasb.evaluation.cache import backend_label, cached_corpus_vectors
from langchain_tasb.evaluation.metrics import (
    Run,
    evaluate,
    exact_top_k,
    recall_against_exact,
    run_from_top_k,
)
from langchain_tasb.evaluation.report import (
    SWEEP_K,
    DatasetInfo,
    Encoding,
    EvalReport,
    HybridReport,
    Latency,
    ModelInfo,
    SearchResult,
    SweepPoint,
)
from langchain_tasb.hybrid import DEFAULT_RRF_K, fuse_runs
from langchain_tasb.hybrid.bm25 import bm25_run
from langchain_tasb.hybrid.lexical import lexical_index
from langchain_tasb.ingest.beir import BeirDataset, corpus_hash
from langchain_tasb.search import SearchSettings, search

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from numpy.typing import NDArray

    from langchain_tasb.encoding.model import TasbModel

logger = logging.getLogger(__name__)

SEARCH_K = 100
"""Documents retrieved per query for the metrics (Recall@100 and MAP@100 need 100)."""
HYBRID_K = 10
"""Results asked of each hybrid search: nDCG@10 and MRR@10 are the figures that apply."""

BM25_K = 100
"""Depth of the BM25-alone run."""


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
    collection: TasbCollection,
    query_vectors: NDArray[np.float32],
    k: int,
    dataset: BeirDataset,
    exact_ids: list[list[str]],
) -> SearchResult:
    """Search once per query, as every skin does, timing each; how the run scored."""
    settings = SearchSettings(k=k)
    collection.search(settings, vector=query_vectors[0].tolist())  # warm-up, not timed
    run: Run = {}
    times: list[float] = []
    for query_id, vector in zip(dataset.queries, query_vectors, strict=True):
        start = time.perf_counter()
        hits = collection.search(settings, vector=vector.tolist())
        times.append(time.perf_counter() - start)
        run[query_id] = {hit.id: hit.score for hit in hits}
    recall = recall_against_exact([list(ids) for ids in run.values()], exact_ids, k=SWEEP_K)
    latency = Latency.from_seconds(times)
    return SearchResult(evaluate(run, dataset.qrels), recall, latency, k, run)


def run_evaluation(
    dataset: BeirDataset,
    embeddings: TasbModel,
    *,
    hnsw: HnswSettings | None = None,
    ef_search_sweep: Sequence[int] = (),
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    client: Any = None,
    progress: bool = False,
    hybrid: SearchSettings | None = None,
) -> EvalReport:
    """Evaluate exact search and the Chroma HNSW index on a BEIR dataset, on the same vectors.

    ``ef_search_sweep`` re-measures the index at each value (k = 10), in order; a sweep reopens
    the index, so it needs ``client=None`` (a ``PersistentClient`` in a temporary folder).
    ``hybrid`` also scores ``search(..., "hybrid")`` with those settings, and BM25 alone
    (``report.hybrid``). ``cache_dir`` and ``use_cache`` are :func:`.cached_corpus_vectors`'s.

    Raises:
        ValueError: If a sweep value is not a positive integer, a sweep is asked for with a
            given ``client``, or the dataset has no documents.
    """
    for value in ef_search_sweep:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"ef_search_sweep values must be positive integers such as 64, got {value!r}."
            raise ValueError(msg)
    sweep = tuple(dict.fromkeys(ef_search_sweep))
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
    query_ms = (time.perf_counter() - start) * 1000.0 / max(len(query_ids), 1)
    cached = None if cache_path is None else str(cache_path)
    encoding = Encoding(cached, cache_hit, encode_docs_s, query_ms)

    k = min(SEARCH_K, len(dataset.doc_ids))
    indices, scores = exact_top_k(query_vectors, doc_vectors, k)
    exact_run = run_from_top_k(query_ids, dataset.doc_ids, indices, scores)
    exact_ids = [[dataset.doc_ids[i] for i in row] for row in indices.tolist()]
    exact_latency = Latency.from_seconds(_exact_latencies(query_vectors, doc_vectors, k))
    exact = SearchResult(evaluate(exact_run, dataset.qrels), 1.0, exact_latency, k, exact_run)
    logger.info("exact search: nDCG@10 %.4f", exact.metrics["ndcg@10"])

    name = f"tasb-eval-{uuid.uuid4().hex[:12]}"
    tmp = tempfile.TemporaryDirectory(prefix="tasb-eval-")  # the index, unless client is given
    active = client if client is not None else persistent_client(tmp.name, telemetry=False)

    def open_index(client: Any, hnsw: HnswSettings) -> TasbCollection:
        return TasbCollection(embeddings, name, connection=Connection(client=client), hnsw=hnsw)

    try:
        if progress:
            print(f"building the index ({len(dataset.doc_ids):,} docs)", file=sys.stderr)
        store = open_index(active, settings)
        start = time.perf_counter()
        store.store.upsert(dataset.doc_ids, dataset.doc_texts, doc_vectors)
        build_s = time.perf_counter() - start
        index = _index_search(store, query_vectors, k, dataset, exact_ids)
        logger.info("index search: nDCG@10 %.4f", index.metrics["ndcg@10"])
        fused = None
        if hybrid is not None:
            if progress:
                print("hybrid search through the collection's lexical index", file=sys.stderr)
            fused = evaluate_product_hybrid(store, dataset, query_vectors, hybrid)
        points: list[SweepPoint] = []
        for ef_search in sweep:
            if progress:
                print(f"sweep: ef_search={ef_search}", file=sys.stderr)
            # The loaded index keeps the ef_search it was loaded with: close the client so
            # that reopening loads it again, and set ef_search before the first query.
            close_client(active)  # raises RuntimeError when chromadb cannot close
            active = persistent_client(tmp.name, telemetry=False)
            reopened = open_index(active, replace(settings, ef_search=ef_search))
            kk = min(SWEEP_K, k)
            result = _index_search(reopened, query_vectors, kk, dataset, exact_ids)
            points.append(result.at(ef_search))
    finally:
        if client is None:
            close_client(active)
        else:
            try:
                drop_collection(active, name)
            except Exception as exc:  # cleanup must not hide the error that got us here
                logger.warning("Could not delete evaluation collection %r: %s", name, exc)
        tmp.cleanup()

    d, e = dataset, embeddings
    judged = sum(len(rels) for rels in d.qrels.values())
    data = DatasetInfo(d.name, d.split, len(d.doc_ids), len(query_ids), judged, corpus_hash(d))
    limits = (e.document_max_tokens, e.query_max_tokens)
    model = ModelInfo(e.model_name, e.dimension, e.similarity, backend_label(e), *limits)
    return EvalReport(data, model, settings, exact, index, tuple(points), encoding, build_s, fused)


def evaluate_product_hybrid(
    store: TasbCollection,
    dataset: BeirDataset,
    query_vectors: NDArray[np.float32],
    settings: SearchSettings,
) -> HybridReport:
    """Run every query through hybrid search on ``store`` (which holds the corpus) and score it.

    ``query_vectors`` are in ``dataset.queries``' order; ``settings.search_type`` is "hybrid".
    BM25 alone is the top :data:`BM25_K` of the collection's lexical index.
    """
    if settings.search_type != "hybrid":
        msg = f"settings.search_type must be 'hybrid', got {settings.search_type!r}"
        raise ValueError(msg)
    index = lexical_index(store)
    index.refresh()
    hybrid_run: Run = {}
    lexical_run: Run = {}
    for (qid, text), vector in zip(dataset.queries.items(), query_vectors, strict=True):
        hits = search(store, settings, query=text, vector=np.asarray(vector).tolist())
        # Fused scores can tie; ranks decide, so scores fall with the rank.
        hybrid_run[qid] = {hit.id: float(len(hits) - rank) for rank, hit in enumerate(hits)}
        lexical_run[qid] = dict(index.search(text, k=BM25_K))
    s = settings
    return _scored(dataset, s.k, s.candidates, s.fusion, s.alpha, lexical_run, hybrid_run)


def evaluate_hybrid(
    dataset: BeirDataset,
    dense_run: Run,
    *,
    fusion: str = "rrf",
    alpha: float = 0.5,
    rrf_k: int = DEFAULT_RRF_K,
    k: int = 100,
    lexical_run: Run | None = None,
) -> HybridReport:
    """Score BM25 and BM25 fused with ``dense_run`` (e.g. ``EvalReport.exact.run``).

    ``fusion`` is "rrf" or "weighted" (``alpha``: the dense weight); ``k`` is the depth of the
    BM25 run and of the fused run; a ``lexical_run`` computed before saves re-indexing.
    """
    if lexical_run is None:
        lexical_run = bm25_run(dataset.doc_ids, dataset.doc_texts, dataset.queries, k)
    fused = fuse_runs(dense_run, lexical_run, fusion=fusion, alpha=alpha, rrf_k=rrf_k, k=k)
    return _scored(dataset, k, k, fusion, alpha, lexical_run, fused)


def _scored(
    dataset: BeirDataset, k: int, fetch_k: int, fusion: str, alpha: float, lexical: Run, fused: Run
) -> HybridReport:
    bm25, hybrid = evaluate(lexical, dataset.qrels), evaluate(fused, dataset.qrels)
    return HybridReport(k, fetch_k, fusion, alpha, bm25, hybrid, lexical, fused)
