from __future__ import annotations

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore

pytest.importorskip("llama_index.core")

from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, QueryBundle

from langchain_tasb.llama_index import TasbLlamaEmbedding, TasbLlamaRetriever

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "air flow over the wing changes the pressure",
    "the library holds information science papers",
    "blood pressure rises with salt intake",
]
QUERY = "How many people live in London?"


@pytest.fixture
def store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbVectorStore:
    s = TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)
    s.add_texts(TEXTS, [{"source": f"doc{i}.md", "group": i % 2} for i in range(len(TEXTS))])
    return s


def _expected(store: TasbVectorStore, **fields: object) -> list[tuple[str, float]]:
    docs = TasbRetriever(vectorstore=store, **fields).invoke(QUERY)  # type: ignore[arg-type]
    return [(str(d.id), d.metadata["score"]) for d in docs]


def test_embedding_uses_separate_query_and_document_paths_without_normalising(
    tiny_embeddings: TasbEmbeddings,
) -> None:
    embed_model = TasbLlamaEmbedding(embeddings=tiny_embeddings)
    assert embed_model.model_name == tiny_embeddings.model_name
    query = embed_model.get_query_embedding(QUERY)
    assert query == pytest.approx(tiny_embeddings.embed_query(QUERY))
    assert abs(float(np.linalg.norm(query)) - 1.0) > 1e-3  # TAS-B-style: not normalised
    batch = embed_model.get_text_embedding_batch(TEXTS)
    assert np.allclose(batch, tiny_embeddings.embed_documents(TEXTS), atol=1e-5)
    assert embed_model.get_text_embedding(TEXTS[0]) == pytest.approx(batch[0], abs=1e-5)


async def test_embedding_async_paths_match_sync(tiny_embeddings: TasbEmbeddings) -> None:
    embed_model = TasbLlamaEmbedding(embeddings=tiny_embeddings)
    query = await embed_model.aget_query_embedding(QUERY)
    assert query == pytest.approx(embed_model.get_query_embedding(QUERY), abs=1e-5)
    texts = await embed_model.aget_text_embedding_batch(TEXTS[:3])
    assert np.allclose(texts, embed_model.get_text_embedding_batch(TEXTS[:3]), atol=1e-5)


def test_retrieve_matches_tasb_retriever_ids_order_and_scores(store: TasbVectorStore) -> None:
    retriever = TasbLlamaRetriever(vectorstore=store, k=4)
    nodes = retriever.retrieve(QueryBundle(query_str=QUERY))
    assert [(n.node.node_id, n.score) for n in nodes] == _expected(store, k=4)
    for n in nodes:
        assert n.node.metadata["relevance"] == pytest.approx(
            store.relevance_scale.relevance(n.node.metadata["score"])
        )
        assert n.node.metadata["source"].startswith("doc")
        # Scores stay out of what an LLM is shown.
        assert "relevance" not in n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "source" in n.node.get_content(metadata_mode=MetadataMode.LLM)


def test_query_engine_with_mock_llm_uses_the_retrieved_nodes(store: TasbVectorStore) -> None:
    retriever = TasbLlamaRetriever(TasbRetriever(vectorstore=store, k=3, filter={"group": 1}))
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query(QUERY)
    got = [(n.node.node_id, n.score) for n in response.source_nodes]
    assert got == _expected(store, k=3, filter={"group": 1})
    assert {n.node.metadata["group"] for n in response.source_nodes} == {1}
    # MockLLM echoes its prompt: the retrieved texts reached the LLM.
    assert all(n.node.get_content() in str(response) for n in response.source_nodes)


async def test_async_retrieve_and_hybrid_search(store: TasbVectorStore) -> None:
    retriever = TasbLlamaRetriever(vectorstore=store, k=3, search_type="hybrid")
    nodes = await retriever.aretrieve(QUERY)
    expected = TasbRetriever(vectorstore=store, k=3, search_type="hybrid").invoke(QUERY)
    assert [n.node.node_id for n in nodes] == [d.id for d in expected]
    assert [n.score for n in nodes] == [d.metadata["score"] for d in expected]
    assert all("fused_score" in n.node.metadata for n in nodes)


def test_retriever_refuses_both_a_retriever_and_fields(store: TasbVectorStore) -> None:
    with pytest.raises(TypeError, match="either retriever= or TasbRetriever fields"):
        TasbLlamaRetriever(TasbRetriever(vectorstore=store), k=2)
