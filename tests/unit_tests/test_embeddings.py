from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from transformers import AutoModel, AutoTokenizer

from langchain_tasb import DEFAULT_MODEL_NAME, TasbEmbeddings
from langchain_tasb.encoding.selection import default_model_name

# The standard suites read their parameters from a property, which cannot take fixtures;
# an autouse fixture fills this in from the session's tiny model before each test.
_STANDARD_MODEL: list[str] = [""]


@pytest.fixture(autouse=True)
def _standard_model(tiny_model_path: Path) -> None:
    _STANDARD_MODEL[0] = str(tiny_model_path)


TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
]


def raw_cls(model_path: Path, texts: list[str], max_length: int) -> np.ndarray:
    """CLS vectors straight from transformers, bypassing sentence-transformers."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.no_grad():
        return model(**batch).last_hidden_state[:, 0].numpy()


def test_embed_documents_equals_cls_of_raw_transformer(
    tiny_embeddings: TasbEmbeddings, tiny_model_path: Path
) -> None:
    ours = np.asarray(tiny_embeddings.embed_documents(TEXTS))
    expected = raw_cls(tiny_model_path, TEXTS, max_length=256)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_embed_query_equals_cls_of_raw_transformer(
    tiny_embeddings: TasbEmbeddings, tiny_model_path: Path
) -> None:
    query = "How many people live in London?"
    expected = raw_cls(tiny_model_path, [query], max_length=64)[0]
    np.testing.assert_allclose(tiny_embeddings.embed_query(query), expected, rtol=1e-4, atol=1e-4)


def test_tasb_style_vectors_are_not_normalised(tiny_embeddings: TasbEmbeddings) -> None:
    norms = np.linalg.norm(np.asarray(tiny_embeddings.embed_documents(TEXTS)), axis=1)
    assert tiny_embeddings.similarity == "dot"
    assert not np.allclose(norms, 1.0, atol=1e-2)
    assert norms.max() - norms.min() > 1e-3  # not a constant norm either


def test_model_description_reads_pooling_and_similarity(tiny_embeddings: TasbEmbeddings) -> None:
    info = tiny_embeddings.info
    assert (info.pooling, info.normalized, info.similarity) == ("cls", False, "dot")
    assert tiny_embeddings.dimension == 32


def test_cosine_model_is_detected_and_returns_unit_vectors(minilm_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(minilm_path), device="cpu")
    assert emb.similarity == "cosine"
    assert emb.info.pooling == "mean"
    vectors = np.asarray(emb.embed_documents(TEXTS))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similarity_override_normalises_a_dot_model(tiny_model_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), similarity_override="cosine")
    vectors = np.asarray(emb.embed_documents(TEXTS))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_query_and_document_limits_are_separate(tiny_model_path: Path) -> None:
    long_text = " ".join(["london"] * 100)
    emb = TasbEmbeddings(
        model_name=str(tiny_model_path), query_max_tokens=8, document_max_tokens=100
    )
    as_query = np.asarray(emb.embed_query(long_text))
    as_doc = np.asarray(emb.embed_documents([long_text])[0])
    np.testing.assert_allclose(as_query, raw_cls(tiny_model_path, [long_text], 8)[0], atol=1e-4)
    np.testing.assert_allclose(as_doc, raw_cls(tiny_model_path, [long_text], 100)[0], atol=1e-4)
    assert not np.allclose(as_query, as_doc, atol=1e-3)


def test_truncation_warns_once_per_call_and_counts(
    tiny_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), document_max_tokens=16)
    long_text = "people live in london " * 10  # 40 word tokens
    with caplog.at_level(logging.WARNING, logger="langchain_tasb"):
        emb.embed_documents([long_text, "short", long_text])
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1
    assert "2 of 3" in warnings[0].getMessage()
    assert emb.truncated_count == 2
    emb.embed_documents(["short again", long_text])
    assert emb.truncated_count == 3


def test_text_exactly_at_the_limit_is_not_counted_as_truncated(tiny_model_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), document_max_tokens=7)
    emb.embed_documents(["people live in london city"])  # 5 tokens + [CLS] + [SEP] = 7
    assert emb.truncated_count == 0
    emb.embed_documents(["people live in london city too"])
    assert emb.truncated_count == 1


def test_query_cache_returns_same_vector_without_encoding(
    tiny_model_path: Path, encode_calls: Callable[[TasbEmbeddings], list[Any]]
) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), query_cache_size=2)
    first = emb.embed_query("london")
    calls = encode_calls(emb)
    again = emb.embed_query("london")
    again[0] = 1e9  # mutating a returned vector must not poison the cache
    assert emb.embed_query("london") == first
    assert calls == []
    emb.embed_query("paris")
    emb.embed_query("rome")  # evicts "london" (LRU of size 2)
    emb.embed_query("london")
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", None], r"texts\[1\] must be str, got NoneType"),
        (["ok", b"bytes"], r"texts\[1\] must be str, got bytes; decode it first"),
        ([1.5], r"texts\[0\] must be str, got float"),
        ("a single string", r"got a single str; wrap it"),
        (None, r"must be a list of str, got NoneType"),
    ],
)
def test_bad_document_input_names_position_and_type(
    tiny_embeddings: TasbEmbeddings, texts: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        tiny_embeddings.embed_documents(texts)


def test_bad_query_input_is_refused(tiny_embeddings: TasbEmbeddings) -> None:
    with pytest.raises(TypeError, match="query must be str, got bytes"):
        tiny_embeddings.embed_query(b"x")  # type: ignore[arg-type]


def test_empty_list_returns_empty(tiny_embeddings: TasbEmbeddings) -> None:
    assert tiny_embeddings.embed_documents([]) == []


def test_model_name_defaults_to_env_then_tasb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASB_MODEL", raising=False)
    assert TasbEmbeddings().model_name == DEFAULT_MODEL_NAME
    assert DEFAULT_MODEL_NAME == "sentence-transformers/msmarco-distilbert-base-tas-b"
    monkeypatch.setenv("TASB_MODEL", "/models/tas-b")
    assert default_model_name() == "/models/tas-b"
    assert TasbEmbeddings().model_name == "/models/tas-b"
    assert TasbEmbeddings(model_name="explicit").model_name == "explicit"


def test_model_is_loaded_once_and_shared(tiny_model_path: Path) -> None:
    a = TasbEmbeddings(model_name=str(tiny_model_path), device="cpu")
    b = TasbEmbeddings(model_name=str(tiny_model_path), device="cpu", query_max_tokens=10)
    assert a.encoder.model is b.encoder.model


def test_missing_local_model_says_how_to_fix(tmp_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(tmp_path / "nowhere"))
    with pytest.raises(OSError, match="TASB_MODEL"):
        emb.embed_query("x")


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="extra"):
        TasbEmbeddings(modle_name="typo")  # type: ignore[call-arg]


def test_pickle_round_trip_keeps_settings_and_works(tiny_embeddings: TasbEmbeddings) -> None:
    tiny_embeddings.embed_query("warm")
    clone = pickle.loads(pickle.dumps(tiny_embeddings))  # noqa: S301  (our own object)
    assert clone.model_name == tiny_embeddings.model_name
    np.testing.assert_allclose(clone.embed_query("london"), tiny_embeddings.embed_query("london"))


async def test_async_embedding_does_not_block_the_event_loop(tiny_model_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), query_cache_size=0)
    emb.embed_query("warm up")
    started = threading.Event()
    original = emb.encoder.encode

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(0.3)
        return original(*args, **kwargs)

    emb.encoder.encode = slow  # type: ignore[method-assign]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not started.is_set() or ticks < 5:
            ticks += 1
            await asyncio.sleep(0.01)

    try:
        vectors, _ = await asyncio.gather(emb.aembed_documents(["a", "b"]), ticker())
        query = await emb.aembed_query("c")
    finally:
        del emb.encoder.encode
    assert len(vectors) == 2 and len(query) == 32
    assert ticks >= 5  # the loop kept running while encoding slept in a worker thread


class TestTasbEmbeddingsStandardUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[TasbEmbeddings]:
        return TasbEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": _STANDARD_MODEL[0], "device": "cpu"}


class TestTasbEmbeddingsStandardIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[TasbEmbeddings]:
        return TasbEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": _STANDARD_MODEL[0], "device": "cpu"}


def test_settings_are_validated_when_assigned(tiny_model_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path))
    with pytest.raises(ValueError, match="query_max_tokens"):
        emb.query_max_tokens = -5
    with pytest.raises(ValueError, match="backend"):
        emb.backend = "tensorrt"  # type: ignore[assignment]
    assert emb.query_max_tokens == 64
    assert emb.backend == "torch"


def test_changing_the_query_limit_after_use_drops_the_cached_vectors(
    tiny_model_path: Path,
) -> None:
    long_text = " ".join(["london"] * 40)
    emb = TasbEmbeddings(model_name=str(tiny_model_path), query_max_tokens=32)
    before = emb.embed_query(long_text)
    emb.query_max_tokens = 8
    after = np.asarray(emb.embed_query(long_text))
    np.testing.assert_allclose(after, raw_cls(tiny_model_path, [long_text], 8)[0], atol=1e-4)
    assert not np.allclose(after, before, atol=1e-3)


def test_changing_the_model_after_use_loads_the_new_one(
    tiny_model_path: Path, other_model_path: Path
) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path))
    query, document = emb.embed_query(TEXTS[0]), emb.embed_documents(TEXTS[:1])[0]
    emb.model_name = str(other_model_path)
    assert emb.info.name == str(other_model_path)
    other = TasbEmbeddings(model_name=str(other_model_path))
    assert emb.embed_query(TEXTS[0]) == other.embed_query(TEXTS[0]) != query
    assert emb.embed_documents(TEXTS[:1])[0] == other.embed_documents(TEXTS[:1])[0] != document
    copy = emb.model_copy(update={"model_name": str(tiny_model_path)})
    assert copy.embed_query(TEXTS[0]) == query
    assert emb.embed_query(TEXTS[0]) == other.embed_query(TEXTS[0])  # the original is unchanged


def test_changing_the_model_stops_the_document_workers(tiny_model_path: Path) -> None:
    class Pool:
        closed = False

        def close(self) -> None:
            self.closed = True

    emb = TasbEmbeddings(model_name=str(tiny_model_path), processes=2)
    pool = emb._pool = Pool()
    emb.document_batch_size = 8  # does not change a vector: the workers stay
    assert emb._pool is pool and not pool.closed
    emb.trust_remote_code = True
    assert emb._pool is None and pool.closed
