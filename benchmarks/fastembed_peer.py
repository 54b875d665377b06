"""Run fastembed as a benchmark peer in its own virtual environment, driven over stdin/stdout.

fastembed cannot share an environment with current transformers (it pins an older
huggingface-hub), so :mod:`peers` starts this script with the Python of a separate venv::

    python3 -m venv .venv-fastembed && .venv-fastembed/bin/pip install fastembed

It loads an ONNX model directory as a user would load a model fastembed does not list:
``TextEmbedding.add_custom_model`` with CLS pooling and no normalisation, then
``TextEmbedding(name, specific_model_path=directory)``. It then answers one JSON request a line,
timing the work itself so that starting and piping cost nothing:

* ``{"op": "docs", "texts": [...]}``: ``embed`` with fastembed's default batch size; answers
  ``{"seconds": s, "first": vector of the first text}``.
* ``{"op": "queries", "texts": [...]}``: ``query_embed`` one text at a time, the first once
  untimed to settle; answers ``{"ms": [latency of each]}``.
* ``{"op": "quit"}``.

Standard library, numpy and fastembed only: it must not import the project.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="directory with model.onnx and tokenizer files")
    parser.add_argument("--dim", type=int, default=768)
    args = parser.parse_args()

    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    started = time.perf_counter()
    name = f"local/{args.model_dir.rstrip('/').rsplit('/', 1)[-1]}"
    TextEmbedding.add_custom_model(
        model=name,
        pooling=PoolingType.CLS,
        normalization=False,
        sources=ModelSource(hf=name),
        dim=args.dim,
        model_file="model.onnx",
    )
    model = TextEmbedding(name, specific_model_path=args.model_dir)
    list(model.embed(["warm up"]))
    reply({"ready": time.perf_counter() - started, "version": version()})
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "docs":
            begun = time.perf_counter()
            vectors = list(model.embed(request["texts"]))
            spent = time.perf_counter() - begun
            reply({"seconds": spent, "first": [float(x) for x in vectors[0]]})
        elif request["op"] == "queries":
            texts = request["texts"]
            list(model.query_embed(texts[0]))  # settle after the previous encoder
            latencies = []
            for text in texts:
                begun = time.perf_counter()
                list(model.query_embed(text))
                latencies.append((time.perf_counter() - begun) * 1000)
            reply({"ms": latencies})
        else:
            return


def version() -> str:
    from importlib import metadata

    return (
        f"fastembed {metadata.version('fastembed')}, onnxruntime {metadata.version('onnxruntime')}"
    )


def reply(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
