from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_tasb import RelevanceScale
from langchain_tasb.chroma.store import ModelIdentity, calibrate
from langchain_tasb.scoring import dot_from_distance, mmr_select, model_drift

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_dot_is_one_minus_chroma_ip_distance() -> None:
    assert dot_from_distance(1.0 - 95.5) == pytest.approx(95.5)
    assert dot_from_distance(-2.5) == 3.5


@given(a=finite, b=finite)
def test_relevance_is_bounded_and_monotonic(a: float, b: float) -> None:
    scale = RelevanceScale(center=90.0, scale=4.5)
    ra, rb = scale.relevance(a), scale.relevance(b)
    assert 0.0 <= ra <= 1.0
    if a < b:
        assert ra <= rb


def test_relevance_separates_tasb_range_unlike_a_raw_logistic() -> None:
    # TAS-B dot products sit around 80 to 110: a raw logistic calls all of them 1.0.
    scale = RelevanceScale(center=90.0, scale=4.5)
    values = [scale.relevance(d) for d in (80.0, 90.0, 100.0, 110.0)]
    assert values[0] < 0.1 < 0.5 == values[1] < 0.9 < values[2] < values[3] < 1.0
    assert 1.0 / (1.0 + math.exp(-80.0)) == 1.0


def test_langchain_chroma_ip_relevance_bug_is_not_repeated() -> None:
    # langchain-chroma maps an ip distance d to 1 - d = dot: a dot of 1.005 would "beat" 0.99
    # only by going out of [0, 1]. Ours is monotonic and bounded on the same inputs.
    scale = RelevanceScale(center=0.5, scale=0.1)
    assert scale.relevance(1.005) > scale.relevance(0.99)
    assert scale.relevance(1.005) <= 1.0


def test_inverse_map() -> None:
    scale = RelevanceScale(center=90.0, scale=4.5)
    assert scale.relevance(scale.dot_for(0.8)) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        scale.dot_for(1.0)


@pytest.mark.parametrize(("center", "scale"), [(0.0, 0.0), (0.0, -1.0), (math.nan, 1.0)])
def test_bad_scale_is_refused(center: float, scale: float) -> None:
    with pytest.raises(ValueError, match="positive finite scale"):
        RelevanceScale(center=center, scale=scale)


def test_mmr_select_by_hand() -> None:
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    cands = np.array([[1.0, 0, 0], [0.99, 0.1, 0], [0.5, 0, 0.8]], dtype=np.float32)
    assert mmr_select(q, cands, 3, lambda_mult=0.1) == [0, 2, 1]
    assert mmr_select(q, cands, 2, lambda_mult=1.0) == [0, 1]
    assert mmr_select(q, cands, 0) == []
    with pytest.raises(ValueError, match="lambda_mult"):
        mmr_select(q, cands, 2, lambda_mult=1.5)


def test_calibration_on_real_model_separates_pairs(minilm_path: object) -> None:
    from langchain_tasb import TasbEmbeddings

    emb = TasbEmbeddings(model_name=str(minilm_path))
    scale = calibrate(emb)
    matching = np.dot(
        emb.embed_query("how many people live in london"),
        emb.embed_documents(["About 9 million people live in London."])[0],
    )
    unrelated = np.dot(
        emb.embed_query("how many people live in london"),
        emb.embed_documents(["Insulin regulates blood glucose."])[0],
    )
    assert scale.relevance(float(matching)) > 0.8
    assert scale.relevance(float(unrelated)) < 0.2


def test_identity_round_trips_through_metadata() -> None:
    identity = ModelIdentity(3, "dot", (1.0, 2.0, 3.0), RelevanceScale(90.0, 4.5), "m")
    again = ModelIdentity.from_metadata(identity.to_metadata())
    assert again == identity
    assert again is not None and again.mismatch(3, "dot", [1.0, 2.0, 3.0001]) is None
    assert "dimension 3" in (identity.mismatch(4, "dot", [1.0] * 4) or "")
    expected = "dot similarity (model 'm'), not cosine"
    assert identity.mismatch(3, "cosine", [1.0, 2.0, 3.0]) == expected
    assert "probe" in (identity.mismatch(3, "dot", [3.0, 2.0, 1.0]) or "")
    # Same direction, twice the norm: still another model.
    assert "probe" in (identity.mismatch(3, "dot", [2.0, 4.0, 6.0]) or "")


def test_model_drift_tolerates_rounding_and_reports_another_model() -> None:
    assert model_drift([3.0, 4.0], [3.03, 4.04]) is None  # 1% longer: rounding
    cosine, ratio = model_drift([3.0, 4.0], [3.3, 4.4]) or (0.0, 0.0)
    assert cosine == pytest.approx(1.0) and ratio == pytest.approx(1.1)
    assert model_drift([1.0, 0.0], [0.0, 1.0]) == (0.0, 1.0)
    assert model_drift([0.0, 0.0], [1.0, 0.0]) == (0.0, 1e12)
