"""An exclusive, re-entrant lock on a file, between processes (``flock``) and between threads."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_POLL_S = 0.05


class DirectoryLock:
    """An exclusive, re-entrant lock held through ``path`` (created when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._fd: int | None = None
        self._depth = 0

    def acquire(self, *, timeout: float) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds; False when it stayed busy."""
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(
            blocking=timeout != 0, timeout=timeout if timeout > 0 else -1
        ):
            return False
        if self._depth:
            self._depth += 1
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    self._thread_lock.release()
                    return False
                time.sleep(_POLL_S)
                continue
            break
        self._fd, self._depth = fd, 1
        return True

    def release(self) -> None:
        """Give one hold back; the last one frees the file."""
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()

    @contextlib.contextmanager
    def hold(self, *, timeout: float) -> Iterator[bool]:
        """:meth:`acquire` for a ``with`` block; yields whether the lock was taken."""
        got = self.acquire(timeout=timeout)
        try:
            yield got
        finally:
            if got:
                self.release()
