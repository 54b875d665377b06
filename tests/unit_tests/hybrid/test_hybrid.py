from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore, hybrid
from langchain_tasb.evaluation import BeirDataset, CorpusDoc
from langchain_tasb.evaluation.experiment import evaluate_hybrid
from langchain_tasb.hybrid import (
    Bm25Index,
    LexicalIndex,
    default_directory,
    fuse_runs,
    hybrid_search,
    reciprocal_rank_fusion,
    sync,
    weighted_fusion,
)

# One made-up keyword per document, so BM25 finds exactly one document per keyword.
KEYWORDS = [
    "xylophone",
    "quasar",
    "zeppelin",
    "mandolin",
    "glacier",
    "pelican",
    "obsidian",
    "tundra",
    "saffron",
    "walrus",
    "cobalt",
    "lagoon",
    "marimba",
    "nebula",
    "origami",
    "falcon",
]
TEXTS = [f"notes about the {word} and other things" for word in KEYWORDS]


@pytest.fixture
def store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbVectorStore:
    s = TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)
    s.add_texts(TEXTS, [{"source": f"{w}.md", "group": i % 2} for i, w in enumerate(KEYWORDS)])
    return s


@pytest.fixture
def persisted(tiny_embeddings: TasbEmbeddings, tmp_path: Path) -> TasbVectorStore:
    s = TasbVectorStore(
        embedding=tiny_embeddings, collection_name="hybrid-test", persist_directory=str(tmp_path)
    )
    s.add_texts(TEXTS[:8], [{"source": f"{w}.md"} for w in KEYWORDS[:8]])
    return s


def _id_of(store: TasbVectorStore, keyword: str) -> str:
    got = store.store.collection.get(where_document={"$contains": keyword}, include=[])
    [id_] = got["ids"]
    return str(id_)


# --------------------------------------------------------------------------------- fusion


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k=0)
    assert [i for i, _ in fused] == ["b", "a", "c", "d"]
    assert dict(fused) == pytest.approx({"a": 1.0, "b": 1.5, "c": 1 / 3 + 1 / 2, "d": 1 / 3})


def test_rrf_default_k_and_ties_go_to_the_better_rank_then_the_first_ranking() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d", "a"]])
    # a and c both score 1/61 + 1/63; a reached rank 1 in the first ranking, c in the second.
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[2][1] == pytest.approx(1 / 62)


def test_rrf_counts_a_repeated_id_once_and_rejects_negative_k() -> None:
    assert dict(reciprocal_rank_fusion([["a", "a", "b"]], k=0)) == {"a": 1.0, "b": 1 / 3}
    with pytest.raises(ValueError, match="non-negative"):
        reciprocal_rank_fusion([["a"]], k=-1)


def test_weighted_fusion_by_hand() -> None:
    dense = [("a", 10.0), ("b", 6.0), ("c", 2.0)]  # normalised: a 1, b 0.5, c 0
    lexical = [("c", 9.0), ("d", 5.0), ("a", 1.0)]  # normalised: c 1, d 0.5, a 0
    fused = weighted_fusion(dense, lexical, alpha=0.7)
    assert [i for i, _ in fused] == ["a", "b", "c", "d"]
    assert dict(fused) == pytest.approx({"a": 0.7, "b": 0.35, "c": 0.3, "d": 0.15})
    lexical_heavy = weighted_fusion(dense, lexical, alpha=0.2)
    assert [i for i, _ in lexical_heavy] == ["c", "d", "a", "b"]


def test_weighted_fusion_edge_cases() -> None:
    assert weighted_fusion([("a", 3.0), ("b", 3.0)], [], alpha=0.5) == [("a", 0.5), ("b", 0.5)]
    assert weighted_fusion([], [], alpha=0.5) == []
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        weighted_fusion([("a", 1.0)], [], alpha=1.5)
    with pytest.raises(ValueError, match="non-finite"):
        weighted_fusion([("a", float("nan"))], [], alpha=0.5)


def test_fuse_runs_and_bm25_run() -> None:
    run = hybrid.bm25_run(["d1", "d2", "d3"], ["cats purr", "dogs bark loudly", ""], {"q": "dogs"})
    assert list(run["q"]) == ["d2"]
    fused = fuse_runs({"q": {"d1": 0.9, "d3": 0.8}}, run, k=2)
    assert list(fused["q"]) == ["d1", "d2"]  # tie at rank 1: dense first; d3 cut at k=2


