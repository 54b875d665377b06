"""Vectors must not depend on what other threads encode at the same time."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings

# Longer than the query limit and shorter than the document limit: a query vector computed
# with the document limit (or none) differs from the right one.
TEXTS = [
    f"question {i}: how many people live in london and work in the city? " * 2 for i in range(8)
]


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_vectors_do_not_depend_on_other_threads(
    backend: str, tiny_model_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASB_CACHE_DIR", str(onnx_cache))
    emb = TasbEmbeddings(
        model_name=str(tiny_model_path),
        backend=backend,  # type: ignore[arg-type]
        query_max_tokens=8,
        document_max_tokens=64,
        query_cache_size=0,
    )
    calls = [("query", i) for i in range(len(TEXTS))] + [
        ("document", i) for i in range(0, len(TEXTS), 2)
    ]

    def run(role: str, i: int) -> list[list[float]]:
        if role == "query":
            return [emb.embed_query(TEXTS[i])]
        return emb.embed_documents(TEXTS[i : i + 2])

    serial = {call: np.asarray(run(*call)) for call in calls}
    errors: list[str] = []

    def hammer(seed: int) -> None:
        order = calls * 12
        random.Random(seed).shuffle(order)
        for call in order:
            got = np.asarray(run(*call))
            if not np.allclose(got, serial[call], atol=1e-5):
                errors.append(f"{call}: max difference {np.abs(got - serial[call]).max():.3g}")

    def chunk() -> None:  # what a chunker does with the encoder's tokenizer meanwhile
        while any(thread.is_alive() for thread in threads):
            emb.encoder.tokenizer(TEXTS, truncation=True, max_length=4)
            emb.encoder.tokenizer(TEXTS, truncation=False)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(4)]
    chunker = threading.Thread(target=chunk)
    for thread in threads:
        thread.start()
    chunker.start()
    for thread in [*threads, chunker]:
        thread.join()
    assert errors == [], f"{len(errors)} of {len(calls) * 12 * 4} calls differed: {errors[:5]}"
