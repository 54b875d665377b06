"""The one BEIR reader: corpus lines, the document text, dataset loading, the corpus hash.

``tasb index corpus.jsonl`` and ``tasb eval`` both read lines with :func:`corpus_doc` and embed
:func:`beir_document_text`, so either embeds a document from the same string.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from langchain_tasb.config import DATA_DIR_ENV_VAR

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

Qrels: TypeAlias = dict[str, dict[str, int]]
"""Query id -> document id -> graded relevance (``> 0`` means relevant)."""

DATA_DIR_ENV = DATA_DIR_ENV_VAR
"""Environment variable naming a folder that holds BEIR dataset folders (``TASB_DATA_DIR``)."""


def beir_document_text(title: str, text: str) -> str:
    """The text embedded for a BEIR record, as BEIR joins it: ``(title + " " + text).strip()``."""
    return (title + " " + text).strip()


@dataclass(frozen=True)
class CorpusDoc:
    """One corpus document as stored in ``corpus.jsonl`` (absent fields empty)."""

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def full_text(self) -> str:
        """The text embedded for this document: :func:`beir_document_text`."""
        return beir_document_text(self.title, self.text)


def corpus_doc(obj: Mapping[str, Any]) -> tuple[str, CorpusDoc]:
    """One ``corpus.jsonl`` object, checked: its id (an integer as decimal text) and document.

    Raises:
        ValueError: If a field has the wrong JSON type (the message names it).
    """
    doc_id, metadata = record_id(obj.get("_id"), "_id"), json_field(obj, "metadata", dict)
    title, text = json_field(obj, "title", str), json_field(obj, "text", str, required=True)
    return doc_id, CorpusDoc(title=title, text=text, metadata=metadata)


def record_id(value: object, name: str) -> str:
    """A record's id from a JSON value: a string, or an integer as its decimal text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f'"{name}" must be a string or an integer, got {json_type(value)}'
        raise ValueError(msg)
    return str(value)


def json_field(obj: Mapping[str, Any], name: str, kind: type[_T], *, required: bool = False) -> _T:
    """``obj[name]`` if a ``kind`` (``str``, ``dict``); empty if absent or null and optional."""
    value = obj.get(name)
    if value is None and not required:
        return kind()
    if not isinstance(value, kind):
        got = "nothing" if name not in obj else json_type(value)
        msg = f'"{name}" must be {json_type(kind())}, got {got}'
        raise ValueError(msg)
    return value


