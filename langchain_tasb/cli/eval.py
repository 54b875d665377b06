"""``tasb eval``: exact search against the Chroma index on a BEIR-format dataset."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from langchain_tasb.chroma.store import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EF_SEARCH,
    DEFAULT_MAX_NEIGHBORS,
    HnswSettings,
)
from langchain_tasb.cli.common import add_model_option, make_embeddings, positive_int
from langchain_tasb.config import BACKEND_ENV_VAR
from langchain_tasb.encoding.types import Backend

if TYPE_CHECKING:
    from langchain_tasb.evaluation import BeirDataset

DEFAULT_SWEEP = "16,32,64,128,256"


def _int_list(text: str) -> list[int]:
    values = [positive_int(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        msg = f"expected comma-separated positive integers such as {DEFAULT_SWEEP}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return values


def add_parser(subparsers: Any) -> None:
    """Register ``tasb eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate exact search and the Chroma index on a BEIR-format dataset",
        description="Print nDCG@10, Recall@100, MRR@10 and MAP@100 (trec_eval definitions, see "
        "docs/evaluation.md) of exact search and the HNSW index, and the index's recall@10.",
    )
    parser.add_argument("data", metavar="DATA", help="dataset folder, or a name in the data dir")
    parser.add_argument("--split", default="test", help="qrels split to load (default test)")
    add_model_option(parser)
    parser.add_argument(
        "--document-max-tokens", type=positive_int, metavar="N", help="default: the model's"
    )
    parser.add_argument(
        "--backend",
        choices=get_args(Backend),
        help=f"inference backend (default ${BACKEND_ENV_VAR}, else torch float32)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write JSON here")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG (matplotlib)")
    hnsw = parser.add_argument_group("HNSW index")
    for opt, n, what in (
        ("--ef-search", DEFAULT_EF_SEARCH, "candidates explored per query"),
        ("--ef-construction", DEFAULT_EF_CONSTRUCTION, "candidates explored per insert"),
        ("--max-neighbors", DEFAULT_MAX_NEIGHBORS, "graph degree, HNSW's M"),
    ):
        hnsw.add_argument(
            opt, type=positive_int, default=n, metavar="N", help=f"{what} (default {n})"
        )
    hnsw.add_argument(
        "--sweep",
        type=_int_list,
        nargs="?",
        const=_int_list(DEFAULT_SWEEP),
        default=[],
        metavar="N,N,...",
        help=f"also measure these ef_search values (bare --sweep: {DEFAULT_SWEEP})",
    )
    cache = parser.add_argument_group("embedding cache")
    cache.add_argument("--cache-dir", type=Path, metavar="DIR", help="corpus embedding cache")
    cache.add_argument("--no-cache", action="store_true", help="encode without the cache")
    parser.add_argument("--hybrid", action="store_true", help="also score BM25 and hybrid search")
    parser.add_argument("--fusion", choices=("rrf", "weighted"), default="rrf", help="for --hybrid")
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="dense weight for --fusion weighted (0 to 1)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def _load(data: str, split: str) -> BeirDataset:
    from langchain_tasb.evaluation import find_data_dir, load_beir

    path = Path(data).expanduser()
    if not path.exists() and "/" not in data and "\\" not in data and data not in (".", ".."):
        path = find_data_dir(data) or path
    return load_beir(path, split=split)


def run(args: argparse.Namespace) -> int:
    """Run ``tasb eval``: evaluate, print the markdown table, write JSON and the plot."""
    from langchain_tasb.evaluation.experiment import HYBRID_K, run_evaluation
    from langchain_tasb.evaluation.report import require_matplotlib
    from langchain_tasb.search import SearchSettings

    if args.plot is not None:
        require_matplotlib()  # before minutes of encoding, not after
    dataset = _load(args.data, args.split)
    # Exact fp32 vectors by default: the library's "auto" (int8 on CPU) moves nDCG@10.
    settings: dict[str, Any] = {"backend": "torch", "precision": "float32"}
    if backend := args.backend or os.environ.get(BACKEND_ENV_VAR):
        settings = {"backend": backend}
    if args.document_max_tokens is not None:
        settings["document_max_tokens"] = args.document_max_tokens
    hybrid = None
    if args.hybrid:
        hybrid = SearchSettings("hybrid", k=HYBRID_K, fusion=args.fusion, alpha=args.alpha)
    report = run_evaluation(
        dataset,
        make_embeddings(args, **settings),
        hnsw=HnswSettings(args.ef_search, args.ef_construction, args.max_neighbors),
        ef_search_sweep=args.sweep,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.quiet,
        hybrid=hybrid,
    )
    print(report.to_markdown(), end="")
    if args.json is not None:
        args.json.write_text(report.to_json() + "\n", encoding="utf-8")
    if args.plot is not None:
        report.plot(args.plot)
    for path in (args.json, args.plot):
        if path is not None and not args.quiet:
            print(f"wrote {path}", file=sys.stderr)
    return 0
