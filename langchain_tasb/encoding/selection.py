"""Choosing a backend: the user's choice, the environment and the hardware, to one encoder.

On AMX tiles bfloat16 torch encodes batches of documents faster than the int8 graph, but a
single text is faster through the graph and loading torch takes seconds: the
:class:`SplitEncoder` loads torch only when a batch of documents arrives.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from langchain_tasb.config import BACKEND_ENV_VAR, DEFAULT_MODEL_NAME, MODEL_ENV_VAR
from langchain_tasb.encoding.hardware import cpu_has_amx, default_device
from langchain_tasb.encoding.onnx_backend import OnnxEncoder
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import (
    BACKENDS,
    Backend,
    Encoder,
    EncoderSettings,
    Precision,
    ResolvedBackend,
    TorchPrecision,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tasb.encoding.types import EncodeResult, Role

logger = logging.getLogger(__name__)

TORCH_BATCH_SIZE = 16
"""Largest torch batch of documents on CPU: smaller batches keep activations in cache."""


def default_model_name() -> str:
    """The model to load when none is given: ``$TASB_MODEL`` if set, else TAS-B's hub name."""
    return os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_NAME


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
    if precision != "auto":  # an explicit precision is a torch setting
        return "torch", resolved_device, precision
    if backend == "auto" and resolved_device == "cpu":
        if cpu_has_amx():
            return "onnx-int8+torch", "cpu", "bfloat16"
        return "onnx-int8", "cpu", "float32"
    return "torch", resolved_device, "float16" if resolved_device.startswith("cuda") else "float32"


def make_encoder(settings: EncoderSettings) -> Encoder:
    """Build the encoder that ``settings`` stand for (see :func:`resolve_backend`)."""
    kind, device, precision = resolve_backend(settings.backend, settings.device, settings.precision)
    logger.debug("encoder for %s: %s on %s (%s)", settings.model_name, kind, device, precision)
    settings = replace(settings, device=device, precision=precision)
    if kind == "torch":
        return TorchEncoder(settings)
    onnx = OnnxEncoder(settings)
    return onnx if kind == "onnx-int8" else SplitEncoder(onnx, partial(TorchEncoder, settings))


class SplitEncoder:
    """Queries and single texts on ONNX Runtime; batches of documents on torch (lazily).

    ``onnx``'s ``info`` and tokenizer serve both; ``load_torch`` builds the torch half when needed.
    """

    def __init__(self, onnx: OnnxEncoder, load_torch: Callable[[], TorchEncoder]) -> None:
        self.onnx = onnx
        self.info = onnx.info
        self.encode_fixed = onnx.encode_fixed  # fixed texts are single texts: ONNX remembers them
        self._load_torch = load_torch
        self._torch: TorchEncoder | None = None
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face fast tokenizer (for chunking)."""
        return self.onnx.tokenizer

    @property
    def torch_loaded(self) -> bool:
        """Whether a batch of documents has loaded the torch half yet."""
        return self._torch is not None

    def _torch_encoder(self) -> TorchEncoder:
        with self._lock:
            if self._torch is None:
                logger.info("loading %s in torch for batches of documents", self.info.name)
                encoder = self._load_torch()
                theirs, ours = encoder.info, self.info
                if (theirs.dimension, theirs.similarity) != (ours.dimension, ours.similarity):
                    msg = (
                        f"torch reads {ours.name!r} as {theirs.dimension} dims, "
                        f"{theirs.similarity}; its ONNX export says {ours.dimension} dims, "
                        f"{ours.similarity}. Delete the export cache or use one backend."
                    )
                    raise ValueError(msg)
                self._torch = encoder
            return self._torch

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role: torch for two or more documents, ONNX otherwise."""
        if role == "query" or len(texts) < 2:
            return self.onnx.encode(texts, role=role, max_tokens=max_tokens, batch_size=batch_size)
        return self._torch_encoder().encode(
            texts, role=role, max_tokens=max_tokens, batch_size=min(batch_size, TORCH_BATCH_SIZE)
        )
