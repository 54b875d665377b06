"""Indexing: end-to-end ``tasb index`` throughput against encoder-only, and flat memory.

1. Throughput: the same chunks are (a) only encoded with ``embed_documents`` and (b) indexed
   end to end by :func:`langchain_tasb.ingest.index_paths` (read, chunk, encode, write to an
   embedded Chroma, pipelined), in turns, five times each. Prints the median chunks/s of each
   and the median of the rounds' (b)/(a); the goal is at least 0.9. TAS-B-shaped model
   (random weights, TAS-B's exact cost), default backend.
2. Memory: peak RSS of a fresh process indexing N1 and N2 chunks (10,000 and 100,000 by
   default) with the tiny model, whose encoding is cheap, so that the corpus size, not the
   model, dominates. Prints both and the ratio; the goal is at most 1.5.
3. ``--ray``: chunks/s of :func:`~langchain_tasb.ingest.index_paths` into a ``chroma run``
   server started for the run, plain and with ``ray=RayIndexing(workers=1)`` and ``2``, in
   the same run (TAS-B-shaped model, torch backend). Ray is started once beforehand, as
   ``ray start`` would be on a cluster; each Ray figure includes starting the actors and
   loading the model in each. On one small machine expect parity at best: the point is the
   same code on a cluster.

Usage::

    python benchmarks/index.py             # 400 chunks, 5 rounds for (1); 10k and 100k for (2)
    python benchmarks/index.py --quick     # 120 chunks, 2 rounds; 2k and 20k chunks
    python benchmarks/index.py --only memory   # (2) alone
    python benchmarks/index.py --ray --chunks 200   # (3) alone (needs langchain-tasb[ray])

Each file of (1) holds four 60-word paragraphs, which the shaped model's tokenizer turns into
one chunk of about 250 tokens, so (1) also pays the per-file work (reading, hashing, checking
what the collection already holds).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from encode import cpu_name, model_dir, versions

WORDS = (  # noqa: SIM905  (a word list reads better as text)
    "the of and to in is was for on that with as by at from it an be this are or which have "
    "has people city data model search query document text index vector energy water system "
    "study results effect treatment disease risk blood air flow wing pressure heat library"
).split()

CHILD = """
import json, resource, sys, time
from pathlib import Path
from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.ingest import index_paths
corpus, db, model = sys.argv[1], sys.argv[2], sys.argv[3]
store = TasbVectorStore(embedding=TasbEmbeddings(model_name=model, backend="torch"),
                        collection_name="bench", persist_directory=db)
started = time.perf_counter()
report = index_paths(store, [Path(corpus)], batch_size=256)
# VmHWM is this process's own peak. ru_maxrss is not: Linux carries the peak of the memory
# image replaced at exec into it, which for a child spawned with vfork is the parent's.
status = Path("/proc/self/status")
lines = status.read_text().splitlines() if status.exists() else []
hwm = [line.split()[1] for line in lines if line.startswith("VmHWM:")]
peak = int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"chunks": report.chunks_written, "seconds": time.perf_counter() - started,
                  "peak_rss_mb": peak / 1024}))
"""


def write_corpus(folder: Path, files: int, paragraphs: int, seed: int = 0) -> None:
    """``files`` files of ``paragraphs`` paragraphs of about 60 words (one chunk each)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        body = "\n\n".join(
            " ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(paragraphs)
        )
        (folder / f"doc{i:05d}.txt").write_text(body, encoding="utf-8")


