from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma.store import PROBE_TEXT, ModelIdentity, probe_vector
from langchain_tasb.encoding import hardware, pool
from langchain_tasb.encoding.hardware import cpu_flags, cpu_has_amx
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.selection import (
    TORCH_BATCH_SIZE,
    SplitEncoder,
    make_encoder,
    resolve_backend,
)
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import EncoderSettings

DOCS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
]


@pytest.fixture(autouse=True)
def _cache_env(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASB_CACHE_DIR", str(onnx_cache))


def split_encoder(path: Path, precision: Any = "bfloat16") -> SplitEncoder:
    encoder = make_encoder(
        EncoderSettings(str(path), backend="onnx-int8+torch", precision=precision)
    )
    assert isinstance(encoder, SplitEncoder)
    return encoder


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n")
    assert cpu_flags(str(cpuinfo)) >= {"amx_tile", "amx_bf16", "avx512f"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (frozenset({"avx512f", "avx512_vnni", "avx512_bf16"}), ("onnx-int8", "cpu", "float32")),
        (frozenset({"amx_tile", "amx_bf16", "amx_int8"}), ("onnx-int8+torch", "cpu", "bfloat16")),
    ],
)
def test_auto_splits_on_a_cpu_with_amx_only(
    monkeypatch: pytest.MonkeyPatch, flags: frozenset[str], expected: tuple[str, str, str]
) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
    assert cpu_has_amx() is (expected[0] == "onnx-int8+torch")
    assert resolve_backend("auto", "cpu") == expected
    # An explicit precision or a GPU still means torch alone.
    assert resolve_backend("auto", "cpu", "float32") == ("torch", "cpu", "float32")
    assert resolve_backend("auto", "cuda") == ("torch", "cuda", "float16")


def test_explicit_split_backend_resolves_and_refuses_a_gpu() -> None:
    assert resolve_backend("onnx-int8+torch", None) == ("onnx-int8+torch", "cpu", "bfloat16")
    assert resolve_backend("onnx-int8+torch", "cpu", "float32") == (
        "onnx-int8+torch",
        "cpu",
        "float32",
    )
    with pytest.raises(ValueError, match=r"backend='onnx-int8\+torch' runs on CPU"):
        resolve_backend("onnx-int8+torch", "cuda")


def test_queries_and_single_texts_run_on_onnx_without_loading_torch(tiny_model_path: Path) -> None:
    split = split_encoder(tiny_model_path)
    onnx = OnnxEncoder(EncoderSettings(str(tiny_model_path)))
    query = split.encode(
        ["how many people live in london"], role="query", max_tokens=64, batch_size=8
    )
    expected = onnx.encode(
        ["how many people live in london"], role="query", max_tokens=64, batch_size=8
    )
    np.testing.assert_array_equal(query.vectors, expected.vectors)
    one = split.encode(DOCS[:1], role="document", max_tokens=64, batch_size=8)
    alone = onnx.encode(DOCS[:1], role="document", max_tokens=64, batch_size=8)
    np.testing.assert_array_equal(one.vectors, alone.vectors)
    assert not split.torch_loaded
    assert split.info == onnx.info
    assert split.tokenizer("london")["input_ids"] == onnx.tokenizer("london")["input_ids"]


def test_batches_of_documents_run_on_bfloat16_torch(tiny_model_path: Path) -> None:
    split = split_encoder(tiny_model_path)
    result = split.encode(DOCS, role="document", max_tokens=64, batch_size=64)
    assert split.torch_loaded
    bf16 = TorchEncoder(EncoderSettings(str(tiny_model_path), device="cpu", precision="bfloat16"))
    expected = bf16.encode(DOCS, role="document", max_tokens=64, batch_size=TORCH_BATCH_SIZE)
    np.testing.assert_array_equal(result.vectors, expected.vectors)
    assert result.vectors.dtype == np.float32
    fp32 = TorchEncoder(EncoderSettings(str(tiny_model_path), device="cpu"))
    exact = fp32.encode(DOCS, role="document", max_tokens=64, batch_size=8).vectors
    assert not np.array_equal(result.vectors, exact)  # bfloat16, not the fp32 model
    norms = np.linalg.norm(result.vectors, axis=1) * np.linalg.norm(exact, axis=1)
    assert ((result.vectors * exact).sum(1) / norms).min() > 0.97


