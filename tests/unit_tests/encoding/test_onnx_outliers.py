"""The int8 document graph: GELU outlier channels split off in fp32, every other weight int8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_tasb.encoding import onnx_outliers
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.onnx_cache import cache_key
from langchain_tasb.encoding.onnx_export import OnnxSettings, export_onnx
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import EncoderSettings
from langchain_tasb.testing import build_tiny_model

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "how many people live in london city",
]
OUTLIER_CHANNEL = 5


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose first feed-forward layer has one GELU channel far above the rest."""
    from sentence_transformers import SentenceTransformer

    root = tmp_path_factory.mktemp("outlier-model")
    model = SentenceTransformer(str(build_tiny_model(root / "plain", dim=64)), device="cpu")
    ffn = model[0].auto_model.transformer.layer[0].ffn
    import torch

    with torch.no_grad():
        ffn.lin1.bias[OUTLIER_CHANNEL] += 40.0  # every token: GELU output about 40 there
    model.save(str(root / "outlier"))
    return root / "outlier"


@pytest.fixture(scope="module")
def outlier_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outlier-cache")


def _run(model_file: Path, texts: list[str], tokenizer: Any) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        ids = np.asarray([tokenizer(text)["input_ids"]], dtype=np.int64)
        rows.append(
            session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        )
    return np.asarray(rows)


def _weight_matmuls(model_file: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(name, weight shape) of every plain MatMul whose second input is an initializer."""
    import onnx

    graph = onnx.load(str(model_file)).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [
        (n.name, shapes[n.input[1]])
        for n in graph.node
        if n.op_type == "MatMul" and n.input[1] in shapes
    ]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_split_graph_computes_what_the_fp32_graph_does(outlier_model: Path, tmp_path: Path) -> None:
    import onnx
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(outlier_model), device="cpu")
    export_onnx(model, tmp_path, OnnxSettings(quantization="none"))
    original = tmp_path / "model.onnx"
    proto = onnx.load(str(original))
    targets = onnx_outliers.gelu_matmuls(proto)
    assert len(targets) == 2  # one feed-forward output projection per layer
    samples = [
        model.tokenizer(t, truncation=True, max_length=64)["input_ids"]
        for t in onnx_outliers.CALIBRATION_TEXTS
    ]
    maxima = onnx_outliers.calibrate(original, [t.activation for t in targets], samples)
    assert onnx_outliers.outlier_channels(maxima[targets[0].activation]).tolist() == [
        OUTLIER_CHANNEL
    ]
    added = onnx_outliers.split_outliers(proto, maxima)
    assert added == [f"{targets[0].matmul}_outliers_matmul"]
    onnx.checker.check_model(proto)
    split = tmp_path / "split.onnx"
    onnx.save(proto, str(split))
    expected = _run(original, TEXTS, model.tokenizer)
    np.testing.assert_allclose(_run(split, TEXTS, model.tokenizer), expected, atol=1e-5)


def test_every_weight_matrix_is_int8_but_the_outlier_rows(
    outlier_model: Path, outlier_cache: Path, tiny_model_path: Path, onnx_cache: Path
) -> None:
    encoder = OnnxEncoder(EncoderSettings(str(outlier_model)), cache_dir=outlier_cache)
    assert not encoder.exported.query_graph  # one all-int8 graph for both roles
    left = _weight_matmuls(encoder.exported.model_file)
    # The only fp32 product left: the one outlier channel's row of the first projection.
    assert [shape for _, shape in left] == [(1, 64)]
    assert left[0][0].endswith("_outliers_matmul")

    plain = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=onnx_cache / "onnx")
    assert _weight_matmuls(plain.exported.model_file) == []  # no outliers: nothing kept


def test_fp32_after_gelu_keeps_the_gelu_fed_matrices_whole_without_a_query_graph(
    outlier_model: Path, tmp_path: Path
) -> None:
    settings = OnnxSettings(fp32_after_gelu=True, int8_queries=False)
    encoder = OnnxEncoder(EncoderSettings(str(outlier_model)), export=settings, cache_dir=tmp_path)
    assert not encoder.exported.query_graph
    left = _weight_matmuls(encoder.exported.model_file)
    # Every layer's GELU-fed projection stays fp32 whole: no outlier rows split off.
    assert len(left) == 2
    assert all(shape[0] > 1 and not name.endswith("_outliers_matmul") for name, shape in left)


def test_splitting_outliers_brings_int8_vectors_closer_to_torch(
    outlier_model: Path, outlier_cache: Path
) -> None:
    expected = TorchEncoder(EncoderSettings(str(outlier_model), device="cpu")).encode(
        TEXTS, role="document", max_tokens=64, batch_size=4
    )
    split = OnnxEncoder(EncoderSettings(str(outlier_model)), cache_dir=outlier_cache)
    plain = OnnxEncoder(
        EncoderSettings(str(outlier_model)),
        export=OnnxSettings(outliers_fp32=False),
        cache_dir=outlier_cache,
    )
    ours = split.encode(TEXTS, role="document", max_tokens=64, batch_size=4).vectors
    theirs = plain.encode(TEXTS, role="document", max_tokens=64, batch_size=4).vectors
    split_cos = cosines(ours, expected.vectors)
    plain_cos = cosines(theirs, expected.vectors)
    assert split_cos.min() > 0.99
    assert split_cos.mean() > plain_cos.mean()


def test_cache_key_changes_with_the_recipe(tiny_model_path: Path) -> None:
    path = tiny_model_path.resolve()
    keys = {
        cache_key(str(path), path, settings)
        for settings in (
            OnnxSettings(),
            OnnxSettings(outliers_fp32=False),
            OnnxSettings(fp32_after_gelu=True),
            OnnxSettings(quantization="none"),
        )
    }
    assert len(keys) == 4
