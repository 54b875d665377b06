from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from chromadb.errors import InternalError, InvalidArgumentError, NotFoundError, RateLimitError

from langchain_tasb import ChromaUnavailableError, TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma.retry import RetryPolicy, call_with_retry, is_transient

FAST = RetryPolicy(attempts=4, initial=0.001, maximum=0.002)


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, value: int, *, where: str) -> tuple[int, str]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return value, where


def test_transient_errors_are_retried_until_success() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:1/api")
    flaky = Flaky(
        [
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.HTTPStatusError("boom", request=request, response=httpx.Response(503)),
        ]
    )
    # A keyword named like the wrapper's own arguments passes straight through.
    assert call_with_retry(FAST, "http://x", flaky, 7, where="kw") == (7, "kw")
    assert flaky.calls == 4


@pytest.mark.parametrize(
    "error",
    [
        InvalidArgumentError("bad where"),
        NotFoundError("no collection"),
        InternalError("Collection [x] already exists"),
        ValueError("bad input"),
        httpx.HTTPStatusError(
            "nope",
            request=httpx.Request("GET", "http://x"),
            response=httpx.Response(422),
        ),
    ],
)
def test_client_errors_are_never_retried(error: Exception) -> None:
    flaky = Flaky([error])
    with pytest.raises(type(error)):
        call_with_retry(FAST, "http://x", flaky, 1, where="")
    assert flaky.calls == 1
    assert not is_transient(error)


def test_giving_up_names_the_server() -> None:
    flaky = Flaky([httpx.ConnectError("refused")] * 10)
    with pytest.raises(
        ChromaUnavailableError, match=r"http://127\.0\.0\.1:9 still failing after 4 tries"
    ):
        call_with_retry(FAST, "http://127.0.0.1:9", flaky, 1, where="")
    assert flaky.calls == 4


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = RetryPolicy(attempts=6, initial=0.5, maximum=4.0).delays()
    assert len(delays) == 5
    for got, base in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0], strict=True):
        assert base <= got <= base * 1.1
    assert RetryPolicy(attempts=1).delays() == []


@pytest.mark.parametrize(
    "error",
    [
        httpx.HTTPStatusError(
            "slow down",
            request=httpx.Request("POST", "http://x"),
            response=httpx.Response(429),
        ),
        RateLimitError("too many requests"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.HTTPStatusError(
            "bad gateway",
            request=httpx.Request("POST", "http://x"),
            response=httpx.Response(502),
        ),
    ],
)
def test_rate_limits_cut_connections_and_gateway_errors_are_retried(error: Exception) -> None:
    assert is_transient(error)
    flaky = Flaky([error, error])
    assert call_with_retry(FAST, "http://x", flaky, 3, where="") == (3, "")
    assert flaky.calls == 3


def test_the_deadline_stops_retrying_before_the_attempts_run_out() -> None:
    policy = RetryPolicy(attempts=1000, initial=0.05, maximum=0.05, deadline=0.3)
    flaky = Flaky([httpx.ConnectError("refused\non two lines")] * 1000)
    began = time.monotonic()
    with pytest.raises(ChromaUnavailableError) as caught:
        call_with_retry(policy, "http://127.0.0.1:9", flaky, 1, where="")
    assert time.monotonic() - began < 1.0
    assert 3 <= flaky.calls < 20
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Chroma server at http://127.0.0.1:9 still failing after ")
    assert "ConnectError: refused on two lines" in message


def test_chromas_own_error_is_not_called_unreachable() -> None:
    """An error Chroma answers itself passes through with its reason, on a server or not."""
    once = Flaky([InternalError("too many SQL variables")])
    with pytest.raises(ValueError, match="embedded Chroma at /x answered with an error") as caught:
        call_with_retry(RetryPolicy(attempts=1), "embedded Chroma at /x", once, 1, where="")
    assert "InternalError: too many SQL variables" in str(caught.value)
    assert "reachable" not in str(caught.value)
    assert not isinstance(caught.value, ChromaUnavailableError)
    assert isinstance(caught.value.__cause__, InternalError)

    always = Flaky([InternalError("too many SQL variables")] * 10)
    with pytest.raises(ValueError, match=r"http://127\.0\.0\.1:9 answered with an error on each"):
        call_with_retry(FAST, "http://127.0.0.1:9", always, 1, where="")
    assert always.calls == 4


def test_a_100000_value_in_filter_on_embedded_chroma_says_why_it_failed(
    tiny_embeddings: TasbEmbeddings, tmp_path: Path, collection_name: str
) -> None:
    store = TasbVectorStore(
        embedding=tiny_embeddings, collection_name=collection_name, persist_directory=str(tmp_path)
    )
    store.add_texts(["logs rotate daily", "city population"], [{"source": "a"}, {"source": "b"}])
    values = [f"doc{i}.md" for i in range(100_000)]
    with pytest.raises(ValueError, match="answered with an error") as caught:
        store.similarity_search("logs", k=1, filter={"source": {"$in": values}})
    message = str(caught.value)
    assert f"embedded Chroma at {tmp_path}" in message
    assert "InternalError" in message
    assert "reachable" not in message
    assert len(message) < 600
    assert store.similarity_search("logs", k=1, filter={"source": {"$in": [*values[:10], "a"]}})
