"""BM25 over ids and texts on `tantivy <https://github.com/quickwit-oss/tantivy-py>`_.

Tantivy is a Lucene-like engine in Rust: BM25 (``k1=1.2``, ``b=0.75``), segments that take
adds and deletes without a rebuild, and top-k by block-max WAND, which skips documents that
cannot reach the top instead of scoring every one. ``pip install 'langchain-tasb[hybrid]'``.

Documents and queries go through one analyzer: tantivy's simple tokenizer (runs of letters
and digits), tokens over 40 bytes dropped, lower-cased, English stopwords removed, Snowball
English stemming. :mod:`langchain_tasb.hybrid.lexical` keeps such an index in step with a
Chroma collection.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_tasb.evaluation import Run

logger = logging.getLogger(__name__)

_FORMAT = 2
_ANALYZER = "tasb_en"
_WRITER_HEAP = 50_000_000  # bytes of indexing buffer: tantivy's floor is 15 MB a thread
_BUILD_BATCH = 10_000


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError as exc:
        msg = "Hybrid search needs tantivy: pip install 'langchain-tasb[hybrid]' (or tantivy)."
        raise ImportError(msg) from exc
    return tantivy


@cache
def _analyzer() -> Any:
    t = _tantivy()
    return (
        t.TextAnalyzerBuilder(t.Tokenizer.simple())
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
    return builder.build()


def tokenizer_settings() -> dict[str, Any]:
    """What decides the tokens and scores; an index built with other settings is rebuilt."""
    return {
        "format": _FORMAT,
        "engine": "tantivy",
        "tokenizer": "simple",
        "remove_long": 40,
        "stopwords": "english",
        "stemmer": "english",
        "k1": 1.2,
        "b": 0.75,
    }


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """The index's tokens of each text: lower-cased, stopwords removed, stemmed."""
    analyzer = _analyzer()
    return [list(analyzer.analyze(text)) for text in texts]


class Bm25Index:
    """A BM25 index of ``(id, text)`` records, in a folder or in memory, updated in place.

    One writer at a time per folder (tantivy locks it; a second writer gets ``ValueError``),
    any number of readers, each seeing the last commit once it calls :meth:`reload`.
    """

    def __init__(self, directory: Path | None = None) -> None:
        t = _tantivy()
        if directory is None:
            self._index = t.Index(_schema())
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self._index = t.Index(_schema(), path=str(directory))
        self._index.register_tokenizer(_ANALYZER, _analyzer())
        self.directory = directory

    def __len__(self) -> int:
        return int(self._index.searcher().num_docs)

    # -- writing ---------------------------------------------------------------------------

    def _writer(self) -> Any:
        return self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)

    def _commit(self, writer: Any) -> None:
        writer.commit()
        writer.wait_merging_threads()  # releases the folder's writer lock
        self._index.reload()

    def apply(self, upserts: Iterable[tuple[str, str]] = (), deletes: Iterable[str] = ()) -> None:
        """Replace or add each ``(id, text)`` of ``upserts``, remove ``deletes``; one commit."""
        t = _tantivy()
        writer = self._writer()
        try:
            for id_ in deletes:
                writer.delete_documents_by_term("id", id_)
            for id_, text in upserts:
                writer.delete_documents_by_term("id", id_)
                writer.add_document(t.Document(id=id_, text=text))
        except BaseException:
            writer.rollback()
            writer.wait_merging_threads()
            raise
        self._commit(writer)

    def replace_all(self, pages: Iterable[tuple[Sequence[str], Sequence[str]]]) -> int:
        """Drop every record and index ``(ids, texts)`` pages instead; one commit at the end.

        Returns:
            How many records were indexed (a repeated id counts once, its last text kept).
        """
        t = _tantivy()
        writer = self._writer()
        seen: set[str] = set()
        try:
            writer.delete_all_documents()
            for ids, texts in pages:
                for id_, text in zip(ids, texts, strict=True):
                    if id_ in seen:
                        writer.delete_documents_by_term("id", id_)
                    seen.add(id_)
                    writer.add_document(t.Document(id=id_, text=text or ""))
        except BaseException:
            writer.rollback()
            writer.wait_merging_threads()
            raise
        self._commit(writer)
        return len(seen)

    def reload(self) -> None:
        """See the last commit, by this or another process."""
        self._index.reload()

    # -- reading ---------------------------------------------------------------------------

    def _query(self, query: str) -> Any:
        t = _tantivy()
        counts = Counter(_analyzer().analyze(query))
        if not counts:
            return None
        schema = _schema()
        clauses = []
        for token, count in counts.items():
            term = t.Query.term_query(schema, "text", token)
            clauses.append(
                (t.Occur.Should, term if count == 1 else t.Query.boost_query(term, count))
            )
        return t.Query.boolean_query(clauses)

    def top(self, query: str, k: int, *, offset: int = 0) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, score)`` pairs after ``offset``; only records with a query term."""
        parsed = self._query(query)
        if parsed is None or k <= 0:
            return []
        searcher = self._index.searcher()
        hits = searcher.search(parsed, limit=k, offset=offset, count=False).hits
        return [(str(searcher.doc(address)["id"][0]), float(score)) for score, address in hits]

    def scores_of(self, query: str, ids: Sequence[str]) -> dict[str, float]:
        """BM25 scores of ``ids`` for ``query``; absent where the record has no query term."""
        parsed = self._query(query)
        if parsed is None or not ids:
            return {}
        t = _tantivy()
        only = t.Query.const_score_query(t.Query.term_set_query(_schema(), "id", list(ids)), 0.0)
        restricted = t.Query.boolean_query([(t.Occur.Must, parsed), (t.Occur.Must, only)])
        searcher = self._index.searcher()
        hits = searcher.search(restricted, limit=len(ids), count=False).hits
        return {str(searcher.doc(address)["id"][0]): float(score) for score, address in hits}

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


def bm25_run(
    doc_ids: Sequence[str], doc_texts: Sequence[str], queries: Mapping[str, str], k: int = 100
) -> Run:
    """BM25 top ``k`` for every query, from an in-memory index: query id -> doc id -> score."""
    index = Bm25Index()
    index.replace_all(
        (doc_ids[i : i + _BUILD_BATCH], doc_texts[i : i + _BUILD_BATCH])
        for i in range(0, len(doc_ids), _BUILD_BATCH)
    )
    return {qid: dict(index.top(text, k)) for qid, text in queries.items()}
