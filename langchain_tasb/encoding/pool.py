"""A persistent pool of encoder processes, for machines with several GPUs or many cores.

``TasbEmbeddings(processes=N)`` starts one on first use and reuses it for every later call
until ``close()``: each worker process loads the model once (torch or onnx-int8), and each
call spreads chunks of similar-length texts over the workers.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.encoding.hardware import physical_cores
from langchain_tasb.encoding.selection import make_encoder, resolve_backend
from langchain_tasb.encoding.types import EncodeResult, ModelInfo, Role, Similarity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

_WORKER_ENCODER: Any = None


def _start_worker(
    name: str,
    backend: str,
    precision: str,
    similarity: Similarity | None,
    trust_remote_code: bool,
    devices: Any,
    threads: int,
) -> None:
    """Pool initializer: take a device from the shared queue and load the encoder once."""
    global _WORKER_ENCODER  # one encoder per worker process, by design
    device = devices.get()
    if backend in ("torch", "onnx-int8+torch") and device == "cpu":
        import torch

        torch.set_num_threads(threads)
    _WORKER_ENCODER = make_encoder(
        name,
        backend=backend,  # type: ignore[arg-type]
        device=device,
        precision=precision,  # type: ignore[arg-type]
        similarity=similarity,
        trust_remote_code=trust_remote_code,
        threads=threads,
    )


def _worker_encode(
    texts: list[str], role: Role, max_tokens: int, batch_size: int
) -> tuple[EncodeResult, int, ModelInfo]:
    encoder = _WORKER_ENCODER
    result = encoder.encode(texts, role=role, max_tokens=max_tokens, batch_size=batch_size)
    return result, os.getpid(), encoder.info


class EncoderPool:
    """Encoder processes started once and reused for every call, until :meth:`close`.

    For machines with several GPUs (one torch worker per GPU) or many cores (onnx-int8 or
    torch workers splitting the cores). Each call sorts the texts by length, cuts them into
    chunks of similar length and spreads the chunks over the workers; the model is loaded
    once per worker, never per call. It has the encoder interface (``info``, ``encode``), so
    it can stand in for one.

    Args:
        name: Hub name or local directory of a sentence-transformers model.
        backend: "auto", "torch" or "onnx-int8" (see
            :func:`~langchain_tasb.encoding.selection.resolve_backend`).
        workers: Number of processes; default: one per device, or one per physical core.
        devices: Devices handed to the workers in turn; default: every CUDA GPU for torch on
            CUDA, else "cpu".
        precision: Torch precision ("auto": float16 on CUDA).
        similarity: Override the similarity read from the model.
        trust_remote_code: Passed to sentence-transformers.
    """

    def __init__(
        self,
        name: str,
        *,
        backend: str = "auto",
        workers: int | None = None,
        devices: Sequence[str] | None = None,
        precision: str = "auto",
        similarity: Similarity | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import multiprocessing
        import weakref
        from concurrent.futures import ProcessPoolExecutor

        if workers is not None and workers < 1:
            msg = f"workers must be at least 1, got {workers!r}"
            raise ValueError(msg)
        kind, device, _ = resolve_backend(
            backend,  # type: ignore[arg-type]
            devices[0] if devices else None,
            precision,  # type: ignore[arg-type]
        )
        if devices is None:
            if device.startswith("cuda"):
                import torch

                devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
            else:
                devices = [device]
        count = workers or (len(devices) if devices[0] != "cpu" else physical_cores())
        self.workers = count
        threads = max(1, physical_cores() // count)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        for i in range(count):
            queue.put(devices[i % len(devices)])
        self._executor = ProcessPoolExecutor(
            max_workers=count,
            mp_context=context,
            initializer=_start_worker,
            initargs=(name, kind, precision, similarity, trust_remote_code, queue, threads),
        )
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False)
        self.worker_pids: set[int] = set()
        self._info: ModelInfo | None = None
        logger.debug("started %d %s encoder workers on %s", count, kind, list(devices))

    @property
    def info(self) -> ModelInfo:
        """What the model computes (asked of a worker on first use)."""
        if self._info is None:
            self.encode(["info"], role="query", max_tokens=8, batch_size=1)
        if self._info is None:  # pragma: no cover - encode always sets it
            msg = "EncoderPool workers did not report the model's description"
            raise RuntimeError(msg)
        return self._info

    @property
    def tokenizer(self) -> Any:
        """Not available in the parent process: the workers hold the model."""
        msg = "EncoderPool keeps the tokenizer in its workers; use TasbEmbeddings.encoder."
        raise AttributeError(msg)

    def encode(
        self, texts: Sequence[str], *, role: Role, max_tokens: int, batch_size: int
    ) -> EncodeResult:
        """Encode texts across the workers; rows come back in input order."""
        if self._finalizer.alive is False:
            msg = "This EncoderPool is closed; create a new one."
            raise RuntimeError(msg)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        # Chunks of similar length, several per worker so that a slow one is not waited on.
        per_chunk = max(batch_size, -(-len(texts) // (self.workers * 4)))
        chunks = [order[i : i + per_chunk] for i in range(0, len(order), per_chunk)]
        futures = [
            self._executor.submit(
                _worker_encode, [texts[i] for i in chunk], role, max_tokens, batch_size
            )
            for chunk in chunks
        ]
        vectors: NDArray[np.float32] | None = None
        truncated = 0
        for chunk, future in zip(chunks, futures, strict=True):
            result, pid, info = future.result()
            self.worker_pids.add(pid)
            self._info = info
            if vectors is None:
                vectors = np.empty((len(texts), result.vectors.shape[1]), dtype=np.float32)
            vectors[chunk] = result.vectors
            truncated += result.truncated
        if vectors is None:
            vectors = np.empty((0, self._info.dimension if self._info else 0), np.float32)
        return EncodeResult(vectors, truncated)

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        if self._finalizer.alive:
            self._finalizer.detach()
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
