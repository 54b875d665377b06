"""The one search: settings checks, scores, and every sync/async path agreeing with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.search import SearchSettings, search

if TYPE_CHECKING:
    from langchain_core.documents import Document

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "air flow over the wing changes the pressure",
    "the library holds information science papers",
    "blood pressure rises with salt intake",
    "logrotate rotates the logs on a daily schedule",
]
QUERY = "How many people live in London?"


@pytest.fixture
def store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbVectorStore:
    s = TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)
    s.add_texts(TEXTS, [{"source": f"doc{i}.md", "group": i % 2} for i in range(len(TEXTS))])
    return s


def middle_relevance(store: TasbVectorStore) -> float:
    """A relevance threshold that keeps the 3 best of the 7 hits of QUERY."""
    relevances = sorted(h.relevance for h in search(store, SearchSettings(k=7), query=QUERY))
    return (relevances[3] + relevances[4]) / 2


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"k": 0}, ValueError, "k must be a positive integer, got 0"),
        ({"k": True}, ValueError, "k must be a positive integer, got True"),
        ({"k": "3"}, ValueError, "k must be a positive integer, got '3'"),
        ({"fetch_k": -1}, ValueError, "fetch_k must be a positive integer, got -1"),
        ({"search_type": "fuzzy"}, ValueError, "search_type must be one of .* got 'fuzzy'"),
        (
            {"search_type": "similarity_score_threshold"},
            ValueError,
            "needs score_threshold",
        ),
        ({"score_threshold": 1.5}, ValueError, "score_threshold must be a number from 0 to 1"),
        ({"score_threshold": float("nan")}, ValueError, "score_threshold must be a number"),
        ({"lambda_mult": -0.1}, ValueError, "lambda_mult must be a number from 0 to 1"),
        ({"alpha": 2}, ValueError, "alpha must be a number from 0 to 1, got 2"),
        ({"fusion": "max"}, ValueError, "fusion must be one of .* got 'max'"),
        ({"filter": "source=a.md"}, TypeError, "filter must be a dict"),
        ({"where_document": ["London"]}, TypeError, "where_document must be a dict"),
    ],
)
def test_settings_refuse_bad_values_saying_which(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SearchSettings(**options)


def test_unknown_options_are_named() -> None:
    with pytest.raises(TypeError, match=r"Unknown search arguments \['top_k'\]"):
        SearchSettings.from_options("similarity", top_k=3)
    settings = SearchSettings.from_options("mmr", k=3, fetch_k=9)
    assert (settings.search_type, settings.k, settings.fetch_k) == ("mmr", 3, 9)


def test_vector_store_methods_refuse_unknown_arguments(store: TasbVectorStore) -> None:
    with pytest.raises(TypeError, match=r"Unknown search arguments \['wher'\]"):
        store.similarity_search("london", k=2, wher={"group": 1})


# -- the search -------------------------------------------------------------------------------


def test_hits_carry_exact_dot_score_and_calibrated_relevance(store: TasbVectorStore) -> None:
    emb = store.embeddings
    hits = search(store, SearchSettings(k=7), query=QUERY)
    q = np.asarray(emb.embed_query(QUERY))
    vectors = emb.embed_documents(TEXTS)
    expected = {t: float(q @ np.asarray(v)) for t, v in zip(TEXTS, vectors, strict=True)}
    assert [h.text for h in hits] == sorted(TEXTS, key=lambda t: -expected[t])
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.text], rel=1e-5)
        assert hit.relevance == store.relevance_scale.relevance(hit.score)
        assert hit.metadata["source"] == f"doc{TEXTS.index(hit.text)}.md"
        assert (hit.fused_score, hit.bm25_score) == (None, None)
        assert set(hit.scores()) == {"score", "relevance"}


def test_by_vector_equals_by_query(store: TasbVectorStore) -> None:
    vector = store.embeddings.embed_query(QUERY)
    for settings in (SearchSettings(k=3), SearchSettings("mmr", k=3, fetch_k=7)):
        assert search(store, settings, vector=vector) == search(store, settings, query=QUERY)


def test_threshold_drops_hits_below_it_for_every_search_type(store: TasbVectorStore) -> None:
    cut = middle_relevance(store)
    kept = search(
        store, SearchSettings("similarity_score_threshold", k=7, score_threshold=cut), query=QUERY
    )
    assert len(kept) == 3
    assert all(h.relevance >= cut for h in kept)
    diverse = search(store, SearchSettings("mmr", k=7, score_threshold=cut), query=QUERY)
    assert {h.id for h in diverse} == {h.id for h in kept}


def test_search_needs_a_query_or_a_vector(store: TasbVectorStore) -> None:
    with pytest.raises(ValueError, match="needs a query or a vector"):
        search(store, SearchSettings())


def test_hybrid_hits_carry_fused_and_bm25_scores(store: TasbVectorStore) -> None:
    hits = search(store, SearchSettings("hybrid", k=3), query="logrotate")
    assert hits[0].text == TEXTS[6]
    assert hits[0].bm25_score is not None and hits[0].bm25_score > 0
    assert set(hits[0].scores()) == {"score", "relevance", "fused_score", "bm25_score"}
    fused = [h.fused_score for h in hits]
    assert fused == sorted(fused, reverse=True)
    for hit in hits:
        assert hit.relevance == store.relevance_scale.relevance(hit.score)
    vector = store.embeddings.embed_query("logrotate")
    with pytest.raises(ValueError, match="needs the query text"):
        search(store, SearchSettings("hybrid"), vector=vector)


# -- every sync method and its async twin -----------------------------------------------------


def _pairs(
    store: TasbVectorStore, cut: float
) -> list[tuple[str, Any, Any, tuple[Any, ...], dict[str, Any]]]:
    vector = store.embeddings.embed_query(QUERY)
    calls: list[tuple[str, Any, Any, tuple[Any, ...], dict[str, Any]]] = [
        ("similarity_search", store.similarity_search, store.asimilarity_search, (QUERY, 3), {}),
        (
            "similarity_search_with_score",
            store.similarity_search_with_score,
            store.asimilarity_search_with_score,
            (QUERY, 3),
            {"filter": {"group": 1}},
        ),
        (
            "similarity_search_by_vector",
            store.similarity_search_by_vector,
            store.asimilarity_search_by_vector,
            (vector, 3),
            {},
        ),
        (
            "similarity_search_by_vector_with_score",
            store.similarity_search_by_vector_with_score,
            store.asimilarity_search_by_vector_with_score,
            (vector, 3),
            {},
        ),
        (
            "similarity_search_with_relevance_scores",
            store.similarity_search_with_relevance_scores,
            store.asimilarity_search_with_relevance_scores,
            (QUERY, 7),
            {},
        ),
        (
            "similarity_search_with_relevance_scores(threshold)",
            store.similarity_search_with_relevance_scores,
            store.asimilarity_search_with_relevance_scores,
            (QUERY, 7),
            {"score_threshold": cut},
        ),
        (
            "max_marginal_relevance_search",
            store.max_marginal_relevance_search,
            store.amax_marginal_relevance_search,
            (QUERY, 3),
            {"fetch_k": 7, "lambda_mult": 0.2},
        ),
        (
            "max_marginal_relevance_search_by_vector",
            store.max_marginal_relevance_search_by_vector,
            store.amax_marginal_relevance_search_by_vector,
            (vector, 3),
            {"fetch_k": 7, "lambda_mult": 0.2},
        ),
        ("search(similarity)", store.search, store.asearch, (QUERY, "similarity"), {"k": 3}),
        ("search(mmr)", store.search, store.asearch, (QUERY, "mmr"), {"k": 3, "fetch_k": 7}),
        (
            "search(similarity_score_threshold)",
            store.search,
            store.asearch,
            (QUERY, "similarity_score_threshold"),
            {"k": 7, "score_threshold": cut},
        ),
        ("search(hybrid)", store.search, store.asearch, (QUERY, "hybrid"), {"k": 3}),
    ]
    return calls


def _key(result: Document | tuple[Document, float]) -> tuple[Any, ...]:
    if isinstance(result, tuple):
        doc, value = result
        return (doc.id, doc.page_content, doc.metadata, value)
    return (result.id, result.page_content, result.metadata)


async def test_every_async_method_returns_what_its_sync_twin_returns(
    store: TasbVectorStore,
) -> None:
    cut = middle_relevance(store)
    for name, sync, async_, args, kwargs in _pairs(store, cut):
        expected = [_key(r) for r in sync(*args, **kwargs)]
        got = [_key(r) for r in await async_(*args, **kwargs)]
        assert got == expected, name
        assert expected, name


async def test_relevance_paths_agree_with_the_retriever_and_the_base_class(
    store: TasbVectorStore,
) -> None:
    cut = middle_relevance(store)
    retrieved = TasbRetriever(vectorstore=store, k=7).invoke(QUERY)
    by_id = {d.id: d.metadata["relevance"] for d in retrieved}
    relevant = await store.asimilarity_search_with_relevance_scores(QUERY, k=7)
    assert [(d.id, r) for d, r in relevant] == [(d.id, by_id[d.id]) for d in retrieved]
    # LangChain's own default, which maps similarity_search_with_score through
    # _select_relevance_score_fn, gives the same relevance.
    base = VectorStore._similarity_search_with_relevance_scores(store, QUERY, k=7)
    assert [(d.id, r) for d, r in base] == [(d.id, r) for d, r in relevant]
    kept = await store.asearch(QUERY, "similarity_score_threshold", k=7, score_threshold=cut)
    assert [d.id for d in kept] == [d.id for d in retrieved if by_id[d.id] >= cut]
    assert len(kept) == 3


@pytest.mark.parametrize(
    ("search_type", "search_kwargs"),
    [
        ("similarity", {"k": 3}),
        ("mmr", {"k": 3, "fetch_k": 7}),
        ("similarity_score_threshold", {"k": 7, "score_threshold": None}),
    ],
)
async def test_langchain_vector_store_retriever_async_equals_sync(
    store: TasbVectorStore, search_type: str, search_kwargs: dict[str, Any]
) -> None:
    if "score_threshold" in search_kwargs:
        search_kwargs = {**search_kwargs, "score_threshold": middle_relevance(store)}
    retriever = VectorStoreRetriever(
        vectorstore=store, search_type=search_type, search_kwargs=search_kwargs
    )
    synced = retriever.invoke(QUERY)
    assert await retriever.ainvoke(QUERY) == synced
    assert len(synced) == 3


async def test_as_retriever_async_equals_sync_with_scores(store: TasbVectorStore) -> None:
    cut = middle_relevance(store)
    retriever = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"k": 7, "score_threshold": cut}
    )
    synced = retriever.invoke(QUERY)
    assert await retriever.ainvoke(QUERY) == synced
    assert len(synced) == 3
    assert all(d.metadata["relevance"] >= cut for d in synced)
