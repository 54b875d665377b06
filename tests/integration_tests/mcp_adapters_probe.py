"""Run by test_mcp.py under a Python that has langchain-mcp-adapters (its mcp may be 1.x).

Loads ``tasb mcp``'s tools as LangChain tools over stdio, calls each as a model would, and
prints one JSON object: per query the ToolMessage's text and structured results, the fetch
and collection_info answers, and the status of a bad call. Arguments: the server command
(a JSON list), the queries (a JSON list).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools


def _call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"type": "tool_call", "name": name, "args": args, "id": f"call_{n}"}


async def main(command: list[str], queries: list[str]) -> dict[str, Any]:
    client = MultiServerMCPClient(
        {
            "tasb": {
                "transport": "stdio",
                "command": command[0],
                "args": command[1:],
                "env": dict(os.environ),
            }
        }
    )
    out: dict[str, Any] = {"searches": []}
    async with client.session("tasb") as session:
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        out["tools"] = sorted(tools)
        for n, query in enumerate(queries):
            message = await tools["search"].ainvoke(_call("search", {"query": query, "k": 3}, n))
            out["searches"].append(
                {
                    "text": message.content[0]["text"],
                    "results": message.artifact["structured_content"]["results"],
                }
            )
        first = out["searches"][0]["results"][0]["id"]
        fetched = await tools["fetch"].ainvoke(_call("fetch", {"id": first}, 90))
        out["fetch"] = fetched.artifact["structured_content"]
        info = await tools["collection_info"].ainvoke(_call("collection_info", {}, 91))
        out["info"] = info.artifact["structured_content"]
        bad = await tools["search"].ainvoke(_call("search", {"query": "x", "k": 0}, 92))
        out["bad"] = {"status": bad.status, "text": str(bad.content)}
    return out


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1]), json.loads(sys.argv[2])))
    print(json.dumps(result))
