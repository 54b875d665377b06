"""GPU encoding speed: our torch backend in float16 and bfloat16 against float32.

Issue #5's GPU target is half precision at least twice float32's throughput. On one CUDA
device, with a model of TAS-B's exact shape and cost (random weights, built on the fly), this
times ``TorchEncoder`` (what ``TasbEmbeddings(backend="torch")`` runs; "auto" picks float16 on
CUDA) in float32, float16 and bfloat16, and plain sentence-transformers in float32 (what
``HuggingFaceEmbeddings`` runs), on the same passages of 16 to 250 tokens, the encoders taking
turns. It prints passages/s and real tokens/s per batch size, the ratios to our float32 and to
sentence-transformers, the cosine of the half-precision vectors to the float32 ones, and the
p50 latency of single queries.

Only torch, transformers, sentence-transformers and numpy are needed: the modules used here
(``langchain_tasb.encoding.torch_backend``, ``langchain_tasb.testing``, ``models``) import neither
LangChain nor Chroma, so it runs from a source tree on a machine with a GPU image and nothing
else::

    PYTHONPATH=. python3 benchmarks/gpu.py                        # CUDA, 4,000 passages
    python benchmarks/gpu.py --device cpu --passages 48 --queries 10 --batch-sizes 16
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import versions
from models import WORDS, build_tasb_shaped_model
from sentence_transformers import SentenceTransformer

from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import EncoderSettings, TorchPrecision

PRECISIONS: tuple[TorchPrecision, ...] = ("float32", "float16", "bfloat16")
BASELINE = "sentence-transformers float32"
PACKAGES = ("torch", "transformers", "sentence-transformers", "numpy")


def sample_texts(n: int, low: int, high: int, seed: int) -> list[str]:
    """``n`` texts of ``low`` to ``high`` words of the shaped model's vocabulary.

    Every word is one token in that vocabulary, so a text of ``w`` words is ``w + 2`` tokens.
    """
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))) for _ in range(n)]


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return str(torch.cuda.get_device_name(torch.device(device)))
    return device


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.asarray((a * b).sum(1) / np.maximum(norms, 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--passages", type=int, default=4000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--model", type=Path, default=None, help="default: TAS-B-shaped, built")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        msg = "no CUDA device here: pass --device cpu for a dry run"
        raise SystemExit(msg)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.model or build_tasb_shaped_model(Path(scratch) / "tasb-shaped")
        run(args, str(path))


def run(args: argparse.Namespace, path: str) -> None:
    passages = sample_texts(args.passages, 14, 248, seed=0)
    queries = sample_texts(args.queries, 6, 16, seed=1)
    tokens = sum(len(p.split()) + 2 for p in passages)
    baseline = SentenceTransformer(path, device=args.device)
    ours = {
        p: TorchEncoder(EncoderSettings(path, device=args.device, precision=p)) for p in PRECISIONS
    }

    def synchronize() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def encode(name: str, texts: list[str], batch_size: int) -> np.ndarray:
        if name == BASELINE:
            return np.asarray(
                baseline.encode(texts, batch_size=batch_size, convert_to_numpy=True),
                dtype=np.float32,
            )
        result = ours[name].encode(texts, role="document", max_tokens=256, batch_size=batch_size)
        return result.vectors

    names = [BASELINE, *PRECISIONS]
    print(f"device: {device_name(args.device)}; {versions(PACKAGES)}")
    print(f"{len(passages)} passages, {tokens} real tokens ({tokens / len(passages):.0f} avg)")
    for name in names:  # warm-up: kernels, allocator, autotuning
        encode(name, passages[:64], 32)
    synchronize()

    exact = encode("float32", passages, 64)
    print("\n| precision | cosine to float32, mean | min |")
    print("|---|---:|---:|")
    for precision in PRECISIONS[1:]:
        values = cosines(encode(precision, passages, 64), exact)
        print(f"| {precision} | {values.mean():.5f} | {values.min():.5f} |")

    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        seconds = dict.fromkeys(names, 0.0)
        rounds = [passages[i :: args.rounds] for i in range(args.rounds)]
        for i, chunk in enumerate(rounds):
            for name in names if i % 2 == 0 else list(reversed(names)):
                synchronize()
                started = time.perf_counter()
                encode(name, chunk, batch_size)
                synchronize()
                seconds[name] += time.perf_counter() - started
        print(f"\nbatch size {batch_size}")
        print("| encoder | passages/s | real tokens/s | x our float32 | x sentence-transformers |")
        print("|---|---:|---:|---:|---:|")
        for name in names:
            spent = seconds[name]
            print(
                f"| {name} | {len(passages) / spent:,.0f} | {tokens / spent:,.0f} "
                f"| {seconds['float32'] / spent:.2f} | {seconds[BASELINE] / spent:.2f} |"
            )

    print(f"\n{len(queries)} single queries of 8 to 18 tokens")
    print("| encoder | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    for name in names:
        latencies = []
        for query in queries:
            synchronize()
            started = time.perf_counter()
            if name == BASELINE:
                baseline.encode_query([query], convert_to_numpy=True)
            else:
                ours[name].encode([query], role="query", max_tokens=64, batch_size=1)
            synchronize()
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(f"| {name} | {statistics.median(latencies):.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
