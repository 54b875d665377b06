"""Integration fixtures: a real Chroma server started with ``chroma run`` on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVER_START_TIMEOUT = 60.0
"""Seconds to wait for a fresh ``chroma run`` to answer its heartbeat."""


def _chroma_executable() -> str:
    """The ``chroma`` command installed next to this Python, else one on the PATH."""
    local = Path(sys.executable).with_name("chroma")
    if local.is_file():
        return str(local)
    found = shutil.which("chroma")
    if found is None:
        pytest.skip("the `chroma` command (from the chromadb package) is not installed")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:  # noqa: S310  (a fixed http URL on 127.0.0.1)
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


class ChromaServer:
    """A ``chroma run`` process on 127.0.0.1 over one data folder; stop and start it at will.

    The port stays the same across restarts, so clients keep their URL.
    """

    def __init__(self, data: Path, log_path: Path) -> None:
        self.data = data
        self.log_path = log_path
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait for its heartbeat; fail with its log if it never comes."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    _chroma_executable(),
                    "run",
                    "--path",
                    str(self.data),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if _heartbeat(self.url):
                return
            time.sleep(0.2)
        self.stop()
        log_tail = self.log_path.read_text(errors="replace")[-3000:]
        pytest.fail(f"`chroma run` on {self.url} did not answer its heartbeat:\n{log_tail}")

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers)."""
        if self.process is not None:
            _stop(self.process)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (``http://127.0.0.1:PORT``) of a Chroma server run for this test session.

    The server stores its data in a temporary folder, listens on a free port of 127.0.0.1 only,
    and is stopped when the session ends. Tests sharing it should use their own collection
    names.
    """
    data = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(data, data.parent / f"{data.name}.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def restartable_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A Chroma server of this test's own, which the test may stop and start again."""
    server = ChromaServer(tmp_path / "chroma-data", tmp_path / "chroma.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def env(tiny_model_path: Path) -> dict[str, str]:
    """Environment for ``tasb`` subprocesses: the tiny model, offline, no telemetry."""
    return {
        **os.environ,
        "TASB_MODEL": str(tiny_model_path),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