def test_evaluate_hybrid_scores_bm25_and_the_fused_run() -> None:
    corpus = {
        "d1": CorpusDoc("", "the walrus swims"),
        "d2": CorpusDoc("", "the falcon flies"),
        "d3": CorpusDoc("", "nothing here"),
    }
    dataset = BeirDataset(
        name="toy",
        split="test",
        corpus=corpus,
        doc_ids=list(corpus),
        doc_texts=[d.full_text for d in corpus.values()],
        queries={"q1": "walrus", "q2": "falcon"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1}},
    )
    dense = {"q1": {"d3": 2.0, "d2": 1.0}, "q2": {"d3": 2.0, "d1": 1.0}}  # dense misses both
    result = evaluate_hybrid(dataset, dense)
    assert result.bm25["ndcg@10"] == pytest.approx(1.0)
    assert 0.0 < result.hybrid["ndcg@10"] < 1.0
    assert set(result.hybrid_run["q1"]) == {"d1", "d2", "d3"}


# --------------------------------------------------------------------------------- lexical index


def test_bm25_index_scores_only_matching_documents() -> None:
    index = Bm25Index.from_texts(["b", "a"], ["the quasar shines", "a quasar, a nebula, a comet"])
    assert len(index) == 2
    assert index.ids() == {"a", "b"}
    assert [i for i, _ in index.top("nebulae", 5)] == ["a"]  # stemmed: nebulae -> nebula
    assert index.top("the and", 5) == []  # stopwords only
    assert index.top("unknown words", 5) == []
    assert [i for i, _ in index.top("quasar", 5)] == ["b", "a"]  # shorter doc first
    assert index.scores_of("quasar comet", ["a", "b", "zzz"]).keys() == {"a", "b"}
    both = dict(index.top("quasar comet", 5))
    assert index.scores_of("quasar comet", ["a"]) == pytest.approx({"a": both["a"]})


def test_bm25_index_updates_in_place() -> None:
    index = Bm25Index.from_texts(["a", "b"], ["a walrus", "a falcon"])
    index.apply([("a", "a pelican now"), ("c", "another walrus")], deletes=["b"])
    assert index.ids() == {"a", "c"}
    assert [i for i, _ in index.top("walrus", 5)] == ["c"]
    assert [i for i, _ in index.top("pelican", 5)] == ["a"]
    assert index.top("falcon", 5) == []


def test_query_and_documents_share_one_tokenizer() -> None:
    assert hybrid.tokenize(["Running DOGS, the barking"]) == [["run", "dog", "bark"]]
    index = Bm25Index.from_texts(["a"], ["Running DOGS"])
    assert [i for i, _ in index.top("the dog runs", 5)] == ["a"]


def test_lexical_index_follows_writes_through_the_store(persisted: TasbVectorStore) -> None:
    index = LexicalIndex(persisted)
    assert index.refresh() == "built"
    assert index.refresh() == "current"
    assert index.search("cobalt") == []

    [new_id] = persisted.add_texts(["a note on cobalt mining"])
    assert index.refresh() == "current"  # the write updated the index in the same step
    assert [i for i, _ in index.search("cobalt")] == [new_id]

    persisted.delete([new_id])
    assert index.refresh() == "current"
    assert index.search("cobalt") == []

    # Text rewritten under the same id, by this package: the old words are gone.
    persisted.add_texts(["the new marimba text"], ids=[_id_of(persisted, "mandolin")])
    assert index.refresh() == "current"
    assert index.search("mandolin") == []
    assert [i for i, _ in index.search("marimba")] == [_id_of(persisted, "marimba text")]


def test_lexical_index_sees_raw_chromadb_writes_by_id(persisted: TasbVectorStore) -> None:
    index = LexicalIndex(persisted)
    index.refresh()
    raw = persisted.store.collection  # a chromadb collection: no observer sees this write
    dim = persisted.store.dimension or 32
    raw.add(ids=["raw-1"], embeddings=[[0.1] * dim], documents=["the lagoon at dawn"])
    raw.upsert(
        ids=[_id_of(persisted, "glacier")], embeddings=[[0.2] * dim], documents=["now a zircon"]
    )
    raw.delete(ids=[_id_of(persisted, "pelican")])
    assert index.refresh() == "updated"  # only the written ids were read again
    assert [i for i, _ in index.search("lagoon")] == ["raw-1"]
    assert index.search("glacier") == []
    assert index.search("pelican") == []
    assert len(index.search("zircon")) == 1