def throughput(work: Path, model: str, chunks: int, rounds: int) -> None:
    """Encoder-only and end-to-end chunks/s, measured in turns (``rounds`` of each)."""
    import statistics

    from langchain_tasb import TasbEmbeddings, TasbVectorStore
    from langchain_tasb.encoding.selection import resolve_backend
    from langchain_tasb.ingest import index_paths, make_chunker

    corpus = work / "throughput"
    write_corpus(corpus, files=chunks, paragraphs=4)  # one chunk of about 250 tokens each
    emb = TasbEmbeddings(model_name=model)
    chunker = make_chunker(emb, 32)
    texts = [c.text for path in sorted(corpus.iterdir()) for c in chunker.split(path.read_text())]
    emb.embed_documents(texts[:8])  # warm up (ONNX export or model load)
    encode_rates: list[float] = []
    index_rates: list[float] = []
    # The host's speed drifts by 10% or more within minutes: the two are measured in turns,
    # and each round's ratio compares neighbours in time.
    for round_ in range(rounds):
        started = time.perf_counter()
        emb.embed_documents(texts)
        encode_rates.append(len(texts) / (time.perf_counter() - started))
        store = TasbVectorStore(
            embedding=emb,
            collection_name="bench",
            persist_directory=str(work / f"db-throughput-{round_}"),
        )
        started = time.perf_counter()
        report = index_paths(store, [corpus])
        index_rates.append(report.chunks_written / (time.perf_counter() - started))
    kind = resolve_backend(emb.backend, "cpu")[0]
    encode_rate, index_rate = statistics.median(encode_rates), statistics.median(index_rates)
    print(f"| encoder only ({emb.backend}: {kind}) | {len(texts)} x {rounds} | {encode_rate:.1f} |")
    print(f"| tasb index end to end | {report.chunks_written} x {rounds} | {index_rate:.1f} |")
    ratios = [i / e for i, e in zip(index_rates, encode_rates, strict=True)]
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"end-to-end / encoder-only: {statistics.median(ratios):.2f} (median; rounds: {listed})")


def peak_rss(work: Path, model: str, chunks: int) -> dict[str, float]:
    corpus = work / f"rss-{chunks}"
    # Files of ten 60-word paragraphs come out as nine chunks each with the tiny model.
    write_corpus(corpus, files=-(-chunks // 9), paragraphs=10, seed=chunks)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(corpus), str(work / f"db-{chunks}"), model],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def ray_throughput(work: Path, model: str, chunks: int) -> None:
    """Plain ``index_paths`` against Ray with 1 and 2 workers, into one Chroma server."""
    import logging
    import os
    import shutil
    import socket
    import urllib.request

    import ray

    from langchain_tasb import TasbEmbeddings, TasbVectorStore
    from langchain_tasb.ingest import RayIndexing, index_paths

    corpus = work / "ray-corpus"
    write_corpus(corpus, files=chunks, paragraphs=4)  # one chunk of about 250 tokens each
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    command = [chroma, "run", "--path", str(work / "chroma"), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        print(f"CPUs: {os.cpu_count()}; Ray resources: {ray.cluster_resources()}")
        print("\n| run | chunks | seconds | chunks/s |\n|---|---|---|---|")
        runs = [("tasb index", None)] + [
            (f"tasb index --ray, {n} worker{'s' if n > 1 else ''}", RayIndexing(workers=n))
            for n in (1, 2)
        ]
        for number, (name, settings) in enumerate(runs):
            store = TasbVectorStore(
                embedding=TasbEmbeddings(model_name=model, backend="torch"),
                collection_name=f"bench-{number}",
                host="127.0.0.1",
                port=port,
            )
            started = time.perf_counter()
            report = index_paths(store, [corpus], ray=settings)
            seconds = time.perf_counter() - started
            rate = report.chunks_written / seconds
            print(f"| {name} | {report.chunks_written} | {seconds:.1f} | {rate:.1f} |")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("throughput", "memory"), default=None)
    parser.add_argument("--ray", action="store_true", help="(3) alone: plain against Ray")
    parser.add_argument("--chunks", type=int, default=400, help="chunks for --ray")
    args = parser.parse_args()
    from langchain_tasb.testing import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="tasb-index-bench-"))
    cache = Path(tempfile.gettempdir()) / "langchain-tasb-bench"
    tasb_shaped = str(model_dir(cache))
    tiny = str(build_tiny_model(work / "tiny"))
    print(f"machine: {cpu_name()}; {versions()}")
    if args.ray:
        ray_throughput(work, tasb_shaped, args.chunks)
        return
    if args.only != "memory":
        print("\n| run | chunks | chunks/s |\n|---|---|---|")
        throughput(work, tasb_shaped, 120 if args.quick else 400, 2 if args.quick else 5)
    if args.only == "throughput":
        return

    small, large = (2_000, 20_000) if args.quick else (10_000, 100_000)
    print("\n| chunks | seconds | peak RSS MB |\n|---|---|---|")
    results = [peak_rss(work, tiny, n) for n in (small, large)]
    for r in results:
        print(f"| {r['chunks']:.0f} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    sizes = " / ".join(f"{r['chunks']:.0f}" for r in reversed(results))
    print(f"peak RSS {sizes} chunks: {results[1]['peak_rss_mb'] / results[0]['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
