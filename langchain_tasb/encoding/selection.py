"""Choosing a backend: the user's choice, the environment and the hardware, to one encoder."""

from __future__ import annotations

import logging
import os

from langchain_tasb.config import BACKEND_ENV_VAR
from langchain_tasb.encoding.hardware import cpu_has_amx, default_device
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.split_encoder import SplitEncoder
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import (
    BACKENDS,
    Backend,
    Encoder,
    Precision,
    ResolvedBackend,
    Similarity,
    TorchPrecision,
)

logger = logging.getLogger(__name__)


def default_backend() -> Backend:
    """The backend to use when none is given: ``$TASB_BACKEND`` if set, else "auto"."""
    value = os.environ.get(BACKEND_ENV_VAR) or "auto"
    if value not in BACKENDS:
        msg = f"{BACKEND_ENV_VAR}={value!r} is not a backend; use one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    return value  # type: ignore[return-value]


def resolve_backend(
    backend: Backend, device: str | None, precision: Precision = "auto"
) -> tuple[ResolvedBackend, str, TorchPrecision]:
    """Turn the user's choice into (concrete backend, device, torch precision).

    "auto" means torch on a GPU (float16 on CUDA), and on CPU onnx-int8, or onnx-int8+torch
    with bfloat16 documents on a CPU with AMX (:func:`cpu_has_amx`). An explicit precision
    selects torch.

    Raises:
        ValueError: For an unknown backend, a backend with ONNX Runtime on a GPU device, or
            onnx-int8 with a precision.
    """
    if backend not in BACKENDS:
        msg = f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
        raise ValueError(msg)
    if backend.startswith("onnx-int8"):
        if device is not None and device != "cpu":
            msg = (
                f"backend={backend!r} runs on CPU, got device={device!r}; use device='cpu' "
                "or backend='torch' (or 'auto') for a GPU."
            )
            raise ValueError(msg)
        if backend == "onnx-int8+torch":
            return "onnx-int8+torch", "cpu", "bfloat16" if precision == "auto" else precision
        if precision != "auto":
            msg = (
                f"precision={precision!r} applies to the torch backend; onnx-int8 has int8 "
                "weights. Leave precision='auto' or use backend='torch'."
            )
            raise ValueError(msg)
        return "onnx-int8", "cpu", "float32"
    resolved_device = device or default_device()
    if precision == "auto":
        half = resolved_device.startswith("cuda")
        if backend == "auto" and resolved_device == "cpu":
            if cpu_has_amx():
                return "onnx-int8+torch", "cpu", "bfloat16"
            return "onnx-int8", "cpu", "float32"
        return "torch", resolved_device, "float16" if half else "float32"
    # An explicit precision is a torch setting: "auto" honours it with torch.
    return "torch", resolved_device, precision


def make_encoder(
    name: str,
    *,
    backend: Backend = "auto",
    device: str | None = None,
    precision: Precision = "auto",
    similarity: Similarity | None = None,
    trust_remote_code: bool = False,
    threads: int | None = None,
) -> Encoder:
    """Build the encoder a backend choice stands for (see :func:`resolve_backend`).

    ``threads`` sets ONNX Runtime's intra-op threads (default: physical cores).
    """
    kind, resolved_device, resolved_precision = resolve_backend(backend, device, precision)
    logger.debug("encoder for %s: %s on %s (%s)", name, kind, resolved_device, resolved_precision)
    if kind != "torch":
        onnx = OnnxEncoder(
            name, similarity=similarity, trust_remote_code=trust_remote_code, threads=threads
        )
        if kind == "onnx-int8":
            return onnx
        return SplitEncoder(
            onnx,
            lambda: TorchEncoder(
                name,
                device="cpu",
                similarity=similarity,
                trust_remote_code=trust_remote_code,
                precision=resolved_precision,
            ),
        )
    return TorchEncoder(
        name,
        device=resolved_device,
        similarity=similarity,
        trust_remote_code=trust_remote_code,
        precision=resolved_precision,
    )