def test_lexical_index_sees_writes_by_another_store_object(
    persisted: TasbVectorStore, tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    index = LexicalIndex(persisted)
    index.refresh()
    other = TasbVectorStore(
        embedding=tiny_embeddings, collection_name="hybrid-test", persist_directory=str(tmp_path)
    )
    [new_id] = other.add_texts(["the lagoon at dawn"])  # the persisted index is attached
    assert index.refresh() == "current"
    assert [i for i, _ in index.search("lagoon")] == [new_id]


def test_persisted_index_is_reopened_without_rebuilding(
    persisted: TasbVectorStore,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = LexicalIndex(persisted)
    expected = first.search("mandolin", k=3)
    assert expected
    assert first.directory == tmp_path / "bm25" / "hybrid-test"

    def no_build(*args: Any, **kwargs: Any) -> int:
        msg = "rebuilt instead of reopening"
        raise AssertionError(msg)

    monkeypatch.setattr(Bm25Index, "replace_all", no_build)
    reopened = TasbVectorStore(
        embedding=tiny_embeddings, collection_name="hybrid-test", persist_directory=str(tmp_path)
    )
    second = LexicalIndex(reopened)
    assert second.refresh() == "current"
    assert second.search("mandolin", k=3) == expected


def test_unreadable_state_is_rebuilt(persisted: TasbVectorStore) -> None:
    first = LexicalIndex(persisted)
    first.refresh()
    assert first.directory is not None
    (first.directory / "state.json").write_text("not json", encoding="utf-8")
    sync._CORES.clear()
    assert LexicalIndex(persisted).refresh() == "built"


def test_default_directory(store: TasbVectorStore, persisted: TasbVectorStore) -> None:
    assert default_directory(store) is None  # in-memory Chroma: the index stays in memory
    assert LexicalIndex(store).directory is None
    directory = default_directory(persisted)
    assert directory is not None
    assert directory.parts[-2:] == ("bm25", "hybrid-test")


def test_lexical_search_respects_filters(store: TasbVectorStore) -> None:
    index = LexicalIndex(store)
    assert len(index.search("notes", k=16)) == 16
    group1 = index.search("notes", k=16, filter={"group": 1})
    assert len(group1) == 8
    got = store.get_by_ids([i for i, _ in group1])
    assert {d.metadata["group"] for d in got} == {1}
    assert index.search("walrus", k=4, filter={"group": 0}) == []  # walrus is group 1
    contains = index.search("notes", k=4, where_document={"$contains": "saffron"})
    assert [i for i, _ in contains] == [_id_of(store, "saffron")]


# --------------------------------------------------------------------------------- hybrid search


def _dense_miss(store: TasbVectorStore, k: int) -> str:
    """A keyword whose own document is outside the dense top ``k`` for that keyword."""
    retriever = TasbRetriever(vectorstore=store, k=k)
    for word in KEYWORDS:
        if _id_of(store, word) not in {d.id for d in retriever.invoke(word)}:
            return word
    pytest.fail("the random tiny model found every keyword's document; pick other words")


def test_hybrid_retriever_finds_exact_keyword_docs_that_dense_misses(
    store: TasbVectorStore,
) -> None:
    word = _dense_miss(store, k=3)
    target = _id_of(store, word)
    retriever = TasbRetriever(vectorstore=store, k=3, fetch_k=3, search_type="hybrid")
    docs = retriever.invoke(word)
    assert len(docs) == 3
    assert target in [d.id for d in docs]
    [doc] = [d for d in docs if d.id == target]
    assert doc.metadata["bm25_score"] > 0
    assert doc.metadata["fused_score"] == pytest.approx(1 / 61)
    assert doc.metadata["source"] == f"{word}.md"
    # The dot product is computed for a document only BM25 found.
    emb = store.embeddings
    q = np.asarray(emb.embed_query(word))
    for d in docs:
        v = np.asarray(emb.embed_documents([d.page_content])[0])
        assert d.metadata["score"] == pytest.approx(float(q @ v), rel=1e-4)
        assert d.metadata["relevance"] == pytest.approx(
            store.relevance_scale.relevance(d.metadata["score"])
        )
    fused = [d.metadata["fused_score"] for d in docs]
    assert fused == sorted(fused, reverse=True)


def test_weighted_alpha_one_is_dense_order_and_zero_puts_bm25_first(
    store: TasbVectorStore,
) -> None:
    word = _dense_miss(store, k=4)
    retriever = TasbRetriever(vectorstore=store, k=4)
    dense_ids = [d.id for d in retriever.invoke(word)]
    as_dense = retriever.invoke(word, search_type="hybrid", fusion="weighted", alpha=1.0)
    assert [d.id for d in as_dense] == dense_ids
    as_bm25 = retriever.invoke(word, search_type="hybrid", fusion="weighted", alpha=0.0)
    assert as_bm25[0].id == _id_of(store, word)
    assert as_bm25[0].metadata["fused_score"] == pytest.approx(1.0)


def test_hybrid_respects_filters(store: TasbVectorStore) -> None:
    retriever = TasbRetriever(vectorstore=store, k=5, search_type="hybrid")
    docs = retriever.invoke("walrus notes", filter={"group": 0})
    assert len(docs) == 5
    assert {d.metadata["group"] for d in docs} == {0}
    assert _id_of(store, "walrus") not in {d.id for d in docs}
    only = retriever.invoke("notes", where_document={"$contains": "tundra"})
    assert [d.id for d in only] == [_id_of(store, "tundra")]


def test_hybrid_skips_records_deleted_since_the_last_check(store: TasbVectorStore) -> None:
    index = LexicalIndex(store, check_interval=3600)
    index.refresh()
    word = _dense_miss(store, k=2)
    store.delete([_id_of(store, word)])
    results = hybrid_search(store, word, 2, fetch_k=2, index=index)
    assert len(results) == 2
    assert all(r.hit.text != TEXTS[KEYWORDS.index(word)] for r in results)


def test_hybrid_search_rejects_bad_arguments(store: TasbVectorStore) -> None:
    with pytest.raises(ValueError, match="fusion must be one of"):
        hybrid_search(store, "x", 2, fusion="sum")
    with pytest.raises(ValueError, match="fetch_k must be a positive integer"):
        hybrid_search(store, "x", 2, fetch_k=0)
    with pytest.raises(ValueError, match="alpha"):
        hybrid_search(store, "x", 2, fusion="weighted", alpha=2.0)


def test_hybrid_on_an_empty_collection(
    tiny_embeddings: TasbEmbeddings, collection_name: str
) -> None:
    empty = TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)
    assert TasbRetriever(vectorstore=empty, search_type="hybrid").invoke("anything") == []


def test_checking_for_changes_reads_no_records_and_a_change_reads_only_its_ids(
    persisted: TasbVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = LexicalIndex(persisted)
    index.refresh()
    gateway = persisted.store
    reads: list[Any] = []
    real_get_where, real_scan = gateway.get_where, gateway.scan

    def get_where(*args: Any, **kwargs: Any) -> Any:
        reads.append(sorted(kwargs.get("ids") or []))
        return real_get_where(*args, **kwargs)

    def scan(*args: Any, **kwargs: Any) -> Any:
        reads.append("scan")
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(gateway, "get_where", get_where)
    monkeypatch.setattr(gateway, "scan", scan)
    for _ in range(3):
        assert index.search("walrus") == []  # walrus is not among the 8 persisted texts
    assert reads == []
    gateway.collection.add(ids=["raw-9"], embeddings=[[0.0] * 32], documents=["a walrus"])
    assert [i for i, _ in index.search("walrus")] == ["raw-9"]
    assert reads == [["raw-9"]]


def test_indexes_of_the_earlier_bm25s_layout_are_removed(persisted: TasbVectorStore) -> None:
    directory = default_directory(persisted)
    assert directory is not None
    old = directory / "0123456789abcdef"
    old.mkdir(parents=True)
    (old / "ids.json").write_text("[]", encoding="utf-8")
    (directory / ".building-x1").mkdir()
    index = LexicalIndex(persisted)
    assert index.refresh() == "built"
    assert not old.exists()
    assert not (directory / ".building-x1").exists()
    assert [i for i, _ in index.search("mandolin")] == [_id_of(persisted, "mandolin")]


def test_a_failing_bm25_side_keeps_the_write_and_the_next_search_catches_up(
    persisted: TasbVectorStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    index = LexicalIndex(persisted)
    index.refresh()
    real_apply = Bm25Index.apply

    def broken(*args: Any, **kwargs: Any) -> None:
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(Bm25Index, "apply", broken)
    [new_id] = persisted.add_texts(["a note on zircon"])  # Chroma has it: no error here
    assert "1 written ids not applied (disk full)" in caplog.text
    assert persisted.get_by_ids([new_id])
    monkeypatch.setattr(Bm25Index, "apply", real_apply)
    assert index.refresh() == "updated"
    assert [i for i, _ in index.search("zircon")] == [new_id]
