"""The model side's public names in one place, for callers that import them from here.

Nothing in :mod:`langchain_tasb.encoding` imports this module; each name lives in the module
that owns it (:mod:`~langchain_tasb.encoding.types`, :mod:`~langchain_tasb.encoding.loading`,
:mod:`~langchain_tasb.encoding.hardware`, :mod:`~langchain_tasb.encoding.torch_backend`,
:mod:`~langchain_tasb.encoding.selection`), which is where to patch it in tests.
"""

from __future__ import annotations

from langchain_tasb.encoding.hardware import cpu_flags, cpu_has_amx, default_device, gpu_possible
from langchain_tasb.encoding.loading import (
    DEFAULT_MODEL_NAME,
    MODEL_ENV_VAR,
    count_truncated,
    default_model_name,
    describe_model,
    load_sentence_transformer,
)
from langchain_tasb.encoding.selection import (
    BACKEND_ENV_VAR,
    default_backend,
    make_encoder,
    resolve_backend,
)
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import (
    Backend,
    Encoder,
    EncodeResult,
    ModelInfo,
    Precision,
    ResolvedBackend,
    Role,
    Similarity,
    TorchPrecision,
)

__all__ = [
    "BACKEND_ENV_VAR",
    "DEFAULT_MODEL_NAME",
    "MODEL_ENV_VAR",
    "Backend",
    "EncodeResult",
    "Encoder",
    "ModelInfo",
    "Precision",
    "ResolvedBackend",
    "Role",
    "Similarity",
    "TorchEncoder",
    "TorchPrecision",
    "count_truncated",
    "cpu_flags",
    "cpu_has_amx",
    "default_backend",
    "default_device",
    "default_model_name",
    "describe_model",
    "gpu_possible",
    "load_sentence_transformer",
    "make_encoder",
    "resolve_backend",
]
