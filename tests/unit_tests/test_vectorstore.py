from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import chromadb
import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_tasb import (
    ModelMismatchError,
    SpaceMismatchError,
    TasbEmbeddings,
    TasbRetriever,
    TasbVectorStore,
)
from langchain_tasb.chroma.client import check_collection_name
from langchain_tasb.chroma.store import HnswSettings
from langchain_tasb.collection import content_id

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "air flow over the wing changes the pressure",
    "the library holds information science papers",
]


@pytest.fixture
def store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbVectorStore:
    return TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)


def exact_ranking(emb: TasbEmbeddings, query: str, texts: list[str]) -> list[int]:
    q = np.asarray(emb.embed_query(query))
    d = np.asarray(emb.embed_documents(texts))
    return [int(i) for i in np.argsort(-(d @ q), kind="stable")]


def test_new_collection_is_inner_product_with_recorded_identity(
    store: TasbVectorStore,
) -> None:
    collection = store.store.collection
    assert collection.configuration["hnsw"]["space"] == "ip"
    assert collection.configuration["hnsw"]["ef_search"] == HnswSettings().ef_search
    metadata = collection.metadata
    assert metadata["tasb:dimension"] == 32
    assert metadata["tasb:similarity"] == "dot"
    assert "tasb:probe" in metadata


def test_scores_are_exact_dot_products_ranked_best_first(store: TasbVectorStore) -> None:
    emb = store.embeddings
    assert isinstance(emb, TasbEmbeddings)
    store.add_texts(TEXTS)
    query = "How many people live in London?"
    results = store.similarity_search_with_score(query, k=5)
    q = np.asarray(emb.embed_query(query))
    d = {t: float(np.dot(q, v)) for t, v in zip(TEXTS, emb.embed_documents(TEXTS), strict=True)}
    assert [doc.page_content for doc, _ in results] == [
        TEXTS[i] for i in exact_ranking(emb, query, TEXTS)
    ]
    for doc, score in results:
        assert score == pytest.approx(d[doc.page_content], rel=1e-5)
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(results))


def test_relevance_is_monotonic_in_score_and_in_unit_interval(store: TasbVectorStore) -> None:
    store.add_texts(TEXTS)
    scored = store.similarity_search_with_score("london", k=5)
    relevant = store.similarity_search_with_relevance_scores("london", k=5)
    assert [d.id for d, _ in scored] == [d.id for d, _ in relevant]
    rel = [r for _, r in relevant]
    assert all(0.0 <= r <= 1.0 for r in rel)
    assert rel == sorted(rel, reverse=True)
    assert len(set(rel)) > 1  # calibrated: not saturated at 1.0 like a raw logistic


def test_same_text_added_twice_is_stored_once(store: TasbVectorStore) -> None:
    first = store.add_texts(TEXTS[:2])
    second = store.add_texts(TEXTS[:2])
    assert first == second
    assert store.store.count() == 2
    assert first[0] == content_id(TEXTS[0])


def test_source_metadata_distinguishes_equal_texts(store: TasbVectorStore) -> None:
    ids = store.add_texts(["same", "same"], [{"source": "a.md"}, {"source": "b.md"}])
    assert ids[0] != ids[1]
    assert store.store.count() == 2


def test_repeats_inside_one_call_are_merged_last_wins(store: TasbVectorStore) -> None:
    ids = store.add_texts(["x", "y", "z"], [{"v": 1}, {"v": 2}, {"v": 3}], ids=["a", "b", "a"])
    assert ids == ["a", "b", "a"]
    assert store.store.count() == 2
    [doc] = store.get_by_ids(["a"])
    assert (doc.page_content, doc.metadata) == ("z", {"v": 3})


def test_given_ids_win_item_by_item(store: TasbVectorStore) -> None:
    docs = [Document("one", id="given-1"), Document("two"), Document("three", id="given-3")]
    ids = store.add_documents(docs)
    assert ids == ["given-1", content_id("two"), "given-3"]
    assert [d.id for d in store.get_by_ids(ids)] == ids


def test_empty_and_none_metadata_are_stored_as_none(store: TasbVectorStore) -> None:
    ids = store.add_texts(["a", "b"], [{}, {"keep": 1, "drop": None}])
    docs = {d.page_content: d for d in store.get_by_ids(ids)}
    assert docs["a"].metadata == {}
    assert docs["b"].metadata == {"keep": 1}


def test_twenty_thousand_texts_in_one_call(collection_name: str) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    store = TasbVectorStore(embedding=emb, collection_name=collection_name)
    assert store.client.get_max_batch_size() < 20_000
    texts = [f"text number {i}" for i in range(20_000)]
    ids = store.add_texts(texts)
    assert store.store.count() == 20_000
    assert len(set(ids)) == 20_000
    assert store.get_by_ids([ids[19_999]])[0].page_content == "text number 19999"


