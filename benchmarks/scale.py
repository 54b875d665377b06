"""Scale: what every per-query and whole-collection cost is at 100,000 and 1,000,000 chunks.

The tiny model (32 dimensions, 2 layers) encodes, so that the store's costs show rather than
the encoder's. Passages are real 16-word windows of every dataset under ``../shared/data``
(``$TASB_DATA_DIR``), their words shuffled into new passages past the 106,000 windows there,
so that term statistics stay those of real text. They are written as JSON Lines files (1,000
records a file) and indexed with ``tasb index`` into an embedded Chroma. For each size:

* ``tasb index``: chunks/s and peak RSS of the indexing process;
* dense and hybrid (``search_type="hybrid"``, k=10) query p50/p99 over SciFact claims, query
  vectors computed beforehand, in alternating turns; hybrid minus dense;
* the first hybrid query after adding one chunk through the package, after deleting one, and
  after a raw chromadb write (which only the change marker reveals), against dense p50;
* the cost of one ``add_texts`` and one ``delete``;
* ``tasb info``, ``tasb search --hybrid`` and ``tasb search`` (dense), each in a new process,
  and the peak RSS of the hybrid search process;
* a no-change rerun of ``tasb index``.

Usage::

    python benchmarks/scale.py                       # 100k and 1M (about an hour on 2 cores)
    python benchmarks/scale.py --sizes 20000         # a quick look
    python benchmarks/scale.py --work /var/tmp/scale # keep (and reuse) the built databases

Targets (1M chunks): hybrid p50 <= dense p50 + 10 ms, p99 <= dense p99 + 30 ms; first hybrid
query after a one-chunk change <= dense + 100 ms; ``tasb info`` and ``tasb search --hybrid``
within 1 s of ``tasb search``; no-change rerun <= 60 s; hybrid search RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corpus import real_passages, real_queries
from encode import cpu_name, versions

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.search import SearchSettings, search
from langchain_tasb.testing import build_tiny_model

RECORDS_PER_FILE = 1000
QUERIES = 300
PEAK = """
import runpy, sys
from pathlib import Path
sys.argv = ["tasb", *sys.argv[1:]]
try:
    from langchain_tasb.cli import main
    code = main(sys.argv[1:])
finally:
    hwm = [l.split()[1] for l in Path("/proc/self/status").read_text().splitlines()
           if l.startswith("VmHWM:")]
    print("PEAK_KB", hwm[0] if hwm else 0, file=sys.stderr)
