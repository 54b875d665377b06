"""Auth headers reach a real Chroma server, through an HTTP proxy that demands them."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.cli import main
from langchain_tasb.cli.common import HEADERS_ENV_VAR

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOKEN = "s3cr3t-t0ken"  # noqa: S105  (a made-up token the output must never show)
BEARER = f"Bearer {TOKEN}"
BASIC = "Basic " + base64.b64encode(f"alice:{TOKEN}".encode()).decode()
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class AuthProxy:
    """An HTTP proxy on 127.0.0.1 that forwards to Chroma only requests with the right header.

    Other requests get 401, as from a reverse proxy guarding the server.
    """

    def __init__(self, upstream: str, authorization: str) -> None:
        target = urlsplit(upstream)
        self.authorization = authorization
        self.seen: list[str | None] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                got = self.headers.get("Authorization")
                proxy.seen.append(got)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if got != proxy.authorization:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection(target.hostname or "", target.port, 30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body or None, headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bearer_proxy(chroma_server: str) -> Iterator[AuthProxy]:
    proxy = AuthProxy(chroma_server, BEARER)
    yield proxy
    proxy.close()


@pytest.fixture
def basic_proxy(chroma_server: str) -> Iterator[AuthProxy]:
    proxy = AuthProxy(chroma_server, BASIC)
    yield proxy
    proxy.close()


@pytest.mark.server
def test_retriever_and_store_send_the_header_and_never_show_it(
    bearer_proxy: AuthProxy, tiny_embeddings: TasbEmbeddings, collection_name: str
) -> None:
    where = {"host": "127.0.0.1", "port": bearer_proxy.port, "collection_name": collection_name}
    store = TasbVectorStore(embedding=tiny_embeddings, headers={"Authorization": BEARER}, **where)  # type: ignore[arg-type]
    store.add_texts(["the logs rotate daily", "the protein binds the cell"], ids=["a", "b"])
    retriever = TasbRetriever(embedding=tiny_embeddings, headers={"Authorization": BEARER}, **where)  # type: ignore[arg-type]
    assert sorted(str(d.id) for d in retriever.invoke("logs", k=2)) == ["a", "b"]
    assert set(bearer_proxy.seen) == {BEARER}
    for shown in (
        repr(retriever),
        str(retriever),
        repr(store),
        retriever.model_dump_json(exclude={"vectorstore", "client", "embedding"}),
    ):
        assert TOKEN not in shown


@pytest.mark.server
def test_cli_reads_headers_from_the_environment(
    bearer_proxy: AuthProxy,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("To rotate the logs, run logrotate daily.")
    url = f"http://127.0.0.1:{bearer_proxy.port}"
    common = ["--chroma-url", url, "--collection", "envauth", "--model", tiny_embeddings.model_name]
    monkeypatch.setenv(HEADERS_ENV_VAR, f"Authorization={BEARER}")
    caplog.set_level(logging.DEBUG)
    assert main(["index", str(docs), *common]) == 0
    indexed = capsys.readouterr()
    assert main(["search", "logs", "--json", *common]) == 0
    found = capsys.readouterr()
    assert json.loads(found.out)["results"][0]["source"] == "guide.md"
    assert set(bearer_proxy.seen) == {BEARER}
    shown = indexed.out + indexed.err + found.out + found.err + caplog.text
    assert TOKEN not in shown


@pytest.mark.server
def test_cli_sends_url_user_info_as_basic_auth_and_never_prints_it(
    basic_proxy: AuthProxy,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv(HEADERS_ENV_VAR, raising=False)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("To rotate the logs, run logrotate daily.")
    url = f"http://alice:{TOKEN}@127.0.0.1:{basic_proxy.port}"
    common = [
        "--chroma-url",
        url,
        "--collection",
        "basicauth",
        "--model",
        tiny_embeddings.model_name,
    ]
    caplog.set_level(logging.DEBUG)
    assert main(["index", str(docs), *common]) == 0
    assert main(["info", *common]) == 0
    assert main(["info", "--json", *common]) == 0
    assert main(["info", "--chroma-url", url, "--collection", "nope"]) == 2
    out, err = capsys.readouterr()
    assert f"at http://***@127.0.0.1:{basic_proxy.port}" in out
    assert f'"server": "http://***@127.0.0.1:{basic_proxy.port}"' in out
    assert "no collection 'nope'" in err
    assert set(basic_proxy.seen) == {BASIC}
    assert TOKEN not in out + err + caplog.text
    assert BASIC.split()[1] not in out + err + caplog.text


@pytest.mark.server
def test_an_unreachable_server_with_user_info_is_named_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.DEBUG)
    url = f"http://alice:{TOKEN}@127.0.0.1:{port}"
    assert main(["info", "--chroma-url", url]) == 2
    out, err = capsys.readouterr()
    assert f"127.0.0.1:{port}" in err
    assert TOKEN not in out + err + caplog.text


@pytest.mark.server
def test_a_refused_header_is_reported_with_a_hint_and_without_the_token(
    bearer_proxy: AuthProxy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(HEADERS_ENV_VAR, f"Authorization=Bearer wrong-{TOKEN}")
    url = f"http://127.0.0.1:{bearer_proxy.port}"
    assert main(["info", "--chroma-url", url]) == 2
    err = capsys.readouterr().err
    assert f"the Chroma server at {url} refused the client" in err
    assert HEADERS_ENV_VAR in err
    assert TOKEN not in err
    assert bearer_proxy.seen == [f"Bearer wrong-{TOKEN}"]
