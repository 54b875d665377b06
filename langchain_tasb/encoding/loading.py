"""Loading a sentence-transformers model once per process, and reading what it computes."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from langchain_tasb.config import DEFAULT_MODEL_NAME, MODEL_ENV_VAR
from langchain_tasb.encoding.types import ModelInfo

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

logger = logging.getLogger(__name__)

# Dot-product models whose configuration predates sentence-transformers' similarity_fn_name.
_DOT_MODEL_MARKERS = ("tas-b", "-dot-", "dot-v")


def default_model_name() -> str:
    """The model to load when none is given: ``$TASB_MODEL`` if set, else TAS-B's hub name."""
    return os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_NAME


def describe_model(model: Any, name: str) -> ModelInfo:
    """Read pooling, normalisation and similarity from a loaded SentenceTransformer.

    Similarity: a ``Normalize`` module means cosine; else a configured ``similarity_fn_name``
    wins; else CLS pooling or a known dot-product model name means dot; else cosine.
    """
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model)
    normalized = any(isinstance(m, Normalize) for m in modules)
    poolings = [m for m in modules if isinstance(m, Pooling)]
    pooling = str(poolings[0].pooling_mode) if poolings else "unknown"
    similarity: Any = getattr(model, "_similarity_fn_name", None)
    if normalized:
        similarity = "cosine"
    elif similarity is None:
        dot = pooling == "cls" or any(marker in name.lower() for marker in _DOT_MODEL_MARKERS)
        similarity = "dot" if dot else "cosine"
    elif similarity not in ("dot", "cosine"):
        msg = (
            f"Model {name!r} declares similarity {similarity!r}; only 'dot' and 'cosine' "
            "can be served by an inner-product index. Pass similarity='dot' or 'cosine'."
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


_MODELS: dict[tuple[str, str, bool], Any] = {}
_MODELS_LOCK = threading.Lock()


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
    name: str, device: str, *, trust_remote_code: bool = False, share: bool = True
) -> Any:
    """Load a SentenceTransformer once per process (not kept with ``share=False``)."""
    key = (name, device, trust_remote_code)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
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
            if share:
                _MODELS[key] = model
        return model


_CAST_MODELS: dict[tuple[str, str, bool, str], Any] = {}
_CAST_MODELS_LOCK = threading.Lock()  # held while loading: not _MODELS_LOCK, which loading takes


def cast_model(key: tuple[str, str, bool, str]) -> Any:
    """A half-precision model, made once per process (a copy if float32 is in use)."""
    name, device, trust_remote_code, precision = key
    with _CAST_MODELS_LOCK:
        model = _CAST_MODELS.get(key)
        if model is None:
            import copy

            import torch

            base = load_sentence_transformer(
                name, device, trust_remote_code=trust_remote_code, share=False
            )
            if base is _MODELS.get(key[:3]):  # in use in float32: cast a copy, never it
                base = copy.deepcopy(base)
            model = _CAST_MODELS[key] = base.to(getattr(torch, precision))
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
