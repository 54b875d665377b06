"""BM25 engines for the lexical side of hybrid search, at the scale where the choice matters.

The same passages (real 16-word windows of ``../shared/data``, words shuffled into new
passages past the 106,000 there, as ``scale.py`` makes them) go into three engines, and the
same SciFact claims are asked of each, top 10:

* tantivy (the package's engine: ``langchain_tasb.hybrid.bm25.Bm25Index``): block-max WAND;
* SQLite FTS5 (the standard library; porter stemming, ``ORDER BY rank LIMIT 10``), which
  scores every document that holds a query term;
* bm25s (the engine before tantivy): a sparse matrix, every document scored per query.

For each: build seconds, the cost of adding one record and deleting one (where the engine can),
and query p50/p99 in ms. Usage::

    python benchmarks/bm25_engines.py --size 1000000
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpus import real_queries
from encode import cpu_name
from scale import passages, percentile

from langchain_tasb.hybrid.bm25 import Bm25Index

QUERIES = 300


def latencies(fn: Callable[[str], object], queries: list[str]) -> tuple[float, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - started) * 1000.0)
    return percentile(times, 0.5), percentile(times, 0.99)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def tantivy(texts: list[str], queries: list[str], folder: Path) -> dict[str, float]:
    index = Bm25Index(folder / "tantivy")
    ids = [f"p{i}" for i in range(len(texts))]
    build = timed(
        lambda: index.replace_all(
            (ids[i : i + 10_000], texts[i : i + 10_000]) for i in range(0, len(ids), 10_000)
        )
    )
    add = timed(lambda: index.apply([("new-1", "a zircon note")])) * 1000
    delete = timed(lambda: index.apply(deletes=["new-1"])) * 1000
    p50, p99 = latencies(lambda q: index.top(q, 10), queries)
    return {"build_s": build, "add_ms": add, "delete_ms": delete, "p50_ms": p50, "p99_ms": p99}


def fts5(texts: list[str], queries: list[str], folder: Path) -> dict[str, float]:
    db = sqlite3.connect(folder / "fts.sqlite3")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, text, tokenize='porter')")

    def build() -> None:
        with db:
            db.executemany(
                "INSERT INTO docs(id, text) VALUES (?, ?)",
                ((f"p{i}", t) for i, t in enumerate(texts)),
            )

    seconds = timed(build)

    def one(sql: str, args: tuple[str, ...]) -> float:
        def run() -> None:
            with db:
                db.execute(sql, args)

        return timed(run) * 1000

    add = one("INSERT INTO docs(id, text) VALUES (?, ?)", ("new-1", "a zircon note"))
    delete = one("DELETE FROM docs WHERE id = ?", ("new-1",))  # id is unindexed: a full scan

    def search(q: str) -> list[tuple[str, float]]:
        terms = " OR ".join(f'"{w}"' for w in q.replace('"', " ").split())
        sql = "SELECT id, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10"
        return db.execute(sql, (terms,)).fetchall()

    p50, p99 = latencies(search, queries)
    return {"build_s": seconds, "add_ms": add, "delete_ms": delete, "p50_ms": p50, "p99_ms": p99}


def bm25s_engine(texts: list[str], queries: list[str]) -> dict[str, float] | None:
    try:
        import bm25s
    except ImportError:
        return None
    retriever = bm25s.BM25(method="lucene")

    def build() -> None:
        retriever.index(
            bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False
        )

    seconds = timed(build)

    def search(q: str) -> object:
        tokens = bm25s.tokenize([q], stopwords="en", show_progress=False)
        return retriever.retrieve(tokens, k=10, show_progress=False)

    p50, p99 = latencies(search, queries)
    nan = float("nan")  # bm25s has no add or delete: any change is a rebuild
    return {"build_s": seconds, "add_ms": nan, "delete_ms": nan, "p50_ms": p50, "p99_ms": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--skip-bm25s", action="store_true")
    args = parser.parse_args()
    texts = passages(args.size)
    queries = real_queries(QUERIES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("tantivy", tantivy(texts, queries, Path(tmp))))
        rows.append(("SQLite FTS5", fts5(texts, queries, Path(tmp))))
    if not args.skip_bm25s and (found := bm25s_engine(texts, queries)) is not None:
        rows.append(("bm25s", found))
    print(f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {args.size:,} passages, top 10")
    print(f"command: python benchmarks/bm25_engines.py --size {args.size}")
    print("| engine | build s | add one ms | delete one ms | query p50 ms | query p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['build_s']:.1f} | {r['add_ms']:.1f} | {r['delete_ms']:.1f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
