"""``tasb index --ray`` on a real local Ray cluster (2 CPUs) and a real ``chroma run`` server.

One Ray session serves the module: library calls use it in-process, ``tasb`` subprocesses
join it by its address. Every run is compared with a plain ``tasb index`` of the same files.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma import parse_chroma_url
from langchain_tasb.ingest import IndexProgress, IndexReport, RayIndexing, index_paths
from tests.integration_tests.test_cli import kill_after_writes, paragraph, start, tasb, write_doc
from tests.integration_tests.test_faults import contents

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.integration_tests.conftest import ChromaServer

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.server, pytest.mark.slow]

BATCH = ("--batch-size", "4", "--overlap", "0")


@pytest.fixture(scope="module")
def ray_address(tiny_model_path: Path) -> Iterator[str]:
    """A local Ray cluster of 2 CPUs for this module; its address for ``tasb --ray``."""
    del tiny_model_path  # built first: the workers inherit this environment
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture
def ray_env(env: dict[str, str]) -> dict[str, str]:
    """``tasb`` subprocess environment that may join the module's (token-guarded) cluster."""
    return {**env, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}


def make_corpus(folder: Path, rng: random.Random, files: int = 12) -> None:
    for i in range(files):
        write_doc(folder / f"d{i:02d}.txt", [paragraph(rng, 40) for _ in range(rng.randint(2, 4))])
    (folder / "notes.jsonl").write_text(
        "\n".join(f'{{"text": "{paragraph(rng, 30)}", "metadata": {{"n": {n}}}}}' for n in range(3))
    )


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Same ids, texts and metadata; vectors at cosine 1 (the same backend encodes both)."""
    assert sorted(got) == sorted(expected)
    for id_, (text, metadata, vector) in expected.items():
        assert got[id_][0] == text
        assert got[id_][1] == metadata
        other = got[id_][2]
        cosine = float(vector @ other / np.linalg.norm(vector) / np.linalg.norm(other))
        assert cosine > 0.9999


def open_store(url: str, collection: str, model: Path) -> TasbVectorStore:
    host, port, ssl = parse_chroma_url(url)
    embeddings = TasbEmbeddings(model_name=str(model), device="cpu")
    return TasbVectorStore(
        embedding=embeddings, collection_name=collection, host=host, port=port, ssl=ssl
    )


def index_on_ray(
    store: TasbVectorStore, corpus: Path, progress: Callable[[IndexProgress], None] | None = None
) -> IndexReport:
    """The module's Ray session (already initialised) with 2 workers, batches of 4."""
    return index_paths(
        store,
        [corpus],
        batch_size=4,
        overlap_tokens=0,
        prune=True,
        progress=progress,
        ray=RayIndexing("local", workers=2),
    )


def test_ray_index_equals_plain_index_and_never_duplicates_when_mixed(
    tmp_path: Path, ray_env: dict[str, str], chroma_server: str, ray_address: str
) -> None:
    rng = random.Random(32)
    make_corpus(tmp_path / "corpus", rng)
    server = ("--chroma-url", chroma_server)
    ray_args = ("--ray", ray_address, "--ray-workers", "2")
    tasb(tmp_path, ray_env, "index", "corpus", *server, "--collection", "plain", *BATCH)
    out = tasb(
        tmp_path, ray_env, "index", "corpus", *server, "--collection", "viaray", *ray_args, *BATCH
    ).stdout
    assert "chunks by Ray worker:" in out
    expected = contents(chroma_server, "plain")
    assert_same(contents(chroma_server, "viaray"), expected)

    # A rerun writes nothing, even reading every file again (--full).
    for extra in ((), ("--full",)):
        rerun = tasb(
            tmp_path, ray_env, "index", "corpus", *server, "--collection", "viaray", *ray_args,
            *BATCH, *extra,
        ).stdout  # fmt: skip
        assert rerun.startswith("nothing to write:"), rerun

    # Mixed: the files change, plain `tasb index` follows them into the Ray-built
    # collection, and --ray then finds nothing to do; both equal a plain run.
    write_doc(tmp_path / "corpus" / "d00.txt", [paragraph(rng, 40)])
    (tmp_path / "corpus" / "d01.txt").unlink()
    for collection in ("plain", "viaray"):
        tasb(
            tmp_path, ray_env, "index", "corpus", *server, "--collection", collection, "--prune",
            *BATCH,
        )  # fmt: skip
    rerun = tasb(
        tmp_path, ray_env, "index", "corpus", *server, "--collection", "viaray", "--full",
        *ray_args, *BATCH,
    ).stdout  # fmt: skip
    assert rerun.startswith("nothing to write:"), rerun
    assert_same(contents(chroma_server, "viaray"), contents(chroma_server, "plain"))


