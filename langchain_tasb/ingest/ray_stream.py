"""One Ray Data streaming execution for a whole indexing run, fed wave after wave.

The driver puts batches of rows on a :class:`ray.util.queue.Queue` (an actor); the read
tasks of a :class:`~ray.data.Datasource` pull them and yield each batch as one block of one
row, and ``map_batches`` hands every such block to one pool of actors that lives as long as
the run: each actor loads the model once. A thread on the driver iterates the results and
routes each confirmation (the batch's number, its worker and its count) to the wave waiting in
:meth:`RayStream.write`.

Imported only once there is something to write: importing it imports Ray.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import ray.data
from ray.data import Datasource, ReadTask
from ray.data.block import Block, BlockAccessor, BlockMetadata
from ray.util.queue import Queue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["RayStream"]

logger = logging.getLogger(__name__)

_JOIN_SECONDS = 60.0  # how long close() waits for the execution to drain


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
    """A pool of ``actor`` instances fed batches for the whole run.

    Args:
        actor: The ``map_batches`` actor class: called with a batch of one row (``number``,
            ``rows``: the batch as JSON), it returns ``number``, ``worker`` and ``count``.
        constructor_args: What each actor is built with.
        workers: Actors in the pool.
        cpus: CPUs each actor asks Ray for.
        gpus: GPUs each actor asks Ray for.
    """

    def __init__(
        self,
        actor: type,
        constructor_args: tuple[object, ...],
        workers: int,
        cpus: float,
        gpus: float,
    ) -> None:
        self.workers = workers
        self.queue = Queue()
        self.numbers = itertools.count()
        self.done: list[tuple[int, str, int]] = []  # confirmations not yet handed to a wave
        self.error: BaseException | None = None
        self.finished = False
        self.condition = threading.Condition()
        context = ray.data.DataContext.get_current()
        block_size = context.target_max_block_size
        context.target_max_block_size = 1  # a read task yields each batch now, not at its end
        try:
            dataset = ray.data.read_datasource(
                _QueueSource(self.queue, workers), num_cpus=0, override_num_blocks=workers
            ).map_batches(
                actor,
                fn_constructor_args=constructor_args,
                batch_size=1,
                batch_format="numpy",
                concurrency=workers,
                num_cpus=cpus,
                num_gpus=gpus or None,
            )
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
                with self.condition:
                    self.done.extend(
                        (int(n), str(w), int(c))
                        for n, w, c in zip(out["number"], out["worker"], out["count"], strict=True)
                    )
                    self.condition.notify_all()
        except BaseException as exc:  # handed to the waiting wave
            logger.debug("the Ray execution failed: %s", exc)
            with self.condition:
                self.error = exc
        finally:
            with self.condition:
                self.finished = True
                self.condition.notify_all()

    def write(
        self, batches: list[list[dict[str, object]]], confirmed: Callable[[int, str], None]
    ) -> None:
        """Put ``batches`` on the queue and return once every one is confirmed.

        A batch confirmed twice (a retried task) counts once.

        Raises:
            RuntimeError: The execution failed or ended first; chained to its cause.
        """
        pending: dict[int, int] = {}
        for batch in batches:
            number = next(self.numbers)
            pending[number] = len(batch)
            self.queue.put((number, json.dumps(batch)))
        while pending:
            with self.condition:
                while not self.done and not self.finished:
                    self.condition.wait()
                done, self.done = self.done, []
                error, finished = self.error, self.finished
            for number, worker, count in done:
                if pending.pop(number, None) is not None:
                    confirmed(count, worker)
            if pending and finished:
                left = sum(pending.values())
                msg = (
                    f"the Ray workers stopped with {left} chunks of this wave unconfirmed "
                    f"({type(error).__name__ if error else 'no error'}: {error}): run the same "
                    "command again to write the rest"
                )
                raise RuntimeError(msg) from error

    def close(self) -> None:
        """End the execution: an end mark per reader, wait for it, then drop the queue."""
        if not self.finished:
            for _ in range(self.workers):
                self.queue.put(None)
            self.thread.join(_JOIN_SECONDS)
            if self.thread.is_alive():
                logger.warning("the Ray execution did not end within %.0f s", _JOIN_SECONDS)
        self.queue.shutdown()
