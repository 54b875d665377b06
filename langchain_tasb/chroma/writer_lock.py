"""One writer process per embedded Chroma folder: an exclusive ``flock`` on a file inside it."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tasb.errors import StoreLockedError

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

LOCK_FILE = ".tasb-writer.lock"
"""The lock file's name inside a persist directory."""

DEFAULT_WAIT = 10.0
"""Seconds a library write waits for another process's lock before raising."""

_POLL_SECONDS = 0.2

_held: dict[str, int] = {}  # resolved folder -> the open lock file descriptor
_guard = threading.Lock()  # held while acquiring, so threads of one process share one lock


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a folder's writer lock, as its lock file records it."""

    pid: int
    host: str
    command: str
    started: str

    def describe(self) -> str:
        """``pid 12 on host h (tasb index), since 2026-01-01T00:00:00+00:00``."""
        return f"pid {self.pid} on host {self.host} ({self.command}), since {self.started}"


def acquire(
    folder: str | os.PathLike[str],
    *,
    wait: float = DEFAULT_WAIT,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> None:
    """Take the writer lock of ``folder`` for this process (a no-op if it holds it already).

    ``wait``: seconds to wait for another process to release it (0 refuses at once);
    ``on_wait`` is called once, with the holder, when the lock is busy and ``wait`` > 0.

    Raises:
        StoreLockedError: another process still held it after ``wait`` seconds.
    """
    path = Path(folder).expanduser().resolve()
    key = str(path)
    with _guard:
        if key in _held:
            return
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _lock(fd, key, wait, on_wait)
        except BaseException:
            os.close(fd)
            raise
        previous = _parse(os.pread(fd, 4096, 0))
        if previous is not None and previous.pid != os.getpid():
            logger.warning(
                "taking over the writer lock of %s from %s: that process ended without "
                "releasing it (killed?), so its last writes may be incomplete",
                key,
                previous.describe(),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(_me())).encode(), 0)
        _held[key] = fd
        logger.debug("writer lock taken on %s", key)


def _lock(fd: int, key: str, wait: float, on_wait: Callable[[Holder | None], None] | None) -> None:
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _parse(os.pread(fd, 4096, 0))
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else "another process (not yet recorded)"
            waited = f" after waiting {wait:g}s" if wait > 0 else ""
            msg = (
                f"embedded Chroma at {key} is being written by {who}{waited}; one process "
                "at a time may write it: wait for that one to finish (or stop it), or "
                "write through a Chroma server (`chroma run`) instead"
            )
            raise StoreLockedError(msg)
        if on_wait is not None:
            on_wait(holder)
            on_wait = None  # told once
        time.sleep(_POLL_SECONDS)


def release(folder: str | os.PathLike[str]) -> None:
    """Release this process's writer lock on ``folder``, if it holds it."""
    key = str(Path(folder).expanduser().resolve())
    with _guard:
        fd = _held.pop(key, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor releases the flock
            logger.debug("writer lock released on %s", key)


def holds(folder: str | os.PathLike[str]) -> bool:
    """Whether this process holds the writer lock of ``folder``."""
    return str(Path(folder).expanduser().resolve()) in _held


def holder(folder: str | os.PathLike[str]) -> Holder | None:
    """Who the lock file of ``folder`` names (the holder, or the last one); None if nobody."""
    path = Path(folder).expanduser() / LOCK_FILE
    return _parse(path.read_bytes()) if path.exists() else None


def _me() -> Holder:
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    # The program and its subcommand only: later arguments may hold secrets.
    words += [arg for arg in sys.argv[1:2] if not arg.startswith("-")]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Holder(os.getpid(), socket.gethostname(), " ".join(words), started)


def _parse(data: bytes) -> Holder | None:
    try:
        return Holder(**json.loads(data))
    except (ValueError, TypeError):
        return None  # empty, or being written this very moment


def _release_all() -> None:
    # Cleared at a normal exit, so the next writer does not take this process for a killed one.
    for key in list(_held):
        release(key)


def _forget_in_child() -> None:
    # A forked child shares the parent's lock through the inherited descriptor: close it, so
    # the lock ends with the parent and the child takes its own if it writes.
    global _guard  # a lock held by another thread at fork would never be released
    _guard = threading.Lock()
    for fd in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


atexit.register(_release_all)
os.register_at_fork(after_in_child=_forget_in_child)
