"""A fast CPU backend: a cached ONNX export of the model, run by ONNX Runtime.

A single text (a query) runs on every core; many texts run one by one in parallel, one core
each, with no thread barrier after every op.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.encoding.hardware import physical_cores
from langchain_tasb.encoding.onnx_cache import ensure_exported
from langchain_tasb.encoding.onnx_export import OnnxSettings, import_onnxruntime
from langchain_tasb.encoding.types import EncodeResult, ModelInfo, Role, Similarity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


# Graph rewrites that make the CPU slower: SkipLayerNormalization's CPU kernel is slower than
# the Add + LayerNormalization it replaces, and the vectors are the same without it.
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def load_session(model_file: Path, threads: int) -> Any:
    """One ONNX Runtime session per model file and thread count, shared by the process."""
    key = (str(model_file), threads)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            logger.debug("loading ONNX model %s with %d threads", model_file, threads)
            session = new_session(model_file, session_options(threads))
            _SESSIONS[key] = session
        return session


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
    ort = import_onnxruntime()
    return ort.InferenceSession(
        str(model_file),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(DISABLED_OPTIMIZERS),
    )


REMEMBERED_FILE = "remembered.json"
"""The file in an export's folder that holds fixed texts' vectors (``encode_fixed``)."""
_REMEMBERED_LIMIT = 64


def _read_remembered(path: Path) -> dict[str, list[float]]:
    """The remembered vectors in ``path``; empty when unreadable or not matching its SHA-256."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.debug("ignoring unreadable %s: %s", path, exc)
        return {}
    entries = stored.get("entries") if isinstance(stored, dict) else None
    if not isinstance(entries, dict) or stored.get("sha256") != _entries_digest(entries):
        logger.warning("ignoring %s: it does not verify; computing its vectors again", path)
        return {}
    return {
        k: v
        for k, v in entries.items()
        if isinstance(v, list) and all(isinstance(x, float) for x in v)
    }


