"""Query latency: ``TasbRetriever.invoke`` against HuggingFaceEmbeddings + langchain-chroma.

Both retrievers search the same Chroma collection of 100,000 passages (by default) with a
model of TAS-B's exact shape (and a CLS-pooled twin of TAS-B's cost), in one run on one
machine. The baseline is what users glue together by hand:
``langchain_chroma.Chroma(embedding_function=HuggingFaceEmbeddings(model_name=path),
collection_metadata={"hnsw:space": "ip"}).as_retriever()``. Ours is
``TasbRetriever(vectorstore=TasbVectorStore(...))`` with its default backend and the query
cache off, so every call encodes. A third retriever is ours on an index built with Chroma's
own HNSW settings (or those of ``--other-hnsw``), to show what our recall-safe defaults cost
in search time.

Ours costs TAS-B's price only with a model that pools like TAS-B: the widened MiniLM pools
by mean, so our ONNX graph computes its last layer for every position, where TAS-B's CLS
pooling lets it compute the CLS position alone. The fourth retriever, "ours at TAS-B's
cost", runs the widened model pooled on CLS (:func:`corpus.tasb_cost_model`: TAS-B's shape,
vocabulary, pooling and cost) on every question and gives Chroma the widened model's vector
for that question, computed beforehand, so that the search is the realistic one. The
baseline's cost does not depend on pooling: sentence-transformers computes every position.

The collection (see :mod:`corpus`): real passages from ``../shared/data`` with the vectors of
all-MiniLM-L6-v2 widened to TAS-B's shape, and SciFact's claims as the questions, because
HNSW's cost and recall depend on how real vectors spread. ``--random`` measures the worst
case instead: independent random vectors, the random-weight TAS-B-shaped model and made-up
questions of 8 to 18 tokens (:func:`encode.sample_queries`); it is also what runs when the
datasets are absent.

Each retriever answers a block of queries in a row, in two halves of opposite order (see
:func:`encode.blocks`). Prints p50/p99 end-to-end ``invoke`` latency and the ratios, each
retriever's recall@10 against exact dot-product search with its own query vectors (a fast
search that misses the true neighbours is no bargain), and where the time goes:
``embed_query`` alone and Chroma's ``collection.query`` alone on each collection.

Usage::

    python benchmarks/query.py             # 100,000 passages, 500 queries
    python benchmarks/query.py --quick     # 10,000 passages, 100 queries
    python benchmarks/query.py --random    # random vectors: HNSW's worst case
    python benchmarks/query.py --other-hnsw 24:200:128   # third index: M 24, ef 200/128
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from corpus import passage_vectors, real_passages, real_queries, tasb_cost_model, widened_model
from encode import blocks, cpu_name, model_dir, sample_queries, versions
from langchain_core.embeddings import Embeddings

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.chroma.store import HnswSettings

# Chroma's defaults, which the baseline's collection gets.
CHROMA_HNSW = HnswSettings(ef_search=100, ef_construction=100, max_neighbors=16)


def hnsw_settings(text: str) -> HnswSettings:
    """``max_neighbors:ef_construction:ef_search``, e.g. ``24:200:128``."""
    try:
        neighbors, construction, search = (int(part) for part in text.split(":"))
    except ValueError as exc:
        msg = f"expected MAX_NEIGHBORS:EF_CONSTRUCTION:EF_SEARCH, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from exc
    return HnswSettings(ef_search=search, ef_construction=construction, max_neighbors=neighbors)


def lean_name(settings: HnswSettings) -> str:
    """The third retriever's label: ours on an index of other HNSW settings."""
    if settings == CHROMA_HNSW:
        return "ours, Chroma's HNSW settings"
    return f"ours, HNSW {settings.max_neighbors}/{settings.ef_construction}/{settings.ef_search}"


AT_COST = "ours at TAS-B's cost"
T = TypeVar("T")
R = TypeVar("R")


class TasbCostEmbeddings(Embeddings):
    """Encodes each question with ``cost`` and answers with ``vectors``' vector for it.

    ``table`` holds ``vectors``' query vectors for the benchmark's questions, computed
    beforehand; anything else (the collection's identity probe, calibration) is encoded by
    ``vectors`` alone.
    """

    def __init__(
        self, vectors: TasbEmbeddings, cost: TasbEmbeddings, table: dict[str, list[float]]
    ) -> None:
        self.vectors, self.cost, self.table = vectors, cost, table
        self.similarity = vectors.similarity

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """``vectors``' document vectors."""
        return self.vectors.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        """TAS-B's work for ``text`` on our query path, then ``vectors``' vector for it."""
        self.cost.embed_query(text)
        known = self.table.get(text)
        return list(known) if known is not None else self.vectors.embed_query(text)


