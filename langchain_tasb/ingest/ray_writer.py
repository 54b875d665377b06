"""Encode and write on Ray Data workers: the stage behind ``index_paths(..., ray=...)``.

The indexer's driver lists, reads and chunks files exactly as without Ray (same ids,
metadata, root ids, manifest and skips). Only encoding and writing move to Ray: the driver
gathers a wave of new chunks, and a pool of Ray Data actors (``map_batches`` with an actor
class) encodes and upserts them to the Chroma server, each actor with one copy of the model
and one connection through the retrying gateway. The driver counts every batch the actors
confirm; once the whole wave is confirmed it updates moved chunks, deletes stale ones, records
the files in the manifest and, at the end, prunes. Ray Data restarts a worker that dies and
retries its batches; upserts by content-derived id make a retried batch harmless.

Limits: the actors write to a Chroma server (an embedded folder has one writer process); the
model must load on every node (a hub name, or a path present on each); each wave starts a
pool of actors, which load the model once for the wave (see :attr:`RayIndexing.wave_chunks`).
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
    from langchain_tasb.ingest.rows import _Row

__all__ = ["RayIndexing", "RayWriter", "ray_writer"]

logger = logging.getLogger(__name__)

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
    """New chunks gathered before the actors start on them; 0 for 64 batches per worker. A
    larger wave loads the model less often and holds more chunk text on the driver."""

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
        ids = [str(x) for x in batch["id"]]
        texts = [str(x) for x in batch["text"]]
        metadatas = [json.loads(str(x)) for x in batch["metadata"]]
        vectors = np.asarray(self.embeddings.embed_documents(texts), dtype=np.float32)
        self.gateway.upsert(ids, texts, vectors, metadatas)
        return {"worker": np.array([self.label]), "count": np.array([len(ids)])}


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

    def _start(self) -> None:
        """Start or join Ray on the first wave: a run with nothing to write never does."""
        ray: Any = importlib.import_module("ray")
        context: Any = importlib.import_module("ray.data").DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows its own progress
        if not logger.isEnabledFor(logging.DEBUG):
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        if ray.is_initialized():
            return
        address = None if self.settings.address == "local" else self.settings.address
        logger.info("starting Ray (%s)", self.settings.address)
        ray.init(
            address=address,
            include_dashboard=False if address is None else None,
            logging_level=logging.WARNING,
            log_to_driver=logger.isEnabledFor(logging.DEBUG),
        )
        self.started = True

    def close(self) -> None:
        """Leave Ray if this writer started or joined it; a session it found is left alone."""
        if self.started:
            importlib.import_module("ray").shutdown()
            self.started = False

    def write(self, rows: list[_Row], confirmed: Callable[[int, str], None]) -> None:
        """Encode and write ``rows`` on the actors; return once every batch is confirmed.

        Raises:
            RuntimeError: The actors confirmed fewer chunks than they were given.
        """
        self._start()
        data: Any = importlib.import_module("ray.data")
        items = [{"id": r.id, "text": r.text, "metadata": json.dumps(r.metadata)} for r in rows]
        workers = self.settings.workers
        batch = max(1, min(self.batch_size, -(-len(rows) // workers)))  # a small wave: all work
        blocks = max(1, min(-(-len(rows) // batch), workers * 8))
        dataset = data.from_items(items, override_num_blocks=blocks).map_batches(
            _EncodeWrite,
            fn_constructor_args=(self.embeddings, self.server, self.collection_name),
            batch_size=batch,
            batch_format="numpy",
            concurrency=workers,
            num_cpus=self.settings.cpus_per_worker,
            num_gpus=self.settings.gpus_per_worker or None,
        )
        written = 0
        for out in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for worker, count in zip(out["worker"], out["count"], strict=True):
                written += int(count)
                confirmed(int(count), str(worker))
        if written != len(rows):
            msg = (
                f"the Ray workers confirmed {written} of {len(rows)} chunks: run the same "
                "command again to write the rest"
            )
            raise RuntimeError(msg)


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
