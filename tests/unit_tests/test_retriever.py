from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_tasb import CollectionNotFoundError, TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.chroma import collection_names, connect
from langchain_tasb.collection import content_id

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "air flow over the wing changes the pressure",
    "the library holds information science papers",
    "blood pressure rises with salt intake",
]


@pytest.fixture
def store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbVectorStore:
    s = TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)
    s.add_texts(TEXTS, [{"source": f"doc{i}.md", "group": i % 2} for i in range(len(TEXTS))])
    return s


def test_documents_carry_id_dot_score_and_relevance(store: TasbVectorStore) -> None:
    emb = store.embeddings
    docs = TasbRetriever(vectorstore=store, k=3).invoke("How many people live in London?")
    q = np.asarray(emb.embed_query("How many people live in London?"))
    assert len(docs) == 3
    for doc in docs:
        assert doc.id
        [stored] = store.get_by_ids([doc.id])
        v = np.asarray(emb.embed_documents([stored.page_content])[0])
        assert doc.metadata["score"] == pytest.approx(float(q @ v), rel=1e-5)
        assert doc.metadata["relevance"] == pytest.approx(
            store.relevance_scale.relevance(doc.metadata["score"])
        )
        assert doc.metadata["source"] == stored.metadata["source"]
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_invoke_kwargs_override_fields_for_one_call(store: TasbVectorStore) -> None:
    retriever = TasbRetriever(vectorstore=store, k=4)
    assert len(retriever.invoke("london", k=2)) == 2
    filtered = retriever.invoke("london", filter={"group": 1})
    assert {d.metadata["group"] for d in filtered} == {1}
    assert len(filtered) == 3
    contains = retriever.invoke("london", where_document={"$contains": "London"})
    assert {d.page_content for d in contains} == {TEXTS[0], TEXTS[1]}
    assert len(retriever.invoke("london")) == 4  # the field itself is unchanged


def test_score_threshold_keeps_only_relevant_enough(store: TasbVectorStore) -> None:
    everything = TasbRetriever(vectorstore=store, k=6).invoke("london")
    relevances = sorted(d.metadata["relevance"] for d in everything)
    cut = (relevances[2] + relevances[3]) / 2
    kept = TasbRetriever(
        vectorstore=store, k=6, search_type="similarity_score_threshold", score_threshold=cut
    ).invoke("london")
    assert len(kept) == 3
    assert all(d.metadata["relevance"] >= cut for d in kept)


def test_threshold_search_type_needs_a_threshold(store: TasbVectorStore) -> None:
    with pytest.raises(ValueError, match="needs score_threshold"):
        TasbRetriever(vectorstore=store, search_type="similarity_score_threshold")


