"""MCP overhead: a ``search`` tool call over stdio against ``TasbRetriever.invoke``, same run.

Builds a collection (random-word passages, the tiny random-weight model of
:func:`langchain_tasb.testing.build_tiny_model`, or a bigger one with ``--dim``/``--layers``),
then times the same queries two ways on one machine: in process through
``TasbRetriever(vectorstore=store).invoke(query, k=K)``, and through a ``tasb mcp --db DB``
subprocess with the MCP SDK's ``ClientSession`` over ``stdio_client`` (JSON-RPC framing, the
tool's argument validation, structured and text rendering, and the pipe both ways). Each
query is used once per path, so neither path's query cache answers. The two paths alternate
in blocks (A B B A) so drift in machine load falls on both. Prints p50/p99 of each and the
differences; the issue's bar is at most 2 ms added at p50. Runs on the MCP SDK 1.x or 2.x,
whichever is installed; the 1.x client checks each result's output schema against the JSON
Schema metaschema on every call (2.x compiles the check once), which this time includes.

Usage::

    python benchmarks/mcp.py                 # 2,000 passages, 400 queries, tiny model
    python benchmarks/mcp.py --dim 768 --layers 6 --heads 12   # TAS-B's shape
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This script shares its name with the SDK it measures: its folder, first on sys.path when run
# as `python benchmarks/mcp.py`, must not shadow the `mcp` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from importlib.metadata import version  # noqa: E402

import anyio  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from langchain_tasb import TasbEmbeddings, TasbRetriever, TasbVectorStore  # noqa: E402
from langchain_tasb.testing import build_tiny_model, tiny_vocabulary  # noqa: E402

CLI = ["-c", "import sys; from langchain_tasb.cli import main; sys.exit(main())"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def texts(rng: random.Random, words: list[str], n: int, low: int, high: int) -> list[str]:
    return [" ".join(rng.choice(words) for _ in range(rng.randint(low, high))) for _ in range(n)]


async def mcp_times(db: Path, model: Path, queries: list[list[str]], k: int) -> list[list[float]]:
    env = {**os.environ, "TASB_MODEL": str(model)}
    params = StdioServerParameters(
        command=sys.executable,
        args=[*CLI, "mcp", "--db", str(db)],
        env=env,
        cwd=str(db.parent),
    )
    out: list[list[float]] = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for block in queries:
            times = []
            for query in block:
                start = time.perf_counter()
                result = await session.call_tool("search", {"query": query, "k": k})
                times.append(time.perf_counter() - start)
                if result.model_dump(by_alias=True)["isError"]:  # 1.x and 2.x field names
                    raise RuntimeError(str(result.content))
            out.append(times)
    return out


def invoke_times(retriever: TasbRetriever, queries: list[list[str]], k: int) -> list[list[float]]:
    out = []
    for block in queries:
        times = []
        for query in block:
            start = time.perf_counter()
            retriever.invoke(query, k=k)
            times.append(time.perf_counter() - start)
        out.append(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rng = random.Random(0)
    words = [w for w in tiny_vocabulary() if w.isalpha() and len(w) > 2]
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(
            Path(tmp, "model"), dim=args.dim, layers=args.layers, heads=args.heads
        )
        db = Path(tmp, "db")
        store = TasbVectorStore(
            embedding=TasbEmbeddings(model_name=str(model)),
            collection_name="tasb",
            persist_directory=str(db),
        )
        store.add_texts(texts(rng, words, args.passages, 40, 120))
        retriever = TasbRetriever(vectorstore=store)
        half = args.queries // 2
        pool = texts(rng, words, args.warmup * 2 + args.queries * 2, 4, 12)
        warm_a, warm_b = pool[: args.warmup], pool[args.warmup : 2 * args.warmup]
        rest = pool[2 * args.warmup :]
        # Blocks A B B A: in-process first and last, MCP in the middle, different queries.
        a1, b1, b2, a2 = (rest[i * half : (i + 1) * half] for i in range(4))
        invoke_times(retriever, [warm_a], args.k)
        first = invoke_times(retriever, [a1], args.k)
        over_mcp = anyio.run(mcp_times, db, model, [warm_b, b1, b2], args.k)[1:]
        last = invoke_times(retriever, [a2], args.k)
    direct = [t * 1000 for block in first + last for t in block]
    mcp = [t * 1000 for block in over_mcp for t in block]
    rows: list[tuple[str, Any, Any]] = [
        ("TasbRetriever.invoke", percentile(direct, 0.5), percentile(direct, 0.99)),
        ("MCP search over stdio", percentile(mcp, 0.5), percentile(mcp, 0.99)),
    ]
    print(
        f"{args.passages} passages, {len(direct)}+{len(mcp)} queries, k={args.k}, model "
        f"dim {args.dim} x {args.layers} layers, mcp {version('mcp')}; p50 / p99 in ms"
    )
    for name, p50, p99 in rows:
        print(f"{name:<24}{p50:8.2f}{p99:9.2f}")
    print(
        f"{'MCP adds':<24}{rows[1][1] - rows[0][1]:8.2f}{rows[1][2] - rows[0][2]:9.2f}"
        f"   (mean {statistics.mean(mcp) - statistics.mean(direct):.2f})"
    )


if __name__ == "__main__":
    main()
