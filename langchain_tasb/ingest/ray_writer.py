"""Encode and write on Ray Data workers: the stage behind ``index_paths(..., ray=...)``.

The indexer's driver lists, reads and chunks files exactly as without Ray (same ids,
metadata, root ids, manifest and skips). Only encoding and writing move to Ray: on the first
wave of new chunks the writer starts one Ray Data execution for the whole run
(:class:`~langchain_tasb.ingest.ray_stream.RayStream`), a pool of actors (``map_batches`` with
an actor class) that encodes and upserts batches to the Chroma server, each actor with one copy
of the model and one connection through the retrying gateway, loaded once for the run. The
driver feeds each wave's batches to that execution and counts every batch the actors confirm;
once the whole wave is confirmed it updates moved chunks, deletes stale ones, records the files
in the manifest and, at the end, prunes. Ray Data restarts a worker that dies (the restarted
actor loads the model again) and retries its batches; upserts by content-derived id make a
retried batch harmless.

Limits: the actors write to a Chroma server (an embedded folder has one writer process); the
model must load on every node (a hub name, or a path present on each).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.chroma.remote import ServerAddress

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.encoding.model import TasbModel
    from langchain_tasb.ingest.ray_stream import RayStream
    from langchain_tasb.ingest.rows import _Row

__all__ = ["RayIndexing", "RayWriter", "ray_writer"]

logger = logging.getLogger(__name__)

_STREAM = "langchain_tasb.ingest.ray_stream"  # imports Ray: imported on the first wave only
_WAVE_BATCHES = 64  # batches per worker in one wave, unless RayIndexing.wave_chunks says


@dataclass(frozen=True)
class RayIndexing:
    """Where and how ``index_paths(..., ray=RayIndexing(...))`` encodes and writes.

    Example:
        .. code-block:: python

            from langchain_tasb.collection import TasbCollection
            from langchain_tasb.connection import Connection
            from langchain_tasb.ingest import RayIndexing, index_paths

            store = TasbCollection(
                collection_name="docs", connection=Connection(url="http://chroma:8000")
            )
            report = index_paths(store, ["docs/"], ray=RayIndexing("auto", workers=4))
    """

    address: str = "local"
    """``"local"`` starts Ray on this machine for the run, ``"auto"`` joins the cluster that
    ``ray start`` made, ``"ray://HOST:10001"`` (or a GCS ``HOST:PORT``) joins that one. If Ray
    is already initialised in this process, that session is used and left running."""

    workers: int = 1
    """Ray Data actors, each with one copy of the model."""

    gpus_per_worker: float = 0.0
    """GPUs each actor asks Ray for (a fraction shares one); 0 encodes on CPU."""

    cpus_per_worker: float = 1.0
    """CPUs each actor asks Ray for."""

    wave_chunks: int = 0
    """New chunks gathered before they go to the actors; 0 for 64 batches per worker. The
    files of a wave are recorded in the manifest once all of its chunks are confirmed: a larger
    wave holds more chunk text on the driver, a smaller one waits for its last batch more often.
    The actors and their model live for the whole run, whatever the wave."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {need}, got {value!r}"
            for name, value, need, ok in (
                ("address", self.address, "'local', 'auto' or a Ray address", self.address.strip()),
                ("workers", self.workers, "at least 1", self.workers >= 1),
                ("gpus_per_worker", self.gpus_per_worker, "0 or more", self.gpus_per_worker >= 0),
                ("cpus_per_worker", self.cpus_per_worker, "above 0", self.cpus_per_worker > 0),
                ("wave_chunks", self.wave_chunks, "0 or more", self.wave_chunks >= 0),
            )
            if not ok
        ]
        if problems:
            raise ValueError("; ".join(problems))


class _EncodeWrite:
    """A Ray Data actor: loads the model and opens the collection once.

    Each call encodes and writes one batch, and says how many chunks it wrote and who it is.
    """

    def __init__(self, embeddings: TasbModel, server: ServerAddress, collection: str) -> None:
        self.embeddings = embeddings
        _ = embeddings.encoder  # load the model now, not inside the first batch
        self.gateway = server.open_collection(collection)
        self.label = f"{socket.gethostname()}:{os.getpid()}"
        logger.debug("worker %s ready", self.label)

    def __call__(self, batch: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        numbers, written = [], []
        for number, payload in zip(batch["number"], batch["rows"], strict=True):
            rows = json.loads(str(payload))
            ids = [str(row["id"]) for row in rows]
            texts = [str(row["text"]) for row in rows]
            vectors = np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32)
            self.gateway.upsert(ids, texts, vectors, [row["metadata"] for row in rows])
            numbers.append(int(number))
            written.append(len(ids))
        return {
            "number": np.array(numbers),
            "worker": np.array([self.label] * len(numbers)),
            "count": np.array(written),
        }


