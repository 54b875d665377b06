"""Query latency: ``TasbRetriever.invoke`` against HuggingFaceEmbeddings + langchain-chroma.

Both retrievers search a Chroma collection of N random 768-dimensional vectors (100,000 by
default) with a TAS-B-shaped model (random weights, TAS-B's exact cost), in one run on one
machine. The baseline is what users glue together by hand:
``langchain_chroma.Chroma(embedding_function=HuggingFaceEmbeddings(model_name=path),
collection_metadata={"hnsw:space": "ip"}).as_retriever()``. Ours is
``TasbRetriever(vectorstore=TasbVectorStore(...))`` with its default backend and the query
cache off, so every call encodes. Queries alternate between the two retrievers, so a change
in machine load hits both alike. Prints p50/p99 end-to-end ``invoke`` latency and the ratio.

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
from encode import cpu_name, model_dir, versions

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.evaluation import find_data_dir, load_beir


def queries(n: int) -> list[str]:
    data_dir = find_data_dir("scifact")
    if data_dir is not None:
        texts = list(load_beir(data_dir, split="train").queries.values())
    else:
        texts = [f"what is the effect of treatment number {i} on the disease" for i in range(n)]
    return (texts * (n // len(texts) + 1))[:n]


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

    qs = queries(n_queries)
    for q in qs[:5]:  # warm up both (model load, ONNX session, HNSW in memory)
        ours.invoke(q)
        baseline.invoke(q)
    timings: dict[str, list[float]] = {"ours": [], "baseline": []}
    for q in qs:
        for name, retriever in (("ours", ours), ("baseline", baseline)):
            started = time.perf_counter()
            docs = retriever.invoke(q)
            timings[name].append((time.perf_counter() - started) * 1000)
            if len(docs) != 10:
                msg = f"{name} returned {len(docs)} documents, not 10"
                raise SystemExit(msg)
    p50 = {k: statistics.median(v) for k, v in timings.items()}
    p99 = {k: percentile(v, 99) for k, v in timings.items()}
    print(f"\nmachine: {cpu_name()}; {versions()}")
    print(f"collection: {n} vectors of 768 dims; {n_queries} queries; k=10")
    print(f"ours backend: {ours_emb.backend} (resolved: {type(ours_emb.encoder).__name__})")
    print("| retriever | p50 ms | p99 ms |")
    print("|---|---|---|")
    for name in ("baseline", "ours"):
        print(f"| {name} | {p50[name]:.2f} | {p99[name]:.2f} |")
    print(
        f"p50 speed-up: {p50['baseline'] / p50['ours']:.1f}x; "
        f"p99 speed-up: {p99['baseline'] / p99['ours']:.1f}x"
    )


if __name__ == "__main__":
    main()
