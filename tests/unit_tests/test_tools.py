from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.retrievers import BaseRetriever

from langchain_tasb import TasbEmbeddings, TasbRetriever
from langchain_tasb.tools import format_documents, make_retriever_tool
from tests.unit_tests.conftest import run_example

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
]


@pytest.fixture
def retriever(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbRetriever:
    return TasbRetriever.from_texts(
        TEXTS,
        tiny_embeddings,
        [{"source": "guide.md", "chunk": i} for i in range(len(TEXTS))],
        collection_name=collection_name,
        k=2,
    )


def _call(query: str) -> dict[str, Any]:
    return {"name": "search_docs", "args": {"query": query}, "id": "call_1", "type": "tool_call"}


def test_tool_call_returns_numbered_sources_with_scores_and_the_documents(
    retriever: TasbRetriever,
) -> None:
    tool = make_retriever_tool(retriever, "search_docs", "Search the guide.")
    assert tool.name == "search_docs"
    assert set(tool.args) == {"query"}
    message = tool.invoke(_call("people in London"))
    assert isinstance(message, ToolMessage)
    expected = retriever.invoke("people in London")
    assert [d.id for d in message.artifact] == [d.id for d in expected]
    first, second = expected
    assert message.content == (
        f"[1] guide.md #{first.metadata['chunk']} (score {first.metadata['score']:.1f}, "
        f"relevance {first.metadata['relevance']:.2f})\n{first.page_content}\n\n"
        f"[2] guide.md #{second.metadata['chunk']} (score {second.metadata['score']:.1f}, "
        f"relevance {second.metadata['relevance']:.2f})\n{second.page_content}"
    )


def test_k_overrides_the_retriever_for_each_call(retriever: TasbRetriever) -> None:
    tool = make_retriever_tool(retriever, "search_docs", "Search the guide.", k=3)
    assert len(tool.invoke(_call("London")).artifact) == 3
    assert retriever.k == 2


async def test_async_tool_call(retriever: TasbRetriever) -> None:
    tool = make_retriever_tool(retriever, "search_docs", "Search the guide.", k=1)
    message = await tool.ainvoke(_call("London"))
    assert message.content.startswith("[1] guide.md #")
    assert len(message.artifact) == 1


class _Plain(BaseRetriever):
    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.docs


def test_any_retriever_works_and_labels_fall_back_to_the_id() -> None:
    plain = _Plain(docs=[Document("no metadata here", id="doc-7")])
    tool = make_retriever_tool(plain, "lookup", "Look things up.")
    assert tool.invoke({"query": "x"}) == "[1] doc-7\nno metadata here"
    assert format_documents([]) == "No matching documents."


def test_bad_arguments_are_refused(retriever: TasbRetriever) -> None:
    with pytest.raises(ValueError, match="Tool name"):
        make_retriever_tool(retriever, "search docs", "Search.")
    with pytest.raises(ValueError, match="description is empty"):
        make_retriever_tool(retriever, "search_docs", " ")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        make_retriever_tool(retriever, "search_docs", "Search.", k=0)


def test_agent_example_runs_the_toolchain(tiny_model_path: Path, tmp_path: Path) -> None:
    result = run_example("agent_tool.py", tiny_model_path, tmp_path)
    out = result.stdout
    assert "search_city_guide (call_1)" in out
    assert "Tool Message" in out
    assert "[1] " in out
    assert "[2] " in out
    assert ".md (score " in out
    assert out.rstrip().endswith("About 9 million people live in London [1].")
