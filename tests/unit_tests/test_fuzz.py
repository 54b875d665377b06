"""Property-based fuzzing of the public entry points.

Every input is either stored and retrievable exactly, or refused with a clear error
(TypeError or ValueError naming what was wrong) before anything is written.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Any code point, lone surrogates and control characters included.
any_text = st.text(alphabet=st.characters(codec=None), max_size=300)
nice_text = st.sampled_from(
    ["", " ", "\t\n", "london", "مرحبا بالعالم", "🙂🚀 emoji", "a\x00b\x1f", "x" * 5000]
)
texts = st.one_of(any_text, nice_text)

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(any_text, inner, max_size=3)
    ),
    max_leaves=5,
)
metadata = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(any_text, st.integers(), st.none()), value, max_size=4),
)


@pytest.fixture(scope="module")
def store(tiny_embeddings: TasbEmbeddings) -> TasbVectorStore:
    return TasbVectorStore(
        embedding=tiny_embeddings, collection_name=f"fuzz-{uuid.uuid4().hex[:8]}"
    )


def expected_metadata(meta: dict[Any, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (meta or {}).items() if v is not None}


def same_metadata(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """Equal, except that Chroma may round a float by one unit in the last place."""
    if got.keys() != want.keys():
        return False
    for key, value in want.items():
        if isinstance(value, float) and not isinstance(got[key], bool):
            if not math.isclose(got[key], value, rel_tol=1e-15, abs_tol=0.0):
                return False
        elif isinstance(value, list) and value and isinstance(value[0], float):
            if not all(
                math.isclose(a, b, rel_tol=1e-15) for a, b in zip(got[key], value, strict=True)
            ):
                return False
        elif got[key] != value or type(got[key]) is not type(value):
            return False
    return True


@FUZZ
@given(
    batch=st.lists(
        st.tuples(texts, metadata, st.one_of(st.none(), st.sampled_from(["", "a", "b"]), any_text)),
        min_size=1,
        max_size=4,
    ),
)
@example(batch=[("y" * 100_000, {"big": "z" * 10_000}, None)])
@example(batch=[("dup", None, "same"), ("dup2", {"k": 1}, "same")])
@example(batch=[("ok", {"k": 1}, None), ("reserved", {"#k": 1}, None)])  # Chroma's '#'
def test_add_texts_stores_exactly_or_refuses_before_writing(
    store: TasbVectorStore, batch: list[tuple[str, dict[Any, Any] | None, str | None]]
) -> None:
    items = [t for t, _, _ in batch]
    metas = [m for _, m, _ in batch]
    ids = [i for _, _, i in batch]
    before = store.store.count()
    try:
        returned = store.add_texts(items, metas, ids=ids)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        event("refused")
        assert str(exc)  # says what was wrong
        assert store.store.count() == before  # nothing written
        return
    event("stored")
    assert len(returned) == len(items)
    last: dict[str, int] = {id_: n for n, id_ in enumerate(returned)}
    docs = {d.id: d for d in store.get_by_ids(list(last))}
    for id_, n in last.items():
        assert docs[id_].page_content == items[n]
        assert same_metadata(docs[id_].metadata, expected_metadata(metas[n])), (
            docs[id_].metadata,
            metas[n],
        )


@FUZZ
@given(
    items=st.lists(st.one_of(texts, st.none(), st.binary(max_size=5), st.integers()), max_size=4)
)
def test_embed_documents_returns_finite_vectors_or_refuses(
    tiny_embeddings: TasbEmbeddings, items: list[Any]
) -> None:
    try:
        vectors = tiny_embeddings.embed_documents(items)
    except (TypeError, ValueError) as exc:
        assert "texts[" in str(exc)
        return
    assert len(vectors) == len(items)
    assert all(len(v) == 32 and all(math.isfinite(x) for x in v) for v in vectors)


filters = st.recursive(
    st.dictionaries(
        st.sampled_from(["source", "$and", "$or", "$eq", "$gt", "x", ""]), scalar, max_size=2
    ),
    lambda inner: st.dictionaries(
        st.sampled_from(["$and", "$or", "$in", "source", "$contains", "$not_contains"]),
        st.one_of(st.lists(inner, max_size=2), inner, scalar),
        max_size=2,
    ),
    max_leaves=4,
)


@FUZZ
@given(
    query=texts,
    where=st.one_of(st.none(), filters),
    where_document=st.one_of(st.none(), filters),
    k=st.integers(min_value=-2, max_value=12),
)
def test_retriever_answers_or_refuses_malformed_input_clearly(
    store: TasbVectorStore, query: str, where: Any, where_document: Any, k: int
) -> None:
    retriever = TasbRetriever(vectorstore=store, k=3)
    try:
        docs = retriever.invoke(query, k=k, filter=where, where_document=where_document)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return
    assert len(docs) <= k
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= d.metadata["relevance"] <= 1.0 for d in docs)


@FUZZ
@given(ids=st.lists(st.one_of(any_text, st.none(), st.integers()), max_size=4))
def test_get_and_delete_by_ids_never_crash_unclearly(
    store: TasbVectorStore, ids: list[Any]
) -> None:
    try:
        found = store.get_by_ids(ids)
    except (TypeError, ValueError) as exc:
        assert str(exc)
        return
    assert {d.id for d in found} <= set(ids)


def test_vectors_with_nan_are_refused_before_writing(store: TasbVectorStore) -> None:
    before = store.store.count()
    with pytest.raises(ValueError, match="NaN or infinity"):
        store.store.upsert(["n1"], ["t"], np.array([[math.nan] * 32], dtype=np.float32))
    assert store.store.count() == before