def test_bad_metadata_is_refused_before_anything_is_written(store: TasbVectorStore) -> None:
    with pytest.raises(TypeError, match=r"metadatas\[1\]\['nested'\] has type dict"):
        store.add_texts(["a", "b"], [{"ok": 1}, {"nested": {"x": 1}}])
    with pytest.raises(ValueError, match=r"metadatas\[0\]\['n'\] is nan"):
        store.add_texts(["a"], [{"n": float("nan")}])
    with pytest.raises(ValueError, match=r"texts\[0\] is not valid Unicode"):
        store.add_texts(["bad \ud800 text"])
    with pytest.raises(ValueError, match="2 texts but 1 metadatas"):
        store.add_texts(["a", "b"], [{"x": 1}])
    for key in ("#page", "chroma:document"):
        with pytest.raises(ValueError, match=rf"metadatas\[1\] has key '{key}', which Chroma"):
            store.add_texts(["a", "b"], [{"ok": 1}, {key: 1}])
    assert store.store.count() == 0


@pytest.mark.parametrize(
    "key",
    [
        "_tasb_llama_node",
        "_tasb_ref_doc_id",
        "score",
        "relevance",
        "fused_score",
        "bm25_score",
    ],
)
def test_reserved_and_result_metadata_keys_are_refused_by_name(
    store: TasbVectorStore, key: str
) -> None:
    with pytest.raises(ValueError, match=rf"metadatas\[1\] has metadata keys \['{key}'\]"):
        store.add_texts(["a", "b"], [{"ok": 1}, {key: "victim-doc", "ok": 2}])
    with pytest.raises(ValueError, match=rf"'{key}'.*rename them"):
        store.add_documents([Document(page_content="c", metadata={key: 1})])
    assert store.store.count() == 0
    store.add_texts(["a"], [{"score_note": 1, "tasb_x": 2}])  # near misses are user keys
    [hit] = store.similarity_search_with_score("a", k=1)
    assert hit[0].metadata == {"score_note": 1, "tasb_x": 2}


@pytest.mark.parametrize("key", ["#page", "#document", "chroma:document"])
def test_reserved_metadata_keys_are_the_ones_chroma_refuses(collection_name: str, key: str) -> None:
    import chromadb
    from chromadb.errors import ChromaError

    collection = chromadb.EphemeralClient().create_collection(
        collection_name, embedding_function=None
    )
    with pytest.raises((ValueError, ChromaError)):
        collection.add(ids=["a"], embeddings=[[1.0, 0.0]], metadatas=[{key: 1}])
    collection.add(ids=["b"], embeddings=[[1.0, 0.0]], metadatas=[{"page#": 1, "chroma:x": 1}])
    assert collection.count() == 1


def test_filter_and_where_document(store: TasbVectorStore) -> None:
    store.add_texts(TEXTS, [{"source": f"{i % 2}.md"} for i in range(len(TEXTS))])
    docs = store.similarity_search("london", k=5, filter={"source": "1.md"})
    assert {d.page_content for d in docs} == {TEXTS[1], TEXTS[3]}
    docs = store.similarity_search("london", k=5, where_document={"$contains": "London"})
    assert {d.page_content for d in docs} == {TEXTS[0], TEXTS[1]}


def test_delete_by_ids_and_by_filter(store: TasbVectorStore) -> None:
    ids = store.add_texts(TEXTS, [{"group": i % 2} for i in range(len(TEXTS))])
    store.delete([ids[0], "missing-id"])
    assert store.store.count() == 4
    store.delete(filter={"group": 1})
    assert {d.page_content for d in store.get_by_ids(ids)} == {TEXTS[2], TEXTS[4]}


