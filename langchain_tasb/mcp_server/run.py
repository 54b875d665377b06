"""Running an MCP server over stdio or Streamable HTTP, with a bearer token off loopback.

A non-loopback address is refused without a token. Every HTTP request passes
:class:`~.guard.RequestGuard` first (Host/Origin against DNS rebinding, and the token).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from langchain_tasb.mcp_server import sdk
from langchain_tasb.mcp_server.guard import RequestGuard, is_loopback

if TYPE_CHECKING:
    from starlette.types import ASGIApp

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
MCP_PATH = "/mcp"


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``[::1]:PORT`` for IPv6) to ``(host, port)``; the host defaults to loopback.

    Raises:
        ValueError: If the port is not a number from 1 to 65535 or the host is empty.
    """
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text.strip()
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535 or not host:
        msg = f"--http expects [HOST:]PORT, e.g. 8765 or 127.0.0.1:8765, got {text!r}"
        raise ValueError(msg)
    return host, port


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a bearer token.

    Raises:
        ValueError: If ``host`` is not loopback and ``token`` is None or empty.
    """
    if token or is_loopback(host):
        return
    msg = (
        f"refusing to serve on {host}, which other machines can reach, without a bearer token: "
        "put a secret in an environment variable and pass --token-env NAME, or serve on "
        f"{DEFAULT_HOST}"
    )
    raise ValueError(msg)


def serve_stdio(server: sdk.McpServer) -> None:
    """Serve over stdin/stdout until the client closes them (:mod:`.stdio`)."""
    from langchain_tasb.mcp_server.stdio import run_stdio

    anyio.run(run_stdio, server)


def http_app(server: sdk.McpServer, host: str, *, token: str | None = None) -> ASGIApp:
    """The Streamable HTTP app at :data:`MCP_PATH` behind a :class:`~.guard.RequestGuard`.

    The SDK's own Host/Origin check is off: it covers only three exact loopback strings,
    case-sensitively; the guard checks every bound address.
    """
    return RequestGuard(sdk.http_app(server, MCP_PATH, host), host, token)


def serve_http(server: sdk.McpServer, host: str, port: int, *, token: str | None = None) -> None:
    """Serve Streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted.

    Args:
        server: The MCP server.
        host: Address to bind.
        port: Port to bind.
        token: Bearer token every request must carry; required off loopback.

    Raises:
        ValueError: If ``host`` is not loopback and there is no token.
    """
    import uvicorn

    check_exposure(host, token)
    app = http_app(server, host, token=token)
    level = logging.getLogger("langchain_tasb").getEffectiveLevel()
    config = uvicorn.Config(
        app, host=host, port=port, log_level=logging.getLevelName(max(level, logging.INFO)).lower()
    )
    anyio.run(uvicorn.Server(config).serve)