def test_mmr_search_type(store: TasbVectorStore) -> None:
    docs = TasbRetriever(vectorstore=store, k=3, search_type="mmr", fetch_k=6).invoke("london")
    assert len(docs) == 3
    assert len({d.id for d in docs}) == 3
    assert all("score" in d.metadata for d in docs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, ValueError, "k must be a positive integer"),
        ({"k": "3"}, ValueError, "k must be a positive integer"),
        ({"search_type": "fuzzy"}, ValueError, "search_type must be one of"),
        ({"bogus": 1}, TypeError, "Unknown search arguments"),
    ],
)
def test_bad_invoke_arguments_are_refused(
    store: TasbVectorStore, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TasbRetriever(vectorstore=store).invoke("london", **kwargs)


def test_opens_existing_collection_from_connection_fields(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    db = str(tmp_path / "tasb_db")
    TasbVectorStore(
        embedding=tiny_embeddings, collection_name="docs", persist_directory=db
    ).add_texts(TEXTS)
    retriever = TasbRetriever(
        collection_name="docs", persist_directory=db, k=3, embedding=tiny_embeddings
    )
    docs = retriever.invoke("London")
    assert len(docs) == 3
    assert retriever.store.store.count() == len(TEXTS)


def test_a_retriever_from_fields_writes_and_reads_its_collection(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    db = str(tmp_path / "tasb_db")
    TasbVectorStore(embedding=tiny_embeddings, collection_name="docs", persist_directory=db)
    retriever = TasbRetriever(
        collection_name="docs", persist_directory=db, k=1, embedding=tiny_embeddings
    )
    assert retriever.invoke("London") == []
    [new_id] = retriever.vectorstore.add_texts(["Around 9 million people live in London"])
    [doc] = retriever.invoke("How many people live in London?")
    assert doc.id == new_id
    assert retriever.store.get_by_ids([new_id])[0].page_content == doc.page_content
    assert retriever.store.delete([new_id])
    assert retriever.invoke("London") == []


def test_default_embedding_comes_from_tasb_model_env(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASB_MODEL", str(tiny_model_path))
    made = TasbEmbeddings(model_name=str(tiny_model_path), device="cpu")
    TasbVectorStore(embedding=made, collection_name="docs", persist_directory=str(tmp_path))
    retriever = TasbRetriever(collection_name="docs", persist_directory=str(tmp_path), k=1)
    assert isinstance(retriever.store.embeddings, TasbEmbeddings)
    assert retriever.store.embeddings.model_name == str(tiny_model_path)


def test_connection_fields_open_and_never_create(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    db = str(tmp_path / "db")
    TasbVectorStore(embedding=tiny_embeddings, collection_name="docs", persist_directory=db)
    with pytest.raises(CollectionNotFoundError) as caught:
        TasbRetriever(collection_name="dcos", persist_directory=db, embedding=tiny_embeddings)
    message = str(caught.value)
    assert "no collection 'dcos'" in message
    assert db in message
    assert "collections there: docs" in message
    with pytest.raises(CollectionNotFoundError, match="no collection 'dcos'"):
        TasbVectorStore(
            embedding=tiny_embeddings,
            collection_name="dcos",
            persist_directory=db,
            create_collection_if_not_exists=False,
        )
    assert collection_names(connect(persist_directory=db)) == ["docs"]  # nothing was created


def test_from_texts_one_liner(tiny_embeddings: TasbEmbeddings) -> None:
    retriever = TasbRetriever.from_texts(
        TEXTS, embedding=tiny_embeddings, k=2, metadatas=[{"i": i} for i in range(len(TEXTS))]
    )
    docs = retriever.invoke("cell protein")
    assert len(docs) == 2
    assert {d.metadata["i"] for d in docs} <= set(range(len(TEXTS)))


def test_from_documents_keeps_given_ids_and_derives_missing(
    tiny_embeddings: TasbEmbeddings,
) -> None:
    docs = [Document("alpha", id="a"), Document("beta")]
    retriever = TasbRetriever.from_documents(docs, embedding=tiny_embeddings, k=2)
    assert {d.id for d in retriever.invoke("alpha")} == {"a", content_id("beta")}


def test_from_documents_takes_ids_given_as_an_argument(tiny_embeddings: TasbEmbeddings) -> None:
    docs = [Document("alpha", id="a"), Document("beta")]
    retriever = TasbRetriever.from_documents(docs, embedding=tiny_embeddings, ids=["x", "y"], k=2)
    assert {d.id for d in retriever.invoke("alpha")} == {"x", "y"}


async def test_ainvoke_matches_invoke(store: TasbVectorStore) -> None:
    retriever = TasbRetriever(vectorstore=store, k=3)
    assert await retriever.ainvoke("london", k=2) == retriever.invoke("london", k=2)


class TestTasbRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[TasbRetriever]:
        return TasbRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"collection_name": _STANDARD[0], "embedding": _STANDARD_EMB[0], "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "London"


_STANDARD: list[str] = [""]
_STANDARD_EMB: list[Any] = [None]


@pytest.fixture(autouse=True)
def _standard_collection(tiny_embeddings: TasbEmbeddings) -> None:
    """The standard suite builds retrievers from params: give them a filled collection."""
    name = f"std-{uuid.uuid4().hex[:12]}"
    TasbVectorStore(embedding=tiny_embeddings, collection_name=name).add_texts(TEXTS)
    _STANDARD[0] = name
    _STANDARD_EMB[0] = tiny_embeddings
