"""BEIR-format loading, trec_eval-exact retrieval metrics and exact dot-product search.

Pure library code: no model, no vector store. ``tasb eval``'s engine (:mod:`.experiment`,
:mod:`.cache`, :mod:`.report`) imports the vector store, so it is not imported here.
"""

from __future__ import annotations

from langchain_tasb.evaluation.metrics import (
    STANDARD_KS,
    Run,
    evaluate,
    exact_top_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    recall_against_exact,
    recall_at_k,
    run_from_top_k,
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
