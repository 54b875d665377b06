"""The torch backend: a sentence-transformers model loaded once per process, read and run."""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.config import MODEL_ENV_VAR
from langchain_tasb.encoding.hardware import default_device
from langchain_tasb.encoding.types import (
    EncodeResult,
    EncoderSettings,
    ModelInfo,
    Role,
    Similarity,
    TorchPrecision,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

logger = logging.getLogger(__name__)

# Dot-product models whose configuration predates sentence-transformers' similarity_fn_name.
_DOT_MODEL_MARKERS = ("tas-b", "-dot-", "dot-v")
_MODELS: dict[tuple[str, str, bool, str], Any] = {}  # (name, device, trust code, precision)
_MODELS_LOCK = threading.Lock()
# One lock per loaded model: a fast tokenizer keeps its truncation length between calls, so
# two threads using one model at once would encode with each other's limit.
_MODEL_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()


def describe_model(model: Any, name: str, override: Similarity | None = None) -> ModelInfo:
    """Read pooling, normalisation and similarity from a loaded SentenceTransformer.

    Similarity: ``override`` when given; else a ``Normalize`` module means cosine; else a
    configured ``similarity_fn_name`` wins; else CLS pooling or a known dot-product model name
    means dot; else cosine.
    """
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model)
    normalized = any(isinstance(m, Normalize) for m in modules)
    poolings = [m for m in modules if isinstance(m, Pooling)]
    pooling = str(poolings[0].pooling_mode) if poolings else "unknown"
    declared = getattr(model, "_similarity_fn_name", None)
    similarity: Any = override or ("cosine" if normalized else declared)
    if similarity is None:
        dot = pooling == "cls" or any(marker in name.lower() for marker in _DOT_MODEL_MARKERS)
        similarity = "dot" if dot else "cosine"
    elif similarity not in ("dot", "cosine"):
        msg = (
            f"Model {name!r} declares similarity {similarity!r}; only 'dot' and 'cosine' "
            "can be served by an inner-product index. Pass similarity_override='dot' or 'cosine'."
        )
        raise ValueError(msg)
    dimension = model.get_embedding_dimension()
    if not dimension:
        msg = f"Model {name!r} does not report an embedding dimension; is it a text encoder?"
        raise ValueError(msg)
    return ModelInfo(
        name=name,
        dimension=int(dimension),
        pooling=pooling,
        normalized=normalized,
        similarity=similarity,
        max_seq_length=int(model.max_seq_length or 512),
    )


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:  # a library should not draw on stderr
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def load_sentence_transformer(
    name: str,
    device: str,
    *,
    trust_remote_code: bool = False,
    precision: TorchPrecision = "float32",
    share: bool = True,
) -> Any:
    """Load a SentenceTransformer once per process (not kept with ``share=False``).

    A half-precision model is cast from a fresh load, or from a copy of the shared float32
    model when one is in use (never from it).
    """
    key = (name, device, trust_remote_code, precision)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        model = _MODELS.get((*key[:3], "float32"))
        if model is None:
            from sentence_transformers import SentenceTransformer

            logger.debug("loading model %s on %s", name, device)
            try:
                with _no_progress_bars():
                    model = SentenceTransformer(
                        name, device=device, trust_remote_code=trust_remote_code
                    )
            except OSError as exc:
                msg = (
                    f"Could not load model {name!r}: {exc}. Without network access, point "
                    f"{MODEL_ENV_VAR} or model_name at a local sentence-transformers directory."
                )
                raise OSError(msg) from exc
            model.eval()
        elif precision != "float32":
            model = copy.deepcopy(model)
        if precision != "float32":
            import torch

            model = model.to(getattr(torch, precision))
        if share:
            _MODELS[key] = model
        return model


def count_truncated(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> int:
    """How many texts have more than ``max_tokens`` tokens, special tokens included."""
    long_texts = [t for t in texts if len(t) > max_tokens - 2]  # a token is 1+ characters
    if not long_texts:
        return 0
    encoded = tokenizer(long_texts, add_special_tokens=True, truncation=False, verbose=False)[
        "input_ids"
    ]
    return sum(1 for ids in encoded if len(ids) > max_tokens)


class TorchEncoder:
    """Encodes with sentence-transformers on torch (CPU, CUDA or MPS).

    Queries go through ``encode_query`` and documents through ``encode_document``; calls on
    one loaded model run one at a time (torch parallelises each call itself). Precision
    "auto" means float32 here; the device defaults to :func:`.hardware.default_device`.
    """

    def __init__(self, settings: EncoderSettings) -> None:
        self.device = settings.device or default_device()
        self.model = load_sentence_transformer(
            settings.model_name,
            self.device,
            trust_remote_code=settings.trust_remote_code,
            precision="float32" if settings.precision == "auto" else settings.precision,
        )
        self.info = describe_model(self.model, settings.model_name, settings.similarity_override)
        with _MODELS_LOCK:
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
