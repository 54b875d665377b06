"""BEIR-format loading, trec_eval-exact retrieval metrics and exact dot-product search.

Pure library code: no model, no vector store. The pieces fit together as::

    data = load_beir(find_data_dir("scifact"))
    # ... encode data.doc_texts and data.queries.values() into numpy arrays ...
    idx, scores = exact_top_k(query_vectors, doc_vectors, k=100)
    run = run_from_top_k(list(data.queries), data.doc_ids, idx, scores)
    evaluate(run, data.qrels)  # {"ndcg@10": ..., "recall@100": ..., ...}

Metric definitions follow trec_eval 9.x as called by pytrec_eval (and hence by BEIR's
``EvaluateRetrieval.evaluate``), down to the order in which tied scores are ranked. Shared by
:func:`ndcg_at_k`, :func:`recall_at_k`, :func:`mrr_at_k`, :func:`map_at_k` and :func:`evaluate`:

* Ranking: each query's documents are ordered by score descending; equal scores are ordered
  by document id descending (plain string comparison, i.e. trec_eval's ``strcmp`` on UTF-8),
  so of two tied documents ``"b"`` ranks above ``"a"``. Documents absent from the qrels are
  non-relevant. NaN scores are rejected.
* Relevant means grade ``> 0``; negative grades are treated as 0.
* Averaging: the mean is over every query in ``qrels``. A judged query absent from ``run``
  scores 0 (trec_eval ``-c``; BEIR instead averages over the queries present in the run,
  which is the same whenever the run covers all judged queries). Queries of ``run`` that are
  not in ``qrels`` are ignored.
* A query whose judgments are all 0 has no relevant document: it scores 0 on every metric and
  still counts in the mean. That is what pytrec_eval returns for it, and BEIR averages it in.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

Run: TypeAlias = dict[str, dict[str, float]]
"""Query id -> document id -> score (higher is better)."""

Qrels: TypeAlias = dict[str, dict[str, int]]
"""Query id -> document id -> graded relevance (``> 0`` means relevant)."""

DATA_DIR_ENV = "TASB_DATA_DIR"
"""Environment variable naming a folder that holds BEIR dataset folders."""

STANDARD_KS: tuple[int, ...] = (10, 100)
"""Cut-offs always reported by :func:`evaluate` (nDCG@10, Recall@100, MRR@10, MAP@100, ...)."""

_METRIC_NAMES: tuple[str, ...] = ("ndcg", "recall", "mrr", "map")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusDoc:
    """One corpus document as stored in ``corpus.jsonl``.

    Attributes:
        title: The document title (``""`` when absent).
        text: The document body (``""`` when absent).
        metadata: The free-form ``metadata`` object (``{}`` when absent).
    """

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def full_text(self) -> str:
        """Title and body joined the way BEIR encodes them: ``(title + " " + text).strip()``."""
        return (self.title + " " + self.text).strip()


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR-format test collection loaded into memory.

    Attributes:
        name: The dataset folder's name (e.g. ``"scifact"``).
        split: The qrels split that was loaded (e.g. ``"test"``).
        corpus: Document id -> document, in ``corpus.jsonl`` order.
        doc_ids: Document ids in ``corpus.jsonl`` order (parallel to ``doc_texts``).
        doc_texts: ``(title + " " + text).strip()`` per document, as BEIR encodes them. May be
            ``""`` (Cranfield has two empty documents).
        queries: Query id -> query text, restricted to the queries that appear in the qrels
            (as BEIR's ``GenericDataLoader`` does), in qrels order.
        qrels: Query id -> document id -> graded relevance, from ``qrels/<split>.tsv``.
    """

    name: str
    split: str
    corpus: dict[str, CorpusDoc]
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: Qrels


