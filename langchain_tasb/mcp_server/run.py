"""Running an MCP server over Streamable HTTP behind a :class:`RequestGuard`.

A non-loopback address is refused without a bearer token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from langchain_tasb.mcp_server import sdk

if TYPE_CHECKING:
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


def check_exposure(host: str, token: str | None) -> None:
    """Raise ValueError if ``host`` is not loopback and ``token`` is None or empty."""
    if token or is_loopback(host):
        return
    msg = (
        f"refusing to serve on {host}, which other machines can reach, without a bearer token: "
        "put a secret in an environment variable and pass --token-env NAME, or serve on "
        f"{DEFAULT_HOST}"
    )
    raise ValueError(msg)


def http_app(server: sdk.McpServer, host: str, *, token: str | None = None) -> ASGIApp:
    """The Streamable HTTP app at :data:`MCP_PATH` behind a :class:`RequestGuard`.

    The SDK's own Host/Origin check is off: it covers only three exact loopback strings,
    case-sensitively; the guard checks every bound address.
    """
    return RequestGuard(sdk.http_app(server, MCP_PATH, host), host, token)


def serve_http(server: sdk.McpServer, host: str, port: int, *, token: str | None = None) -> None:
    """Serve Streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted.

    Every request must carry ``token`` as a bearer token; ValueError without one off loopback.
    """
    import uvicorn

    check_exposure(host, token)
    app = http_app(server, host, token=token)
    level = logging.getLogger("langchain_tasb").getEffectiveLevel()
    config = uvicorn.Config(
        app, host=host, port=port, log_level=logging.getLevelName(max(level, logging.INFO)).lower()
    )
    anyio.run(uvicorn.Server(config).serve)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    name = _canonical(host)
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _canonical(host: str) -> str:
    """``host`` lower-cased, without brackets or a trailing dot; an IP address compressed."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name


def _host_of(header: str) -> str:
    """The host part of a ``Host`` header: ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``."""
    value = header.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() else value


class RequestGuard:
    """ASGI middleware refusing requests from elsewhere (DNS rebinding, other hosts' callers).

    * 421 to a ``Host`` neither the bound address nor loopback, unless bound to a wildcard
      (``0.0.0.0``, ``::``; a token is required there);
    * 403 to an ``Origin`` whose host is neither, token or not (agents send no ``Origin``);
    * 401 without ``Authorization: Bearer <token>`` when a token is set (compared in
      constant time, never echoed).

    Names compare case-insensitively and IP addresses by value.
    """

    def __init__(self, app: ASGIApp, host: str, token: str | None = None) -> None:
        self.app = app
        self._host = _canonical(host)
        self._any_host = self._host in ("0.0.0.0", "::")  # noqa: S104 - compared, not bound
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an allowed request (and any non-HTTP event) on; answer the rest."""
        refusal = None
        if scope["type"] == "http":
            headers = {name.lower(): value for name, value in reversed(scope.get("headers", ()))}
            refusal = self._refusal(headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, error, description = refusal
        logger.warning("refused an HTTP request: %s", description)
        body = json.dumps({"error": error, "error_description": description}).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            response_headers.append((b"www-authenticate", b'Bearer realm="tasb"'))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, host: str) -> bool:
        return _canonical(host) == self._host or is_loopback(host)

    def _refusal(self, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._any_host and not self._allowed(_host_of(host)):
            return 421, "invalid_host", "the Host header names neither this server nor loopback"
        origin = headers.get(b"origin")
        if origin is not None:
            name = urlsplit(origin.decode("latin-1")).hostname
            if name is None or not self._allowed(name):
                return 403, "invalid_origin", "requests from this Origin are not allowed"
        if self._token is None:
            return None
        scheme, _, credentials = headers.get(b"authorization", b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
            credentials.strip(b" "), self._token
        ):
            return 401, "invalid_token", "send the server's token as Authorization: Bearer <token>"
        return None
