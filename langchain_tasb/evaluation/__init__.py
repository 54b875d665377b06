"""BEIR-format loading, trec_eval-exact retrieval metrics and exact dot-product search.

Pure library code: no model, no vector store. The pieces fit together as::

    data = load_beir(find_data_dir("scifact"))
    # ... encode data.doc_texts and data.queries.values() into numpy arrays ...
    idx, scores = exact_top_k(query_vectors, doc_vectors, k=100)
    run = run_from_top_k(list(data.queries), data.doc_ids, idx, scores)
    evaluate(run, data.qrels)  # {"ndcg@10": ..., "recall@100": ..., ...}

Modules: :mod:`langchain_tasb.ingest.beir` (the one BEIR reader, shared with ``tasb index``:
the document text, loading, the corpus hash), :mod:`.metrics` (trec_eval definitions,
documented there), :mod:`.exact` (exact search and recall against it), and ``tasb eval``'s
engine: :mod:`.experiment` (exact search against the Chroma index), :mod:`.cache` (the corpus
embedding cache) and :mod:`.report` (the report, its table and plot). Those last three import
the vector store, so they are not imported here.
"""

from __future__ import annotations

from langchain_tasb.evaluation.exact import exact_top_k, recall_against_exact, run_from_top_k
from langchain_tasb.evaluation.metrics import (
    STANDARD_KS,
    Run,
    evaluate,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from langchain_tasb.ingest.beir import (
    DATA_DIR_ENV,
    BeirDataset,
    CorpusDoc,
    Qrels,
    beir_document_text,
    corpus_hash,
    find_data_dir,
    load_beir,
)

__all__ = [
    "DATA_DIR_ENV",
    "STANDARD_KS",
    "BeirDataset",
    "CorpusDoc",
    "Qrels",
    "Run",
    "beir_document_text",
    "corpus_hash",
    "evaluate",
    "exact_top_k",
    "find_data_dir",
    "load_beir",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_against_exact",
    "recall_at_k",
    "run_from_top_k",
]
