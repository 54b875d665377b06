"""Integration fixtures: a real Chroma server started with ``chroma run`` on 127.0.0.1."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (``http://127.0.0.1:PORT``) of a Chroma server run for this test session.

    The server stores its data in a temporary folder, listens on a free port of 127.0.0.1 only,
    and is stopped when the session ends. Tests sharing it should use their own collection
    names. If the port is taken between choosing and binding, a new one is tried.
    """
    executable = _chroma_executable()
    data = tmp_path_factory.mktemp("chroma-server")
    log_path = data.parent / f"{data.name}.log"
    last_log = ""
    for _attempt in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    executable,
                    "run",
                    "--path",
                    str(data),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        try:
            while time.monotonic() < deadline and process.poll() is None:
                if _heartbeat(url):
                    break
                time.sleep(0.2)
            else:
                _stop(process)
                last_log = log_path.read_text(errors="replace")[-3000:]
                continue
        except BaseException:
            _stop(process)
            raise
        try:
            yield url
        finally:
            _stop(process)
        return
    with contextlib.suppress(OSError):
        last_log = log_path.read_text(errors="replace")[-3000:] or last_log
    pytest.fail(
        f"`chroma run` did not answer its heartbeat within {SERVER_START_TIMEOUT:.0f}s "
        f"(3 attempts); its log ends with:\n{last_log}"
    )
