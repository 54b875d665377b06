"""A persistent pool of encoder processes, for machines with several GPUs or many cores.

Workers exit when their parent process dies, however it dies (a watchdog polls its pid). A
worker that cannot load the model reports why to the call that needed it, and the next call
starts fresh workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.encoding.hardware import physical_cores
from langchain_tasb.encoding.selection import make_encoder, resolve_backend
from langchain_tasb.encoding.types import EncodeResult, EncoderSettings, ModelInfo, Role

if TYPE_CHECKING:
    from collections.abc import Sequence


logger = logging.getLogger(__name__)

_WORKER_ENCODER: Any = None
_WORKER_START_ERROR: str | None = None
_PARENT_POLL_SECONDS = 0.5


class WorkerStartError(RuntimeError):
    """A pool worker could not load its encoder; the message holds the worker's error."""


def _exit_with_parent(parent_pid: int) -> None:
    # A killed parent runs no clean-up, and the workers wait on a queue they keep open.
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)  # nobody is left to read a result


def _start_worker(settings: EncoderSettings, devices: Any, parent_pid: int | None = None) -> None:
    # Takes a device from the queue and loads the encoder once. An error is kept and raised
    # by every call: a raising initializer only breaks the pool.
    global _WORKER_ENCODER, _WORKER_START_ERROR  # one encoder per worker process, by design
    if parent_pid is not None:
        threading.Thread(
            target=_exit_with_parent, args=(parent_pid,), daemon=True, name="tasb-parent-watch"
        ).start()
    settings = replace(settings, device=devices.get())
    try:
        if settings.backend in ("torch", "onnx-int8+torch") and settings.device == "cpu":
            import torch

            torch.set_num_threads(settings.threads or 1)
        _WORKER_ENCODER = make_encoder(settings)
    except Exception as exc:  # reported to the parent by _worker_encode
        _WORKER_START_ERROR = f"{type(exc).__name__}: {exc}"


def _worker_encode(
    texts: list[str], role: Role, max_tokens: int, batch_size: int
) -> tuple[EncodeResult, int, ModelInfo]:
    if _WORKER_START_ERROR is not None:
        raise WorkerStartError(_WORKER_START_ERROR)
    encoder = _WORKER_ENCODER
    result = encoder.encode(texts, role=role, max_tokens=max_tokens, batch_size=batch_size)
    return result, os.getpid(), encoder.info


class EncoderPool:
    """Encoder processes started once and reused for every call, until :meth:`close`.

    Each call spreads chunks of similar-length texts over the workers. It has the encoder
    interface (``info``, ``encode``), so it can stand in for one.

    Args:
        settings: The model and backend each worker loads.
        workers: Number of processes; default: one per device, or one per physical core.
        devices: Devices handed to the workers in turn; default: ``settings.device``, else
            every CUDA GPU for torch on CUDA, else "cpu".
    """

    def __init__(
        self,
        settings: EncoderSettings,
        *,
        workers: int | None = None,
        devices: Sequence[str] | None = None,
    ) -> None:
        devices = devices or ([settings.device] if settings.device else None)
        kind, device, _ = resolve_backend(
            settings.backend, devices[0] if devices else None, settings.precision
        )
        if devices is None and device.startswith("cuda"):
            import torch

            devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        self._devices = list(devices or [device])
        self.workers = workers or (
            len(self._devices) if self._devices[0] != "cpu" else physical_cores()
        )
        threads = max(1, physical_cores() // self.workers)
        self._settings = replace(settings, backend=kind, threads=threads)
        # One slot, so that the finalizer shuts down whichever executor is current.
        self._executors: list[Any] = [self._new_executor()]
        self._finalizer = weakref.finalize(self, _shut_down, self._executors)
        self.worker_pids: set[int] = set()
        self._info: ModelInfo | None = None
        logger.debug("started %d %s encoder workers on %s", self.workers, kind, self._devices)

    def _new_executor(self) -> Any:
        # Processes start on the first call, each taking the next device.
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        for i in range(self.workers):
            queue.put(self._devices[i % len(self._devices)])
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self._settings, queue, os.getpid()),  # the workers exit with this pid
        )

    def _restart(self, error: BaseException) -> RuntimeError:
        # Replace broken workers with unstarted ones; return the error to raise.
        _shut_down(self._executors)
        self._executors[0] = self._new_executor()
        if isinstance(error, BrokenProcessPool):
            why = (
                f"An encoder pool worker of {self._settings.model_name!r} died ({error}); was it "
                "killed, or out of memory?"
            )
        else:
            why = f"The encoder pool's workers could not start: {error}."
        return RuntimeError(f"{why} The next call starts fresh workers.")

    @property
    def info(self) -> ModelInfo:
        """What the model computes (asked of a worker on first use)."""
        if self._info is None:
            self.encode(["info"], role="query", max_tokens=8, batch_size=1)
        return self._info  # type: ignore[return-value]  # set by every encode

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
        work = partial(_worker_encode, role=role, max_tokens=max_tokens, batch_size=batch_size)
        try:
            results = list(self._executors[0].map(work, [[texts[i] for i in c] for c in chunks]))
        except (WorkerStartError, BrokenProcessPool) as exc:
            raise self._restart(exc) from exc
        self.worker_pids.update(pid for _, pid, _ in results)
        if not results:
            empty = np.empty((0, self._info.dimension if self._info else 0), np.float32)
            return EncodeResult(empty, 0)
        self._info = results[-1][2]
        stacked = np.concatenate([result.vectors for result, _, _ in results])
        vectors = np.empty_like(stacked)
        vectors[[i for chunk in chunks for i in chunk]] = stacked  # back to input order
        return EncodeResult(vectors, sum(result.truncated for result, _, _ in results))

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        if self._finalizer.alive:
            self._finalizer.detach()
            self._executors[0].shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shut_down(executors: list[Any]) -> None:
    executors[0].shutdown(wait=False, cancel_futures=True)
