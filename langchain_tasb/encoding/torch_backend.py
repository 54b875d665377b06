"""The torch backend: sentence-transformers on CPU, CUDA or MPS, in float32 or half precision."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from langchain_tasb.encoding.hardware import default_device
from langchain_tasb.encoding.loading import (
    cast_model,
    count_truncated,
    describe_model,
    load_sentence_transformer,
)
from langchain_tasb.encoding.types import EncodeResult, ModelInfo, Role, Similarity, TorchPrecision

if TYPE_CHECKING:
    from collections.abc import Sequence


class TorchEncoder:
    """Encodes with sentence-transformers on torch (CPU, CUDA or MPS).

    Queries go through ``encode_query`` and documents through ``encode_document``, so models
    with role prompts or routers get the right one; everything else is one code path.
    """

    def __init__(
        self,
        name: str,
        *,
        device: str | None = None,
        similarity: Similarity | None = None,
        trust_remote_code: bool = False,
        precision: TorchPrecision = "float32",
    ) -> None:
        self.device = device or default_device()
        if precision == "float32":
            base = load_sentence_transformer(name, self.device, trust_remote_code=trust_remote_code)
        else:
            base = cast_model((name, self.device, trust_remote_code, precision))
        self.model = base
        info = describe_model(base, name)
        if similarity is not None and similarity != info.similarity:
            info = ModelInfo(**{**info.__dict__, "similarity": similarity})
        self.info = info
        self.tokenizer = base.tokenizer

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role; cosine models come back L2-normalised."""
        max_tokens = min(max_tokens, self.info.max_seq_length)
        truncated = count_truncated(self.tokenizer, texts, max_tokens)
        method = self.model.encode_query if role == "query" else self.model.encode_document
        vectors = method(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=self.info.similarity == "cosine" and not self.info.normalized,
            processing_kwargs={"text": {"max_length": max_tokens, "truncation": True}},
        )
        return EncodeResult(np.asarray(vectors, dtype=np.float32), truncated)
