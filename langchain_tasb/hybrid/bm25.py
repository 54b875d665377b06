r"""BM25 over ids and texts on `tantivy <https://github.com/quickwit-oss/tantivy-py>`_.

Tantivy's BM25 has ``k1=1.2`` fixed, so its best :data:`RESCORE_DEPTH` candidates are scored
again with ``k1=1.5``, ``b=0.75`` from their stored analyzed terms.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_tasb.evaluation import Run

_FORMAT = 4
K1 = 1.5
B = 0.75
RESCORE_DEPTH = 100
"""Candidates tantivy proposes for each search, scored again with :data:`K1`."""
_ANALYZER = "tasb_en"
_WRITER_HEAP = 50_000_000  # bytes of indexing buffer: tantivy's floor is 15 MB a thread


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError as exc:
        msg = "Hybrid search needs tantivy: pip install 'langchain-tasb[hybrid]' (or tantivy)."
        raise ImportError(msg) from exc
    return tantivy


_WORD_PATTERN = r"\w\w+"


@cache
def _analyzer() -> Any:
    t = _tantivy()
    return (
        t.TextAnalyzerBuilder(t.Tokenizer.regex(_WORD_PATTERN))
        .filter(t.Filter.remove_long(40))
        .filter(t.Filter.lowercase())
        .filter(t.Filter.stopword("english"))
        .filter(t.Filter.stemmer("english"))
        .build()
    )


@cache
def _schema() -> Any:
    builder = _tantivy().SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("text", tokenizer_name=_ANALYZER, index_option="freq")
    # The analyzed tokens, stored for rescoring: " t1  t2  ... " (two spaces between, so that
    # str.count(" t ") counts every occurrence).
    builder.add_bytes_field("terms", stored=True, indexed=False)
    return builder.build()


def tokenizer_settings() -> dict[str, Any]:
    """What decides the tokens and scores; an index built with other settings is rebuilt."""
    return {
        "format": _FORMAT,
        "engine": "tantivy",
        "tokenizer": _WORD_PATTERN,
        "remove_long": 40,
        "stopwords": "english",
        "stemmer": "english",
        "k1": K1,
        "b": B,
        "rescore_depth": RESCORE_DEPTH,
    }


def _document(id_: str, text: str) -> Any:
    terms = " " + "  ".join(_analyzer().analyze(text)) + " "
    return _tantivy().Document(id=id_, text=text, terms=terms.encode())


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """The index's tokens of each text: lower-cased, stopwords removed, stemmed."""
    analyzer = _analyzer()
    return [list(analyzer.analyze(text)) for text in texts]