def random_vectors(n: int, dim: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, 1.0, size=(n, dim)).astype(np.float32) + 0.5  # TAS-B-like offset
    return [f"document number {i}" for i in range(n)], vectors


def recall_at_10(
    found: list[list[str]], queries: np.ndarray, vectors: np.ndarray, ids: list[str]
) -> float:
    """Mean share of the exact top 10 (by dot product with ``queries``) among ``found``.

    ``ids[i]`` is the id of ``vectors[i]`` in the collection.
    """
    hits = 0
    for got, query in zip(found, queries, strict=True):
        exact = np.argpartition(-(vectors @ query), 10)[:10]
        hits += len({ids[i] for i in exact} & set(got))
    return hits / (10 * len(found))


def timed(fn: Callable[[T], R], items: Sequence[T]) -> tuple[list[R], list[float]]:
    """``fn`` applied to each item in turn: the results and each call's time in ms."""
    results, times = [], []
    for item in items:
        started = time.perf_counter()
        results.append(fn(item))
        times.append((time.perf_counter() - started) * 1000)
    return results, times


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--random", action="store_true", help="random vectors (worst case)")
    parser.add_argument("--vectors", type=int, default=0)
    parser.add_argument("--queries", type=int, default=0)
    parser.add_argument(
        "--other-hnsw",
        type=hnsw_settings,
        default=CHROMA_HNSW,
        metavar="M:EFC:EFS",
        help="max_neighbors:ef_construction:ef_search of the third retriever's index "
        "(default Chroma's, 16:100:100)",
    )
    args = parser.parse_args()
    n = args.vectors or (10_000 if args.quick else 100_000)
    n_queries = args.queries or (100 if args.quick else 500)
    logging.basicConfig(level=logging.WARNING)
    cache = Path(tempfile.gettempdir()) / "langchain-tasb-bench"
    passages = None if args.random else real_passages(n)
    if passages is None:
        if not args.random:
            print("no datasets under ../shared/data or $TASB_DATA_DIR: random vectors instead")
        path = str(model_dir(cache))
        texts, vectors = random_vectors(n, 768)
        qs = sample_queries(n_queries)
    else:
        path = str(widened_model(cache))
        texts, vectors = passages, passage_vectors(passages, cache)
        qs = real_queries(n_queries)
    kind = "random vectors" if passages is None else "real passages, widened MiniLM vectors"
    # The random model already pools like TAS-B; the widened one needs its CLS twin.
    cost_path = None if passages is None else str(tasb_cost_model(cache))
    db = cache / f"query-db-{uuid.uuid4().hex[:6]}"
    try:
        measure(db, path, texts, vectors, qs, kind, cost_path, args.other_hnsw)
    finally:
        shutil.rmtree(db, ignore_errors=True)


