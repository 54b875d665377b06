"""What loading a backend keeps in memory and imports: no float32 weights nobody uses, and for
a process that only answers queries on a CPU, no torch and no document graph."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb.encoding import torch_backend
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import EncoderSettings
from langchain_tasb.testing import build_tiny_model
from tests.unit_tests.encoding.test_onnx_backend import cosines

TEXTS = ["Around 9 Million people live in London", "the protein binds the cell surface"]


def shared(path: Path) -> bool:
    """Whether the float32 model at ``path`` is kept in the process-wide cache."""
    return (str(path), "cpu", False, "float32") in torch_backend._MODELS


def dtypes(model: object) -> set[str]:
    return {str(p.dtype) for p in model.parameters()}  # type: ignore[attr-defined]


def test_half_precision_alone_keeps_no_float32_weights(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "model")
    bf16 = TorchEncoder(EncoderSettings(str(path), device="cpu", precision="bfloat16"))
    assert not shared(path)
    assert dtypes(bf16.model) == {"torch.bfloat16"}
    # The same bfloat16 model on the next load, and still the model's vectors.
    assert (
        TorchEncoder(EncoderSettings(str(path), device="cpu", precision="bfloat16")).model
        is bf16.model
    )
    half = bf16.encode(TEXTS, role="document", max_tokens=64, batch_size=8).vectors
    exact = TorchEncoder(EncoderSettings(str(path), device="cpu")).encode(
        TEXTS, role="document", max_tokens=64, batch_size=8
    )
    assert cosines(half, exact.vectors).min() > 0.97
    assert not np.array_equal(half, exact.vectors)


def test_half_precision_copies_a_shared_float32_model_without_touching_it(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "model")
    fp32 = TorchEncoder(EncoderSettings(str(path), device="cpu"))
    before = fp32.encode(TEXTS, role="document", max_tokens=64, batch_size=8).vectors
    bf16 = TorchEncoder(EncoderSettings(str(path), device="cpu", precision="bfloat16"))
    assert bf16.model is not fp32.model
    assert dtypes(bf16.model) == {"torch.bfloat16"}
    assert dtypes(fp32.model) == {"torch.float32"}
    after = fp32.encode(TEXTS, role="document", max_tokens=64, batch_size=8).vectors
    np.testing.assert_array_equal(after, before)


def test_onnx_export_does_not_keep_the_torch_model(tmp_path: Path) -> None:
    from langchain_tasb.encoding.onnx_cache import ensure_exported

    path = build_tiny_model(tmp_path / "model")
    exported = ensure_exported(str(path), cache_dir=tmp_path / "onnx")
    assert exported.model_file.exists()
    assert not shared(path)


def test_a_query_loads_only_the_query_graph(
    tiny_model_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_tasb.encoding import onnx_backend

    monkeypatch.setenv("TASB_CACHE_DIR", str(onnx_cache))
    loaded: list[tuple[str, int]] = []
    original = onnx_backend.load_session

    def spy(model_file: Path, threads: int) -> object:
        loaded.append((Path(model_file).name, threads))
        return original(model_file, threads)

    monkeypatch.setattr(onnx_backend, "load_session", spy)
    encoder = onnx_backend.OnnxEncoder(EncoderSettings(str(tiny_model_path), threads=2))
    assert loaded == []
    encoder.encode(["how many people live in london"], role="query", max_tokens=64, batch_size=8)
    query_graph = encoder.exported.graph_for("query").name
    assert loaded == [(query_graph, 2)]
    encoder.encode(TEXTS, role="document", max_tokens=64, batch_size=8)
    assert loaded == [(query_graph, 2), ("model.onnx", 1)]
    assert encoder.session is encoder.session  # loaded once


def device_and_torch_import(device_files: list[str]) -> tuple[str, str, bool]:
    """(default_device(), resolve_backend("auto", None)[0], torch imported) in a new process."""
    code = textwrap.dedent(
        f"""
        import sys
        from langchain_tasb.encoding import hardware, selection
        hardware._GPU_DEVICE_FILES = {tuple(device_files)!r}
        print(hardware.default_device(), selection.resolve_backend("auto", None)[0])
        print("torch" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    first, second = result.stdout.split("\n")[:2]
    device, backend = first.split()
    return device, backend, second == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="device files are Linux's")
def test_choosing_a_device_imports_torch_only_where_a_gpu_could_be(tmp_path: Path) -> None:
    device, backend, imported = device_and_torch_import([str(tmp_path / "no-such-device")])
    assert (device, imported) == ("cpu", False)
    assert backend in ("onnx-int8", "onnx-int8+torch")
    present = tmp_path / "nvidiactl"
    present.touch()
    device, _, imported = device_and_torch_import([str(present)])
    assert imported
    assert device in ("cpu", "cuda")


def test_a_model_declaring_euclidean_is_served_with_the_override_the_error_names(
    tmp_path: Path,
) -> None:
    path = build_tiny_model(tmp_path / "model")
    config = path / "config_sentence_transformers.json"
    config.write_text(config.read_text().replace('"dot"', '"euclidean"'))
    with pytest.raises(ValueError, match=r"declares similarity 'euclidean'.*similarity_override="):
        TorchEncoder(EncoderSettings(str(path), device="cpu"))
    torch = TorchEncoder(EncoderSettings(str(path), device="cpu", similarity_override="dot"))
    onnx = OnnxEncoder(
        EncoderSettings(str(path), similarity_override="dot"), cache_dir=tmp_path / "onnx"
    )
    assert torch.info.similarity == onnx.info.similarity == "dot"
