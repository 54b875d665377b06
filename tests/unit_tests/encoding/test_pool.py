"""The encoder pool's processes: they die with their parent, and a failed start is explained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb.encoding.pool import EncoderPool
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import EncoderSettings
from langchain_tasb.testing import build_tiny_model

TEXTS = ["people live in london", "the protein binds the cell surface", "a third text", "four"]


def children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            stat = _stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


def _stat(pid: int) -> list[str] | None:
    """(state, ppid, ...) of ``pid`` from /proc/<pid>/stat, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tiny_model_path: Path) -> None:
    parent_code = textwrap.dedent(
        f"""
        import time
        from langchain_tasb.encoding.pool import EncoderPool
        from langchain_tasb.encoding.types import EncoderSettings
        pool = EncoderPool(EncoderSettings({str(tiny_model_path)!r}, backend="torch"), workers=2)
        pool.encode({TEXTS!r} * 4, role="document", max_tokens=16, batch_size=1)
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        workers = children(parent.pid)
        assert len(workers) >= 2  # two workers (and multiprocessing's resource tracker)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        left = sorted(pid for pid in workers if _alive(pid))
    finally:
        parent.kill()
    for pid in left:  # do not leave them behind for the rest of the session
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"workers {left} outlived their killed parent by 10 s"


def test_a_failed_start_says_why_and_the_next_call_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "model"  # not there yet: the workers cannot load it
    with EncoderPool(EncoderSettings(str(path), backend="torch"), workers=1) as pool:
        with pytest.raises(RuntimeError, match=r"could not start.*Could not load model") as info:
            pool.encode(TEXTS, role="document", max_tokens=16, batch_size=2)
        assert str(path) in str(info.value)
        build_tiny_model(path)
        result = pool.encode(TEXTS, role="document", max_tokens=16, batch_size=2)
    expected = TorchEncoder(EncoderSettings(str(path), device="cpu")).encode(
        TEXTS, role="document", max_tokens=16, batch_size=2
    )
    np.testing.assert_allclose(result.vectors, expected.vectors, atol=1e-5)