def test_a_run_of_many_waves_loads_the_model_once_per_worker(
    tmp_path: Path, chroma_server: str, ray_address: str, tiny_model_path: Path
) -> None:
    del ray_address  # the module's session, used in-process
    make_corpus(tmp_path / "corpus", random.Random(3))
    clean = open_store(chroma_server, "waves-clean", tiny_model_path)
    index_paths(clean, [tmp_path / "corpus"], batch_size=4, overlap_tokens=0)
    total = len(contents(chroma_server, "waves-clean"))
    assert total > 3 * 4  # more than three waves of 4 chunks

    # A worker is a process (host:pid) that loaded the model in its constructor: a pool per
    # wave would show new ones every wave.
    workers: set[str] = set()
    store = open_store(chroma_server, "waves", tiny_model_path)
    report = index_paths(
        store,
        [tmp_path / "corpus"],
        batch_size=4,
        overlap_tokens=0,
        progress=lambda progress: workers.update(progress.workers),
        ray=RayIndexing("local", workers=2, wave_chunks=4),
    )
    assert len(workers) == 2, sorted(workers)
    assert sorted(report.workers) == sorted(workers)
    assert sum(report.workers.values()) == report.chunks_written == total
    assert_same(contents(chroma_server, "waves"), contents(chroma_server, "waves-clean"))


def test_ray_without_a_chroma_server_is_refused_before_anything_starts(
    tmp_path: Path, ray_env: dict[str, str]
) -> None:
    (tmp_path / "a.txt").write_text("some text")
    result = tasb(tmp_path, ray_env, "index", "a.txt", "--ray", "local", check=2)
    assert "--ray local needs --chroma-url" in result.stderr
    assert not (tmp_path / ".tasb").exists()


def _run_and_rerun(run: Callable[[], IndexReport]) -> None:
    """The run, and one rerun if the fault made it fail."""
    try:
        run()
    except Exception as exc:  # the contract: after the run or one rerun
        print(f"the faulted run failed ({type(exc).__name__}: {exc}); rerunning")
        run()


def test_a_worker_killed_mid_run_ends_with_the_clean_runs_chunks(
    tmp_path: Path, chroma_server: str, ray_address: str, tiny_model_path: Path
) -> None:
    del ray_address  # the module's session, used in-process
    make_corpus(tmp_path / "corpus", random.Random(7), files=16)
    clean = open_store(chroma_server, "worker-clean", tiny_model_path)
    index_paths(clean, [tmp_path / "corpus"], batch_size=4, overlap_tokens=0)

    total = len(contents(chroma_server, "worker-clean"))
    killed: list[int] = []

    def kill_a_worker(progress: IndexProgress) -> None:
        if killed or not progress.workers or progress.chunks_written >= total:
            return
        worker = sorted(progress.workers)[0]
        pid = int(worker.rpartition(":")[2])
        assert pid != os.getpid()
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)  # mid-run: chunks are left to write

    store = open_store(chroma_server, "worker-killed", tiny_model_path)
    _run_and_rerun(lambda: index_on_ray(store, tmp_path / "corpus", kill_a_worker))
    assert killed
    assert_same(contents(chroma_server, "worker-killed"), contents(chroma_server, "worker-clean"))


def test_a_server_restart_mid_run_ends_with_the_clean_runs_chunks(
    tmp_path: Path, restartable_server: ChromaServer, ray_address: str, tiny_model_path: Path
) -> None:
    del ray_address
    url = restartable_server.url
    make_corpus(tmp_path / "corpus", random.Random(11), files=16)
    clean = open_store(url, "restart-clean", tiny_model_path)
    index_paths(clean, [tmp_path / "corpus"], batch_size=4, overlap_tokens=0)
    total = len(contents(url, "restart-clean"))
    restarts: list[threading.Thread] = []

    def restart() -> None:
        restartable_server.stop()
        restartable_server.start()

    def restart_once(progress: IndexProgress) -> None:
        if not restarts and progress.workers and progress.chunks_written < total:
            restarts.append(threading.Thread(target=restart))
            restarts[0].start()  # mid-run: chunks are left to write

    store = open_store(url, "restarted", tiny_model_path)
    _run_and_rerun(lambda: index_on_ray(store, tmp_path / "corpus", restart_once))
    assert restarts
    restarts[0].join()
    assert_same(contents(url, "restarted"), contents(url, "restart-clean"))


def test_a_driver_killed_mid_run_then_rerun_ends_with_the_clean_runs_chunks(
    tmp_path: Path, ray_env: dict[str, str], chroma_server: str, ray_address: str
) -> None:
    make_corpus(tmp_path / "corpus", random.Random(5), files=16)
    server = ("--chroma-url", chroma_server)
    ray_args = ("--ray", ray_address, "--ray-workers", "2")
    tasb(tmp_path, ray_env, "index", "corpus", *server, "--collection", "driver-clean", *BATCH)
    target = ("corpus", *server, "--collection", "driver-killed", *ray_args, *BATCH)
    driver = start(tmp_path, ray_env, "-vv", "index", *target)
    assert kill_after_writes(driver, 2) == 2
    assert driver.returncode == -signal.SIGKILL
    tasb(tmp_path, ray_env, "index", *target)
    assert_same(contents(chroma_server, "driver-killed"), contents(chroma_server, "driver-clean"))
