"""The int8 export is computed exactly by ONNX Runtime on this CPU, VNNI or not.

Without VNNI or AMX, ONNX Runtime's x86 int8 MatMul adds pairs of uint8 x int8 products in
16 bits with saturation; the export then limits its weights to 7 bits, so that no pair sum
can reach the 16-bit limit.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb.chroma.store import PROBE_TEXT
from langchain_tasb.encoding import hardware
from langchain_tasb.encoding.hardware import int8_matmul_saturates
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.onnx_cache import cache_key
from langchain_tasb.encoding.onnx_export import OnnxSettings
from langchain_tasb.encoding.types import EncoderSettings

TEXTS = [
    PROBE_TEXT,
    "Around 9 Million people live in London",
    "the protein binds the cell surface",
    "how many people live in london city",
]
INT16_MAX = 32767
UINT8_MAX = 255


@pytest.mark.parametrize(
    ("flags", "machine", "saturates"),
    [
        ({"sse4_2", "avx2", "fma"}, "x86_64", True),  # AMD Zen 3, Intel Haswell to Comet Lake
        ({"avx2", "avx512f", "avx512bw"}, "x86_64", True),  # AVX-512 without VNNI (Skylake)
        ({"avx2", "avx512f", "avx512bw", "avx512_vnni"}, "x86_64", False),  # Zen 4, Ice Lake
        ({"avx2", "avx_vnni"}, "x86_64", False),  # Alder Lake and later client cores
        ({"avx512f", "amx_tile", "amx_int8"}, "x86_64", False),  # Sapphire Rapids
        (set(), "AMD64", True),  # Windows on x86: flags unknown, 7 bits are the safe choice
        (set(), "aarch64", False),  # ARM sums exactly
        (set(), "arm64", False),
    ],
)
def test_int8_matmul_saturates_only_on_x86_without_vnni_or_amx(
    flags: set[str], machine: str, saturates: bool
) -> None:
    assert int8_matmul_saturates(frozenset(flags), machine) is saturates


def test_default_export_reduces_the_weight_range_only_where_the_kernel_saturates(
    monkeypatch: pytest.MonkeyPatch, tiny_model_path: Path
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2"}))
    on_avx2 = OnnxSettings()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    on_vnni = OnnxSettings()
    assert (on_avx2.reduce_range, on_vnni.reduce_range) == (True, False)
    path = tiny_model_path.resolve()
    # Each kind of CPU gets its own export from one shared cache folder.
    assert cache_key(str(path), path, on_avx2) != cache_key(str(path), path, on_vnni)


def _int8_weights(model_file: Path) -> list[np.ndarray]:
    """The int8 weight matrices of a graph (its zero points are int8 vectors)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_file)).graph
    return [
        numpy_helper.to_array(init)
        for init in graph.initializer
        if init.data_type == onnx.TensorProto.INT8 and len(init.dims) == 2
    ]


@pytest.mark.parametrize("reduce_range", [True, False])
def test_reduced_range_keeps_every_pair_of_products_within_16_bits(
    tiny_model_path: Path, onnx_cache: Path, reduce_range: bool
) -> None:
    settings = OnnxSettings(reduce_range=reduce_range)
    encoder = OnnxEncoder(
        EncoderSettings(str(tiny_model_path)), export=settings, cache_dir=onnx_cache / "onnx"
    )
    weights = _int8_weights(encoder.exported.model_file)
    assert len(weights) == 12  # q, k, v, out, lin1, lin2 of 2 layers
    largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    # The worst pair: two activations of 255 times two weights of the largest magnitude.
    assert (2 * UINT8_MAX * largest <= INT16_MAX) is reduce_range
    assert largest == (64 if reduce_range else 127)


def test_onnx_runtime_computes_the_default_int8_graph_exactly_on_this_cpu(
    tiny_model_path: Path, onnx_cache: Path
) -> None:
    from onnx.reference import ReferenceEvaluator

    encoder = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=onnx_cache / "onnx")
    exact = ReferenceEvaluator(str(encoder.exported.model_file))  # numpy: no saturation
    tokenizer = encoder._truncating_tokenizer(64)
    for text in TEXTS:
        ours = encoder.encode([text], role="document", max_tokens=64, batch_size=1).vectors[0]
        ids = np.asarray([tokenizer.encode(text).ids], dtype=np.int64)
        expected = exact.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        cosine = ours @ expected / np.linalg.norm(ours) / np.linalg.norm(expected)
        assert cosine > 0.9999, (text, cosine)