def find_data_dir(name: str) -> Path | None:
    """Find a BEIR dataset folder by name without copying anything.

    Looks, in order, in:

    1. ``$TASB_DATA_DIR/<name>`` (the variable names a folder of dataset folders);
    2. ``../shared/data/<name>`` relative to the current working directory;
    3. ``<repo root>/../shared/data/<name>``, where the repo root is the folder that holds the
       ``langchain_tasb`` package.

    Args:
        name: The dataset folder name, e.g. ``"scifact"``; a plain name, not a path.

    Returns:
        The resolved dataset folder, or ``None`` when no candidate exists (callers such as
        tests should then skip).

    Raises:
        ValueError: If ``name`` is empty or contains a path separator or ``..``.
    """
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        msg = (
            f"find_data_dir() takes a dataset folder name such as 'scifact', got {name!r}; "
            "pass a path directly to load_beir() instead."
        )
        raise ValueError(msg)
    candidates: list[Path] = []
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        env_path = Path(env_dir).expanduser()
        if not env_path.is_dir():
            logger.warning(
                "%s=%r is not a folder; ignoring it. Point it at a folder of dataset folders.",
                DATA_DIR_ENV,
                env_dir,
            )
        candidates.append(env_path / name)
    candidates.append(Path.cwd().parent / "shared" / "data" / name)
    repo_root = Path(__file__).resolve().parents[2]
    candidates.append(repo_root.parent / "shared" / "data" / name)
    for candidate in candidates:
        if candidate.is_dir():
            logger.debug("Found dataset %r at %s", name, candidate)
            return candidate.resolve()
    logger.debug("Dataset %r not found; looked in %s", name, [str(c) for c in candidates])
    return None


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{path}:{line_no} is not valid JSON ({exc.msg}); fix or remove that line."
                raise ValueError(msg) from exc
            if not isinstance(obj, dict) or "_id" not in obj:
                msg = (
                    f"{path}:{line_no} has no '_id' field; every BEIR line is an object like "
                    '{"_id": ..., "text": ...}.'
                )
                raise ValueError(msg)
            yield line_no, obj


def _as_text(value: object) -> str:
    return "" if value is None else str(value)


