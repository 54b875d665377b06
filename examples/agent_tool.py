"""Agent toolchain: a chat model calls the retriever tool, then answers from cited sources.

Runs offline: the chat model is LangChain's ``GenericFakeChatModel``, scripted to call the
tool once and then answer. With a real chat model (``ChatOpenAI``, ``ChatAnthropic``, ...)
the loop below is unchanged, and ``langchain.agents.create_agent(model, tools=[tool])`` runs
the same loop for you. The embedding model is TAS-B, or the directory in ``$TASB_MODEL``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_tasb import TasbRetriever
from langchain_tasb.tools import make_retriever_tool

GUIDE = {
    "population.md": "Around 9 Million people live in London",
    "finance.md": "London is known for its financial district",
    "transport.md": "The Underground carries about five million passengers a day",
}
QUESTION = "How many people live in London?"


class ScriptedChatModel(GenericFakeChatModel):
    """A fake chat model that accepts tools the way real ones do."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:  # noqa: D102
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


def main() -> None:
    retriever = TasbRetriever.from_texts(
        list(GUIDE.values()), metadatas=[{"source": name} for name in GUIDE], k=2
    )
    tool = make_retriever_tool(
        retriever,
        "search_city_guide",
        "Search the London city guide. Use it for facts about London; cite sources as [n].",
    )
    model = ScriptedChatModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[{"name": tool.name, "args": {"query": QUESTION}, "id": "call_1"}],
                ),
                AIMessage(content="About 9 million people live in London [1]."),
            ]
        )
    )
    agent = model.bind_tools([tool])
    tools = {tool.name: tool}

    messages: list[BaseMessage] = [HumanMessage(QUESTION)]
    while True:
        reply = agent.invoke(messages)
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            break
        for call in reply.tool_calls:
            messages.append(tools[call["name"]].invoke(call))  # a ToolMessage
    for message in messages:
        message.pretty_print()


if __name__ == "__main__":
    main()
