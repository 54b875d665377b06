"""Running an MCP server over stdio or Streamable HTTP, with a bearer token off loopback.

HTTP binds 127.0.0.1 unless told otherwise. A non-loopback address is refused unless a bearer
token is required; with a token, a request without ``Authorization: Bearer <token>`` gets 401.
The token is compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Receive, Scope, Send

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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


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


class BearerTokenMiddleware:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` get 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            msg = "BearerTokenMiddleware needs a non-empty token"
            raise ValueError(msg)
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an authorised request (and any non-HTTP event) on; answer the rest with 401."""
        if scope["type"] != "http" or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "invalid_token",
                "error_description": "send the server's token as Authorization: Bearer <token>",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="tasb"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                return hmac.compare_digest(value, self._expected)
        return False


def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve over stdin/stdout until the client closes them (:mod:`.stdio`)."""
    from langchain_tasb.mcp_server.stdio import run_stdio

    anyio.run(run_stdio, server)


def serve_http(server: MCPServer[Any], host: str, port: int, *, token: str | None = None) -> None:
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
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    if token:
        app = BearerTokenMiddleware(app, token)
    level = logging.getLogger("langchain_tasb").getEffectiveLevel()
    config = uvicorn.Config(
        app, host=host, port=port, log_level=logging.getLevelName(max(level, logging.INFO)).lower()
    )
    anyio.run(uvicorn.Server(config).serve)