def _as_metadata(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _load_corpus(path: Path) -> dict[str, CorpusDoc]:
    corpus: dict[str, CorpusDoc] = {}
    for line_no, obj in _read_jsonl(path):
        doc_id = str(obj["_id"])
        if doc_id in corpus:
            msg = f"{path}:{line_no} repeats document id {doc_id!r}; document ids must be unique."
            raise ValueError(msg)
        corpus[doc_id] = CorpusDoc(
            title=_as_text(obj.get("title")),
            text=_as_text(obj.get("text")),
            metadata=_as_metadata(obj.get("metadata")),
        )
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line_no, obj in _read_jsonl(path):
        query_id = str(obj["_id"])
        if query_id in queries:
            msg = f"{path}:{line_no} repeats query id {query_id!r}; query ids must be unique."
            raise ValueError(msg)
        queries[query_id] = _as_text(obj.get("text"))
    return queries


def _load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != 3:
                msg = (
                    f"{path}:{line_no} has {len(fields)} tab-separated fields, expected 3 "
                    "(query-id, corpus-id, score)."
                )
                raise ValueError(msg)
            query_id, doc_id, score_text = fields
            try:
                score = int(score_text)
            except ValueError as exc:
                if line_no == 1:  # the "query-id corpus-id score" header
                    continue
                msg = (
                    f"{path}:{line_no} has relevance score {score_text!r}; scores must be "
                    "integers (graded relevance, 0 = judged non-relevant)."
                )
                raise ValueError(msg) from exc
            # A repeated (query, doc) pair keeps the last grade, as BEIR's loader does.
            qrels.setdefault(query_id, {})[doc_id] = score
    return qrels


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR-format dataset folder.

    The folder holds ``corpus.jsonl`` (``{"_id", "title", "text", "metadata"}`` per line),
    ``queries.jsonl`` (``{"_id", "text", "metadata"}``) and ``qrels/<split>.tsv`` (header
    ``query-id<TAB>corpus-id<TAB>score``, integer grades). As in BEIR's ``GenericDataLoader``,
    ids are strings, a document's text is ``(title + " " + text).strip()``, and ``queries`` keeps
    only the queries that have qrels. Judged documents missing from the corpus and queries
    without any relevant document are kept (the latter score 0 on every metric, as in
    pytrec_eval) and logged as warnings.

    Args:
        path: The dataset folder (see :func:`find_data_dir`).
        split: Which ``qrels/<split>.tsv`` to load.

    Returns:
        The loaded dataset.

    Raises:
        FileNotFoundError: If the folder, one of its files or the requested split is missing.
        ValueError: If a file is malformed, an id repeats, or the qrels name a query that
            ``queries.jsonl`` lacks.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        msg = (
            f"BEIR dataset folder {str(folder)!r} does not exist; pass a folder holding "
            f"corpus.jsonl, queries.jsonl and qrels/, or use find_data_dir(name) "
            f"(which honours ${DATA_DIR_ENV})."
        )
        raise FileNotFoundError(msg)
    corpus_path = folder / "corpus.jsonl"
    queries_path = folder / "queries.jsonl"
    for required in (corpus_path, queries_path):
        if not required.is_file():
            msg = f"{str(required)!r} is missing; a BEIR dataset folder needs {required.name}."
            raise FileNotFoundError(msg)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        qrels_dir = folder / "qrels"
        available = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
        msg = (
            f"No qrels for split {split!r}: {str(qrels_path)!r} does not exist. "
            f"Available splits in {str(qrels_dir)!r}: {available or 'none'}; "
            "pass one of them as split=."
        )
        raise FileNotFoundError(msg)

    corpus = _load_corpus(corpus_path)
    all_queries = _load_queries(queries_path)
    qrels = _load_qrels(qrels_path)
    if not qrels:
        msg = f"{str(qrels_path)!r} holds no judgments; a split needs at least one qrels row."
        raise ValueError(msg)

    unknown_queries = [q for q in qrels if q not in all_queries]
    if unknown_queries:
        msg = (
            f"{len(unknown_queries)} query id(s) in {str(qrels_path)!r} are not in "
            f"{str(queries_path)!r} (first: {unknown_queries[:5]}); the qrels and queries "
            "files must come from the same dataset."
        )
        raise ValueError(msg)
    queries = {q: all_queries[q] for q in qrels}

    missing_docs = sorted({d for rels in qrels.values() for d in rels if d not in corpus})
    if missing_docs:
        logger.warning(
            "%d judged document id(s) in %s are not in the corpus (first: %s); they count as "
            "relevant but can never be retrieved.",
            len(missing_docs),
            qrels_path,
            missing_docs[:5],
        )
    no_relevant = [q for q, rels in qrels.items() if not any(g > 0 for g in rels.values())]
    if no_relevant:
        logger.warning(
            "%d query id(s) in %s have no relevant document (first: %s); they score 0 on every "
            "metric, as in pytrec_eval.",
            len(no_relevant),
            qrels_path,
            no_relevant[:5],
        )

    doc_ids = list(corpus)
    doc_texts = [corpus[d].full_text for d in doc_ids]
    empty = sum(1 for t in doc_texts if not t)
    if empty:
        logger.info("%d document(s) in %s have empty title and text.", empty, corpus_path)
    logger.info(
        "Loaded %s/%s: %d docs, %d queries, %d judgments",
        folder.name,
        split,
        len(doc_ids),
        len(queries),
        sum(len(r) for r in qrels.values()),
    )
    return BeirDataset(
        name=folder.name,
        split=split,
        corpus=corpus,
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        queries=queries,
        qrels=qrels,
    )


def corpus_hash(dataset: BeirDataset) -> str:
    """Return a stable SHA-256 hex digest of the corpus ids and texts, to key an embedding cache.

    The digest covers ``doc_ids`` and ``doc_texts`` in order (each length-prefixed, so no two
    different corpora collide by concatenation). It does not depend on the queries, qrels,
    split or folder location.

    Args:
        dataset: The loaded dataset.

    Returns:
        A 64-character lowercase hex string.
    """
    digest = hashlib.sha256()
    for doc_id, text in zip(dataset.doc_ids, dataset.doc_texts, strict=True):
        for part in (doc_id, text):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _check_k(k: object, what: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        msg = f"{what} must be a positive integer cut-off such as 10, got {k!r}."
        raise ValueError(msg)
    return int(k)


def _rank(doc_scores: Mapping[str, float], depth: int) -> list[str]:
    """Top ``depth`` doc ids, ordered as trec_eval does: score descending, then id descending."""
    for doc_id, score in doc_scores.items():
        if math.isnan(score):
            msg = f"Score of document {doc_id!r} is NaN; every score in a run must be a number."
            raise ValueError(msg)
    top = heapq.nlargest(depth, doc_scores.items(), key=lambda item: (item[1], item[0]))
    return [doc_id for doc_id, _ in top]


def _query_metrics(
    ranked: Sequence[str], rels: Mapping[str, int], ks: Sequence[int]
) -> list[tuple[float, float, float, float]]:
    """(nDCG, Recall, MRR, MAP) at each cut-off in ``ks`` for one query's ranked list."""
    grades = [max(int(rels.get(doc_id, 0)), 0) for doc_id in ranked]
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)
    num_rel = len(ideal)
    out: list[tuple[float, float, float, float]] = []
    for k in ks:
        if num_rel == 0:
            out.append((0.0, 0.0, 0.0, 0.0))
            continue
        dcg = 0.0
        hits = 0
        ap_sum = 0.0
        first_hit = 0
        for i, gain in enumerate(grades[:k]):
            if gain > 0:
                dcg += gain / math.log2(i + 2)
                hits += 1
                ap_sum += hits / (i + 1)
                if first_hit == 0:
                    first_hit = i + 1
        idcg = 0.0
        for i, gain in enumerate(ideal[:k]):
            idcg += gain / math.log2(i + 2)
        out.append(
            (
                dcg / idcg,
                hits / num_rel,
                1.0 / first_hit if first_hit else 0.0,
                ap_sum / num_rel,
            )
        )
    return out


def _mean_metrics(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int],
) -> list[tuple[float, float, float, float]]:
    if not qrels:
        msg = "qrels is empty; metrics are averaged over the judged queries, so give at least one."
        raise ValueError(msg)
    depth = max(ks)
    sums = np.zeros((len(ks), len(_METRIC_NAMES)), dtype=np.float64)
    missing = 0
    for query_id, rels in qrels.items():
        doc_scores = run.get(query_id)
        if doc_scores is None:
            missing += 1
            continue
        per_k = _query_metrics(_rank(doc_scores, depth), rels, ks)
        sums += np.asarray(per_k, dtype=np.float64)
    if missing:
        logger.warning(
            "%d of %d judged queries are missing from the run; they count as 0.",
            missing,
            len(qrels),
        )
    means = sums / len(qrels)
    return [(float(row[0]), float(row[1]), float(row[2]), float(row[3])) for row in means.tolist()]