def _write_remembered(path: Path, entries: dict[str, list[float]]) -> None:
    """Replace ``path`` whole (through a temporary file); a read-only cache only logs."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        stored = {"entries": entries, "sha256": _entries_digest(entries)}
        temporary.write_text(json.dumps(stored), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        logger.debug("cannot remember vectors in %s: %s", path, exc)
        temporary.unlink(missing_ok=True)


def _entries_digest(entries: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


_POOLS: dict[int, Any] = {}


def _thread_pool(threads: int) -> Any:
    """A process-wide pool of ``threads`` Python threads that run whole batches."""
    from concurrent.futures import ThreadPoolExecutor

    with _SESSIONS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="tasb-onnx")
        return pool


class OnnxEncoder:
    """Encodes with an int8 (or fp32) ONNX export of a sentence-transformers model on CPU.

    Same interface as :class:`~langchain_tasb.encoding.torch_backend.TorchEncoder`. Once the
    export is cached, constructing one loads neither torch nor the torch model.

    Args:
        name: Hub name or local directory of a sentence-transformers model.
        similarity: Override the similarity read from the model ("dot" or "cosine").
        trust_remote_code: Passed to sentence-transformers when the model must be loaded.
        settings: Quantisation settings (int8 per channel by default).
        cache_dir: Folder of exports; default ``$TASB_CACHE_DIR/onnx`` or
            ``~/.cache/langchain-tasb/onnx``.
        threads: Intra-op threads; default: the physical cores this process may use.
    """

    def __init__(
        self,
        name: str,
        *,
        similarity: Similarity | None = None,
        trust_remote_code: bool = False,
        settings: OnnxSettings | None = None,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            msg = f"threads must be at least 1, got {threads!r}; pass None for all cores"
            raise ValueError(msg)
        self._export_args: dict[str, Any] = {
            "settings": settings,
            "cache_dir": cache_dir,
            "trust_remote_code": trust_remote_code,
        }
        exported = ensure_exported(name, **self._export_args)
        info = ModelInfo(**{**asdict(exported.info), "name": name})
        if similarity is not None and similarity != info.similarity:
            info = ModelInfo(**{**asdict(info), "similarity": similarity})
        self.info = info
        self.exported = exported
        self.threads = threads or physical_cores()
        # Sessions load on first use: a query-only process never loads the document session.
        self._sessions: dict[tuple[Role, bool], Any] = {}
        self._normalize = info.normalized or info.similarity == "cosine"
        self._prompts = exported.prompts
        self._pad = exported.pad_token_id
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

            self._hf_tokenizer = AutoTokenizer.from_pretrained(str(self.exported.tokenizer_dir))
        return self._hf_tokenizer

    def _truncating_tokenizer(self, max_tokens: int) -> Any:
        """A private Rust tokenizer that truncates at ``max_tokens`` (one per limit)."""
        tokenizer = self._tokenizers.get(max_tokens)
        if tokenizer is None:
            from tokenizers import Tokenizer

            with self._lock:
                tokenizer = self._tokenizers.get(max_tokens)
                if tokenizer is None:
                    source = self.exported.directory / "tokenizer.json"
                    tokenizer = Tokenizer.from_file(str(source))
                    tokenizer.no_padding()
                    tokenizer.enable_truncation(max_tokens)
                    self._tokenizers[max_tokens] = tokenizer
        return tokenizer

    def _session(self, role: Role, *, wide: bool) -> Any:
        """The shared session for ``role``'s graph: on every core (``wide``) or on one."""
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
                    self.exported = ensure_exported(
                        self.info.name, **self._export_args, rebuild=True
                    )
                session = load_session(self.exported.graph_for(role), threads)
            self._sessions[role, wide] = session
        return session

    def encode_fixed(self, text: str, *, role: Role, max_tokens: int) -> NDArray[np.float32]:
        """``encode([text], ...)``'s vector, computed once and remembered beside the export.

        The export's folder never changes (it is keyed by the model and settings), so the
        vector stays right; its key also holds the role, limit, normalisation, ONNX Runtime's
        version and the graph's digest. A read-only cache computes it on every call.
        """
        max_tokens = min(max_tokens, self.info.max_seq_length)
        graph = self.exported.digests.get(self.exported.graph_for(role).name, "")
        fields = [role, max_tokens, self._normalize, import_onnxruntime().__version__, text]
        fields.append(graph)
        key = hashlib.sha256(json.dumps(fields).encode()).hexdigest()
        path = self.exported.directory / REMEMBERED_FILE
        stored = _read_remembered(path).get(key)
        if stored is not None and len(stored) == self.info.dimension:
            return np.asarray(stored, dtype=np.float32)
        result = self.encode([text], role=role, max_tokens=max_tokens, batch_size=1)
        vector: NDArray[np.float32] = result.vectors[0]
        entries = _read_remembered(path)  # again: another process may have added one
        entries[key] = vector.tolist()
        _write_remembered(path, dict(list(entries.items())[-_REMEMBERED_LIMIT:]))
        return vector

    @staticmethod
    def _run(session: Any, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        outputs = session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(outputs[0], dtype=np.float32)

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts for one role; cosine models come back L2-normalised."""
        max_tokens = min(max_tokens, self.info.max_seq_length)
        prompt = self._prompts.get(role, "")
        inputs = [prompt + t for t in texts] if prompt else list(texts)
        tokenizer = self._truncating_tokenizer(max_tokens)
        if len(inputs) == 1:  # the query path: no sorting, no padding
            encoding = tokenizer.encode(inputs[0])
            ids = np.asarray([encoding.ids], dtype=np.int64)
            # One text uses every core: a question is faster on all cores than on one (the
            # matrix products are split by output columns, so the vector is the same).
            session = self._session(role, wide=self.threads > 1)
            vectors = self._run(session, ids, np.ones_like(ids))
            truncated = 1 if encoding.overflowing else 0
        else:
            encodings = tokenizer.encode_batch(inputs)
            truncated = sum(1 for e in encodings if e.overflowing)
            lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
            order = np.argsort(-lengths, kind="stable")
            vectors = np.empty((len(inputs), self.info.dimension), dtype=np.float32)
            # Every text runs alone (``batch_size`` is unused): dynamic int8 scales activations
            # per call, so a batched text's vector would depend on its neighbours.
            del batch_size
            batches = [order[i : i + 1] for i in range(len(order))]
            session = self._session(role, wide=False)

            def run_batch(rows: NDArray[np.intp]) -> None:
                width = int(lengths[rows[0]])
                ids = np.full((len(rows), width), self._pad, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for row, index in enumerate(rows):
                    n = int(lengths[index])
                    ids[row, :n] = encodings[index].ids
                    mask[row, :n] = 1
                vectors[rows] = self._run(session, ids, mask)

            if len(batches) > 1 and self.threads > 1:
                pool = _thread_pool(self.threads)
                for future in [pool.submit(run_batch, rows) for rows in batches]:
                    future.result()
            else:
                for rows in batches:
                    run_batch(rows)
        if self._normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return EncodeResult(vectors, truncated)
