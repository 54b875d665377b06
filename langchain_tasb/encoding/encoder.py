"""Loading a sentence-transformers model once per process and encoding with it.

This module knows nothing about Chroma or LangChain. It resolves where the model comes from
(argument, ``TASB_MODEL``, or the TAS-B hub name), decides whether the model's vectors are
scored by dot product or cosine, and encodes queries and documents through one path.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

# Re-exported: these names were defined here before config.py held them.
from langchain_tasb.config import BACKEND_ENV_VAR as BACKEND_ENV_VAR
from langchain_tasb.config import DEFAULT_MODEL_NAME as DEFAULT_MODEL_NAME
from langchain_tasb.config import MODEL_ENV_VAR as MODEL_ENV_VAR

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

Role = Literal["query", "document"]
Similarity = Literal["dot", "cosine"]
Backend = Literal["auto", "torch", "onnx-int8", "onnx-int8+torch"]
"""Inference backends: "torch" (sentence-transformers), "onnx-int8" (ONNX Runtime, int8
weights, CPU), "onnx-int8+torch" (single texts on onnx-int8, batches of documents on torch in
bfloat16, CPU; see :mod:`langchain_tasb.encoding.split_encoder`) and "auto" (onnx-int8+torch on
a CPU with AMX, onnx-int8 on other CPUs, torch in half precision on a GPU)."""
Precision = Literal["auto", "float32", "float16", "bfloat16"]
"""Torch weights' precision; "auto" is float16 on CUDA, bfloat16 for the documents of
"onnx-int8+torch" and float32 elsewhere."""
_BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx-int8", "onnx-int8+torch")
ResolvedBackend = Literal["torch", "onnx-int8", "onnx-int8+torch"]
TorchPrecision = Literal["float32", "float16", "bfloat16"]

# Models known to be trained for unnormalised dot-product scoring whose configuration predates
# sentence-transformers' ``similarity_fn_name`` (which then reads as "cosine" by default).
_DOT_MODEL_MARKERS = ("tas-b", "-dot-", "dot-v")


def default_model_name() -> str:
    """The model to load when none is given: ``$TASB_MODEL`` if set, else TAS-B's hub name."""
    return os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_NAME


def default_backend() -> Backend:
    """The backend to use when none is given: ``$TASB_BACKEND`` if set, else "auto"."""
    value = os.environ.get(BACKEND_ENV_VAR) or "auto"
    if value not in _BACKENDS:
        msg = f"{BACKEND_ENV_VAR}={value!r} is not a backend; use one of {', '.join(_BACKENDS)}"
        raise ValueError(msg)
    return value  # type: ignore[return-value]


# Device files without which no torch GPU backend can run on Linux: NVIDIA's driver (bare
# metal and containers), ROCm's kernel driver (torch.cuda on AMD) and WSL2's GPU bridge.
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def gpu_possible() -> bool:
    """Whether torch could find a GPU here, decided without importing torch when it can be.

    On Linux a GPU needs one of :data:`_GPU_DEVICE_FILES`; elsewhere (macOS has MPS) only
    torch can tell. Importing torch costs about 0.8 s and 170 MB, which a process that only
    answers queries through ONNX Runtime never needs.
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)


def default_device() -> str:
    """The best available torch device: ``cuda``, then ``mps``, then ``cpu``.

    Torch is imported only when :func:`gpu_possible` says a GPU could be there.
    """
    if not gpu_possible():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


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


def describe_model(model: Any, name: str) -> ModelInfo:
    """Read pooling, normalisation and similarity from a loaded SentenceTransformer.

    The decision for similarity:

    1. A ``Normalize`` module means unit vectors: cosine, and dot equals cosine.
    2. Otherwise an explicitly configured ``similarity_fn_name`` ("dot" or "cosine") wins.
    3. Otherwise CLS pooling or a known dot-product model name (TAS-B's configuration predates
       ``similarity_fn_name``) means dot; anything else follows sentence-transformers' own
       default, cosine.
    """
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model)
    normalized = any(isinstance(m, Normalize) for m in modules)
    poolings = [m for m in modules if isinstance(m, Pooling)]
    pooling = str(poolings[0].pooling_mode) if poolings else "unknown"
    declared = getattr(model, "_similarity_fn_name", None)
    similarity: Similarity
    if normalized:
        similarity = "cosine"
    elif declared in ("dot", "cosine"):
        similarity = declared
    elif declared is not None:
        msg = (
            f"Model {name!r} declares similarity {declared!r}; only 'dot' and 'cosine' "
            "can be served by an inner-product index. Pass similarity='dot' or 'cosine'."
        )
        raise ValueError(msg)
    elif pooling == "cls" or any(marker in name.lower() for marker in _DOT_MODEL_MARKERS):
        similarity = "dot"
    else:
        similarity = "cosine"
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
def _no_progress_bars() -> Iterator[None]:
    """Silence transformers' "Loading weights" bars: a library should not draw on stderr."""
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
    """Load a SentenceTransformer once per process and return the shared instance.

    With ``share=False`` a model nobody has shared yet is loaded for the caller alone and not
    kept (the ONNX export and a half-precision copy use it once); a shared one is returned
    either way. Safetensors weights are preferred by transformers whenever the model ships
    them; code from the model repository runs only when ``trust_remote_code`` is asked for
    explicitly.
    """
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