class Bm25Index:
    """A BM25 index of ``(id, text)`` records, in a folder or in memory, updated in place.

    One writer at a time per folder; readers see the last commit after :meth:`reload`.
    """

    def __init__(self, directory: Path | None = None) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        path = None if directory is None else str(directory)
        self._index = _tantivy().Index(_schema(), path=path)
        self._index.register_tokenizer(_ANALYZER, _analyzer())
        self.directory = directory

    def __len__(self) -> int:
        return int(self._index.searcher().num_docs)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        """A writer committed (and seen by this index) at the end, rolled back on an error."""
        writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        try:
            yield writer
        except BaseException:
            writer.rollback()
            writer.wait_merging_threads()  # releases the folder's writer lock
            raise
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()

    def apply(self, upserts: Iterable[tuple[str, str]] = (), deletes: Iterable[str] = ()) -> None:
        """Replace or add each ``(id, text)`` of ``upserts``, remove ``deletes``; one commit."""
        with self._writing() as writer:
            for id_ in deletes:
                writer.delete_documents_by_term("id", id_)
            for id_, text in upserts:
                writer.delete_documents_by_term("id", id_)
                writer.add_document(_document(id_, text))

    def replace_all(self, pages: Iterable[tuple[Sequence[str], Sequence[str]]]) -> int:
        """Drop every record, index ``(ids, texts)`` pages in one commit; return how many ids.

        A repeated id counts once, its last text kept.
        """
        seen: set[str] = set()
        with self._writing() as writer:
            writer.delete_all_documents()
            for ids, texts in pages:
                for id_, text in zip(ids, texts, strict=True):
                    if id_ in seen:
                        writer.delete_documents_by_term("id", id_)
                    seen.add(id_)
                    writer.add_document(_document(id_, text or ""))
        return len(seen)

    def reload(self) -> None:
        """See the last commit, by this or another process."""
        self._index.reload()

    def _query(self, query: str) -> tuple[Any, Counter[str]]:
        t = _tantivy()
        counts = Counter(_analyzer().analyze(query))
        if not counts:
            return None, counts
        # A boost of 1 leaves a score as it is; tantivy's scores only pick the candidates.
        terms = ((t.Query.term_query(_schema(), "text", tok), n) for tok, n in counts.items())
        clauses = [(t.Occur.Should, t.Query.boost_query(term, n)) for term, n in terms]
        return t.Query.boolean_query(clauses), counts

    def _rescored(
        self, searcher: Any, parsed: Any, counts: Counter[str], hits: list[tuple[Any, Any]]
    ) -> list[tuple[str, float]]:
        """``hits`` (tantivy's score, address) scored with :data:`K1`, best first."""
        if not hits:
            return []
        avgdl = _average_length(parsed.explain(searcher, hits[0][1]).to_json())
        total = searcher.num_docs
        idf = {
            term: math.log(1 + (total - n + 0.5) / (n + 0.5))
            for term in counts
            if (n := searcher.doc_freq("text", term))
        }
        scored = []
        for _, address in hits:
            doc = searcher.doc(address)
            terms = bytes(doc["terms"][0]).decode()
            norm = K1 * (1 - B + B * (terms.count("  ") + 1 if terms.strip() else 0) / avgdl)
            tfs = {term: terms.count(f" {term} ") for term in idf}
            score = sum(counts[term] * idf[term] * tf / (tf + norm) for term, tf in tfs.items())
            scored.append((str(doc["id"][0]), float(score)))
        return sorted(scored, key=lambda hit: -hit[1])

    def top(self, query: str, k: int, *, offset: int = 0) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, score)`` pairs after ``offset``; only records with a query term."""
        parsed, counts = self._query(query)
        if parsed is None or k <= 0:
            return []
        searcher = self._index.searcher()
        depth = max(offset + k, RESCORE_DEPTH)
        hits = searcher.search(parsed, limit=depth, count=False).hits
        return self._rescored(searcher, parsed, counts, hits)[offset : offset + k]

    def scores_of(self, query: str, ids: Sequence[str]) -> dict[str, float]:
        """BM25 scores of ``ids`` for ``query``; absent where the record has no query term."""
        parsed, counts = self._query(query)
        if parsed is None or not ids:
            return {}
        t = _tantivy()
        only = t.Query.const_score_query(t.Query.term_set_query(_schema(), "id", list(ids)), 0.0)
        restricted = t.Query.boolean_query([(t.Occur.Must, parsed), (t.Occur.Must, only)])
        searcher = self._index.searcher()
        hits = searcher.search(restricted, limit=len(ids), count=False).hits
        return dict(self._rescored(searcher, parsed, counts, hits))

    def ids(self) -> set[str]:
        """Every indexed id (a walk over the whole index: for checks, not for queries)."""
        t = _tantivy()
        searcher = self._index.searcher()
        total = searcher.num_docs
        if not total:
            return set()
        hits = searcher.search(t.Query.all_query(), limit=total, count=False).hits
        return {str(searcher.doc(address)["id"][0]) for _, address in hits}

    @classmethod
    def from_texts(cls, ids: Sequence[str], texts: Sequence[str]) -> Bm25Index:
        """An in-memory index of one list of ids and their texts."""
        index = cls()
        index.replace_all([(ids, texts)])
        return index


def _average_length(explanation: str) -> float:
    """The average field length tantivy's BM25 used, read from one hit's explanation."""
    found = re.search(r'"value":\s*([0-9.eE+-]+),\s*"description":\s*"avgdl', explanation)
    if found is None:  # pragma: no cover - tantivy changed its explanation
        msg = "tantivy's explanation no longer names avgdl; pin tantivy or update bm25.py"
        raise RuntimeError(msg)
    return max(float(found.group(1)), 1e-9)


def bm25_run(
    doc_ids: Sequence[str], doc_texts: Sequence[str], queries: Mapping[str, str], k: int = 100
) -> Run:
    """BM25 top ``k`` for every query, from an in-memory index: query id -> doc id -> score."""
    index = Bm25Index.from_texts(doc_ids, doc_texts)
    return {qid: dict(index.top(text, k)) for qid, text in queries.items()}
