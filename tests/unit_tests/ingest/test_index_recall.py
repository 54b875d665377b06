"""The index must agree with exact dot-product search on a real corpus with real weights."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.evaluation import exact_top_k, find_data_dir, load_beir

BUILDS = 3


@pytest.mark.slow
def test_index_top10_recall_against_exact_search_on_scifact(
    minilm_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = find_data_dir("scifact")
    if data_dir is None:
        pytest.skip("../shared/data/scifact is not available (set TASB_DATA_DIR)")
    data = load_beir(data_dir)
    # The CPU default backend's vectors (what users index), and 2.5 times faster to compute
    # than fp32 torch: embedding the 5,183 abstracts is most of this test's time.
    monkeypatch.setenv("TASB_CACHE_DIR", str(onnx_cache))
    emb = TasbEmbeddings(model_name=str(minilm_path), backend="onnx-int8")
    doc_vectors = np.asarray(emb.embed_documents(data.doc_texts), dtype=np.float32)
    queries = list(data.queries.values())
    query_vectors = np.asarray([emb.embed_query(q) for q in queries], dtype=np.float32)
    exact, _ = exact_top_k(query_vectors, doc_vectors, k=10)
    exact_ids = [{data.doc_ids[i] for i in row} for row in exact]

    recalls = []
    for _ in range(BUILDS):  # HNSW graphs differ from build to build
        store = TasbVectorStore(embedding=emb, collection_name=f"recall-{uuid.uuid4().hex[:8]}")
        store.store.upsert(data.doc_ids, data.doc_texts, doc_vectors)
        found = [
            {hit.id for hit in store.search_hits(vector.tolist(), 10)} for vector in query_vectors
        ]
        recall = float(np.mean([len(f & e) / 10 for f, e in zip(found, exact_ids, strict=True)]))
        recalls.append(recall)
        store.client.delete_collection(store.collection_name)
    assert min(recalls) >= 0.99, recalls
