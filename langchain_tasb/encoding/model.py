"""``TasbModel``: a TAS-B-style text encoder with per-role settings, framework-free.

The skins wrap it; the core takes it, or any :class:`~langchain_tasb.encoding.types.TextEncoder`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from langchain_tasb.encoding.selection import default_backend, default_model_name, make_encoder
from langchain_tasb.encoding.types import (
    Backend,
    Encoder,
    EncoderSettings,
    ModelInfo,
    Precision,
    Role,
    Similarity,
    TextEncoder,
)
from langchain_tasb.validation import check_text, check_texts

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from typing_extensions import Self

logger = logging.getLogger(__name__)

# Settings that shape the encoder: changing one loads another encoder (and other workers).
_ENCODER_FIELDS = {f.name for f in fields(EncoderSettings)} - {"threads"}


class TasbModel(BaseModel):
    """TAS-B embeddings: CLS pooling, unnormalised vectors, scored by dot product.

    Queries and documents have separate token limits and batch sizes. The model is loaded
    lazily, once per process, and shared by every instance with the same model, device and
    backend; ``backend="torch"`` gives the exact fp32 vectors.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True)

    model_name: str = Field(default_factory=default_model_name)
    """Hub name or local directory of a sentence-transformers model (default: ``$TASB_MODEL``,
    else TAS-B)."""
    device: str | None = None
    """Torch device; None picks cuda, then mps, then cpu."""
    backend: Backend = Field(default_factory=default_backend)
    """Inference backend (default ``$TASB_BACKEND``, else "auto"): "torch" (sentence-transformers),
    "onnx-int8" (a cached int8 ONNX export on CPU), "onnx-int8+torch" (single texts on
    "onnx-int8", document batches on torch in bfloat16), or "auto": "onnx-int8" on CPU,
    "onnx-int8+torch" on a CPU with AMX, "torch" (float16 on CUDA) on a GPU."""
    precision: Precision = "auto"
    """Torch weights' precision ("auto": float16 on CUDA, bfloat16 for "onnx-int8+torch"'s
    documents, else float32); an explicit one selects torch under backend "auto"."""
    similarity_override: Literal["dot", "cosine"] | None = None
    """Force how the model's vectors are scored; None reads it from the model."""
    query_max_tokens: int = Field(default=64, gt=2)
    document_max_tokens: int = Field(default=256, gt=2)
    """Token limit for documents (TAS-B was trained on passages of up to about 200 tokens)."""
    query_batch_size: int = Field(default=64, gt=0)
    document_batch_size: int = Field(default=32, gt=0)
    query_cache_size: int = Field(default=1024, ge=0)
    """How many query vectors to keep (LRU); 0 disables the cache."""
    trust_remote_code: bool = False
    """Run code shipped with the model repository. Off unless you trust the repository."""
    processes: int = Field(default=0, ge=0)
    """Worker processes for ``embed_documents``: 0 encodes in this process; N starts a
    persistent :class:`~langchain_tasb.encoding.pool.EncoderPool` on first use, kept until
    :meth:`close`. Queries stay in this process."""

    _encoder: Encoder | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cache: OrderedDict[str, list[float]] = PrivateAttr(default_factory=OrderedDict)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _truncated: int = PrivateAttr(default=0)
    _pool: Any = PrivateAttr(default=None)

    def __setattr__(self, name: str, value: Any) -> None:
        # Validate a new setting, then drop the encoder, workers or vectors it invalidates.
        setting = name in type(self).model_fields
        old = getattr(self, name) if setting else None
        super().__setattr__(name, value)
        if setting and getattr(self, name) != old:
            self._forget(name)

    def _forget(self, changed: str) -> None:
        pool = None
        with self._lock:
            if changed in _ENCODER_FIELDS:
                self._encoder = None
            if changed in _ENCODER_FIELDS or changed == "processes":
                pool, self._pool = self._pool, None
        with self._cache_lock:
            if changed in _ENCODER_FIELDS or changed == "query_max_tokens":
                self._cache.clear()
            self._trim_cache()
        if pool is not None:
            logger.debug("%s changed: stopping the document workers", changed)
            pool.close()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with its own query cache, locks and workers; ``update`` is validated."""
        del deep  # every setting is a str, number, bool or None
        copy = super().model_copy()
        copy._lock = threading.Lock()
        copy._cache_lock = threading.Lock()
        copy._cache = OrderedDict(self._cache)
        copy._pool = None
        for name, value in (update or {}).items():
            setattr(copy, name, value)
        return copy

    @property
    def encoder(self) -> Encoder:
        """The loaded encoder (loads the model, or its cached ONNX export, on first use)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = make_encoder(self._settings())
        return self._encoder

    def _settings(self) -> EncoderSettings:
        return EncoderSettings(**self.model_dump(include=_ENCODER_FIELDS))

    @property
    def info(self) -> ModelInfo:
        """What the model computes: dimension, pooling, normalisation, similarity."""
        return self.encoder.info

    @property
    def similarity(self) -> Similarity:
        """How this model's vectors are compared: "dot" or "cosine" (returned L2-normalised)."""
        return self.info.similarity

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        return self.info.dimension

    @property
    def truncated_count(self) -> int:
        """How many texts have been cut to the token limit since this object was made."""
        return self._truncated

    def _document_pool(self) -> Any:
        from langchain_tasb.encoding.pool import EncoderPool

        with self._lock:
            if self._pool is None:
                self._pool = EncoderPool(self._settings(), workers=self.processes)
            return self._pool

    def close(self) -> None:
        """Stop the document worker processes, if any were started (see ``processes``)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _encode(self, texts: Sequence[str], role: Role) -> list[list[float]]:
        limit, batch = getattr(self, f"{role}_max_tokens"), getattr(self, f"{role}_batch_size")
        encoder = self._document_pool() if role == "document" and self.processes else self.encoder
        result = encoder.encode(texts, role=role, max_tokens=limit, batch_size=batch)
        if result.truncated:
            self._truncated += result.truncated
            logger.warning(
                "%d of %d %s texts exceed %d tokens and were truncated; chunk them to fit.",
                result.truncated,
                len(texts),
                role,
                min(limit, self.info.max_seq_length),
            )
        vectors: list[list[float]] = result.vectors.tolist()
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (passages) for storage."""
        items = check_texts(texts)
        return self._encode(items, "document") if items else []

    def embed_fixed_document(self, text: str) -> list[float]:
        """``embed_documents([text])[0]`` for a text that never changes.

        The ONNX backends remember it on disk: a query-only process never loads the document
        graph to open a collection.
        """
        check_text(text, "document")
        encode_fixed = getattr(self.encoder, "encode_fixed", None)
        if encode_fixed is None:
            return self.embed_documents([text])[0]
        vector: list[float] = encode_fixed(
            text, role="document", max_tokens=self.document_max_tokens
        ).tolist()
        return vector

    def embed_query(self, text: str) -> list[float]:
        """Embed one query, from the LRU cache when it was seen recently."""
        check_text(text, "query")
        with self._cache_lock:  # with query_cache_size 0 the cache stays empty
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return list(cached)
        vector = self._encode([text], "query")[0]
        with self._cache_lock:
            self._cache[text] = vector
            self._trim_cache()
        return list(vector)

    def _trim_cache(self) -> None:  # with _cache_lock held
        while len(self._cache) > self.query_cache_size:
            self._cache.popitem(last=False)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in a worker thread, leaving the event loop free."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a query in a worker thread, leaving the event loop free."""
        return await asyncio.to_thread(self.embed_query, text)

    def __reduce__(self) -> tuple[Any, ...]:  # settings only: the rest is rebuilt lazily
        return type(self).model_validate, (self.model_dump(),)


@dataclass(frozen=True)
class EmbeddingsEncoder:
    """Any object with ``embed_documents`` and ``embed_query`` as a ``TextEncoder``."""

    embeddings: Any

    def __getattr__(self, name: str) -> Any:  # embed_*, a tokenizer, limits, a fixed probe
        if name.startswith("__") or name == "embeddings":
            raise AttributeError(name)
        return getattr(self.embeddings, name)

    @property
    def model_name(self) -> str:
        """The wrapped object's ``model_name``, else its class name."""
        return str(getattr(self.embeddings, "model_name", type(self.embeddings).__name__))

    @property
    def similarity(self) -> Similarity:
        """The wrapped object's ``similarity`` when "dot" or "cosine", else "dot"."""
        similarity = getattr(self.embeddings, "similarity", None)
        return "cosine" if similarity == "cosine" else "dot"


def as_encoder(embeddings: Any) -> TextEncoder:
    """``embeddings`` as the core's encoder: itself when it says its model and similarity."""
    return embeddings if isinstance(embeddings, TasbModel) else EmbeddingsEncoder(embeddings)
