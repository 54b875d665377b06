"""Encoding speed: our backends against ``HuggingFaceEmbeddings`` with the same model.

The model has TAS-B's exact shape and cost (768 dims, 6 layers, 12 heads; random weights, built
on the fly by :func:`models.build_tasb_shaped_model`). The passages are 2,000
windows of SciFact text (synthetic text when SciFact is absent) of 16 to 250 tokens, uniformly
mixed, so that every encoder does the same work and none truncates.

Measured in one run, on the same machine and passages:

* documents: passages/s and real (non-padding) tokens/s of ``embed_documents``, per backend,
  and the ratio to ``HuggingFaceEmbeddings(model_name=path)`` (sentence-transformers, fp32
  torch). The passages are cut into rounds and every encoder runs each round in turn, so that
  a change in machine load hits all of them alike.
* queries: ``embed_query`` latency p50/p99 with the query cache off, on questions of 8 to 18
  tokens, and the CPU time per query (all threads of this process; for a one-thread encoder it
  is the latency an idle core would give).

Usage::

    python benchmarks/encode.py            # 2,000 passages, about 10 minutes on 2 cores
    python benchmarks/encode.py --quick    # 300 passages, 2 to 3 minutes
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine import cpu_name, versions
from models import WORDS, build_tasb_shaped_model

from langchain_tasb import TasbEmbeddings
from langchain_tasb.encoding.encoder import resolve_backend
from langchain_tasb.encoding.onnx_backend import physical_cores
from langchain_tasb.evaluation import find_data_dir, load_beir

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_PASSAGE_TOKENS = 250


def model_dir(cache: Path) -> Path:
    path = cache / "tasb-shaped"
    if not (path / "modules.json").is_file():
        build_tasb_shaped_model(path)
    return path


def sample_passages(n: int, tokenizer: Any, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    data_dir = find_data_dir("scifact")
    if data_dir is not None:
        words = " ".join(load_beir(data_dir).doc_texts).split()
    else:
        vocabulary = [
            "the",
            "of",
            "patient",
            "cell",
            "study",
            "protein",
            "risk",
            "effect",
            "gene",
            "blood",
            "model",
            "data",
        ]
        words = [rng.choice(vocabulary) for _ in range(200_000)]
    passages = []
    while len(passages) < n:
        tokens = rng.randint(16, MAX_PASSAGE_TOKENS)  # mixed lengths, uniform in tokens
        start = rng.randrange(0, len(words) - tokens)
        ids = tokenizer(" ".join(words[start : start + tokens]))["input_ids"]
        passages.append(tokenizer.decode(ids[1 : tokens - 1]))
    return passages


def sample_queries(n: int, seed: int = 1) -> list[str]:
    """Questions of 6 to 16 whole words of the shaped model's vocabulary: 8 to 18 tokens.

    Real questions come out about that long with TAS-B's WordPiece vocabulary; the shaped
    model's small vocabulary would spell SciFact's claims letter by letter (60+ tokens).
    """
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) for _ in range(n)]


def blocks(names: list[str], queries: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Each name with its block of queries, to be answered in a row.

    Torch's idle threads spin for a while after a call, which would tax whichever encoder or
    retriever ran next, so each answers a block in a row; two halves in opposite orders of
    ``names`` even out a change of machine load. Callers run a block's first query once
    untimed, to settle after the previous one.
    """
    halves = [queries[: len(queries) // 2], queries[len(queries) // 2 :]]
    for i, half in enumerate(halves):
        for name in names if i == 0 else list(reversed(names)):
            yield name, half


def real_tokens(tokenizer: Any, passages: list[str]) -> int:
    ids = tokenizer(passages, add_special_tokens=True, truncation=True, max_length=256)
    return sum(len(x) for x in ids["input_ids"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 passages, 100 queries")
    parser.add_argument("--passages", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--backends",
        default="auto,onnx-int8,torch,torch-bf16",
        help="comma-separated TasbEmbeddings backends; 'auto' is labelled with what it picks "
        "here, 'torch-bf16' = torch with bfloat16 weights, 'onnx-int8:2' = onnx-int8 in 2 "
        "worker processes",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache", type=Path, default=None, help="models and ONNX exports")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The shaped model's small vocabulary splits long queries past 64 tokens: not news here.
    for noisy in ("sentence_transformers", "httpx", "chromadb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("langchain_tasb.embeddings").setLevel(logging.ERROR)

    n_passages = args.passages or (300 if args.quick else 2000)
    n_queries = args.queries or (100 if args.quick else 300)
    cache = args.cache or Path(tempfile.gettempdir()) / "langchain-tasb-bench"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TASB_CACHE_DIR", str(cache))
    path = model_dir(cache)

    from langchain_huggingface import HuggingFaceEmbeddings

    baseline = HuggingFaceEmbeddings(
        model_name=str(path), encode_kwargs={"batch_size": args.batch_size}
    )
    tokenizer = baseline._client.tokenizer
    passages = sample_passages(n_passages, tokenizer)
    queries = sample_queries(n_queries)
    tokens = real_tokens(tokenizer, passages)

    encoders: dict[str, Any] = {"HuggingFaceEmbeddings": baseline}
    for name in args.backends.split(","):
        backend, _, workers = name.partition(":")
        backend, _, precision = backend.partition("-bf")  # torch-bf16: bfloat16 weights
        started = time.perf_counter()
        emb = TasbEmbeddings(
            model_name=str(path),
            backend=backend,
            precision="bfloat16" if precision else "auto",
            device="cpu",
            query_cache_size=0,
            document_batch_size=args.batch_size,
            processes=int(workers or 0),
        )
        emb.embed_documents(passages[:4])  # load, export once if needed, start workers
        if backend == "auto":
            name = name.replace("auto", f"auto ({resolve_backend('auto', 'cpu')[0]})", 1)
        print(f"{name}: ready in {time.perf_counter() - started:.1f} s")
        encoders[name] = emb
    for encoder in encoders.values():  # warm-up outside the clock
        encoder.embed_documents(passages[:32])
        encoder.embed_query(queries[0])

    print(f"CPU: {cpu_name()}; {physical_cores()} physical cores; {versions()}")
    print(f"{len(passages)} passages, {tokens} real tokens ({tokens / len(passages):.0f} avg)")
    seconds = dict.fromkeys(encoders, 0.0)
    rounds = [passages[i :: args.rounds] for i in range(args.rounds)]
    for i, chunk in enumerate(rounds):
        order = list(encoders) if i % 2 == 0 else list(reversed(encoders))
        for name in order:
            started = time.perf_counter()
            encoders[name].embed_documents(chunk)
            seconds[name] += time.perf_counter() - started

    base = seconds["HuggingFaceEmbeddings"]
    print("\n| encoder | passages/s | real tokens/s | x HuggingFaceEmbeddings |")
    print("|---|---:|---:|---:|")
    for name, spent in seconds.items():
        print(
            f"| {name} | {len(passages) / spent:.1f} | {tokens / spent:,.0f} | {base / spent:.2f} |"
        )

    latencies: dict[str, list[float]] = {name: [] for name in encoders}
    cpu: dict[str, list[float]] = {name: [] for name in encoders}
    for name, block in blocks(list(encoders), queries):
        encoders[name].embed_query(block[0])  # settle after the previous encoder
        for query in block:
            started, cpu_started = time.perf_counter(), time.process_time()
            encoders[name].embed_query(query)
            latencies[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((time.process_time() - cpu_started) * 1000)
    base_p50 = statistics.median(latencies["HuggingFaceEmbeddings"])
    print(f"\n{len(queries)} queries of 8 to 18 tokens, query cache off")
    print("| encoder | query p50 ms | query p99 ms | p50 speed-up | CPU ms p50 |")
    print("|---|---:|---:|---:|---:|")
    for name, values in latencies.items():
        values.sort()
        p50 = statistics.median(values)
        p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
        used = statistics.median(cpu[name])
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {base_p50 / p50:.2f} | {used:.2f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other processes share the CPUs)")
    for encoder in encoders.values():
        if isinstance(encoder, TasbEmbeddings):
            encoder.close()


if __name__ == "__main__":
    main()
