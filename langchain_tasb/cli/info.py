"""``tasb info``: what a collection holds, read from Chroma without loading the model."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_tasb.chroma.identity import ModelIdentity
from langchain_tasb.cli.common import (
    DEFAULT_DB,
    add_store_options,
    open_existing_collection,
    redact_url,
)
from langchain_tasb.cli.output import dumps_json, safe_text

TOP_SOURCES = 5


def add_parser(subparsers: Any) -> None:
    """Register ``tasb info``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "info",
        help="describe an index",
        description=(
            "Print the model, dimension, similarity, distance space, chunk count, sources and "
            "size on disk of a collection. The model is not loaded (--model is ignored)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the description as JSON")
    add_store_options(parser)
    parser.set_defaults(func=run)


def describe(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``tasb info`` prints, as a JSON-ready dict."""
    _, chroma = open_existing_collection(args)
    identity = ModelIdentity.from_metadata(chroma.metadata)
    sources: Counter[tuple[str, str]] = Counter()
    for page in chroma.scan(include=["metadatas"]):
        for metadata in page.metadatas:
            metadata = metadata or {}
            sources[str(metadata.get("root", "")), str(metadata.get("source", ""))] += 1
    roots = sorted({root for root, _ in sources if root})
    hnsw = chroma.hnsw
    location: dict[str, Any]
    if args.chroma_url:
        location = {"server": redact_url(args.chroma_url), "size_bytes": None}
    else:
        db = Path(args.db or DEFAULT_DB).resolve()
        location = {"db": str(db), "size_bytes": _disk_size(db)}
    return {
        "collection": chroma.name,
        **location,
        "model": identity.model_name if identity else None,
        "dimension": identity.dimension if identity else None,
        "similarity": identity.similarity if identity else None,
        "space": chroma.space,
        "hnsw": {
            k: hnsw[k] for k in ("ef_search", "ef_construction", "max_neighbors") if k in hnsw
        },
        "chunks": chroma.count(),
        "sources": len(sources),
        "roots": roots,
        "top_sources": [
            {"root": root, "source": source, "chunks": count}
            for (root, source), count in sources.most_common(TOP_SOURCES)
        ],
    }


def _disk_size(folder: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                total += (Path(dirpath) / name).stat().st_size
            except OSError:
                continue
    return total


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def run(args: argparse.Namespace) -> int:
    """Print the description."""
    info = describe(args)
    if args.json:
        print(dumps_json(info))
        return 0
    unknown = "unknown (not made by langchain-tasb)"
    rows = [
        ("collection", info["collection"]),
        ("location", info.get("server") or info["db"]),
        ("model", info["model"] or unknown),
        ("dimension", info["dimension"] or unknown),
        ("similarity", info["similarity"] or unknown),
        ("space", info["space"]),
        ("hnsw", ", ".join(f"{k}={v}" for k, v in info["hnsw"].items()) or "-"),
        ("chunks", info["chunks"]),
        ("sources", f"{info['sources']} under {_plural(len(info['roots']), 'root')}"),
    ]
    rows += [("root", root) for root in info["roots"]]
    rows += [
        ("largest" if i == 0 else "", f"{top['source']} ({_plural(top['chunks'], 'chunk')})")
        for i, top in enumerate(info["top_sources"])
    ]
    if info["size_bytes"] is not None:
        rows.append(("size on disk", f"{_human_size(info['size_bytes'])} (whole database)"))
    for name, value in rows:
        print(f"{name:<13}{safe_text(value, multiline=False)}")
    return 0
