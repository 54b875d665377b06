"""Query latency: ``TasbRetriever.invoke`` against HuggingFaceEmbeddings + langchain-chroma.

Both retrievers search a Chroma collection of N random 768-dimensional vectors (100,000 by
default) with a TAS-B-shaped model (random weights, TAS-B's exact cost), in one run on one
machine. The baseline is what users glue together by hand:
``langchain_chroma.Chroma(embedding_function=HuggingFaceEmbeddings(model_name=path),
collection_metadata={"hnsw:space": "ip"}).as_retriever()``. Ours is
``TasbRetriever(vectorstore=TasbVectorStore(...))`` with its default backend and the query
cache off, so every call encodes. The questions are 8 to 18 tokens long, as real questions are
with TAS-B's vocabulary (see :func:`encode.sample_queries`). Each retriever answers a block of
queries in a row, in two halves of opposite order (see :func:`encode.blocks`). A third
retriever is ours on an index built with Chroma's own HNSW settings, to show what our
recall-safe defaults cost in search time. Prints p50/p99 end-to-end ``invoke`` latency and the
ratios, with where the time goes: ``embed_query`` alone and Chroma's ``collection.query`` alone
on each collection, with the same query vectors.

Usage::

    python benchmarks/query.py             # 100,000 vectors, 500 queries
    python benchmarks/query.py --quick     # 10,000 vectors, 100 queries
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from encode import blocks, cpu_name, model_dir, sample_queries, versions

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.store import HnswSettings

# Chroma's defaults, which the baseline's collection gets.
CHROMA_HNSW = HnswSettings(ef_search=100, ef_construction=100, max_neighbors=16)
LEAN = "ours, Chroma's HNSW settings"


def fill(n: int, dim: int, seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, 1.0, size=(n, dim)).astype(np.float32) + 0.5  # TAS-B-like offset
    ids = [f"doc-{i}" for i in range(n)]
    texts = [f"document number {i}" for i in range(n)]
    return ids, texts, vectors


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--vectors", type=int, default=0)
    parser.add_argument("--queries", type=int, default=0)
    args = parser.parse_args()
    n = args.vectors or (10_000 if args.quick else 100_000)
    n_queries = args.queries or (100 if args.quick else 500)
    logging.basicConfig(level=logging.WARNING)

    import chromadb
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings

    cache = Path(tempfile.gettempdir()) / "langchain-tasb-bench"
    path = str(model_dir(cache))
    ids, texts, vectors = fill(n, 768)
    client = chromadb.PersistentClient(path=str(cache / f"query-db-{uuid.uuid4().hex[:6]}"))

    ours_emb = TasbEmbeddings(model_name=path, query_cache_size=0)
    store = TasbVectorStore(embedding=ours_emb, collection_name="ours", client=client)
    started = time.perf_counter()
    store.store.upsert(ids, texts, vectors)
    print(f"filled ours with {n} vectors in {time.perf_counter() - started:.0f}s")
    ours = TasbRetriever(vectorstore=store, k=10)
    # The same, on an index built with Chroma's own HNSW settings: our defaults trade search
    # time for recall (benchmarks/RESULTS_quality.md); this row shows what that costs.
    lean = TasbVectorStore(
        embedding=ours_emb,
        collection_name="ours-chroma-hnsw",
        client=client,
        hnsw=CHROMA_HNSW,
    )
    started = time.perf_counter()
    lean.store.upsert(ids, texts, vectors)
    print(f"filled ours with Chroma's HNSW settings in {time.perf_counter() - started:.0f}s")

    base_store = Chroma(
        collection_name="baseline",
        embedding_function=HuggingFaceEmbeddings(model_name=path),
        client=client,
        collection_metadata={"hnsw:space": "ip"},
    )
    started = time.perf_counter()
    step = client.get_max_batch_size()
    for start in range(0, n, step):
        base_store._collection.upsert(
            ids=ids[start : start + step],
            embeddings=vectors[start : start + step],
            documents=texts[start : start + step],
        )
    print(f"filled baseline with {n} vectors in {time.perf_counter() - started:.0f}s")
    baseline = base_store.as_retriever(search_kwargs={"k": 10})

    qs = sample_queries(n_queries)
    retrievers = {
        "ours": ours,
        "baseline": baseline,
        LEAN: TasbRetriever(vectorstore=lean, k=10),
    }
    for q in qs[:5]:  # warm up all (model load, ONNX session, HNSW in memory)
        for retriever in retrievers.values():
            retriever.invoke(q)
    timings: dict[str, list[float]] = {name: [] for name in retrievers}
    for name, block in blocks(list(retrievers), qs):
        retrievers[name].invoke(block[0])  # settle after the other retriever
        for q in block:
            started = time.perf_counter()
            docs = retrievers[name].invoke(q)
            timings[name].append((time.perf_counter() - started) * 1000)
            if len(docs) != 10:
                msg = f"{name} returned {len(docs)} documents, not 10"
                raise SystemExit(msg)
    encoding, vectors_q = [], []
    for q in qs:
        started = time.perf_counter()
        vectors_q.append(ours_emb.embed_query(q))
        encoding.append((time.perf_counter() - started) * 1000)
    # Chroma alone, on each retriever's collection, with the same ready-made query vectors.
    collections = {
        "ours": store.store.collection,
        "baseline": base_store._collection,
        LEAN: lean.store.collection,
    }
    searching: dict[str, list[float]] = {name: [] for name in collections}
    for name, collection in collections.items():
        for vector in vectors_q:
            started = time.perf_counter()
            collection.query(
                query_embeddings=[vector],
                n_results=10,
                include=["documents", "metadatas", "distances"],
            )
            searching[name].append((time.perf_counter() - started) * 1000)
    p50 = {k: statistics.median(v) for k, v in timings.items()}
    p99 = {k: percentile(v, 99) for k, v in timings.items()}
    print(f"\nmachine: {cpu_name()}; {versions()}")
    print(f"collection: {n} vectors of 768 dims; {n_queries} queries; k=10")
    print(f"ours backend: {ours_emb.backend} (resolved: {type(ours_emb.encoder).__name__})")
    print(f"ours, embed_query alone: p50 {statistics.median(encoding):.2f} ms")
    print("| retriever | p50 ms | p99 ms | p50 speed-up | p99 speed-up | Chroma's query p50 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("baseline", "ours", LEAN):
        print(
            f"| {name} | {p50[name]:.2f} | {p99[name]:.2f} | "
            f"{p50['baseline'] / p50[name]:.1f}x | {p99['baseline'] / p99[name]:.1f}x | "
            f"{statistics.median(searching[name]):.2f} |"
        )


if __name__ == "__main__":
    main()
