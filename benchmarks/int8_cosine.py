"""How close the int8 document vectors stay to fp32 at TAS-B's shape (issue #23's cosine bar).

For SciFact passages, encodes with fp32 torch and with the default int8 ONNX export
(``TasbEmbeddings(backend="onnx-int8")``) and prints the mean and minimum cosine between the
two vectors of each passage, for three models of TAS-B's exact shape (768 dims, 6 layers, 12
heads):

* the CLS-pooled twin of widened all-MiniLM-L6-v2 (:func:`corpus.tasb_cost_model`): trained
  weights, pooled and scored as TAS-B (CLS, no normalisation, dot), so the export computes
  TAS-B's graph, last layer for CLS only;
* widened all-MiniLM-L6-v2 itself (mean pooling);
* the random-weight speed model (:func:`models.build_tasb_shaped_model`).

It also prints, as a yardstick, the same cosine for bfloat16 torch (about three significant
digits per value, a rounding as coarse as int8's), and the mean cosine between different
passages' fp32 vectors. The random model's weights (standard deviation 0.3, so that its
vectors differ between passages at all) make it chaotic: saturated attention turns any
rounding into a different mix of tokens, bfloat16's as much as int8's, so its cosine says
little about the quality of a quantisation recipe; the trained widened models do.

Usage::

    python benchmarks/int8_cosine.py --docs 300
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from corpus import tasb_cost_model, widened_model
from gpu import cosines
from models import build_tasb_shaped_model

from langchain_tasb import TasbEmbeddings
from langchain_tasb.evaluation import find_data_dir, load_beir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=300)
    args = parser.parse_args()
    data = find_data_dir("scifact")
    if data is None:
        print("SciFact not found (set TASB_DATA_DIR); nothing to measure")
        return
    docs = load_beir(data).doc_texts[: args.docs]
    cache = Path(tempfile.gettempdir()) / "langchain-tasb-bench"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TASB_CACHE_DIR", str(cache))
    random_model = cache / "tasb-shaped"
    if not (random_model / "modules.json").is_file():
        build_tasb_shaped_model(random_model)
    models = {
        "widened MiniLM, CLS-pooled (TAS-B's graph)": tasb_cost_model(cache),
        "widened MiniLM, mean-pooled": widened_model(cache),
        "random weights (speed model)": random_model,
    }
    print(f"{len(docs)} SciFact passages; target: mean cosine >= 0.995")
    print(
        "| model | int8 vs fp32 cosine, mean | min | bfloat16 vs fp32, mean | min "
        "| fp32 cosine between passages |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, path in models.items():
        fp32 = np.array(TasbEmbeddings(model_name=str(path), backend="torch").embed_documents(docs))
        int8 = np.array(
            TasbEmbeddings(model_name=str(path), backend="onnx-int8").embed_documents(docs)
        )
        bf16 = np.array(
            TasbEmbeddings(
                model_name=str(path), backend="torch", precision="bfloat16"
            ).embed_documents(docs)
        )
        to_int8, to_bf16 = cosines(fp32, int8), cosines(fp32, bf16)
        unit = fp32 / np.linalg.norm(fp32, axis=1, keepdims=True)
        between = (unit @ unit.T)[~np.eye(len(docs), dtype=bool)]
        print(
            f"| {label} | {to_int8.mean():.5f} | {to_int8.min():.4f} | {to_bf16.mean():.5f} "
            f"| {to_bf16.min():.4f} | {between.mean():.3f} |"
        )


if __name__ == "__main__":
    main()
