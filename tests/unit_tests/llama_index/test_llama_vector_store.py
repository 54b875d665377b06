"""TasbLlamaVectorStore: one collection for LangChain and LlamaIndex, dot scores both ways."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.chroma.collection import Collection, Field
from langchain_tasb.errors import ModelMismatchError
from tests.unit_tests.conftest import run_example

pytest.importorskip("llama_index.core")

from llama_index.core import Document as LlamaDocument
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from langchain_tasb.llama_index import (
    TasbLlamaEmbedding,
    TasbLlamaRetriever,
    TasbLlamaVectorStore,
)
from langchain_tasb.llama_index.nodes import to_where

if TYPE_CHECKING:
    from langchain_core.documents import Document

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "langchain_tasb.cli"]

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "air flow over the wing changes the pressure",
    "the library holds information science papers",
    "blood pressure rises with salt intake",
    "the Thames runs through London",
    "insulin lets cells take up glucose",
]
METAS: list[dict[str, Any]] = [
    {
        "source": f"doc{i}.md",
        "group": i % 2,
        "year": 2000 + i,
        "tags": ["even" if i % 2 == 0 else "odd", f"t{i % 3}"],
    }
    for i in range(len(TEXTS))
]
QUERY = "How many people live in London?"
# The five keys LlamaIndex's own stores add, which LangChain would hand back as metadata.
LLAMA_KEYS = {"_node_content", "_node_type", "doc_id", "document_id", "ref_doc_id"}


@pytest.fixture
def lc_store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbVectorStore:
    """A collection written by LangChain."""
    store = TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name)
    store.add_texts(TEXTS, METAS, ids=[f"id{i}" for i in range(len(TEXTS))])
    return store


@pytest.fixture
def embed_model(tiny_embeddings: TasbEmbeddings) -> TasbLlamaEmbedding:
    return TasbLlamaEmbedding(embeddings=tiny_embeddings)


@pytest.fixture
def llama_store(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbLlamaVectorStore:
    """An empty collection opened from LlamaIndex."""
    return TasbLlamaVectorStore(collection_name=collection_name, embedding=tiny_embeddings)


def _records(gateway: Collection) -> dict[str, tuple[str, dict[str, Any] | None]]:
    include: list[Field] = ["documents", "metadatas"]
    return {
        hit.id: (hit.text, hit.metadata)
        for page in gateway.scan(include=include)
        for hit in page.hits()
    }


def _langchain(store: TasbVectorStore, k: int = 4, **fields: Any) -> list[tuple[str, float]]:
    docs = TasbRetriever(vectorstore=store, k=k, **fields).invoke(QUERY)
    return [(str(d.id), d.metadata["score"]) for d in docs]


def _query(
    store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding, k: int = 4, **fields: Any
) -> list[tuple[str, float]]:
    query = VectorStoreQuery(
        query_embedding=embed_model.get_query_embedding(QUERY), similarity_top_k=k, **fields
    )
    result = store.query(query)
    assert result.ids is not None and result.similarities is not None
    return list(zip(result.ids, result.similarities, strict=True))


def _llama_documents() -> list[LlamaDocument]:
    return [
        LlamaDocument(
            text=f"{TEXTS[i]}. {TEXTS[i + 1]}.",
            doc_id=f"book{i}",
            metadata={"source": f"book{i}.md", "group": i % 2},
        )
        for i in range(0, len(TEXTS), 2)
    ]


def _llama_index(store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(
        _llama_documents(),
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=24, chunk_overlap=0)],
    )


# ------------------------------------------------ LangChain writes, LlamaIndex reads


def test_from_vector_store_matches_tasb_retriever(
    lc_store: TasbVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    index = VectorStoreIndex.from_vector_store(
        TasbLlamaVectorStore(vectorstore=lc_store), embed_model=embed_model
    )
    nodes = index.as_retriever(similarity_top_k=5).retrieve(QUERY)
    assert [(n.node.node_id, n.score) for n in nodes] == _langchain(lc_store, k=5)
    scale = lc_store.relevance_scale
    for n in nodes:
        assert isinstance(n.node, TextNode)
        i = int(n.node.node_id.removeprefix("id"))
        assert n.node.get_content(metadata_mode=MetadataMode.NONE) == TEXTS[i]
        assert n.node.metadata == {
            **METAS[i],
            "score": n.score,
            "relevance": pytest.approx(scale.relevance(float(n.score or 0.0))),
        }
        # Scores stay out of what an LLM is shown and what is embedded.
        for mode in (MetadataMode.LLM, MetadataMode.EMBED):
            content = n.node.get_content(metadata_mode=mode)
            assert "relevance" not in content and "source: doc" in content


def test_opened_by_connection_fields_and_a_llama_embedding(
    tiny_embeddings: TasbEmbeddings, embed_model: TasbLlamaEmbedding, tmp_path: Path
) -> None:
    writer = TasbVectorStore(
        embedding=tiny_embeddings, collection_name="shared", persist_directory=str(tmp_path)
    )
    writer.add_texts(TEXTS, METAS)
    store = TasbLlamaVectorStore(
        collection_name="shared", persist_directory=str(tmp_path), embedding=embed_model
    )
    assert store.core.encoder is tiny_embeddings
    assert _query(store, embed_model, k=3) == _langchain(writer, k=3)


def test_tasb_index_collection_reads_as_text_nodes(
    tiny_model_path: Path, tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i, text in enumerate(TEXTS[:4]):
        (folder / f"n{i}.md").write_text(text + "\n", encoding="utf-8")
    db, model = tmp_path / "db", str(tiny_model_path)
    subprocess.run(
        [*CLI, "index", str(folder), "--db", str(db), "--collection", "notes", "--model", model],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    store = TasbLlamaVectorStore(
        collection_name="notes", persist_directory=str(db), embedding=tiny_embeddings
    )
    nodes = store.get_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="source", value="n0.md")])
    )
    assert [type(n) for n in nodes] == [TextNode]
    assert nodes[0].get_content().endswith(TEXTS[0])
    assert nodes[0].metadata["source"] == "n0.md"
    assert not any(key.startswith("_tasb_") for key in nodes[0].metadata)


# ------------------------------------------------ LlamaIndex writes, LangChain reads


def test_llama_written_collection_reads_clean_in_langchain_same_ranking(
    llama_store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    index = _llama_index(llama_store, embed_model)
    lc = TasbVectorStore(
        embedding=llama_store.core.encoder,  # type: ignore[arg-type]
        collection_name=llama_store.core.collection_name,
        client=llama_store.client,
    )
    llama = [
        (n.node.node_id, n.score) for n in index.as_retriever(similarity_top_k=4).retrieve(QUERY)
    ]
    assert llama == _langchain(lc, k=4)
    docs: list[Document] = TasbRetriever(vectorstore=lc, k=100).invoke(QUERY)
    nodes = {n.node_id: n for n in llama_store.get_nodes([str(d.id) for d in docs])}
    assert len(docs) == len(nodes) > len(_llama_documents())  # split into several nodes each
    for doc in docs:
        assert set(doc.metadata) == {"source", "group", "score", "relevance"}
        assert not set(doc.metadata) & LLAMA_KEYS
        assert doc.page_content == nodes[str(doc.id)].get_content(metadata_mode=MetadataMode.NONE)
    for doc in lc.get_by_ids([str(d.id) for d in docs]):
        assert set(doc.metadata) == {"source", "group"}
    # What LlamaIndex needs came back: source document, neighbours, offsets.
    for node in nodes.values():
        assert node.ref_doc_id in {d.doc_id for d in _llama_documents()}
        assert node.ref_doc_id == f"book{2 * (int(node.metadata['source'][4:-3]) // 2)}"
        assert node.start_char_idx is not None and node.end_char_idx is not None
    assert any(NodeRelationship.NEXT in n.relationships for n in nodes.values())


def test_tasb_search_json_shows_user_metadata_only(
    tiny_model_path: Path,
    tiny_embeddings: TasbEmbeddings,
    embed_model: TasbLlamaEmbedding,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from langchain_tasb.cli import main

    db = str(tmp_path / "db")
    store = TasbLlamaVectorStore(
        collection_name="books", persist_directory=db, embedding=embed_model
    )
    _llama_index(store, embed_model)
    common = ["--db", db, "--collection", "books", "--model", str(tiny_model_path)]
    capsys.readouterr()  # drop what indexing printed
    assert main(["search", QUERY, "-k", "3", "--json", *common]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results) == 3
    assert all(set(r["metadata"]) == {"source", "group"} for r in results)


def test_node_round_trips_through_the_collection(
    llama_store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    node = TextNode(
        id_="n1",
        text="Around 9 Million people live in London",
        metadata={"source": "a.md", "page": 3},
        excluded_llm_metadata_keys=["page"],
        relationships={
            NodeRelationship.SOURCE: RelatedNodeInfo(node_id="book"),
            NodeRelationship.NEXT: RelatedNodeInfo(node_id="n2"),
        },
        start_char_idx=0,
        end_char_idx=38,
        metadata_template="{key}={value}",
    )
    plain = TextNode(id_="n2", text="London is known for its financial district")
    assert llama_store.add([node, plain]) == ["n1", "n2"]
    got, got_plain = llama_store.get_nodes(["n1", "n2"])
    assert got.model_dump(exclude={"embedding"}) == node.model_dump(exclude={"embedding"})
    assert got_plain.model_dump(exclude={"embedding"}) == plain.model_dump(exclude={"embedding"})
    # A plain node is stored exactly as LangChain would store it.
    raw = {hit.id: hit.metadata for hit in llama_store.core.store.get(["n1", "n2"])}
    assert raw["n2"] is None
    assert set(raw["n1"] or {}) == {"source", "page", "_tasb_llama_node", "_tasb_ref_doc_id"}


# ------------------------------------------------------------------ writing


def test_add_upserts_and_is_batched(
    llama_store: TasbLlamaVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import langchain_tasb.collection as module

    monkeypatch.setattr(module, "WRITE_SLICE", 3)
    writes: list[int] = []
    gateway = llama_store.core.store
    original = gateway.upsert

    def counting(ids: Any, *args: Any, **kwargs: Any) -> None:
        writes.append(len(ids))
        original(ids, *args, **kwargs)

    monkeypatch.setattr(gateway, "upsert", counting)
    nodes = [TextNode(id_=f"n{i}", text=t, metadata={"v": 1}) for i, t in enumerate(TEXTS)]
    assert llama_store.add(nodes) == [f"n{i}" for i in range(len(TEXTS))]
    assert writes == [3, 3, 2]
    again = [TextNode(id_="n0", text="changed text", metadata={"w": 2}), nodes[0]]
    llama_store.add([*again, TextNode(id_="n0", text="last wins", metadata={"w": 3})])
    assert gateway.count() == len(TEXTS)
    (n0,) = llama_store.get_nodes(["n0"])
    assert (n0.get_content(), n0.metadata) == ("last wins", {"w": 3})  # old key "v" gone


def test_nodes_without_embeddings_are_embedded_as_llama_index_would(
    llama_store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    node = TextNode(id_="a", text=TEXTS[0], metadata={"source": "a.md"})
    llama_store.add([node])
    expected = np.dot(
        embed_model.get_text_embedding(node.get_content(metadata_mode=MetadataMode.EMBED)),
        embed_model.get_query_embedding(QUERY),
    )
    ((_, dot),) = _query(llama_store, embed_model, k=1)
    assert dot == pytest.approx(float(expected), rel=1e-4)


def test_embeddings_from_another_model_are_refused(
    llama_store: TasbLlamaVectorStore, other_model_path: Path, wide_model_path: Path
) -> None:
    for path, match in (
        (other_model_path, "does not produce"),
        (wide_model_path, "48-dimensional"),
    ):
        other = TasbLlamaEmbedding(embeddings=TasbEmbeddings(model_name=str(path), device="cpu"))
        node = TextNode(id_="x", text=TEXTS[0])
        node.embedding = other.get_text_embedding(
            node.get_content(metadata_mode=MetadataMode.EMBED)
        )
        with pytest.raises(ModelMismatchError, match=match):
            llama_store.add([node])
    assert llama_store.core.store.count() == 0
    with pytest.raises(ValueError, match="48 dimensions"):
        llama_store.query(VectorStoreQuery(query_embedding=[0.0] * 48, similarity_top_k=1))


def test_reserved_metadata_keys_are_refused(llama_store: TasbLlamaVectorStore) -> None:
    with pytest.raises(ValueError, match=r"_tasb_x.*reserved"):
        llama_store.add([TextNode(id_="a", text="t", metadata={"_tasb_x": 1})])
    for key in ("score", "relevance", "fused_score", "bm25_score"):
        with pytest.raises(ValueError, match=rf"\['{key}'\].*set on query results"):
            llama_store.add([TextNode(id_="a", text="t", metadata={key: 1})])
    assert llama_store.get_nodes() == []


def test_ingestion_pipeline_twice_writes_nothing_new(
    llama_store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=24, chunk_overlap=0), embed_model],
        vector_store=llama_store,
    )
    first = pipeline.run(documents=_llama_documents())
    gateway = llama_store.core.store
    stored = _records(gateway)
    assert len(stored) == len(first) > len(_llama_documents())
    second = pipeline.run(documents=_llama_documents())
    assert {n.node_id for n in second} == set(stored)  # the same ids come back ...
    assert _records(gateway) == stored  # ... upserted


# ------------------------------------------------------------------ deleting and reading


def test_delete_by_ref_doc_id_nodes_and_clear(
    llama_store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    _llama_index(llama_store, embed_model)
    gateway = llama_store.core.store
    total = gateway.count()
    in_book0 = llama_store.get_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="source", value="book0.md")])
    )
    assert in_book0 and all(n.ref_doc_id == "book0" for n in in_book0)
    llama_store.delete("book0")
    assert gateway.count() == total - len(in_book0)
    assert llama_store.get_nodes([n.node_id for n in in_book0]) == []
    some = llama_store.get_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="source", value="book2.md")])
    )
    llama_store.delete_nodes([some[0].node_id])
    assert gateway.count() == total - len(in_book0) - 1
    llama_store.delete_nodes(
        filters=MetadataFilters(filters=[MetadataFilter(key="source", value="book2.md")])
    )
    assert (
        llama_store.get_nodes(
            filters=MetadataFilters(filters=[MetadataFilter(key="source", value="book2.md")])
        )
        == []
    )
    with pytest.raises(ValueError, match="clear"):
        llama_store.delete_nodes()
    llama_store.clear()
    assert gateway.count() == 0
    # The collection and its model record stay: it takes writes and queries again.
    llama_store.add([TextNode(id_="again", text=TEXTS[0])])
    assert [pair[0] for pair in _query(llama_store, embed_model, k=2)] == ["again"]


async def test_async_twins_equal_sync(
    tiny_embeddings: TasbEmbeddings, embed_model: TasbLlamaEmbedding
) -> None:
    import uuid

    stores = [
        TasbLlamaVectorStore(collection_name=f"a-{uuid.uuid4().hex[:8]}", embedding=tiny_embeddings)
        for _ in range(2)
    ]
    nodes = [
        TextNode(
            id_=f"n{i}",
            text=t,
            metadata=METAS[i],
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"d{i % 2}")},
        )
        for i, t in enumerate(TEXTS)
    ]
    assert stores[0].add(nodes) == await stores[1].async_add(nodes)
    query = VectorStoreQuery(
        query_embedding=embed_model.get_query_embedding(QUERY), similarity_top_k=3
    )
    sync, asynchronous = stores[0].query(query), await stores[1].aquery(query)
    assert (sync.ids, sync.similarities) == (asynchronous.ids, asynchronous.similarities)
    mmr = VectorStoreQuery(
        query_embedding=query.query_embedding, similarity_top_k=3, mode=VectorStoreQueryMode.MMR
    )
    assert stores[0].query(mmr).ids == (await stores[1].aquery(mmr)).ids
    assert (
        [n.node_id for n in stores[0].get_nodes(["n3", "n1"])]
        == [n.node_id for n in await stores[1].aget_nodes(["n3", "n1"])]
        == ["n3", "n1"]
    )
    stores[0].delete("d0")
    await stores[1].adelete("d0")
    stores[0].delete_nodes(["n1"])
    await stores[1].adelete_nodes(["n1"])
    counts = [s.core.store.count() for s in stores]
    assert counts == [len(TEXTS) // 2 - 1] * 2
    await stores[1].aclear()
    assert stores[1].core.store.count() == 0


# ------------------------------------------------------------------ querying


def _f(key: str, value: Any, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


FILTER_CASES = [
    (MetadataFilters(filters=[_f("group", 1)]), {"group": {"$eq": 1}}),
    (MetadataFilters(filters=[_f("group", 1, FilterOperator.NE)]), {"group": {"$ne": 1}}),
    (MetadataFilters(filters=[_f("year", 2004, FilterOperator.GT)]), {"year": {"$gt": 2004}}),
    (MetadataFilters(filters=[_f("year", 2004, FilterOperator.GTE)]), {"year": {"$gte": 2004}}),
    (MetadataFilters(filters=[_f("year", 2003, FilterOperator.LT)]), {"year": {"$lt": 2003}}),
    (MetadataFilters(filters=[_f("year", 2003, FilterOperator.LTE)]), {"year": {"$lte": 2003}}),
    (
        MetadataFilters(filters=[_f("source", ["doc1.md", "doc6.md"], FilterOperator.IN)]),
        {"source": {"$in": ["doc1.md", "doc6.md"]}},
    ),
    (
        MetadataFilters(filters=[_f("source", ["doc0.md", "doc6.md"], FilterOperator.NIN)]),
        {"source": {"$nin": ["doc0.md", "doc6.md"]}},
    ),
    (
        MetadataFilters(filters=[_f("tags", "t0", FilterOperator.CONTAINS)]),
        {"tags": {"$contains": "t0"}},
    ),
    (
        MetadataFilters(filters=[_f("tags", ["t1", "t2"], FilterOperator.ANY)]),
        {"$or": [{"tags": {"$contains": "t1"}}, {"tags": {"$contains": "t2"}}]},
    ),
    (
        MetadataFilters(filters=[_f("tags", ["odd", "t0"], FilterOperator.ALL)]),
        {"$and": [{"tags": {"$contains": "odd"}}, {"tags": {"$contains": "t0"}}]},
    ),
    (
        MetadataFilters(filters=[_f("group", 0), _f("year", 2003, FilterOperator.GT)]),
        {"$and": [{"group": {"$eq": 0}}, {"year": {"$gt": 2003}}]},
    ),
    (
        MetadataFilters(
            filters=[_f("source", "doc3.md"), _f("year", 2006, FilterOperator.GTE)],
            condition=FilterCondition.OR,
        ),
        {"$or": [{"source": {"$eq": "doc3.md"}}, {"year": {"$gte": 2006}}]},
    ),
    (
        MetadataFilters(
            filters=[
                _f("group", 1),
                MetadataFilters(
                    filters=[_f("year", 2001), _f("year", 2007)], condition=FilterCondition.OR
                ),
            ]
        ),
        {
            "$and": [
                {"group": {"$eq": 1}},
                {"$or": [{"year": {"$eq": 2001}}, {"year": {"$eq": 2007}}]},
            ]
        },
    ),
]


@pytest.mark.parametrize(("filters", "where"), FILTER_CASES)
def test_filters_match_the_equivalent_chroma_where(
    lc_store: TasbVectorStore,
    embed_model: TasbLlamaEmbedding,
    filters: MetadataFilters,
    where: dict[str, Any],
) -> None:
    assert to_where(filters) == where
    expected = _langchain(lc_store, k=len(TEXTS), filter=where)
    assert 0 < len(expected) < len(TEXTS)  # the filter keeps some and drops some
    store = TasbLlamaVectorStore(vectorstore=lc_store)
    assert _query(store, embed_model, k=len(TEXTS), filters=filters) == expected
    retriever = TasbLlamaRetriever(
        vectorstore=lc_store, similarity_top_k=len(TEXTS), filters=filters
    )
    assert [(n.node.node_id, n.score) for n in retriever.retrieve(QUERY)] == expected


def test_filters_chroma_cannot_express_are_refused() -> None:
    with pytest.raises(ValueError, match="'not' has no Chroma equivalent"):
        to_where(MetadataFilters(filters=[_f("a", 1)], condition=FilterCondition.NOT))
    with pytest.raises(ValueError, match="TEXT_MATCH on 'a' has no Chroma equivalent"):
        to_where(MetadataFilters(filters=[_f("a", "x", FilterOperator.TEXT_MATCH)]))
    with pytest.raises(ValueError, match="value None"):
        to_where(MetadataFilters(filters=[_f("a", None)]))
    assert to_where(MetadataFilters(filters=[])) is None


def test_retriever_takes_llama_index_names(lc_store: TasbVectorStore) -> None:
    retriever = TasbLlamaRetriever(vectorstore=lc_store, similarity_top_k=2)
    assert retriever.retriever.settings.k == 2
    with pytest.raises(TypeError, match="similarity_top_k= or k="):
        TasbLlamaRetriever(vectorstore=lc_store, similarity_top_k=2, k=3)
    with pytest.raises(TypeError, match="filters= or filter="):
        TasbLlamaRetriever(vectorstore=lc_store, filters=None, filter={"group": 1})
    with pytest.raises(TypeError, match="MetadataFilters"):
        TasbLlamaRetriever(vectorstore=lc_store, filters={"group": 1})
    # The store and the retriever open a collection the same way: a vectorstore or its fields.
    with pytest.raises(TypeError, match=r"not both \(got vectorstore and \['collection_name'\]"):
        TasbLlamaRetriever(vectorstore=lc_store, collection_name="other")


def test_mmr_mode_matches_tasb_retriever_mmr(
    lc_store: TasbVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    store = TasbLlamaVectorStore(vectorstore=lc_store)
    expected = _langchain(lc_store, k=3, search_type="mmr", fetch_k=8, lambda_mult=0.2)
    assert expected != _langchain(lc_store, k=3)  # diversity changed the picks
    got = _query(store, embed_model, k=3, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.2)
    assert got == _langchain(lc_store, k=3, search_type="mmr", fetch_k=12, lambda_mult=0.2)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
    retriever = index.as_retriever(
        similarity_top_k=3,
        vector_store_query_mode="mmr",
        vector_store_kwargs={"mmr_threshold": 0.2, "mmr_prefetch_k": 8},
    )
    assert [(n.node.node_id, n.score) for n in retriever.retrieve(QUERY)] == expected


def test_node_ids_and_doc_ids_narrow_the_search(
    llama_store: TasbLlamaVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    _llama_index(llama_store, embed_model)
    everything = _query(llama_store, embed_model, k=100)
    picked = [everything[-1][0], everything[1][0]]
    assert _query(llama_store, embed_model, k=5, node_ids=picked) == [everything[1], everything[-1]]
    in_books = {n.node_id for n in llama_store.get_nodes() if n.ref_doc_id in ("book2", "book6")}
    got = _query(llama_store, embed_model, k=100, doc_ids=["book2", "book6"])
    assert got == [pair for pair in everything if pair[0] in in_books]
    assert 0 < len(got) < len(everything)
    # LlamaIndex passes empty lists to mean "no restriction".
    assert _query(llama_store, embed_model, k=100, node_ids=[], doc_ids=[]) == everything


def test_query_refuses_what_it_cannot_do(
    lc_store: TasbVectorStore, embed_model: TasbLlamaEmbedding
) -> None:
    store = TasbLlamaVectorStore(vectorstore=lc_store)
    vector = embed_model.get_query_embedding(QUERY)
    with pytest.raises(ValueError, match=r"'hybrid' is not supported.*search_type='hybrid'"):
        store.query(VectorStoreQuery(query_embedding=vector, mode=VectorStoreQueryMode.HYBRID))
    with pytest.raises(TypeError, match=r"Unknown query arguments \['alpha_x'\]"):
        store.query(VectorStoreQuery(query_embedding=vector), alpha_x=1)
    with pytest.raises(ValueError, match="similarity_top_k must be a positive integer, got 0"):
        store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=0))
    # Without an embedding, the query text is embedded by the collection's model.
    by_text = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=4))
    assert list(zip(by_text.ids or [], by_text.similarities or [], strict=True)) == _langchain(
        lc_store
    )
    with pytest.raises(TypeError, match="not both"):
        TasbLlamaVectorStore(vectorstore=lc_store, collection_name="other")


@pytest.mark.skipif(
    "create_collection_if_not_exists" not in inspect.signature(TasbVectorStore).parameters,
    reason="needs TasbVectorStore(create_collection_if_not_exists=...) from the open-only change",
)
def test_open_only_raises_collection_not_found_and_creates_nothing(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    from langchain_tasb.errors import CollectionNotFoundError

    TasbVectorStore(
        embedding=tiny_embeddings, collection_name="docs", persist_directory=str(tmp_path)
    )
    with pytest.raises(CollectionNotFoundError, match=r"'dcos'.*docs"):
        TasbLlamaVectorStore(
            collection_name="dcos",
            persist_directory=str(tmp_path),
            embedding=tiny_embeddings,
            create_collection_if_not_exists=False,
        )
    store = TasbLlamaVectorStore(
        collection_name="docs",
        persist_directory=str(tmp_path),
        embedding=tiny_embeddings,
        create_collection_if_not_exists=False,
    )
    assert [c.name for c in store.client.list_collections()] == ["docs"]


# ------------------------------------------------------------------ the example


def test_llama_index_example_runs_against_the_tiny_model(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    result = run_example("llama_index_rag.py", tiny_model_path, tmp_path)
    out = result.stdout
    assert "Q: How many people live in London?" in out
    sources = out.split("sources:\n", 1)[1].strip().splitlines()
    assert len(sources) == 2
    dots = [float(line.split()[0]) for line in sources]
    assert dots == sorted(dots, reverse=True)
    assert all(0.0 <= float(line.split()[1]) <= 1.0 for line in sources)
    names = [line.split()[2] for line in sources]
    assert set(names) <= {"population.md", "finance.md", "transport.md"}
    # MockLLM echoes its prompt: the retrieved notes reached the LLM.
    texts = {
        "population.md": "Around 9 Million people live in London.",
        "finance.md": "London is known for its financial district, the City.",
        "transport.md": "The Underground carries about five million passengers a day.",
    }
    assert all(texts[name] in out.split("sources:")[0] for name in names)
    # The same ranking as the LangChain retriever on the collection tasb index wrote.
    emb = TasbEmbeddings(model_name=str(tiny_model_path), device="cpu")
    lc = TasbRetriever(
        collection_name="notes", persist_directory=str(tmp_path / "tasb_db"), embedding=emb, k=2
    ).invoke("How many people live in London?")
    assert [d.metadata["source"] for d in lc] == names
    assert [d.metadata["score"] for d in lc] == pytest.approx(dots, abs=1e-3)


def test_readme_llama_index_snippet_runs(
    tiny_model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (snippet,) = [b for b in blocks if "TasbLlamaVectorStore(" in b]
    monkeypatch.setenv("TASB_MODEL", str(tiny_model_path))
    monkeypatch.chdir(tmp_path)
    emb = TasbEmbeddings(device="cpu")
    store = TasbVectorStore(embedding=emb, collection_name="docs", persist_directory="./tasb_db")
    store.add_texts(TEXTS[:3])
    exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102  (our own README)
    lines = capsys.readouterr().out.strip().splitlines()
    expected = TasbRetriever(vectorstore=store, k=2).invoke(QUERY)
    assert [line.split(maxsplit=2)[2] for line in lines] == [d.page_content for d in expected]
    dots = [float(line.split()[0]) for line in lines]
    assert dots == pytest.approx([d.metadata["score"] for d in expected], abs=1e-3)
