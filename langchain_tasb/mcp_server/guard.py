"""Who may talk to ``tasb mcp --http``: the Host and Origin a request names, and its token.

Against DNS rebinding (a web page whose name resolves to loopback) and other hosts' callers.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)


def canonical_host(host: str) -> str:
    """``host`` lower-cased, without brackets or a trailing dot; an IP address compressed."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    name = canonical_host(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def is_wildcard(host: str) -> bool:
    """Whether ``host`` binds every address of the machine (``0.0.0.0``, ``::``)."""
    try:
        return ipaddress.ip_address(canonical_host(host)).is_unspecified
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host part of a ``Host`` header: ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``."""
    value = header.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() else value


class RequestGuard:
    """ASGI middleware answering requests from elsewhere with an error.

    * 421 to a ``Host`` neither the bound address nor loopback, unless bound to a wildcard
      (``0.0.0.0``, ``::``; a token is required there);
    * 403 to an ``Origin`` whose host is neither, token or not (agents send no ``Origin``);
    * 401 without ``Authorization: Bearer <token>`` when a token is set (compared in
      constant time, never echoed).

    Names compare case-insensitively and IP addresses by value.
    """

    def __init__(self, app: ASGIApp, host: str, token: str | None = None) -> None:
        self.app = app
        self._host = canonical_host(host)
        self._any_host = is_wildcard(host)
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an allowed request (and any non-HTTP event) on; answer the rest."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
        name = canonical_host(host)
        return name == self._host or is_loopback(name)

    def _refusal(self, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._any_host and not self._allowed(host_of(host)):
            return 421, "invalid_host", "the Host header names neither this server nor loopback"
        origin = headers.get(b"origin")
        if origin is not None:
            name = urlsplit(origin.decode("latin-1")).hostname
            if name is None or not self._allowed(name):
                return 403, "invalid_origin", "requests from this Origin are not allowed"
        if self._token is not None and not self._authorized(headers.get(b"authorization")):
            return 401, "invalid_token", "send the server's token as Authorization: Bearer <token>"
        return None

    def _authorized(self, value: bytes | None) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = (value or b"").strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            credentials.strip(b" "), self._token
        )
