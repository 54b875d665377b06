"""One BEIR document text: ``tasb index corpus.jsonl`` embeds what ``tasb eval`` embeds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.cli import main
from langchain_tasb.config import DEFAULT_COLLECTION_NAME
from langchain_tasb.evaluation import beir_document_text, load_beir
from langchain_tasb.evaluation.cache import encode_corpus
from langchain_tasb.ingest.files import FileEntry
from langchain_tasb.ingest.readers import MalformedRecordError, read_records

# Titles and texts that tell the joins apart: a blank line or a space between them, the title
# or the text missing, whitespace at either end, a line break inside.
CORPUS: list[dict[str, Any]] = [
    {"_id": "d1", "title": "Aspirin", "text": "reduces fever in patients.", "metadata": {}},
    {"_id": "d2", "title": "", "text": "No title here."},
    {"_id": "d3", "text": "No title key at all."},
    {"_id": "d4", "title": "  Padded title ", "text": "  body with\nline breaks  \n\nand more. "},
    {"_id": "d5", "title": "Été", "text": "unicode café text"},
    {"_id": "d6", "title": "Only a title", "text": ""},
    {"_id": 7, "title": "Numeric id", "text": "the id is a number"},
]


class RecordingEmbeddings(Embeddings):
    """Delegates to an embeddings and records every text sent to ``embed_documents``."""

    def __init__(self, inner: TasbEmbeddings) -> None:
        self.inner = inner
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def __getattr__(self, name: str) -> Any:  # dimension, tokenizer, limits, similarity
        return getattr(self.inner, name)


def _write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in CORPUS)
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "fever"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def test_beir_document_text_joins_title_and_text_with_one_space() -> None:
    assert beir_document_text("Aspirin", "reduces fever.") == "Aspirin reduces fever."
    assert beir_document_text("", "No title.") == "No title."
    assert beir_document_text("Only a title", "") == "Only a title"
    assert beir_document_text(" a ", " b\n\nc ") == "a   b\n\nc"
    assert beir_document_text("", "") == ""


def test_tasb_index_and_tasb_eval_embed_identical_strings_for_each_beir_document(
    tiny_model_path: Path,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _write_beir(tmp_path / "beir")
    db = tmp_path / "db"
    # `tasb index corpus.jsonl`, into the default collection.
    cli = ["--db", str(db), "--model", str(tiny_model_path), "--quiet"]
    assert main(["index", str(data / "corpus.jsonl"), *cli]) == 0
    capsys.readouterr()

    # What `tasb eval` embeds: load_beir's texts, sent through encode_corpus.
    dataset = load_beir(data)
    recorder = RecordingEmbeddings(tiny_embeddings)
    encode_corpus(dataset, recorder)  # type: ignore[arg-type]
    eval_texts = dict(zip(dataset.doc_ids, dataset.doc_texts, strict=True))
    assert sorted(recorder.embedded) == sorted(eval_texts.values())

    # What `tasb index` embedded: the stored text of each record's one chunk (the library's
    # default collection is the command's, so opening it without a name finds the records).
    store = TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(db))
    assert store.collection_name == DEFAULT_COLLECTION_NAME == "tasb"
    got = store.store.collection.get(include=["documents", "metadatas"])
    records = zip(got["documents"], got["metadatas"], strict=True)
    index_texts = {meta["record"]: doc for doc, meta in records}
    assert all(meta["chunk"] == 0 for meta in got["metadatas"])  # short: one chunk each
    assert index_texts == eval_texts
    assert index_texts["d1"] == "Aspirin reduces fever in patients."
    assert index_texts["d4"] == "Padded title    body with\nline breaks  \n\nand more."


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"_id": "d9", "title": 1, "text": "x"}, '"title" must be a string, got a number'),
        ({"_id": "d9", "title": "t"}, '"text" must be a string, got nothing'),
        ({"_id": True, "text": "x"}, '"_id" must be a string or an integer, got a boolean'),
        ({"_id": "d9", "text": "x", "metadata": [1]}, '"metadata" must be an object'),
    ],
)
def test_tasb_index_and_tasb_eval_refuse_the_same_corpus_lines(
    tmp_path: Path, line: dict[str, Any], reason: str
) -> None:
    folder = _write_beir(tmp_path / "beir")
    with (folder / "corpus.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    bad_line = len(CORPUS) + 1
    with pytest.raises(ValueError, match=rf"corpus\.jsonl:{bad_line}: {re.escape(reason)}"):
        load_beir(folder)
    entry = FileEntry(path=folder / "corpus.jsonl", root=folder, relpath="corpus.jsonl")
    with pytest.raises(MalformedRecordError, match=rf"line {bad_line}: {re.escape(reason)}"):
        read_records(entry)