class RayWriter:
    """The :class:`~langchain_tasb.ingest.rows.BatchWriter` that runs on Ray Data actors."""

    def __init__(
        self,
        settings: RayIndexing,
        embeddings: TasbModel,
        server: ServerAddress,
        collection: str,
        batch_size: int,
    ) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.server = server
        self.collection_name = collection
        self.batch_size = batch_size
        self.wave_chunks = settings.wave_chunks or batch_size * settings.workers * _WAVE_BATCHES
        self.started = False  # whether this writer started (or joined) Ray, and must leave it
        self.stream: RayStream | None = None  # the run's one execution, from the first wave

    def _start(self) -> RayStream:
        """Start or join Ray and the run's one execution on the first wave.

        A run with nothing to write never starts Ray.
        """
        if self.stream is not None:
            return self.stream
        ray: Any = importlib.import_module("ray")
        context: Any = importlib.import_module("ray.data").DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows its own progress
        if not logger.isEnabledFor(logging.DEBUG):
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        if not ray.is_initialized():
            address = None if self.settings.address == "local" else self.settings.address
            logger.info("starting Ray (%s)", self.settings.address)
            ray.init(
                address=address,
                include_dashboard=False if address is None else None,
                logging_level=logging.WARNING,
                log_to_driver=logger.isEnabledFor(logging.DEBUG),
            )
            self.started = True
        stream: type[RayStream] = importlib.import_module(_STREAM).RayStream
        self.stream = stream(
            _EncodeWrite,
            (self.embeddings, self.server, self.collection_name),
            workers=self.settings.workers,
            cpus=self.settings.cpus_per_worker,
            gpus=self.settings.gpus_per_worker,
        )
        return self.stream

    def close(self) -> None:
        """End the execution; leave Ray if this writer started or joined it.

        A Ray session it found is left running.
        """
        try:
            if self.stream is not None:
                self.stream.close()
                self.stream = None
        finally:
            if self.started:
                importlib.import_module("ray").shutdown()
                self.started = False

    def write(self, rows: list[_Row], confirmed: Callable[[int, str], None]) -> None:
        """Encode and write ``rows`` on the actors; return once every batch is confirmed.

        Raises:
            RuntimeError: The Ray execution failed or ended before every batch was confirmed.
        """
        stream = self._start()
        items: list[dict[str, object]] = [
            {"id": r.id, "text": r.text, "metadata": r.metadata} for r in rows
        ]
        size = max(1, min(self.batch_size, -(-len(rows) // self.settings.workers)))
        batches = [items[i : i + size] for i in range(0, len(items), size)]  # a small wave: all
        stream.write(batches, confirmed)


@contextlib.contextmanager
def ray_writer(
    store: TasbCollection, settings: RayIndexing, batch_size: int
) -> Iterator[RayWriter]:
    """A :class:`RayWriter` for ``store``'s model and collection, with Ray up while it is used.

    The one place that reads what the workers need (model settings, server, collection) from
    the store.

    Raises:
        ValueError: ``store`` is not on a Chroma server.
        TypeError: ``store``'s encoder is not a :class:`~langchain_tasb.encoding.model.TasbModel`.
        ImportError: Ray Data is not installed; the message names the extra.
    """
    server = ServerAddress.of(store.store.client)  # before starting anything
    model = store.encoder
    # pydantic (TasbModel's base) loads with a run on Ray, not with every import of ingest.
    tasb_model = importlib.import_module("langchain_tasb.encoding.model").TasbModel
    if not isinstance(model, tasb_model):
        msg = (
            f"Ray workers rebuild the model from TasbModel settings, got "
            f"{type(model).__name__}: open the store with TasbEmbeddings or TasbModel"
        )
        raise TypeError(msg)
    embeddings = model.model_copy(update={"processes": 0})  # one encoder per actor
    if importlib.util.find_spec("ray") is None:  # Ray itself is imported on the first wave
        msg = "indexing on Ray needs Ray Data: pip install 'langchain-tasb[ray]'"
        raise ImportError(msg)
    writer = RayWriter(settings, embeddings, server, store.collection_name, batch_size)
    try:
        yield writer
    finally:
        writer.close()
