"""One Ray Data streaming execution for a whole indexing run, fed wave after wave. Imports Ray.

Read tasks take batches off a Ray queue for one pool of :class:`_EncodeWrite` actors (one model
load each); a driver thread routes each confirmation to the waiting :meth:`RayStream.write`.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
import ray.data
from ray.data import Datasource, ReadTask
from ray.data.block import Block, BlockAccessor, BlockMetadata
from ray.util.queue import Queue

from langchain_tasb.chroma.collection import Collection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from langchain_tasb.chroma.client import ServerAddress
    from langchain_tasb.encoding.model import TasbModel
    from langchain_tasb.ingest.indexer import RayIndexing
    from langchain_tasb.ingest.rows import _Row

logger = logging.getLogger(__name__)

_JOIN_SECONDS = 60.0  # how long close() waits for the execution to drain


class _EncodeWrite:
    """A Ray Data actor: encodes and writes batches, saying how many chunks and who wrote them."""

    def __init__(self, embeddings: TasbModel, server: ServerAddress, collection: str) -> None:
        self.embeddings = embeddings
        _ = embeddings.encoder  # load the model now, not inside the first batch
        self.gateway = Collection.open_existing(server.connect(), collection)
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


class _QueueSource(Datasource):
    """Read tasks that yield the driver's batches until each pulls an end mark (None)."""

    def __init__(self, queue: Queue, readers: int) -> None:
        self.queue = queue
        self.readers = readers

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        del parallelism, per_task_row_limit, data_context  # one reader per worker
        queue = self.queue

        def read() -> Iterator[Block]:
            while (item := queue.get()) is not None:
                number, rows = item
                yield BlockAccessor.batch_to_block(
                    {"number": np.array([number]), "rows": np.array([rows])}
                )

        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [ReadTask(read, metadata) for _ in range(self.readers)]


class RayStream:
    """Ray (started or joined) and a pool of :class:`_EncodeWrite` actors for the whole run."""

    def __init__(
        self, settings: RayIndexing, embeddings: TasbModel, server: ServerAddress, collection: str
    ) -> None:
        self.workers = settings.workers
        self.numbers = itertools.count()
        self.results: SimpleQueue[tuple[int, str, int] | None] = SimpleQueue()  # None: the end
        self.error: BaseException | None = None
        self.finished = False
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows its own progress
        if not logger.isEnabledFor(logging.DEBUG):
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        self.started = not ray.is_initialized()  # then this run starts Ray, and leaves it
        if self.started:
            address = None if settings.address == "local" else settings.address
            logger.info("starting Ray (%s)", settings.address)
            ray.init(
                address=address,
                include_dashboard=False if address is None else None,
                logging_level=logging.WARNING,
                log_to_driver=logger.isEnabledFor(logging.DEBUG),
            )
        block_size = context.target_max_block_size
        context.target_max_block_size = 1  # a read task yields each batch now, not at its end
        try:
            self.queue = Queue()
            dataset = ray.data.read_datasource(
                _QueueSource(self.queue, self.workers), num_cpus=0, override_num_blocks=self.workers
            ).map_batches(
                _EncodeWrite,
                fn_constructor_args=(embeddings, server, collection),
                batch_size=1,
                batch_format="numpy",
                concurrency=self.workers,
                num_cpus=settings.cpus_per_worker,
                num_gpus=settings.gpus_per_worker or None,
            )
        except BaseException:
            if self.started:
                ray.shutdown()
            raise
        finally:
            context.target_max_block_size = block_size
        self.thread = threading.Thread(
            target=self._consume, args=(dataset,), name="tasb-ray-results", daemon=True
        )
        self.thread.start()

    def _consume(self, dataset: Any) -> None:
        try:
            for out in dataset.iter_batches(
                batch_size=None, batch_format="numpy", prefetch_batches=0
            ):
                for n, w, c in zip(out["number"], out["worker"], out["count"], strict=True):
                    self.results.put((int(n), str(w), int(c)))
        except BaseException as exc:  # handed to the waiting wave
            logger.debug("the Ray execution failed: %s", exc)
            self.error = exc
        finally:
            self.finished = True
            self.results.put(None)

    def write(
        self, rows: list[_Row], batch_size: int, confirmed: Callable[[int, str], None]
    ) -> None:
        """Put ``rows`` on the queue in batches; return once each is confirmed (once, if retried).

        Raises RuntimeError, chained to its cause, if the execution fails or ends first.
        """
        items = [{"id": r.id, "text": r.text, "metadata": r.metadata} for r in rows]
        size = max(1, min(batch_size, -(-len(items) // self.workers)))  # a small wave: all
        pending: dict[int, int] = {}
        for i in range(0, len(items), size):
            number = next(self.numbers)
            pending[number] = len(items[i : i + size])
            self.queue.put((number, json.dumps(items[i : i + size])))
        while pending:
            result = self.results.get()
            if result is None:
                self.results.put(None)  # the end stays for the next wave
                error, left = self.error, sum(pending.values())
                msg = (
                    f"the Ray workers stopped with {left} chunks of this wave unconfirmed "
                    f"({type(error).__name__ if error else 'no error'}: {error}): run the same "
                    "command again to write the rest"
                )
                raise RuntimeError(msg) from error
            number, worker, count = result
            if pending.pop(number, None) is not None:
                confirmed(count, worker)

    def close(self) -> None:
        """End the execution (an end mark per reader) and leave Ray if this run started it."""
        try:
            if not self.finished:
                for _ in range(self.workers):
                    self.queue.put(None)
                self.thread.join(_JOIN_SECONDS)
                if self.thread.is_alive():
                    logger.warning("the Ray execution did not end within %.0f s", _JOIN_SECONDS)
            self.queue.shutdown()
        finally:
            if self.started:
                ray.shutdown()
