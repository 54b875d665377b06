"""Encode and write on Ray Data workers: the stage behind ``index_paths(..., ray=...)``.

The driver lists, reads and chunks files exactly as without Ray (same ids, metadata, root ids,
manifest and skips). Only encoding and writing move: on the first wave of new chunks the
writer starts one :class:`~langchain_tasb.ingest.ray_stream.RayStream` for the whole run, a pool
of actors that encode and upsert batches to the Chroma server, each loading the model once.
Once a wave is confirmed, the driver updates moved chunks, deletes stale ones and records the
files in the manifest. Ray Data restarts a worker that dies and retries its batches; upserts
by content-derived id make a retried batch harmless.

Limits: the actors write to a Chroma server (an embedded folder has one writer process); the
model must load on every node (a hub name, or a path present on each).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_tasb.chroma.client import ServerAddress

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from langchain_tasb.collection import TasbCollection
    from langchain_tasb.encoding.model import TasbModel
    from langchain_tasb.ingest.ray_stream import RayStream
    from langchain_tasb.ingest.rows import _Row

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


@dataclass
class RayWriter:
    """Hands waves of rows to a :class:`~langchain_tasb.ingest.ray_stream.RayStream`.

    The stream (and Ray) starts on the first wave: a run with nothing to write never starts Ray.
    """

    settings: RayIndexing
    stream_args: tuple[TasbModel, ServerAddress, str]  # the model, server and collection
    batch_size: int
    wave_chunks: int  # new chunks gathered before one call of write()
    stream: RayStream | None = None

    def write(self, rows: list[_Row], confirmed: Callable[[int, str], None]) -> None:
        """Encode and write ``rows`` on the actors; return once every batch is confirmed.

        Raises:
            RuntimeError: The Ray execution failed or ended before every batch was confirmed.
        """
        if self.stream is None:
            ray_stream = importlib.import_module(_STREAM)
            self.stream = ray_stream.RayStream(self.settings, *self.stream_args)
        self.stream.write(rows, self.batch_size, confirmed)


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
    wave = settings.wave_chunks or batch_size * settings.workers * _WAVE_BATCHES
    writer = RayWriter(settings, (embeddings, server, store.collection_name), batch_size, wave)
    try:
        yield writer
    finally:
        if writer.stream is not None:
            writer.stream.close()