def ndcg_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean nDCG@k, as trec_eval's ``ndcg_cut.k``.

    DCG@k sums ``grade / log2(rank + 1)`` over the top ``k`` ranks (rank 1 has discount 1). The
    ideal DCG@k uses the query's positive qrels grades sorted descending, truncated at ``k``.
    nDCG = DCG / ideal DCG.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off (``k`` larger than a query's run just uses all of it).

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [_check_k(k)])[0][0]


def recall_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean Recall@k, as trec_eval's ``recall.k``.

    Relevant documents in the top ``k`` divided by the query's total number of relevant
    documents (not by ``min(k, relevant)``).

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off.

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [_check_k(k)])[0][1]


def mrr_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean reciprocal rank at k: ``1 / rank`` of the first relevant document in the top ``k``.

    This is trec_eval's ``recip_rank`` truncated at ``k`` (0 when no relevant document is in
    the top ``k``). BEIR's own ``mrr`` computes the same value except that it breaks score ties
    by the run's insertion order; this function uses trec_eval's tie-break like the others.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off.

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [_check_k(k)])[0][2]


def map_at_k(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean average precision at k, as trec_eval's ``map_cut.k``.

    The sum of precision@rank over the ranks ``<= k`` that hold a relevant document, divided by
    the query's total number of relevant documents (trec_eval's ``num_rel``, not
    ``min(k, num_rel)``), so a query with more than ``k`` relevant documents cannot reach 1.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        k: The cut-off.

    Returns:
        The mean over the queries in ``qrels`` (see the module docstring for ties, missing
        queries and queries without relevant documents), in ``[0, 1]``.

    Raises:
        ValueError: If ``k`` is not a positive integer, ``qrels`` is empty or a score is NaN.
    """
    return _mean_metrics(run, qrels, [_check_k(k)])[0][3]


def evaluate(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Iterable[int] = STANDARD_KS,
) -> dict[str, float]:
    """Compute nDCG, Recall, MRR and MAP at every cut-off, ranking each query only once.

    The cut-offs are ``ks`` plus :data:`STANDARD_KS` (10 and 100), so the standard nDCG@10,
    Recall@100, MRR@10 and MAP@100 are always present. Values are unrounded (BEIR rounds to 5
    decimals). Definitions are those of :func:`ndcg_at_k`, :func:`recall_at_k`,
    :func:`mrr_at_k` and :func:`map_at_k`; BEIR's ``ignore_identical_ids`` is not applied.

    Args:
        run: Query id -> document id -> score (higher is better).
        qrels: Query id -> document id -> graded relevance.
        ks: Extra cut-offs.

    Returns:
        ``{"ndcg@10": ..., "ndcg@100": ..., "recall@10": ..., ..., "map@100": ...}``: metric
        name, ``@``, cut-off; grouped by metric, cut-offs ascending.

    Raises:
        ValueError: If a cut-off is not a positive integer, ``qrels`` is empty or a score is
            NaN.
    """
    all_ks = sorted({_check_k(k, "each of ks") for k in ks} | set(STANDARD_KS))
    means = _mean_metrics(run, qrels, all_ks)
    return {
        f"{name}@{k}": means[i][m]
        for m, name in enumerate(_METRIC_NAMES)
        for i, k in enumerate(all_ks)
    }


# --------------------------------------------------------------------------------------------
# Exact search
# --------------------------------------------------------------------------------------------


def _check_matrix(array: npt.ArrayLike, what: str) -> npt.NDArray[np.floating[Any]]:
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        msg = f"{what} must be a 2-D array (rows, dim), got shape {matrix.shape}."
        raise ValueError(msg)
    if not np.issubdtype(matrix.dtype, np.floating):
        matrix = matrix.astype(np.float32)
    if not np.isfinite(matrix).all():
        msg = f"{what} contains NaN or infinite values; check the encoder output."
        raise ValueError(msg)
    return matrix


def exact_top_k(
    query_vectors: npt.ArrayLike,
    doc_vectors: npt.ArrayLike,
    k: int,
    batch: int = 256,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.floating[Any]]]:
    """Exact maximum-inner-product search: the top ``k`` dot products of each query.

    Queries are scored ``batch`` at a time, so peak memory is ``batch x len(doc_vectors)``
    scores; the top ``k`` of each row is selected with ``np.argpartition`` and only those are
    sorted. Ties are broken by the lower document index (corpus order), deterministically, also
    at the ``k``-th place.

    Args:
        query_vectors: ``(num_queries, dim)`` array.
        doc_vectors: ``(num_docs, dim)`` array.
        k: How many documents to return per query; a ``k`` above ``num_docs`` returns all.
        batch: Queries scored per matrix product.

    Returns:
        ``(indices, scores)``, both ``(num_queries, min(k, num_docs))``, best first: row ``i``
        holds document row indices into ``doc_vectors`` and their dot products with query
        ``i`` (in the inputs' floating dtype).

    Raises:
        ValueError: If an array is not 2-D, the dimensions differ, the corpus is empty, a value
            is not finite, or ``k``/``batch`` is not a positive integer.
    """
    k = _check_k(k)
    batch = _check_k(batch, "batch")
    queries = _check_matrix(query_vectors, "query_vectors")
    docs = _check_matrix(doc_vectors, "doc_vectors")
    if queries.shape[1] != docs.shape[1]:
        msg = (
            f"query_vectors have dimension {queries.shape[1]} but doc_vectors have "
            f"{docs.shape[1]}; encode both with the same model."
        )
        raise ValueError(msg)
    num_docs = docs.shape[0]
    if num_docs == 0:
        msg = "doc_vectors has no rows; encode at least one document before searching."
        raise ValueError(msg)
    dtype = np.result_type(queries.dtype, docs.dtype)
    kk = min(k, num_docs)
    num_queries = queries.shape[0]
    out_idx = np.empty((num_queries, kk), dtype=np.int64)
    out_scores = np.empty((num_queries, kk), dtype=dtype)
    docs_t = docs.T
    for start in range(0, num_queries, batch):
        scores = np.asarray(queries[start : start + batch] @ docs_t, dtype=dtype)
        if kk < num_docs:
            cand = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            cand_scores = np.take_along_axis(scores, cand, axis=1)
            # argpartition picks arbitrarily among documents tied at the k-th score; redo the
            # (rare) rows where it had a choice so the lowest indices win.
            kth = cand_scores.min(axis=1, keepdims=True)
            tied_all = (scores == kth).sum(axis=1)
            tied_kept = (cand_scores == kth).sum(axis=1)
            for row in np.flatnonzero(tied_all > tied_kept):
                above = np.flatnonzero(scores[row] > kth[row, 0])
                at = np.flatnonzero(scores[row] == kth[row, 0])[: kk - above.size]
                cand[row] = np.concatenate([above, at])
                cand_scores[row] = scores[row, cand[row]]
        else:
            cand = np.broadcast_to(np.arange(num_docs, dtype=np.int64), scores.shape)
            cand_scores = scores
        order = np.lexsort((cand, -cand_scores), axis=-1)
        out_idx[start : start + batch] = np.take_along_axis(cand, order, axis=1)
        out_scores[start : start + batch] = np.take_along_axis(cand_scores, order, axis=1)
    return out_idx, out_scores


def run_from_top_k(
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    indices: npt.ArrayLike,
    scores: npt.ArrayLike,
) -> Run:
    """Turn :func:`exact_top_k` output into a run (query id -> document id -> score).

    Args:
        query_ids: One id per row of ``indices``, in the order the queries were encoded.
        doc_ids: One id per document row that ``indices`` refers to.
        indices: ``(num_queries, k)`` document row indices.
        scores: ``(num_queries, k)`` scores, same shape as ``indices``.

    Returns:
        The run, with scores as Python floats.

    Raises:
        ValueError: If shapes disagree, a query id repeats or an index is out of range.
    """
    idx = np.asarray(indices)
    vals = np.asarray(scores)
    if idx.ndim != 2 or idx.shape != vals.shape:
        msg = (
            f"indices {idx.shape} and scores {vals.shape} must be 2-D arrays of the same shape, "
            "as returned by exact_top_k()."
        )
        raise ValueError(msg)
    if len(query_ids) != idx.shape[0]:
        msg = (
            f"Got {len(query_ids)} query ids for {idx.shape[0]} result rows; pass the ids in "
            "the order the queries were encoded."
        )
        raise ValueError(msg)
    if len(set(query_ids)) != len(query_ids):
        msg = "query_ids contains duplicates; each query id must appear once."
        raise ValueError(msg)
    if idx.size and (idx.min() < 0 or idx.max() >= len(doc_ids)):
        msg = (
            f"indices range over [{idx.min()}, {idx.max()}] but there are {len(doc_ids)} "
            "doc ids; pass the doc ids of the corpus that was searched."
        )
        raise ValueError(msg)
    run: Run = {}
    for query_id, row_idx, row_vals in zip(query_ids, idx.tolist(), vals.tolist(), strict=True):
        run[query_id] = {doc_ids[i]: float(v) for i, v in zip(row_idx, row_vals, strict=True)}
    return run


def recall_against_exact(
    approx_ids: Sequence[Sequence[str]],
    exact_ids: Sequence[Sequence[str]],
    k: int = 10,
) -> float:
    """Mean fraction of each query's exact top ``k`` that an approximate search also returned.

    For each query, ``|set(approx[:k]) & set(exact[:k])| / len(exact[:k])``; the mean over
    queries. Lists are best first; only ids are compared (score ties at the ``k``-th place can
    therefore cost a little recall even when the scores agree).

    Args:
        approx_ids: Per query, the approximate (e.g. HNSW) result ids, best first.
        exact_ids: Per query, the exact result ids, best first (same query order).
        k: The cut-off.

    Returns:
        The mean overlap fraction in ``[0, 1]``.

    Raises:
        ValueError: If the lists have different lengths, are empty, ``k`` is not a positive
            integer, or an exact list is empty.
    """
    k = _check_k(k)
    if len(approx_ids) != len(exact_ids):
        msg = (
            f"approx_ids has {len(approx_ids)} queries but exact_ids has {len(exact_ids)}; "
            "pass the same queries in the same order."
        )
        raise ValueError(msg)
    if not exact_ids:
        msg = "No queries given; pass at least one query's results."
        raise ValueError(msg)
    total = 0.0
    for i, (approx, exact) in enumerate(zip(approx_ids, exact_ids, strict=True)):
        truth = set(exact[:k])
        if not truth:
            msg = f"exact_ids[{i}] is empty; exact search returns at least one id per query."
            raise ValueError(msg)
        total += len(truth & set(approx[:k])) / len(truth)
    return total / len(exact_ids)
