"""Agent toolchain over MCP: LangChain tools loaded from `tasb mcp`, then a tool-calling loop.

The same loop as ``examples/agent_tool.py``, with the retriever behind the Model Context
Protocol: ``langchain-mcp-adapters`` spawns ``tasb mcp`` over stdio and turns its ``search``,
``fetch`` and ``collection_info`` tools into LangChain tools. Runs offline: the chat model is
LangChain's ``GenericFakeChatModel``, scripted to call ``search`` once and then answer. With a
real chat model the loop is unchanged (``langchain.agents.create_agent(model, tools)`` runs it
for you).

One environment holds it all: ``pip install 'langchain-tasb[mcp]' langchain-mcp-adapters``
(``tasb mcp`` runs on the MCP SDK 1.x that the adapters need, or 2.x). The index and the server
run through the ``tasb`` command, which ``$TASB_COMMAND`` names (default ``tasb``); the
embedding model is TAS-B, or the directory in ``$TASB_MODEL``.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools

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


def index_guide(tasb: list[str], folder: Path) -> Path:
    """Write the guide's files under ``folder`` and index them with ``tasb index``."""
    docs, db = folder / "guide", folder / "db"
    docs.mkdir()
    for name, text in GUIDE.items():
        (docs / name).write_text(text, encoding="utf-8")
    subprocess.run([*tasb, "index", str(docs), "--db", str(db)], check=True, cwd=folder)  # noqa: S603
    return db


async def converse(tasb: list[str], db: Path) -> list[BaseMessage]:
    """Spawn ``tasb mcp`` over stdio, load its tools, and run the tool-calling loop."""
    client = MultiServerMCPClient(
        {
            "city_guide": {
                "transport": "stdio",
                "command": tasb[0],
                "args": [*tasb[1:], "mcp", "--db", str(db)],
                "env": dict(os.environ),
                "cwd": str(db.parent),
            }
        }
    )
    # One session for the whole conversation: the server (and its model) starts once.
    async with client.session("city_guide") as session:
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        model = ScriptedChatModel(
            messages=iter(
                [
                    AIMessage(
                        content="",
                        tool_calls=[
                            {"name": "search", "args": {"query": QUESTION, "k": 2}, "id": "call_1"}
                        ],
                    ),
                    AIMessage(content="About 9 million people live in London [1]."),
                ]
            )
        )
        agent = model.bind_tools(list(tools.values()))

        messages: list[BaseMessage] = [HumanMessage(QUESTION)]
        while True:
            reply = await agent.ainvoke(messages)
            messages.append(reply)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                return messages
            for call in reply.tool_calls:
                messages.append(await tools[call["name"]].ainvoke(call))  # a ToolMessage


def main() -> None:
    tasb = shlex.split(os.environ.get("TASB_COMMAND", "tasb"))
    with tempfile.TemporaryDirectory() as tmp:
        db = index_guide(tasb, Path(tmp))
        messages = asyncio.run(converse(tasb, db))
    for message in messages:
        message.pretty_print()


if __name__ == "__main__":
    main()
