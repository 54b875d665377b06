"""The model side's vocabulary (roles, backends, model facts, results); imports no sibling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import NDArray

Role = Literal["query", "document"]
Similarity = Literal["dot", "cosine"]
Backend = Literal["auto", "torch", "onnx-int8", "onnx-int8+torch"]
"""Inference backends (see :attr:`~langchain_tasb.encoding.model.TasbModel.backend`)."""
BACKENDS: tuple[str, ...] = get_args(Backend)
Precision = Literal["auto", "float32", "float16", "bfloat16"]
"""Torch weights' precision (see :attr:`~langchain_tasb.encoding.model.TasbModel.precision`)."""
ResolvedBackend = Literal["torch", "onnx-int8", "onnx-int8+torch"]
TorchPrecision = Literal["float32", "float16", "bfloat16"]


@dataclass(frozen=True)
class EncoderSettings:
    """Which model to load and how: the settings that shape an encoder, passed whole."""

    model_name: str
    backend: Backend = "auto"
    device: str | None = None
    """Torch device; None picks cuda, then mps, then cpu."""
    precision: Precision = "auto"
    similarity_override: Similarity | None = None
    """Force how the model's vectors are scored; None reads it from the model."""
    trust_remote_code: bool = False
    threads: int | None = None
    """ONNX Runtime's intra-op threads; None: the physical cores."""


@dataclass(frozen=True)
class ModelInfo:
    """What the loaded model computes, read from its modules and configuration."""

    name: str
    """The name or path the model was loaded from."""
    dimension: int
    """Length of each embedding."""
    pooling: str
    """Pooling mode of the model's Pooling module ("cls", "mean", ...), or "unknown"."""
    normalized: bool
    """Whether the model itself L2-normalises its output (a Normalize module)."""
    similarity: Similarity
    """How scores are computed: "dot" on raw vectors, or "cosine" (dot on unit vectors)."""
    max_seq_length: int
    """Longest input the model accepts, in tokens (special tokens included)."""


@dataclass(frozen=True)
class EncodeResult:
    """Vectors for a list of texts, with how many of those texts were cut to fit."""

    vectors: NDArray[np.float32]
    truncated: int


class Encoder(Protocol):
    """What every backend provides: model facts, its tokenizer, and one encode path."""

    info: ModelInfo

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer."""

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role."""


class TextEncoder(Protocol):
    """What the core encodes with: a ``TasbModel``, or anything with these members."""

    @property
    def model_name(self) -> str:
        """The model's name or path, recorded in the collections it fills."""

    @property
    def similarity(self) -> Similarity:
        """How its vectors are compared: "dot" or "cosine"."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors of passages, for storage."""

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query."""
