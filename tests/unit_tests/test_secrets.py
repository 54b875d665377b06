"""Auth headers stay out of repr, str and serialisation; the CLI keeps them out of its output."""

from __future__ import annotations

import argparse
import base64
import json
from typing import TYPE_CHECKING, Any

import chromadb
import pytest
from langchain_core.load import dumpd
from pydantic import SecretStr

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore
from langchain_tasb.cli import main
from langchain_tasb.cli.common import (
    HEADERS_ENV_VAR,
    add_store_options,
    redact_url,
    server_settings,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TOKEN = "s3cr3t-t0ken"  # noqa: S105  (a made-up token the output must never show)
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Chroma-Token": TOKEN}


def _renderings(obj: Any) -> dict[str, Callable[[], str]]:
    out: dict[str, Callable[[], str]] = {
        "repr": lambda: repr(obj),
        "str": lambda: str(obj),
        "dumpd": lambda: json.dumps(dumpd(obj), default=repr),
    }
    if hasattr(obj, "model_dump"):
        out["model_dump"] = lambda: repr(obj.model_dump())
        out["model_dump_json"] = lambda: obj.model_dump_json(
            exclude={"vectorstore", "client", "embedding"}
        )
    return out


@pytest.fixture
def retriever(tiny_embeddings: TasbEmbeddings, collection_name: str) -> TasbRetriever:
    client = chromadb.EphemeralClient()
    # Built from connection fields, a retriever opens and never creates: create it first.
    TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name, client=client)
    return TasbRetriever(
        client=client,
        collection_name=collection_name,
        embedding=tiny_embeddings,
        headers=HEADERS,
    )


def test_retriever_headers_never_show_the_token(retriever: TasbRetriever) -> None:
    for how, render in _renderings(retriever).items():
        text = render()
        assert TOKEN not in text, how
    assert "Authorization" in repr(retriever)  # the header names still show
    for how, render in _renderings(retriever.store).items():
        assert TOKEN not in render(), f"TasbVectorStore {how}"


def test_retriever_headers_keep_their_values_for_the_client(retriever: TasbRetriever) -> None:
    assert retriever.headers is not None
    assert all(isinstance(value, SecretStr) for value in retriever.headers.values())
    revealed = {
        k: v.get_secret_value() for k, v in retriever.headers.items() if isinstance(v, SecretStr)
    }
    assert revealed == HEADERS


def test_llama_retriever_never_shows_the_token(
    tiny_embeddings: TasbEmbeddings, collection_name: str
) -> None:
    pytest.importorskip("llama_index.core")
    from langchain_tasb.llama_index import TasbLlamaRetriever

    client = chromadb.EphemeralClient()
    TasbVectorStore(embedding=tiny_embeddings, collection_name=collection_name, client=client)
    llama = TasbLlamaRetriever(
        client=client,
        collection_name=collection_name,
        embedding=tiny_embeddings,
        headers=HEADERS,
    )
    for how, render in _renderings(llama).items():
        assert TOKEN not in render(), how
    assert TOKEN not in repr(vars(llama))


# -- the CLI ----------------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_store_options(parser)
    return parser.parse_args(argv)


def test_headers_come_from_the_environment_and_header_options_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HEADERS_ENV_VAR, f"Authorization=Bearer {TOKEN}\nx-team=search\n")
    args = _parse("--chroma-url", "http://db.example:8001", "--header", "X-Team=ops")
    host, port, ssl, headers = server_settings(args)
    assert (host, port, ssl) == ("db.example", 8001, False)
    assert headers == {"Authorization": f"Bearer {TOKEN}", "X-Team": "ops"}


def test_a_malformed_header_is_refused_without_echoing_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HEADERS_ENV_VAR, f"Authorization: Bearer {TOKEN}")
    with pytest.raises(ValueError, match=HEADERS_ENV_VAR) as env_error:
        server_settings(_parse("--chroma-url", "http://db.example"))
    assert TOKEN not in str(env_error.value)
    monkeypatch.delenv(HEADERS_ENV_VAR)
    args = _parse("--chroma-url", "http://db.example", "--header", f"Authorization: {TOKEN}")
    with pytest.raises(ValueError, match="--header expects KEY=VALUE") as option_error:
        server_settings(args)
    assert TOKEN not in str(option_error.value)


def test_url_user_info_becomes_basic_auth_and_is_never_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(HEADERS_ENV_VAR, raising=False)
    url = f"https://alice:{TOKEN}@db.example/"
    host, port, ssl, headers = server_settings(_parse("--chroma-url", url))
    assert (host, port, ssl) == ("db.example", 443, True)
    basic = base64.b64encode(f"alice:{TOKEN}".encode()).decode()
    assert headers == {"Authorization": f"Basic {basic}"}
    assert redact_url(url) == "https://***@db.example/"
    assert redact_url("http://db.example:8000") == "http://db.example:8000"


def test_url_user_info_and_an_authorization_header_conflict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(HEADERS_ENV_VAR, raising=False)
    args = _parse("--chroma-url", f"http://alice:{TOKEN}@db.example", "--header", "authorization=x")
    with pytest.raises(ValueError, match="user info") as error:
        server_settings(args)
    assert TOKEN not in str(error.value)


def test_a_bad_url_with_user_info_is_refused_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://alice:{TOKEN}@db.example:notaport"
    assert main(["info", "--chroma-url", url]) == 2
    captured = capsys.readouterr()
    assert "invalid port" in captured.err
    assert "***@db.example" in captured.err
    assert TOKEN not in captured.out + captured.err


def test_help_names_the_headers_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert HEADERS_ENV_VAR in capsys.readouterr().out
