"""The MCP Python SDK as ``tasb mcp`` uses it, 1.x or 2.x: every import that differs, here.

``langchain-mcp-adapters`` needs ``mcp<2``, so either major version may be installed. The SDK
is imported dynamically so that one module type-checks against both; the server is ``Any``.
"""

from __future__ import annotations

import importlib
import re
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.message import SessionMessage
from mcp.types import CallToolResult, ToolAnnotations

if TYPE_CHECKING:
    from starlette.types import ASGIApp

SDK_VERSION = version("mcp")
SDK_MAJOR = int(SDK_VERSION.split(".")[0])
"""Its major version: 1 (``FastMCP``) or 2 (``MCPServer``)."""
MIN_VERSION = (1, 21, 2)
"""The first SDK whose tools may return ``Annotated[CallToolResult, OutputModel]``."""

if tuple(int(n) for n in re.findall(r"\d+", SDK_VERSION)[:3]) < MIN_VERSION:
    _msg = (
        f"tasb mcp needs the MCP SDK {'.'.join(map(str, MIN_VERSION))} or later, found mcp "
        f"{SDK_VERSION}: pip install 'langchain-tasb[mcp]'"
    )
    raise ImportError(_msg)

_HIGH_LEVEL = "mcp.server.fastmcp" if SDK_MAJOR < 2 else "mcp.server.mcpserver"
_Server: Any = getattr(
    importlib.import_module(_HIGH_LEVEL), "FastMCP" if SDK_MAJOR < 2 else "MCPServer"
)
ToolError: type[Exception] = importlib.import_module(f"{_HIGH_LEVEL}.exceptions").ToolError
"""What a tool raises for an error the agent can fix: sent back as a tool result with isError."""

McpServer = Any
"""The SDK's high-level server (``FastMCP`` or ``MCPServer``)."""


def new_server(name: str, instructions: str) -> McpServer:
    """A high-level server with no tools yet, logging warnings and errors only."""
    return _Server(name=name, instructions=instructions, log_level="WARNING")


def read_only() -> ToolAnnotations:
    """Tool annotations: read-only, idempotent, closed world."""
    return ToolAnnotations.model_validate(
        {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False}
    )


def tool_result(text: str, structured: dict[str, Any]) -> CallToolResult:
    """A tool's answer: ``text`` for models that read text, ``structured`` for the schema."""
    return CallToolResult.model_validate(
        {"content": [{"type": "text", "text": text}], "structuredContent": structured}
    )


def lowlevel_server(server: McpServer) -> Any:
    """The SDK's low-level server inside ``server`` (``run`` and initialization options)."""
    return getattr(server, "_mcp_server" if SDK_MAJOR < 2 else "_lowlevel_server")


def http_app(server: McpServer, path: str, host: str) -> ASGIApp:
    """The SDK's Streamable HTTP app at ``path``, its Host/Origin check off (the caller guards)."""
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if SDK_MAJOR < 2:
        server.settings.streamable_http_path = path
        server.settings.transport_security = security
        app: ASGIApp = server.streamable_http_app()
        return app
    app = server.streamable_http_app(
        streamable_http_path=path, host=host, transport_security=security
    )
    return app


_types: Any = importlib.import_module("mcp.types")


def read_message(line: str) -> SessionMessage:
    """A line of JSON-RPC as the session takes it; ValueError if it is not one."""
    if SDK_MAJOR < 2:
        return SessionMessage(_types.JSONRPCMessage.model_validate_json(line))
    return SessionMessage(_types.jsonrpc_message_adapter.validate_json(line, by_name=False))


def message_line(item: SessionMessage) -> str:
    """A session's message as a line of JSON, as the SDK's stdio transport writes it."""
    old = SDK_MAJOR < 2
    return (
        item.message.model_dump_json(by_alias=True, exclude_none=old, exclude_unset=not old) + "\n"
    )


def jsonrpc_message(item: Any) -> Any:
    """The JSON-RPC message a session item carries (1.x wraps it in a root model), or None."""
    message = item.message if isinstance(item, SessionMessage) else None
    return getattr(message, "root", message)
