"""Unit tests never touch the network (sockets are blocked, Unix sockets allowed); shared spies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_socket

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from langchain_tasb import TasbEmbeddings
    from langchain_tasb.chroma.store import ModelIdentity


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export cache for the session: each model is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def tiny_fp32_identity(tiny_model_path: Path) -> ModelIdentity:
    """The identity record a collection filled by the tiny model in fp32 torch carries."""
    from langchain_tasb import TasbEmbeddings
    from langchain_tasb.chroma.store import ModelIdentity, calibrate, probe_vector

    exact = TasbEmbeddings(model_name=str(tiny_model_path), backend="torch", device="cpu")
    return ModelIdentity(
        dimension=exact.dimension,
        similarity=exact.similarity,
        probe=tuple(probe_vector(exact)),
        relevance=calibrate(exact),
        model_name=str(tiny_model_path),
    )


@pytest.fixture(autouse=True)
def _no_network() -> None:
    pytest_socket.disable_socket(allow_unix_socket=True)


@pytest.fixture
def encode_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[TasbEmbeddings], list[Any]]:
    """Spy on an embeddings' encoder: ``calls = encode_calls(emb)`` lists each encode."""

    def spy(emb: TasbEmbeddings) -> list[Any]:
        calls: list[Any] = []
        original = emb.encoder.encode

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(emb.encoder, "encode", counting)
        return calls

    return spy


ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str, model: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``examples/NAME`` in ``cwd`` with ``model`` as ``$TASB_MODEL`` and this tree first on
    the path; fail with the script's stderr unless it exits 0."""
    env = {**os.environ, "TASB_MODEL": str(model), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result
