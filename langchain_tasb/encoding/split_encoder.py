"""One encoder over two backends: single texts on ONNX Runtime, document batches on torch.

On a CPU with AMX (Intel Xeon since Sapphire Rapids), torch's bfloat16 matrix products run
on the AMX tiles, and a batch of documents encodes faster than through the int8 ONNX
export (``benchmarks/RESULTS.md``, "Intel Xeon with AMX"). A single text is another
matter: a question is faster through the int8 graph than in torch, and loading torch takes
seconds. So the backend "onnx-int8+torch" (what "auto" picks on
such a CPU) sends queries and single documents (the collection's identity probe, one added
text) to :class:`~langchain_tasb.encoding.onnx_backend.OnnxEncoder`, and loads torch only when a
batch of documents arrives. Together they stay within the quality budget of the fp32 model
(nDCG@10 within 0.005, measured by ``benchmarks/backend_quality.py``).
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
"""Largest torch batch of documents on CPU. Smaller batches keep a batch's activations in
cache: on AMX cores, 8 to 16 were the fastest batch sizes measured for TAS-B's shape in
bfloat16 (``benchmarks/RESULTS.md``)."""


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
        """Encode texts for one role: torch for two or more documents, ONNX otherwise.

        ``batch_size`` is capped at :data:`TORCH_BATCH_SIZE` for torch; ONNX Runtime runs
        each text alone.
        """
        if role == "query" or len(texts) < 2:
            return self.onnx.encode(texts, role=role, max_tokens=max_tokens, batch_size=batch_size)
        return self._torch_encoder().encode(
            texts, role=role, max_tokens=max_tokens, batch_size=min(batch_size, TORCH_BATCH_SIZE)
        )
