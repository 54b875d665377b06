"""The torch backend: sentence-transformers on CPU, CUDA or MPS, in float32 or half precision."""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.encoding.hardware import default_device
from langchain_tasb.encoding.loading import (
    cast_model,
    count_truncated,
    describe_model,
    load_sentence_transformer,
)
from langchain_tasb.encoding.types import EncodeResult, Role, Similarity, TorchPrecision

if TYPE_CHECKING:
    from collections.abc import Sequence

# One lock per loaded model: a fast tokenizer keeps its truncation length between calls, so
# two threads using one model at once would encode with each other's limit.
_MODEL_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_MODEL_LOCKS_LOCK = threading.Lock()


class TorchEncoder:
    """Encodes with sentence-transformers on torch (CPU, CUDA or MPS).

    Queries go through ``encode_query`` and documents through ``encode_document``; calls on
    one loaded model run one at a time (torch parallelises each call itself).
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
            self.model = load_sentence_transformer(
                name, self.device, trust_remote_code=trust_remote_code
            )
        else:
            self.model = cast_model((name, self.device, trust_remote_code, precision))
        info = describe_model(self.model, name)
        self.info = replace(info, similarity=similarity or info.similarity)
        with _MODEL_LOCKS_LOCK:
            self._lock = _MODEL_LOCKS.setdefault(self.model, threading.Lock())
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        """A private copy of the model's Hugging Face tokenizer (for chunking)."""
        if self._tokenizer is None:  # the lock is held while encoding: take it only once
            with self._lock:
                self._tokenizer = self._tokenizer or copy.deepcopy(self.model.tokenizer)
        return self._tokenizer

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role; cosine models come back L2-normalised."""
        max_tokens = min(max_tokens, self.info.max_seq_length)
        method = self.model.encode_query if role == "query" else self.model.encode_document
        with self._lock:
            truncated = count_truncated(self.model.tokenizer, texts, max_tokens)
            vectors = method(
                list(texts),
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=self.info.similarity == "cosine" and not self.info.normalized,
                processing_kwargs={"text": {"max_length": max_tokens, "truncation": True}},
            )
        return EncodeResult(np.asarray(vectors, dtype=np.float32), truncated)