def measure(
    db: Path,
    path: str,
    texts: list[str],
    vectors: np.ndarray,
    qs: list[str],
    kind: str,
    cost_path: str | None,
    other_hnsw: HnswSettings,
) -> None:
    """Fill the three collections under ``db``, time the retrievers and print the figures."""
    import chromadb
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings

    n = len(texts)
    ids = [f"doc-{i}" for i in range(n)]
    client = chromadb.PersistentClient(path=str(db))

    ours_emb = TasbEmbeddings(model_name=path, query_cache_size=0)
    store = TasbVectorStore(embedding=ours_emb, collection_name="ours", client=client)
    # Load the twin's sessions now, beside ours and before the collections fill memory: in
    # A/B tests here a session loaded later ran about 5% slower.
    cost_emb = None
    if cost_path is not None:
        cost_emb = TasbEmbeddings(model_name=cost_path, query_cache_size=0)
        cost_emb.embed_query("warm up")
    started = time.perf_counter()
    store.store.upsert(ids, texts, vectors)
    print(f"filled ours with {n} vectors in {time.perf_counter() - started:.0f}s")
    ours = TasbRetriever(vectorstore=store, k=10)
    # The same, on an index built with Chroma's own HNSW settings: our defaults trade search
    # time for recall (benchmarks/RESULTS.md); this row shows what that costs.
    lean = TasbVectorStore(
        embedding=ours_emb,
        collection_name="ours-chroma-hnsw",
        client=client,
        hnsw=other_hnsw,
    )
    lean_label = lean_name(other_hnsw)
    started = time.perf_counter()
    lean.store.upsert(ids, texts, vectors)
    print(f"filled {lean_label} in {time.perf_counter() - started:.0f}s")

    base_emb = HuggingFaceEmbeddings(model_name=path)
    base_store = Chroma(
        collection_name="baseline",
        embedding_function=base_emb,
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

    retrievers = {
        "ours": ours,
        "baseline": baseline,
        lean_label: TasbRetriever(vectorstore=lean, k=10),
    }
    if cost_emb is not None:
        table = {q: ours_emb.embed_query(q) for q in qs}
        at_cost = TasbCostEmbeddings(ours_emb, cost_emb, table)
        same = TasbVectorStore(embedding=at_cost, collection_name="ours", client=client)
        retrievers[AT_COST] = TasbRetriever(vectorstore=same, k=10)
    for q in qs[:5]:  # warm up all (model load, ONNX session, HNSW in memory)
        for retriever in retrievers.values():
            retriever.invoke(q)
    timings: dict[str, list[float]] = {name: [] for name in retrievers}
    found: dict[str, dict[str, list[str]]] = {name: {} for name in retrievers}
    for name, block in blocks(list(retrievers), qs):
        retrievers[name].invoke(block[0])  # settle after the other retriever
        for q in block:
            started = time.perf_counter()
            docs = retrievers[name].invoke(q)
            timings[name].append((time.perf_counter() - started) * 1000)
            if len(docs) != 10:
                msg = f"{name} returned {len(docs)} documents, not 10"
                raise SystemExit(msg)
            found[name][q] = [str(d.id) for d in docs]
    vectors_q, encoding = timed(ours_emb.embed_query, qs)
    cost_encoding = timed(cost_emb.embed_query, qs)[1] if cost_emb is not None else []
    # Chroma alone, on each retriever's collection, with the same ready-made query vectors.
    collections = {
        "ours": store.store.collection,
        "baseline": base_store._collection,
        lean_label: lean.store.collection,
    }

    def search_in(collection: Any) -> Callable[[list[float]], object]:
        include = ["documents", "metadatas", "distances"]
        return lambda v: collection.query(query_embeddings=[v], n_results=10, include=include)

    searching = {name: timed(search_in(c), vectors_q)[1] for name, c in collections.items()}
    searching[AT_COST] = searching["ours"]  # the same collection
    ours_q = np.asarray(vectors_q, dtype=np.float32)
    baseline_q = np.asarray([base_emb.embed_query(q) for q in qs], dtype=np.float32)
    query_vectors = {"ours": ours_q, "baseline": baseline_q, lean_label: ours_q, AT_COST: ours_q}
    recall = {
        name: recall_at_10([found[name][q] for q in qs], query_vectors[name], vectors, ids)
        for name in retrievers
    }
    p50 = {k: statistics.median(v) for k, v in timings.items()}
    p99 = {k: percentile(v, 99) for k, v in timings.items()}
    print(f"\nmachine: {cpu_name()}; {versions()}")
    print(f"collection: {n} {kind}, 768 dims; model {Path(path).name}; {len(qs)} queries; k=10")
    tokens = ours_emb.encoder.tokenizer(qs)["input_ids"]
    print(f"questions: {statistics.mean(map(len, tokens)):.1f} tokens on average")
    print(f"ours backend: {ours_emb.backend} (resolved: {type(ours_emb.encoder).__name__})")
    print(f"ours, embed_query alone: p50 {statistics.median(encoding):.2f} ms")
    if cost_encoding:
        print(
            f"ours, embed_query alone with the CLS-pooled twin (TAS-B's cost): "
            f"p50 {statistics.median(cost_encoding):.2f} ms"
        )
    print(
        "| retriever | p50 ms | p99 ms | p50 speed-up | p99 speed-up | recall@10 vs exact "
        "| Chroma's query p50 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("baseline", "ours", AT_COST, lean_label):
        if name not in retrievers:
            continue
        print(
            f"| {name} | {p50[name]:.2f} | {p99[name]:.2f} | "
            f"{p50['baseline'] / p50[name]:.1f}x | {p99['baseline'] / p99[name]:.1f}x | "
            f"{recall[name]:.3f} | {statistics.median(searching[name]):.2f} |"
        )


if __name__ == "__main__":
    main()