class TableEmbeddings(Embeddings):
    """Fixed vectors per text, so rankings are known by hand."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # Texts outside the table (the identity probe, calibration pairs) get a filler.
        width = len(next(iter(self.table.values())))
        return [self.table.get(t, [0.1] * width) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_mmr_uses_dot_products_and_avoids_near_duplicates(collection_name: str) -> None:
    table = {
        "q": [1.0, 0.0, 0.0],
        "a": [1.0, 0.0, 0.0],
        "a2": [0.99, 0.1, 0.0],
        "b": [0.5, 0.0, 0.8],
    }
    store = TasbVectorStore(embedding=TableEmbeddings(table), collection_name=collection_name)
    store.add_texts(["a", "a2", "b"])
    plain = store.similarity_search("q", k=2)
    assert [d.page_content for d in plain] == ["a", "a2"]
    # After "a": a2 scores 0.1*0.99 - 0.9*0.99 = -0.792, b scores 0.1*0.5 - 0.9*0.5 = -0.4.
    diverse = store.max_marginal_relevance_search("q", k=2, fetch_k=3, lambda_mult=0.1)
    assert [d.page_content for d in diverse] == ["a", "b"]
    # With lambda 1 MMR is plain relevance.
    same = store.max_marginal_relevance_search("q", k=2, fetch_k=3, lambda_mult=1.0)
    assert [d.page_content for d in same] == ["a", "a2"]


def test_dot_product_ranking_differs_from_cosine_where_it_should(collection_name: str) -> None:
    # "long" has the larger dot product with q, "aligned" the larger cosine. An l2 or cosine
    # index would rank "aligned" first; inner product must rank "long" first.
    table = {"q": [1.0, 0.0], "long": [3.0, 3.0], "aligned": [1.0, 0.05]}
    store = TasbVectorStore(embedding=TableEmbeddings(table), collection_name=collection_name)
    store.add_texts(["long", "aligned"])
    results = store.similarity_search_with_score("q", k=2)
    assert [(d.page_content, round(s, 4)) for d, s in results] == [("long", 3.0), ("aligned", 1.0)]


def test_by_vector_search_matches_query_search(store: TasbVectorStore) -> None:
    store.add_texts(TEXTS)
    vector = store.embeddings.embed_query("wing")
    assert store.similarity_search_by_vector(vector, k=3) == store.similarity_search("wing", k=3)


def test_reopening_persistent_collection_keeps_data_and_scale(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    first = TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(tmp_path))
    first.add_texts(TEXTS)
    again = TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(tmp_path))
    assert again.store.count() == len(TEXTS)
    assert again.relevance_scale == first.relevance_scale


@pytest.mark.parametrize("space", ["l2", "cosine"])
def test_collection_of_another_space_is_refused(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path, space: str
) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path))
    client.create_collection(
        "docs", configuration={"hnsw": {"space": space}}, embedding_function=None
    )
    with pytest.raises(SpaceMismatchError, match=rf"uses the '{space}' distance space.*'ip'"):
        TasbVectorStore(embedding=tiny_embeddings, collection_name="docs", client=client)


def test_collection_of_another_model_is_refused(
    tiny_embeddings: TasbEmbeddings, other_model_path: Path, tmp_path: Path
) -> None:
    TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(tmp_path)).add_texts(TEXTS)
    other = TasbEmbeddings(model_name=str(other_model_path))
    with pytest.raises(ModelMismatchError, match="probe sentence's embedding differs"):
        TasbVectorStore(embedding=other, persist_directory=str(tmp_path))


def test_collection_of_another_dimension_is_refused(
    tiny_embeddings: TasbEmbeddings, wide_model_path: Path, tmp_path: Path
) -> None:
    TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(tmp_path))
    wide = TasbEmbeddings(model_name=str(wide_model_path))
    with pytest.raises(ModelMismatchError, match=r"dimension 32.*not 48"):
        TasbVectorStore(embedding=wide, persist_directory=str(tmp_path))


def test_same_model_from_another_path_opens_the_collection(
    tiny_embeddings: TasbEmbeddings, tiny_model_path: Path, tmp_path: Path
) -> None:
    import shutil

    TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(tmp_path / "db")).add_texts(
        TEXTS
    )
    copy = shutil.copytree(tiny_model_path, tmp_path / "copy-of-model")
    store = TasbVectorStore(
        embedding=TasbEmbeddings(model_name=str(copy)), persist_directory=str(tmp_path / "db")
    )
    assert store.store.count() == len(TEXTS)


def test_foreign_ip_collection_with_vectors_is_refused(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path))
    col = client.create_collection(
        "docs",
        configuration={"hnsw": {"space": "ip"}},
        embedding_function=None,
        metadata={"owner": "me"},
    )
    col.add(ids=["x"], embeddings=[[0.0] * 32], documents=["x"])
    with pytest.raises(ModelMismatchError, match="no langchain-tasb record"):
        TasbVectorStore(embedding=tiny_embeddings, collection_name="docs", client=client)


def test_empty_foreign_ip_collection_is_adopted_keeping_its_metadata(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path))
    client.create_collection(
        "docs",
        configuration={"hnsw": {"space": "ip"}},
        embedding_function=None,
        metadata={"owner": "me"},
    )
    TasbVectorStore(embedding=tiny_embeddings, collection_name="docs", client=client)
    metadata = client.get_collection("docs").metadata
    assert metadata["owner"] == "me"
    assert metadata["tasb:dimension"] == 32


def test_ef_search_is_applied_to_an_existing_collection(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    TasbVectorStore(embedding=tiny_embeddings, persist_directory=str(tmp_path))
    store = TasbVectorStore(
        embedding=tiny_embeddings, persist_directory=str(tmp_path), hnsw=HnswSettings(ef_search=300)
    )
    assert store.store.collection.configuration["hnsw"]["ef_search"] == 300


# Names around the edges of Chroma's rule; Chroma itself decides which are valid.
CANDIDATE_NAMES = [
    "abc", "a.b", "A-b_9", "0ab", "ab", "x", "", "-ab", "ab-", "_ab", "ab.", "a b", "a/b",
    "abé", "a..b", "a.b.c", "1.2.3.4", "1.2.3", "256.1.1.1", "01.2.3.4", "a" * 512, "a" * 513,
]  # fmt: skip


def test_collection_names_are_checked_exactly_as_chroma_checks_them(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path))
    for name in CANDIDATE_NAMES:
        try:
            client.create_collection(name, embedding_function=None)
            chroma_accepts = True
        except Exception:
            chroma_accepts = False
        try:
            check_collection_name(name)
            we_accept = True
        except ValueError as exc:
            assert "Chroma wants 3 to 512 characters" in str(exc)
            we_accept = False
        assert we_accept == chroma_accepts, name


class _Untouchable(DeterministicFakeEmbedding):
    def embed_query(self, text: str) -> list[float]:
        raise AssertionError(UNTOUCHED)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError(UNTOUCHED)


UNTOUCHED = "the model was used before the collection name was checked"


def test_bad_collection_name_is_refused_before_the_model_is_used() -> None:
    with pytest.raises(ValueError, match="invalid collection name 'my docs'"):
        TasbVectorStore(embedding=_Untouchable(size=8), collection_name="my docs")
    with pytest.raises(ValueError, match="invalid collection name 'x'"):
        TasbRetriever(embedding=_Untouchable(size=8), collection_name="x")


def test_connection_arguments_are_exclusive(tiny_embeddings: TasbEmbeddings) -> None:
    with pytest.raises(ValueError, match="only one of"):
        TasbVectorStore(embedding=tiny_embeddings, persist_directory="x", host="localhost")


def test_from_texts_in_memory_gets_its_own_collection(tiny_embeddings: TasbEmbeddings) -> None:
    a = TasbVectorStore.from_texts(["a"], tiny_embeddings)
    b = TasbVectorStore.from_texts(["b"], tiny_embeddings)
    assert a.collection_name != b.collection_name
    assert [d.page_content for d in b.similarity_search("a", k=5)] == ["b"]


def test_as_retriever_maps_langchain_search_kwargs(store: TasbVectorStore) -> None:
    store.add_texts(TEXTS)
    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5})
    assert isinstance(retriever, TasbRetriever)
    assert (retriever.k, retriever.search_type, retriever.fetch_k) == (2, "mmr", 5)
    assert len(retriever.invoke("london")) == 2


class TestTasbVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[TasbVectorStore]:  # type: ignore[override]
        import uuid

        store = TasbVectorStore(
            embedding=self.get_embeddings(), collection_name=f"std-{uuid.uuid4().hex[:12]}"
        )
        yield store
        store.client.delete_collection(store.collection_name)


def test_re_adding_an_id_replaces_its_metadata_instead_of_merging(store: TasbVectorStore) -> None:
    # Chroma's upsert merges metadata keys and keeps old ones when given None.
    store.add_texts(["v1"], [{"a": 1, "b": 2}], ids=["x"])
    store.add_texts(["v2"], [{"a": 3}], ids=["x"])
    assert store.get_by_ids(["x"])[0].metadata == {"a": 3}
    store.add_texts(["v3"], None, ids=["x"])
    [doc] = store.get_by_ids(["x"])
    assert (doc.page_content, doc.metadata) == ("v3", {})


def test_store_without_embedding_opens_with_the_recorded_model(
    tiny_embeddings: TasbEmbeddings,
    tiny_model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    db = str(tmp_path / "db")
    TasbVectorStore(embedding=tiny_embeddings, collection_name="docs", persist_directory=db)
    monkeypatch.delenv("TASB_MODEL", raising=False)
    with caplog.at_level(logging.INFO, logger="langchain_tasb"):
        store = TasbVectorStore(collection_name="docs", persist_directory=db)
    assert isinstance(store.embeddings, TasbEmbeddings)
    assert store.embeddings.model_name == str(tiny_model_path)
    assert f"using model {tiny_model_path} recorded in collection docs" in caplog.messages
    assert store.similarity_search("a", k=1) == []