def json_type(value: object) -> str:
    """How JSON names the type of a parsed value: ``a number``, ``an array``, ``null``..."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR-format test collection loaded into memory.

    Attributes:
        name: The dataset folder's name (e.g. ``"scifact"``).
        split: The qrels split that was loaded (e.g. ``"test"``).
        corpus: Document id -> document, in ``corpus.jsonl`` order.
        doc_ids: Document ids in ``corpus.jsonl`` order (parallel to ``doc_texts``).
        doc_texts: :func:`beir_document_text` of each document (may be ``""``).
        queries: Query id -> query text, only the queries in the qrels, in qrels order.
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
    """Find a BEIR dataset folder by name (resolved), or ``None`` when there is none.

    Looks in ``$TASB_DATA_DIR/<name>``, then ``../shared/data/<name>`` from the working
    directory, then from the folder that holds the ``langchain_tasb`` package.

    Raises:
        ValueError: If ``name`` is empty or contains a path separator or ``..``.
    """
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        msg = (
            f"find_data_dir() takes a dataset folder name such as 'scifact', got {name!r}; "
            "pass a path directly to load_beir() instead."
        )
        raise ValueError(msg)
    homes = [Path.cwd().parent, Path(__file__).resolve().parents[3]]  # the latter: repo's parent
    candidates = [home / "shared" / "data" / name for home in homes]
    if env_dir := os.environ.get(DATA_DIR_ENV):
        if not Path(env_dir).expanduser().is_dir():
            logger.warning(
                "%s=%r is not a folder; ignoring it. Point it at a folder of dataset folders.",
                DATA_DIR_ENV,
                env_dir,
            )
        candidates.insert(0, Path(env_dir).expanduser() / name)
    found = next((c.resolve() for c in candidates if c.is_dir()), None)
    logger.debug("Dataset %r: found %s, looked in %s", name, found, [str(c) for c in candidates])
    return found


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        yield from ((n, line) for n, line in enumerate(fh, start=1) if line.strip())


def _read_jsonl(
    path: Path, kind: str, parse: Callable[[dict[str, Any]], tuple[str, _T]]
) -> dict[str, _T]:
    """The lines of ``corpus.jsonl`` or ``queries.jsonl`` read by ``parse``, by unique id."""
    found: dict[str, _T] = {}
    for line_no, line in _lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{path}:{line_no} is not valid JSON ({exc.msg}); fix or remove that line."
            raise ValueError(msg) from exc
        if not isinstance(obj, dict) or "_id" not in obj:
            msg = f"{path}:{line_no} is not an object with an '_id' field, as BEIR lines are."
            raise ValueError(msg)
        try:
            key, value = parse(obj)
        except ValueError as exc:
            msg = f"{path}:{line_no}: {exc}; fix that line."
            raise ValueError(msg) from exc
        if key in found:
            msg = f"{path}:{line_no} repeats {kind} id {key!r}; {kind} ids must be unique."
            raise ValueError(msg)
        found[key] = value
    return found


def _load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    for line_no, line in _lines(path):
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 3:
            msg = (
                f"{path}:{line_no} has {len(fields)} tab-separated fields, expected 3 "
                "(query-id, corpus-id, score)."
            )
            raise ValueError(msg)
        query_id, doc_id, score = fields
        try:
            grade = int(score)
        except ValueError as exc:
            if line_no == 1:  # the "query-id corpus-id score" header
                continue
            msg = (
                f"{path}:{line_no} has relevance score {score!r}; scores must be "
                "integers (graded relevance, 0 = judged non-relevant)."
            )
            raise ValueError(msg) from exc
        qrels.setdefault(query_id, {})[doc_id] = grade  # a repeat keeps the last, as in BEIR
    return qrels


def _query(obj: dict[str, Any]) -> tuple[str, str]:
    text = obj.get("text")
    return str(obj["_id"]), "" if text is None else str(text)


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR-format dataset folder, as BEIR's ``GenericDataLoader`` does.

    The folder holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``. Judged
    documents missing from the corpus and queries without a relevant document are kept, with
    a warning (the latter score 0, as in pytrec_eval).

    Args:
        path: The dataset folder (see :func:`find_data_dir`).
        split: Which ``qrels/<split>.tsv`` to load.

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
    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    for required in (corpus_path, queries_path):
        if not required.is_file():
            msg = f"{str(required)!r} is missing; a BEIR dataset folder needs {required.name}."
            raise FileNotFoundError(msg)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in qrels_path.parent.glob("*.tsv"))
        msg = (
            f"No qrels for split {split!r}: {str(qrels_path)!r} does not exist. "
            f"Available splits in {str(qrels_path.parent)!r}: {available or 'none'}; "
            "pass one of them as split=."
        )
        raise FileNotFoundError(msg)
    corpus = _read_jsonl(corpus_path, "document", corpus_doc)
    all_queries = _read_jsonl(queries_path, "query", _query)
    qrels = _load_qrels(qrels_path)
    if not qrels:
        msg = f"{str(qrels_path)!r} holds no judgments; a split needs at least one qrels row."
        raise ValueError(msg)
    if unknown := [q for q in qrels if q not in all_queries]:
        msg = (
            f"{len(unknown)} query id(s) in {str(qrels_path)!r} are not in "
            f"{str(queries_path)!r} (first: {unknown[:5]}); the qrels and queries "
            "files must come from the same dataset."
        )
        raise ValueError(msg)
    if missing := sorted({d for rels in qrels.values() for d in rels if d not in corpus}):
        logger.warning(
            "%d judged document id(s) in %s are not in the corpus (first: %s); they count as "
            "relevant but can never be retrieved.",
            len(missing),
            qrels_path,
            missing[:5],
        )
    if no_relevant := [q for q, rels in qrels.items() if not any(g > 0 for g in rels.values())]:
        logger.warning(
            "%d query id(s) in %s have no relevant document (first: %s); they score 0 on every "
            "metric, as in pytrec_eval.",
            len(no_relevant),
            qrels_path,
            no_relevant[:5],
        )
    doc_texts = [doc.full_text for doc in corpus.values()]
    if empty := doc_texts.count(""):
        logger.info("%d document(s) in %s have empty title and text.", empty, corpus_path)
    queries = {q: all_queries[q] for q in qrels}
    dataset = BeirDataset(folder.name, split, corpus, list(corpus), doc_texts, queries, qrels)
    counts = (len(corpus), len(qrels), sum(map(len, qrels.values())))
    logger.info("Loaded %s/%s: %d docs, %d queries, %d judgments", folder.name, split, *counts)
    return dataset


def corpus_hash(dataset: BeirDataset) -> str:
    """A stable SHA-256 hex digest of the corpus ids and texts (length-prefixed), in order."""
    digest = hashlib.sha256()
    for doc_id, text in zip(dataset.doc_ids, dataset.doc_texts, strict=True):
        for part in (doc_id, text):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()
