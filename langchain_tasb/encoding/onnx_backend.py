"""A fast CPU backend: a cached ONNX export of the model, run by ONNX Runtime.

A single text (a query) runs on every core; many texts run one by one in parallel, one core
each, with no thread barrier after every op.
"""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.encoding.hardware import physical_cores
from langchain_tasb.encoding.onnx_cache import ensure_exported, json_digest, read_json, write_json
from langchain_tasb.encoding.onnx_export import OnnxSettings, import_onnxruntime
from langchain_tasb.encoding.types import EncodeResult, EncoderSettings, Role

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()

# Graph rewrites that make the CPU slower: SkipLayerNormalization's CPU kernel is slower than
# the Add + LayerNormalization it replaces, and the vectors are the same without it.
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)

REMEMBERED_FILE = "remembered.json"
"""The file in an export's folder that holds fixed texts' vectors (``encode_fixed``)."""
_REMEMBERED_LIMIT = 64


def load_session(model_file: Path, threads: int) -> Any:
    """One ONNX Runtime session per model file and thread count, shared by the process."""
    key = (str(model_file), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            logger.debug("loading ONNX model %s with %d threads", model_file, threads)
            _SESSIONS[key] = new_session(model_file, session_options(threads))
        return _SESSIONS[key]


def session_options(threads: int) -> Any:
    """Options tuned for CPU inference: ``threads`` intra-op threads, sequential execution.

    Denormals are not flushed to zero: one-thread sessions run on the caller's thread, and
    that setting would change its floating-point state for good. The default spinning is
    kept: stopping it makes the Chroma search that follows a query slower.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def new_session(model_file: Path, options: Any) -> Any:
    """A CPU session of ``model_file`` without the graph rewrites that slow it down."""
    return import_onnxruntime().InferenceSession(
        str(model_file),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(DISABLED_OPTIMIZERS),
    )


@functools.cache
def _thread_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="tasb-onnx")


class OnnxEncoder:
    """Encodes with an int8 (or fp32) ONNX export of a sentence-transformers model on CPU.

    Once the export is cached, constructing one loads neither torch nor the torch model.
    ``settings.threads`` None means the physical cores; ``export`` None, int8 per channel;
    ``cache_dir`` None, ``onnx`` under :func:`~langchain_tasb.config.cache_root`.
    """

    def __init__(
        self,
        settings: EncoderSettings,
        *,
        export: OnnxSettings | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self._export = functools.partial(
            ensure_exported,
            settings.model_name,
            settings=export,
            cache_dir=cache_dir,
            trust_remote_code=settings.trust_remote_code,
            similarity_override=settings.similarity_override,
        )
        self.exported = self._export()
        info = self.exported.info
        similarity = settings.similarity_override or info.similarity
        self.info = replace(info, name=settings.model_name, similarity=similarity)
        self.threads = settings.threads or physical_cores()
        # Sessions load on first use: a query-only process never loads the document session.
        self._sessions: dict[tuple[Role, bool], Any] = {}
        self._normalize = self.info.normalized or self.info.similarity == "cosine"
        self._hf_tokenizer: Any = None
        self._tokenizers: dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        """The document graph's one-thread session (many texts run one per thread)."""
        return self._session("document", wide=False)

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face fast tokenizer (for chunking), loaded on first use."""
        if self._hf_tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer_dir = self.exported.directory / "tokenizer"
            self._hf_tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        return self._hf_tokenizer

    def _truncating_tokenizer(self, max_tokens: int) -> Any:
        if max_tokens not in self._tokenizers:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.exported.directory / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_tokens)
            self._tokenizers.setdefault(max_tokens, tokenizer)  # a racing thread's is as good
        return self._tokenizers[max_tokens]

    def _session(self, role: Role, *, wide: bool) -> Any:
        session = self._sessions.get((role, wide))
        if session is None:
            threads = self.threads if wide else 1
            try:
                session = load_session(self.exported.graph_for(role), threads)
            except ImportError:
                raise
            except Exception as exc:  # ONNX Runtime's errors derive from Exception only
                # A damaged graph that kept its size (the cache checks sizes): export again.
                logger.debug("cannot load %s: %s", self.exported.graph_for(role), exc)
                with self._lock:
                    self.exported = self._export(rebuild=True)
                session = load_session(self.exported.graph_for(role), threads)
            self._sessions[role, wide] = session
        return session

    def encode_fixed(self, text: str, *, role: Role, max_tokens: int) -> NDArray[np.float32]:
        """``encode([text], ...)``'s vector, computed once and remembered beside the export.

        The export's folder is keyed by the model and settings, so the vector stays right; a
        read-only cache computes it on every call.
        """
        max_tokens = min(max_tokens, self.info.max_seq_length)
        graph = self.exported.digests.get(self.exported.graph_for(role).name, "")
        ort_version = import_onnxruntime().__version__
        key = json_digest([role, max_tokens, self._normalize, ort_version, text, graph])
        path = self.exported.directory / REMEMBERED_FILE
        stored = read_json(path).get(key)
        stored = stored if isinstance(stored, list) else []
        if len(stored) == self.info.dimension and all(isinstance(x, float) for x in stored):
            return np.asarray(stored, dtype=np.float32)
        vector: NDArray[np.float32]
        vector = self.encode([text], role=role, max_tokens=max_tokens, batch_size=1).vectors[0]
        entries = read_json(path)  # again: another process may have added one
        entries[key] = vector.tolist()
        write_json(path, dict(list(entries.items())[-_REMEMBERED_LIMIT:]))
        return vector

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role; cosine models come back L2-normalised.

        Every text runs alone (``batch_size`` is unused): dynamic int8 scales activations per
        call, so a batched text's vector would depend on its neighbours.
        """
        del batch_size
        max_tokens = min(max_tokens, self.info.max_seq_length)
        prompt = self.exported.prompts.get(role, "")
        inputs = [prompt + t for t in texts] if prompt else list(texts)
        tokenizer = self._truncating_tokenizer(max_tokens)
        if len(inputs) == 1:  # a query: no batch tokenising
            encodings = [tokenizer.encode(inputs[0])]
        else:
            encodings = tokenizer.encode_batch(inputs)
        # One text uses every core: a question is faster on all cores than on one (the matrix
        # products are split by output columns, so the vector is the same).
        session = self._session(role, wide=len(inputs) == 1 and self.threads > 1)
        vectors = np.empty((len(inputs), self.info.dimension), dtype=np.float32)

        def run(index: int) -> None:
            ids = np.asarray([encodings[index].ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            vectors[index] = np.asarray(session.run(None, feed)[0], dtype=np.float32)

        longest_first = sorted(range(len(inputs)), key=lambda i: -len(encodings[i].ids))
        parallel = len(inputs) > 1 and self.threads > 1
        list((_thread_pool(self.threads).map if parallel else map)(run, longest_first))
        if self._normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return EncodeResult(vectors, sum(1 for e in encodings if e.overflowing))
