"""Encoding speed: our backends against ``HuggingFaceEmbeddings`` and fastembed, same model.

The model has TAS-B's exact shape and cost (768 dims, 6 layers, 12 heads; random weights) and
its uncased WordPiece vocabulary, so text tokenises as with TAS-B (built on the fly by
:func:`models.build_tasb_shaped_model`). The passages are 600 windows of SciFact text of 93 to
250 real tokens, uniformly mixed, so that every encoder does the same work and none truncates;
the queries are SciFact's claims.

Measured in one run, on the same machine and passages:

* documents: passages/s and real (non-padding) tokens/s of ``embed_documents``, per encoder;
  the ratio to ``HuggingFaceEmbeddings(model_name=path)`` (sentence-transformers, fp32 torch)
  and to the fastest peer; and the share of the int8 roofline (:mod:`roofline`, measured in
  the same run) that the real tokens/s reach. The passages are cut into rounds and every
  encoder runs each round in turn, so that a change in machine load hits all of them alike.
* peers (:mod:`peers`): fastembed loading the same model as a custom model (CLS pooling, no
  normalisation) from an fp32 ONNX export and from an all-int8 ``quantize_dynamic`` copy, in
  its own venv (``--fastembed-python``), at its default batch size (256). Its time is measured
  inside its process, round by round between ours.
* queries: ``embed_query`` latency p50/p99 with the query cache off, and the CPU time per query
  (all threads of this process; for a one-thread encoder it is the latency an idle core would
  give; not measured for peers).

Usage::

    python benchmarks/encode.py            # 600 passages, about 10 minutes on 2 cores
    python benchmarks/encode.py --quick    # 150 passages, 3 to 4 minutes
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine import cpu_name, versions
from models import WORDS, build_tasb_shaped_model
from peers import FastembedPeer, export_peer_models, fastembed_python
from roofline import measured_peak, passages_per_second, tasb_macs

from langchain_tasb import TasbEmbeddings
from langchain_tasb.encoding.onnx_backend import physical_cores
from langchain_tasb.encoding.selection import resolve_backend
from langchain_tasb.evaluation import find_data_dir, load_beir

if TYPE_CHECKING:
    from collections.abc import Iterator

MIN_PASSAGE_TOKENS, MAX_PASSAGE_TOKENS = 93, 250
BASELINE = "HuggingFaceEmbeddings"


def model_dir(cache: Path) -> Path:
    path = cache / "tasb-shaped-wordpiece"
    if not (path / "modules.json").is_file():
        build_tasb_shaped_model(path)
    return path


def scifact() -> Any:
    data_dir = find_data_dir("scifact")
    return load_beir(data_dir) if data_dir is not None else None


def sample_passages(n: int, tokenizer: Any, data: Any, seed: int = 0) -> list[str]:
    """``n`` windows of SciFact text (random words without it) of 93 to 250 tokens."""
    rng = random.Random(seed)
    if data is not None:
        words = " ".join(data.doc_texts).split()
    else:
        words = [rng.choice(WORDS) for _ in range(200_000)]
    passages = []
    while len(passages) < n:
        tokens = rng.randint(MIN_PASSAGE_TOKENS, MAX_PASSAGE_TOKENS)  # uniform in tokens
        start = rng.randrange(0, len(words) - tokens)
        ids = tokenizer(" ".join(words[start : start + tokens]))["input_ids"]
        if len(ids) >= tokens:
            passages.append(tokenizer.decode(ids[1 : tokens - 1]))
    return passages


def sample_queries(n: int, data: Any, seed: int = 1) -> list[str]:
    """``n`` SciFact claims (questions of whole words without SciFact), in random order."""
    rng = random.Random(seed)
    if data is not None:
        claims = sorted(data.queries.values())
        return [
            claims[i % len(claims)] for i in rng.sample(range(len(claims)), min(n, len(claims)))
        ]
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


def token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=512)
    return [len(x) for x in ids["input_ids"]]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


class _SentenceTransformerEmbeddings:
    """What ``HuggingFaceEmbeddings`` runs, for when langchain-huggingface is not installed."""

    def __init__(self, path: Path, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self._client = SentenceTransformer(str(path), device="cpu")
        self._batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._client.encode(texts, batch_size=self._batch_size)
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def huggingface_embeddings(path: Path, batch_size: int) -> Any:
    """``HuggingFaceEmbeddings`` on ``path``, or the same ``SentenceTransformer.encode`` calls."""
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:
        print(
            "langchain-huggingface absent: the baseline calls SentenceTransformer.encode as it does"
        )
        return _SentenceTransformerEmbeddings(path, batch_size)
    return HuggingFaceEmbeddings(model_name=str(path), encode_kwargs={"batch_size": batch_size})


def start_peers(args: argparse.Namespace, path: Path, cache: Path) -> dict[str, FastembedPeer]:
    """The fastembed peers (fp32 and all-int8 exports), or none, with the reason printed."""
    if args.no_peers:
        print("peers: skipped (--no-peers)")
        return {}
    python, why = fastembed_python(args.fastembed_python)
    if python is None:
        print(f"peers: fastembed not run: {why}")
        return {}
    files = export_peer_models(path, cache / "peer-onnx")
    peers = {}
    for kind, directory in files.items():
        peer = FastembedPeer(python, directory)
        print(f"fastembed {kind}: ready in {peer.ready_seconds:.1f} s ({peer.version})")
        peers[f"fastembed {kind}"] = peer
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="150 passages, 60 queries")
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
    parser.add_argument("--fastembed-python", default=None, help="Python of a fastembed venv")
    parser.add_argument("--no-peers", action="store_true", help="skip fastembed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("sentence_transformers", "httpx", "chromadb", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("langchain_tasb.embeddings").setLevel(logging.ERROR)

    n_passages = args.passages or (150 if args.quick else 600)
    n_queries = args.queries or (60 if args.quick else 300)
    cache = args.cache or Path(tempfile.gettempdir()) / "langchain-tasb-bench"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TASB_CACHE_DIR", str(cache))
    path = model_dir(cache)

    baseline = huggingface_embeddings(path, args.batch_size)
    tokenizer = baseline._client.tokenizer
    data = scifact()
    passages = sample_passages(n_passages, tokenizer, data)
    queries = sample_queries(n_queries, data)
    counts = token_counts(tokenizer, passages)
    tokens = sum(counts)

    encoders: dict[str, Any] = {BASELINE: baseline}
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
    peers = start_peers(args, path, cache)

    print(f"CPU: {cpu_name()}; {physical_cores()} physical cores; {versions()}")
    print(f"{len(passages)} passages, {tokens} real tokens ({tokens / len(passages):.0f} avg)")
    peak, _ = measured_peak(0.5)
    roofline_seconds = sum(tasb_macs(n) for n in counts) / peak
    print(
        f"int8 roofline (benchmarks/roofline.py, this run): {peak / 1e9:.0f} G MAC/s = "
        f"{passages_per_second(peak):.1f} passages/s of 128 tokens, "
        f"{len(passages) / roofline_seconds:.1f} passages/s of these"
    )
    names = [*encoders, *peers]
    seconds = dict.fromkeys(names, 0.0)
    agreement: dict[str, float] = {}
    rounds = [passages[i :: args.rounds] for i in range(args.rounds)]
    reference = baseline.embed_query(rounds[0][0])  # no prompt: a document's vector
    for i, chunk in enumerate(rounds):
        for name in names if i % 2 == 0 else list(reversed(names)):
            if name in peers:
                spent, first = peers[name].embed_documents(chunk)
                agreement.setdefault(name, cosine(first, reference))
                seconds[name] += spent
                continue
            started = time.perf_counter()
            encoders[name].embed_documents(chunk)
            seconds[name] += time.perf_counter() - started

    base = seconds[BASELINE]
    fastest_peer = min((seconds[name] for name in peers), default=None)
    print(
        "\n| encoder | passages/s | real tokens/s | x HuggingFaceEmbeddings | x fastest peer "
        "| % of int8 roofline |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, spent in seconds.items():
        vs_peer = f"{fastest_peer / spent:.2f}" if fastest_peer else "n/a"
        print(
            f"| {name} | {len(passages) / spent:.1f} | {tokens / spent:,.0f} | "
            f"{base / spent:.2f} | {vs_peer} | {100 * roofline_seconds / spent:.0f}% |"
        )
    for name, value in agreement.items():
        print(f"{name}: cosine {value:.4f} to HuggingFaceEmbeddings on one passage (same model)")

    latencies: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for name, block in blocks(names, queries):
        if name in peers:
            latencies[name].extend(peers[name].query_latencies(block))
            continue
        encoders[name].embed_query(block[0])  # settle after the previous encoder
        for query in block:
            started, cpu_started = time.perf_counter(), time.process_time()
            encoders[name].embed_query(query)
            latencies[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append((time.process_time() - cpu_started) * 1000)
    query_tokens = token_counts(tokenizer, queries)
    base_p50 = statistics.median(latencies[BASELINE])
    print(
        f"\n{len(queries)} SciFact claims ({min(query_tokens)} to {max(query_tokens)} tokens, "
        f"median {statistics.median(query_tokens):.0f}), query cache off"
    )
    print("| encoder | query p50 ms | query p99 ms | p50 speed-up | CPU ms p50 |")
    print("|---|---:|---:|---:|---:|")
    for name, values in latencies.items():
        values.sort()
        p50 = statistics.median(values)
        p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
        used = f"{statistics.median(cpu[name]):.2f}" if cpu[name] else "n/a"
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {base_p50 / p50:.2f} | {used} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other processes share the CPUs)")
    for peer in peers.values():
        peer.close()
    for encoder in encoders.values():
        if isinstance(encoder, TasbEmbeddings):
            encoder.close()


if __name__ == "__main__":
    main()
