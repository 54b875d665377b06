r"""BM25 over ids and texts: bm25s' Lucene BM25 (``k1=1.5``, ``b=0.75``) and its tokenizer.

Tokens are lower-cased ``\w\w+`` words with English stopwords removed, stemmed by Snowball
English when PyStemmer is installed (``pip install 'langchain-tasb[hybrid]'`` installs both).
:mod:`langchain_tasb.hybrid.lexical` keeps such an index in step with a Chroma collection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from langchain_tasb.evaluation import Run

logger = logging.getLogger(__name__)

_FORMAT = 1
_IDS_FILE = "ids.json"


def _bm25s() -> Any:
    try:
        import bm25s  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        msg = (
            "Hybrid search needs bm25s: pip install 'langchain-tasb[hybrid]' "
            "(or pip install bm25s PyStemmer)."
        )
        raise ImportError(msg) from exc
    return bm25s


@cache
def _stemmer() -> Any:
    try:
        import Stemmer  # type: ignore[import-not-found,unused-ignore]  # PyStemmer
    except ImportError:
        logger.debug("PyStemmer not installed: BM25 tokens are not stemmed")
        return None
    return Stemmer.Stemmer("english")


def tokenizer_settings() -> dict[str, Any]:
    """What decides the tokens and scores; part of an index's recorded state."""
    return {
        "format": _FORMAT,
        "stopwords": "en",
        "stemmer": "english" if _stemmer() is not None else None,
        "method": "lucene",
        "k1": 1.5,
        "b": 0.75,
    }


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """bm25s tokens of each text: lower-cased, English stopwords removed, stemmed if possible."""
    if not texts:
        return []
    tokens: list[list[str]] = _bm25s().tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return tokens


class Bm25Index:
    """A BM25 index over ``(id, text)`` pairs; rows follow the ids in sorted order."""

    def __init__(self, ids: list[str], bm25: Any) -> None:
        self.ids = ids
        self.bm25 = bm25
        self.row_of = {id_: row for row, id_ in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, pages: Iterable[tuple[Sequence[str], Sequence[str]]]) -> Bm25Index:
        """Tokenise ``(ids, texts)`` pages and index them; a repeated id keeps its last text."""
        vocab: dict[str, int] = {}
        rows: dict[str, list[int]] = {}
        for ids, texts in pages:
            for id_, tokens in zip(ids, tokenize(texts), strict=True):
                rows[id_] = [vocab.setdefault(token, len(vocab)) for token in tokens]
        ordered = sorted(rows)
        bm25 = None
        if vocab:
            bm25 = _bm25s().BM25(k1=1.5, b=0.75, method="lucene")
            bm25.index(([rows[i] for i in ordered], vocab), show_progress=False)
        logger.debug("built BM25 over %d records, %d terms", len(ordered), len(vocab))
        return cls(ordered, bm25)

    @classmethod
    def from_texts(cls, ids: Sequence[str], texts: Sequence[str]) -> Bm25Index:
        """Index one list of ids and their texts."""
        return cls.build([(ids, texts)])

    def scores(self, query: str) -> NDArray[np.float32]:
        """The BM25 score of every row for ``query`` (0 where no query term occurs)."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        if self.bm25 is None:
            return out
        token_ids = self.bm25.get_tokens_ids(tokenize([query])[0])
        if not token_ids:
            return out
        return np.asarray(self.bm25.get_scores_from_ids(token_ids), dtype=np.float32)

    def ranked_rows(self, scores: NDArray[np.float32]) -> NDArray[np.int64]:
        """Rows with a positive score, best first (ties in id order)."""
        rows = np.flatnonzero(scores > 0)
        return rows[np.argsort(-scores[rows], kind="stable")]

    def top(self, query: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, score)`` pairs with a positive score."""
        scores = self.scores(query)
        return [(self.ids[r], float(scores[r])) for r in self.ranked_rows(scores)[:k]]

    def save(self, directory: Path) -> None:
        """Write the index into ``directory`` (created)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.bm25 is not None:
            self.bm25.save(str(directory), show_progress=False)
        (directory / _IDS_FILE).write_text(json.dumps(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Bm25Index:
        """Read an index written by :meth:`save`."""
        ids = json.loads((directory / _IDS_FILE).read_text(encoding="utf-8"))
        bm25 = None
        if (directory / "params.index.json").exists():
            bm25 = _bm25s().BM25.load(str(directory), show_progress=False)
            if bm25.scores["num_docs"] != len(ids):
                msg = f"{directory} holds {bm25.scores['num_docs']} BM25 rows for {len(ids)} ids"
                raise ValueError(msg)
        return cls(ids, bm25)


def bm25_run(
    doc_ids: Sequence[str], doc_texts: Sequence[str], queries: Mapping[str, str], k: int = 100
) -> Run:
    """BM25 top ``k`` (positive scores only) for every query: query id -> doc id -> score."""
    index = Bm25Index.from_texts(doc_ids, doc_texts)
    return {qid: dict(index.top(text, k)) for qid, text in queries.items()}