def test_torch_batches_are_capped(tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split = split_encoder(tiny_model_path, precision="float32")
    seen: list[int] = []
    original = TorchEncoder.encode

    def spy(self: TorchEncoder, texts: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["batch_size"])
        return original(self, texts, **kwargs)

    monkeypatch.setattr(TorchEncoder, "encode", spy)
    split.encode(DOCS, role="document", max_tokens=64, batch_size=64)
    split.encode(DOCS, role="document", max_tokens=64, batch_size=2)
    assert seen == [TORCH_BATCH_SIZE, 2]


def test_torch_half_that_disagrees_with_the_export_is_refused(tiny_model_path: Path) -> None:
    onnx = OnnxEncoder(EncoderSettings(str(tiny_model_path)))

    class OtherModel:
        info = replace(onnx.info, dimension=onnx.info.dimension + 1)

    split = SplitEncoder(onnx, OtherModel)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"torch reads .* as 33 dims.*export says 32 dims"):
        split.encode(DOCS, role="document", max_tokens=64, batch_size=8)
    assert not split.torch_loaded


def test_opening_a_collection_needs_no_torch_and_passes_the_identity_check(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    exact = TasbEmbeddings(model_name=str(tiny_model_path), backend="torch", device="cpu")
    TasbVectorStore(embedding=exact, collection_name="docs", persist_directory=str(tmp_path))
    split = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8+torch")
    store = TasbVectorStore(
        embedding=split, collection_name="docs", persist_directory=str(tmp_path)
    )
    assert isinstance(split.encoder, SplitEncoder)
    assert not split.encoder.torch_loaded
    store.add_texts(DOCS, ids=["a", "b", "c"])
    assert split.encoder.torch_loaded
    # Stored: the bfloat16 torch vectors of the batch; searched with the ONNX query vector.
    bf16 = TorchEncoder(EncoderSettings(str(tiny_model_path), device="cpu", precision="bfloat16"))
    stored = bf16.encode(DOCS, role="document", max_tokens=256, batch_size=TORCH_BATCH_SIZE)
    dots = stored.vectors @ np.asarray(split.embed_query(DOCS[2]), dtype=np.float32)
    found = store.similarity_search_with_score(DOCS[2], k=3)
    assert [d.id for d, _ in found] == [["a", "b", "c"][i] for i in np.argsort(-dots)]
    np.testing.assert_allclose([score for _, score in found], sorted(dots)[::-1], rtol=1e-4)


def test_a_fixed_text_comes_from_the_onnx_half_without_torch(tiny_model_path: Path) -> None:
    split = split_encoder(tiny_model_path)
    fixed = split.encode_fixed(PROBE_TEXT, role="document", max_tokens=256)
    alone = split.onnx.encode([PROBE_TEXT], role="document", max_tokens=256, batch_size=1)
    np.testing.assert_array_equal(fixed, alone.vectors[0])
    assert not split.torch_loaded


def test_both_halves_pass_the_identity_check_of_fp32(
    tiny_model_path: Path, tiny_fp32_identity: ModelIdentity
) -> None:
    split = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8+torch")
    onnx_probe = probe_vector(split)  # a single text: ONNX Runtime
    torch_probe = split.embed_documents([PROBE_TEXT, *DOCS])[0]  # a batch: torch
    assert onnx_probe != torch_probe
    for probe in (onnx_probe, torch_probe):
        assert tiny_fp32_identity.mismatch(split.dimension, split.similarity, probe) is None


def test_pool_worker_gives_torch_its_share_of_the_cores(tiny_model_path: Path) -> None:
    import queue

    import torch

    before = torch.get_num_threads()
    devices: queue.Queue[str] = queue.Queue()
    devices.put("cpu")
    try:
        settings = EncoderSettings(
            str(tiny_model_path), backend="onnx-int8+torch", precision="bfloat16", threads=1
        )
        pool._start_worker(settings, devices)
        assert torch.get_num_threads() == 1
        assert isinstance(pool._WORKER_ENCODER, SplitEncoder)
    finally:
        torch.set_num_threads(before)
        pool._WORKER_ENCODER = None
