"""``tasb info``: what a collection holds, read from Chroma without loading the model."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_tasb.chroma.collection import Collection
from langchain_tasb.chroma.store import ModelIdentity
from langchain_tasb.cli.common import (
    DEFAULT_DB,
    add_store_options,
    dumps_json,
    open_existing_collection,
    plural,
    redact_url,
    safe_text,
)

TOP_SOURCES = 5
_COUNTED = ("sources", "roots", "top_sources")  # None unless --sources


def add_parser(subparsers: Any) -> None:
    """Register ``tasb info``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "info",
        help="describe an index",
        description="Describe a collection without loading the model (--model is ignored).",
    )
    parser.add_argument("--json", action="store_true", help="print the description as JSON")
    parser.add_argument(
        "--sources", action="store_true", help="also count and list sources (reads every chunk)"
    )
    add_store_options(parser)
    parser.set_defaults(func=run)


def describe(args: argparse.Namespace, *, sources: bool = False) -> dict[str, Any]:
    """Everything ``tasb info`` prints, as a JSON-ready dict.

    Without ``sources`` nothing is scanned and ``sources``, ``roots``, ``top_sources`` are None.
    """
    _, chroma = open_existing_collection(args)
    identity, hnsw = ModelIdentity.from_metadata(chroma.metadata), chroma.hnsw
    chunks = chroma.count()
    db = None if args.chroma_url else Path(args.db or DEFAULT_DB).resolve()
    return {
        "collection": chroma.name,
        **({"server": redact_url(args.chroma_url)} if db is None else {"db": str(db)}),
        "size_bytes": None if db is None else _disk_size(db),
        "model": identity and identity.model_name,
        "dimension": identity and identity.dimension,
        "similarity": identity and identity.similarity,
        "space": chroma.space,
        "hnsw": {
            k: hnsw[k] for k in ("ef_search", "ef_construction", "max_neighbors") if k in hnsw
        },
        "chunks": chunks,
        **(_count_sources(chroma, chunks) if sources else dict.fromkeys(_COUNTED)),
    }


def _count_sources(chroma: Collection, chunks: int) -> dict[str, Any]:
    """``sources``, ``roots`` and ``top_sources``, from one linear scan of the metadata."""
    counts: Counter[tuple[str, str]] = Counter()
    from tqdm import tqdm

    with tqdm(
        total=chunks, unit="chunk", desc="reading sources", disable=not sys.stderr.isatty()
    ) as bar:
        for page in chroma.scan(include=["metadatas"]):
            metadatas = [metadata or {} for metadata in page.metadatas]
            counts.update((str(m.get("root", "")), str(m.get("source", ""))) for m in metadatas)
            bar.update(len(page))
    return {
        "sources": len(counts),
        "roots": sorted({root for root, _ in counts if root}),
        "top_sources": [
            {"root": root, "source": source, "chunks": count}
            for (root, source), count in counts.most_common(TOP_SOURCES)
        ],
    }


def for_clients(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` without local paths, server and roots; a model folder is named by its last part."""
    shown = {k: v for k, v in info.items() if k not in ("db", "server", "roots")}
    model = shown.get("model")
    if isinstance(model, str) and (
        os.path.isabs(model) or model.startswith(("~", ".")) or os.path.exists(model)
    ):
        shown["model"] = Path(model).name or model
    if shown.get("top_sources"):
        shown["top_sources"] = [
            {k: v for k, v in top.items() if k != "root"} for top in shown["top_sources"]
        ]
    return shown


def _disk_size(folder: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(OSError):  # a file removed during the walk
                total += (Path(dirpath) / name).stat().st_size
    return total


def _human_size(size: int) -> str:
    power = max(0, min((size.bit_length() - 1) // 10, 3))  # 1024**power <= size, up to GiB
    return f"{size} B" if power == 0 else f"{size / 1024**power:.1f} {'BKMG'[power]}iB"


def run(args: argparse.Namespace) -> int:
    """Print the description."""
    info = describe(args, sources=args.sources)
    if args.json:
        print(dumps_json(info))
        return 0
    unknown = "unknown (not made by langchain-tasb)"
    rows = [("collection", info["collection"]), ("location", info.get("server") or info["db"])]
    rows += [(key, info[key] or unknown) for key in ("model", "dimension", "similarity")]
    hnsw = ", ".join(f"{k}={v}" for k, v in info["hnsw"].items()) or "-"
    rows += [("space", info["space"]), ("hnsw", hnsw), ("chunks", info["chunks"])]
    if info["sources"] is None:
        rows.append(("sources", "not counted: tasb info --sources reads every chunk to list them"))
    else:
        rows.append(("sources", f"{info['sources']} under {plural(len(info['roots']), 'root')}"))
        rows += [("root", root) for root in info["roots"]]
        rows += [
            ("largest" if i == 0 else "", f"{top['source']} ({plural(top['chunks'], 'chunk')})")
            for i, top in enumerate(info["top_sources"])
        ]
    if info["size_bytes"] is not None:
        rows.append(("size on disk", f"{_human_size(info['size_bytes'])} (whole database)"))
    for name, value in rows:
        print(f"{name:<13}{safe_text(value, multiline=False)}")
    return 0