sys.exit(code)
"""


def passages(n: int) -> list[str]:
    real = real_passages(min(n, 100_000))
    if real is None:
        msg = "no datasets under ../shared/data (or $TASB_DATA_DIR): see its README"
        raise SystemExit(msg)
    rng = random.Random(7)
    out = list(real)
    while len(out) < n:
        words = real[len(out) % len(real)].split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def write_corpus(folder: Path, texts: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(texts), RECORDS_PER_FILE):
        lines = (
            json.dumps({"_id": f"p{i}", "text": texts[i]})
            for i in range(start, min(start + RECORDS_PER_FILE, len(texts)))
        )
        (folder / f"part-{start // RECORDS_PER_FILE:05d}.jsonl").write_text("\n".join(lines))


def tasb(env: dict[str, str], *args: str | Path) -> tuple[float, float, str]:
    """Run ``tasb ARGS`` in a new process: (seconds, peak RSS in MB, stdout)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        msg = f"tasb {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}"
        raise SystemExit(msg)
    peak = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_KB")]
    return seconds, int(peak[0]) / 1024 if peak else float("nan"), done.stdout


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def measure(size: int, work: Path, model: Path, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"chunks": size}
    corpus, db = work / f"corpus-{size}", work / f"db-{size}"
    if not (db / "chroma.sqlite3").exists():
        print(f"[{size:,}] writing the corpus", file=sys.stderr)
        write_corpus(corpus, passages(size))
        print(f"[{size:,}] tasb index", file=sys.stderr)
        seconds, peak, _ = tasb(env, "index", corpus, "--db", db, "--quiet")
        out["index_chunks_per_s"] = size / seconds
        out["index_peak_rss_mb"] = peak
    print(f"[{size:,}] no-change rerun", file=sys.stderr)
    out["rerun_s"], _, _ = tasb(env, "index", corpus, "--db", db, "--quiet")

    emb = TasbEmbeddings(model_name=str(model), device="cpu")  # the backend tasb index used
    store = TasbVectorStore(embedding=emb, persist_directory=str(db))
    queries = real_queries(QUERIES)
    vectors = emb.embed_documents(queries)  # any fixed vectors: both sides get the same
    dense_s, hybrid_s = SearchSettings(k=10), SearchSettings(search_type="hybrid", k=10)
    print(f"[{size:,}] first hybrid search (builds BM25)", file=sys.stderr)
    out["bm25_build_s"] = timed(lambda: search(store, hybrid_s, query="x", vector=vectors[0])) / 1e3
    dense: list[float] = []
    hybrid: list[float] = []
    for q, v in zip(queries, vectors, strict=True):
        dense.append(timed(lambda q=q, v=v: search(store, dense_s, query=q, vector=v)))
        hybrid.append(timed(lambda q=q, v=v: search(store, hybrid_s, query=q, vector=v)))
    for name, values in (("dense", dense), ("hybrid", hybrid)):
        out[f"{name}_p50_ms"] = percentile(values, 0.5)
        out[f"{name}_p99_ms"] = percentile(values, 0.99)

    adds, deletes, after_add, after_delete, after_raw = [], [], [], [], []
    raw = store.store.collection

    def hybrid_ms(i: int) -> float:
        return timed(lambda: search(store, hybrid_s, query=queries[i], vector=vectors[i]))

    for i in range(10):
        started = time.perf_counter()
        ids = store.add_texts([f"a new zircon note {i}"])
        adds.append((time.perf_counter() - started) * 1000.0)
        after_add.append(hybrid_ms(i))
        deletes.append(timed(lambda ids=ids: store.delete(ids)))
        after_delete.append(hybrid_ms(i))
        raw.add(ids=[f"raw-{i}"], embeddings=[vectors[i]], documents=[f"raw zircon {i}"])
        after_raw.append(hybrid_ms(i))
    raw.delete(ids=[f"raw-{i}" for i in range(10)])
    search(store, hybrid_s, query="x", vector=vectors[0])  # catch up before the next figures
    out["add_one_ms"] = statistics.median(adds)
    out["delete_one_ms"] = statistics.median(deletes)
    out["hybrid_after_add_ms"] = statistics.median(after_add)
    out["hybrid_after_delete_ms"] = statistics.median(after_delete)
    out["hybrid_after_raw_write_ms"] = statistics.median(after_raw)

    q = queries[0]
    for name, args in (
        ("cli_search", ("search", q, "--db", db, "-k", "10")),
        ("cli_search_hybrid", ("search", q, "--db", db, "-k", "10", "--hybrid")),
        ("cli_info", ("info", "--db", db)),
    ):
        runs = [tasb(env, *args) for _ in range(3)]
        out[f"{name}_s"] = statistics.median(r[0] for r in runs)
        out[f"{name}_peak_rss_mb"] = max(r[1] for r in runs)
    return out


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| chunks | dense p50 / p99 ms | hybrid p50 / p99 ms | hybrid - dense p50 / p99 ms "
        "| hybrid after add / delete / raw write ms | add / delete one ms | tasb search / "
        "--hybrid / info s | hybrid search RSS MB | no-change rerun s | index chunks/s, RSS MB |",
        "|---" * 10 + "|",
    ]
    for r in rows:
        index = (
            f"{r['index_chunks_per_s']:,.0f}, {r['index_peak_rss_mb']:,.0f}"
            if "index_chunks_per_s" in r
            else "(reused)"
        )
        lines.append(
            f"| {r['chunks']:,} | {r['dense_p50_ms']:.1f} / {r['dense_p99_ms']:.1f} "
            f"| {r['hybrid_p50_ms']:.1f} / {r['hybrid_p99_ms']:.1f} "
            f"| {r['hybrid_p50_ms'] - r['dense_p50_ms']:+.1f} / "
            f"{r['hybrid_p99_ms'] - r['dense_p99_ms']:+.1f} "
            f"| {r['hybrid_after_add_ms']:.1f} / {r['hybrid_after_delete_ms']:.1f} / "
            f"{r['hybrid_after_raw_write_ms']:.1f} "
            f"| {r['add_one_ms']:.1f} / {r['delete_one_ms']:.1f} "
            f"| {r['cli_search_s']:.2f} / {r['cli_search_hybrid_s']:.2f} / {r['cli_info_s']:.2f} "
            f"| {r['cli_search_hybrid_peak_rss_mb']:,.0f} | {r['rerun_s']:.1f} | {index} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", type=Path, help="folder for corpora and databases (kept)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tasb-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny-model"
    if not (model / "config.json").exists():
        build_tiny_model(model)
    env = {**os.environ, "TASB_MODEL": str(model), "TASB_CACHE_DIR": str(work / "cache")}
    rows = [measure(size, work, model, env) for size in args.sizes]
    print(f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores")
    print(f"command: python benchmarks/scale.py --sizes {' '.join(map(str, args.sizes))}")
    print(json.dumps(versions(), sort_keys=True))
    print(report(rows))
    (work / "scale.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
