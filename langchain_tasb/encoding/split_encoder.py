"""One encoder over two backends: single texts on ONNX Runtime, document batches on torch.

On AMX tiles bfloat16 torch encodes batches of documents faster than the int8 graph, but a
single text is faster through the graph and loading torch takes seconds, so torch is loaded
only when a batch of documents arrives.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    from numpy.typing import NDArray

    from langchain_tasb.encoding.onnx_backend import OnnxEncoder
    from langchain_tasb.encoding.torch_backend import TorchEncoder
    from langchain_tasb.encoding.types import EncodeResult, ModelInfo, Role

logger = logging.getLogger(__name__)

TORCH_BATCH_SIZE = 16
"""Largest torch batch of documents on CPU: smaller batches keep activations in cache."""


class SplitEncoder:
    """Queries and single texts on ONNX Runtime; batches of documents on torch (lazily).

    Args:
        onnx: The int8 ONNX encoder (its ``info`` and tokenizer serve both halves).
        load_torch: Builds the torch encoder of the same model on first use.
    """

    def __init__(self, onnx: OnnxEncoder, load_torch: Callable[[], TorchEncoder]) -> None:
        self.onnx = onnx
        self.info: ModelInfo = onnx.info
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
        if self._torch is None:
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

    def encode_fixed(self, text: str, *, role: Role, max_tokens: int) -> NDArray[np.float32]:
        """A fixed text's vector from the ONNX half, which encodes single texts (remembered)."""
        return self.onnx.encode_fixed(text, role=role, max_tokens=max_tokens)

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role: torch for two or more documents, ONNX otherwise."""
        if role == "query" or len(texts) < 2:
            return self.onnx.encode(texts, role=role, max_tokens=max_tokens, batch_size=batch_size)
        return self._torch_encoder().encode(
            texts, role=role, max_tokens=max_tokens, batch_size=min(batch_size, TORCH_BATCH_SIZE)
        )