def _cast_model(key: tuple[str, str, bool, str]) -> Any:
    """A half-precision model, made once per process and precision.

    It is a copy of the float32 model when that one is shared already (a torch float32
    encoder of the same model is in use); otherwise the float32 weights are loaded, cast in
    place and not kept: for TAS-B that is 265 MB less beside the 133 MB of bfloat16.
    """
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
    """How many texts have more than ``max_tokens`` tokens, special tokens included.

    A WordPiece token covers at least one character, so texts shorter than the limit in
    characters are skipped without tokenising.
    """
    long_texts = [t for t in texts if len(t) > max_tokens - 2]
    if not long_texts:
        return 0
    encoded = tokenizer(long_texts, add_special_tokens=True, truncation=False, verbose=False)[
        "input_ids"
    ]
    return sum(1 for ids in encoded if len(ids) > max_tokens)


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
            base = _cast_model((name, self.device, trust_remote_code, precision))
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


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bfloat16 (Intel Xeon since Sapphire Rapids).

    Read from ``/proc/cpuinfo`` (Linux); False elsewhere. On such a CPU torch's bfloat16
    matrix products outrun ONNX Runtime's int8 ones for batches of documents, whose
    GELU-fed matrices stay in fp32 (see :mod:`langchain_tasb.encoding.split_encoder`).
    """
    return cpu_flags() >= {"amx_tile", "amx_bf16"}


@functools.cache
def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from the first ``flags`` line of ``cpuinfo_path`` (Linux)."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def resolve_backend(
    backend: Backend, device: str | None, precision: Precision = "auto"
) -> tuple[ResolvedBackend, str, TorchPrecision]:
    """Turn the user's choice into (concrete backend, device, torch precision).

    "auto" means torch on a GPU, where precision "auto" means float16, and on CPU: onnx-int8
    (4.3 to 4.7x the documents per second of fp32 torch on AMD Zen 4, at about 0.995 cosine
    to its vectors), or on a CPU with AMX (:func:`cpu_has_amx`) onnx-int8+torch with
    bfloat16 documents (twice onnx-int8's documents per second there). An explicit precision
    selects torch.

    Raises:
        ValueError: For an unknown backend, a backend with ONNX Runtime on a GPU device, or
            onnx-int8 with a precision.
    """
    if backend not in _BACKENDS:
        msg = f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}"
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

    ``threads`` sets ONNX Runtime's intra-op threads (default: physical cores); torch keeps
    its own setting.
    """
    kind, resolved_device, resolved_precision = resolve_backend(backend, device, precision)
    logger.debug("encoder for %s: %s on %s (%s)", name, kind, resolved_device, resolved_precision)
    if kind != "torch":
        from langchain_tasb.encoding.onnx_backend import OnnxEncoder

        onnx = OnnxEncoder(
            name, similarity=similarity, trust_remote_code=trust_remote_code, threads=threads
        )
        if kind == "onnx-int8":
            return onnx
        from langchain_tasb.encoding.split_encoder import SplitEncoder

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
