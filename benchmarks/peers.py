"""Peers a user would pick instead of langchain-tasb, timed in the same run as our encoders.

* :func:`export_peer_models`: the model as a user would hand it to fastembed: the transformer
  exported to fp32 ONNX with ``torch.onnx.export`` (output ``last_hidden_state``; fastembed
  pools), and an all-int8 copy from ``onnxruntime.quantization.quantize_dynamic`` over every
  MatMul with its default settings.
* :class:`FastembedPeer`: fastembed in its own virtual environment (it cannot share one with
  current transformers), a long-lived subprocess running ``fastembed_peer.py``, so that its
  rounds alternate with the in-process encoders'. The times are measured inside it.

sentence-transformers' ONNX and OpenVINO backends are not peers here: their extras
(optimum-onnx, optimum-intel) do not install next to transformers 5 (see RESULTS.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

FASTEMBED_PYTHON_ENV = "TASB_FASTEMBED_PYTHON"
_RUNNER = Path(__file__).with_name("fastembed_peer.py")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
    "vocab.txt",
)


def export_peer_models(model_dir: Path, out: Path) -> dict[str, Path]:
    """fp32 and all-int8 ONNX directories of the model in ``model_dir`` (kept in ``out``)."""
    dirs = {"fp32": out / "fp32", "int8": out / "int8"}
    if all((d / "model.onnx").is_file() for d in dirs.values()):
        return dirs
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
        for name in _TOKENIZER_FILES:
            if (model_dir / name).is_file():
                shutil.copy(model_dir / name, d / name)
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    sample = torch.ones((2, 8), dtype=torch.int64)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    fp32 = dirs["fp32"] / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(
            model,
            (sample, torch.ones((2, 8), dtype=torch.int64)),
            str(fp32),
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_shapes={
                "input_ids": {0: batch, 1: sequence},
                "attention_mask": {0: batch, 1: sequence},
            },
            external_data=False,
            verbose=False,
        )
    quantize_dynamic(
        str(fp32),
        str(dirs["int8"] / "model.onnx"),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    return dirs


def fastembed_python(given: str | None) -> tuple[str | None, str]:
    """The fastembed venv's Python, or None and why not.

    Tried in turn: ``given``, ``$TASB_FASTEMBED_PYTHON``, ``.venv-fastembed`` in the repository
    and beside the running venv.
    """
    repo = Path(__file__).resolve().parent.parent
    candidates = [
        given,
        os.environ.get(FASTEMBED_PYTHON_ENV),
        str(repo / ".venv-fastembed/bin/python"),
        str(Path(sys.prefix).parent / ".venv-fastembed/bin/python"),  # beside this venv
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            probe = subprocess.run(
                [candidate, "-c", "import fastembed"], capture_output=True, text=True, check=False
            )
            if probe.returncode == 0:
                return candidate, ""
            return None, f"{candidate} cannot import fastembed: {probe.stderr.strip()[-200:]}"
    return None, (
        "no fastembed venv: python3 -m venv .venv-fastembed && .venv-fastembed/bin/pip install "
        f"fastembed (or pass --fastembed-python / set {FASTEMBED_PYTHON_ENV})"
    )


class FastembedPeer:
    """fastembed in a subprocess, answering timed document and query requests."""

    def __init__(self, python: str, model_dir: Path) -> None:
        self._process = subprocess.Popen(
            [python, str(_RUNNER), str(model_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready = self._read()
        self.ready_seconds: float = ready["ready"]
        self.version: str = ready["version"]

    def embed_documents(self, texts: list[str]) -> tuple[float, list[float]]:
        """Seconds fastembed spent on ``texts``, and the first text's vector."""
        answer = self._ask({"op": "docs", "texts": texts})
        return float(answer["seconds"]), list(answer["first"])

    def query_latencies(self, texts: list[str]) -> list[float]:
        """Milliseconds of each ``query_embed`` call, one text at a time."""
        return [float(x) for x in self._ask({"op": "queries", "texts": texts})["ms"]]

    def close(self) -> None:
        """Ask the runner to exit and wait for it."""
        if self._process.poll() is None:
            self._ask({"op": "quit"}, answer=False)
            self._process.wait(timeout=30)

    def _ask(self, request: dict[str, Any], *, answer: bool = True) -> dict[str, Any]:
        stdin = self._process.stdin
        if stdin is None:  # never: started with stdin=PIPE
            msg = "the fastembed peer has no stdin"
            raise RuntimeError(msg)
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        return self._read() if answer else {}

    def _read(self) -> dict[str, Any]:
        for line in self._process.stdout or ():
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message
        print(f"fastembed peer exited with {self._process.wait()}", file=sys.stderr)
        msg = "the fastembed peer stopped; run benchmarks/fastembed_peer.py by hand to see why"
        raise RuntimeError(msg)
