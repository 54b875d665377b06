"""``tasb eval``: exact search against the Chroma index on a BEIR-format dataset."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from langchain_tasb.chroma.settings import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EF_SEARCH,
    DEFAULT_MAX_NEIGHBORS,
    HnswSettings,
)
from langchain_tasb.cli import common
from langchain_tasb.config import BACKEND_ENV_VAR
from langchain_tasb.encoding.types import Backend

if TYPE_CHECKING:
    from langchain_tasb.evaluation import BeirDataset

DEFAULT_SWEEP = "16,32,64,128,256"

METRICS_HELP = """\
metrics (trec_eval / pytrec_eval definitions, as BEIR reports them; means over every
judged query, tied scores ranked by document id descending):
  nDCG@10     sum of grade / log2(rank + 1) over the top 10, divided by the same sum for
              the ideal order of the query's qrels grades
  Recall@100  relevant documents in the top 100 / all relevant documents of the query
  MRR@10      1 / rank of the first relevant document in the top 10 (0 if none)
  MAP@100     sum of precision@rank at each relevant rank <= 100 / all relevant documents
  recall@10 vs exact
              share of exact search's top 10 that the index returns
latency is per query, search only: numpy for exact search, one Chroma query for the index.
The sweep queries k=10 (hnswlib explores max(ef_search, k) candidates).
"""


def _int_list(text: str) -> list[int]:
    values = [common.positive_int(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        msg = f"expected comma-separated positive integers such as {DEFAULT_SWEEP}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return values


def add_parser(subparsers: Any) -> None:
    """Register ``tasb eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate exact search and the Chroma index on a BEIR-format dataset",
        description=(
            "Encode a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) and "
            "report nDCG@10, Recall@100, MRR@10 and MAP@100 (trec_eval definitions) for exact "
            "dot-product search and for the Chroma HNSW index, with the index's recall@10 "
            "against exact search and per-query latency. Prints a markdown table."
        ),
        epilog=METRICS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "data",
        metavar="DATA",
        help="dataset folder, or the name of one under $TASB_DATA_DIR or ../shared/data",
    )
    parser.add_argument("--split", default="test", help="qrels split to load (default test)")
    common.add_model_option(parser)
    parser.add_argument(
        "--document-max-tokens",
        type=common.positive_int,
        default=None,
        metavar="N",
        help="token limit for documents (default: the model's setting, 256)",
    )
    parser.add_argument(
        "--backend",
        choices=get_args(Backend),
        default=None,
        help=(
            f"inference backend (default ${BACKEND_ENV_VAR}, else torch in float32: the "
            "model's exact vectors, as published figures use; auto is int8 ONNX Runtime on "
            "CPU, with bfloat16 torch for documents on a CPU with AMX, float16 on CUDA)"
        ),
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON here")
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a PNG of quality against latency (needs matplotlib)",
    )
    hnsw = parser.add_argument_group("HNSW index")
    hnsw.add_argument(
        "--ef-search",
        type=common.positive_int,
        default=DEFAULT_EF_SEARCH,
        metavar="N",
        help=f"candidates explored per query (default {DEFAULT_EF_SEARCH})",
    )
    hnsw.add_argument(
        "--ef-construction",
        type=common.positive_int,
        default=DEFAULT_EF_CONSTRUCTION,
        metavar="N",
        help=f"candidates explored per insert (default {DEFAULT_EF_CONSTRUCTION})",
    )
    hnsw.add_argument(
        "--max-neighbors",
        type=common.positive_int,
        default=DEFAULT_MAX_NEIGHBORS,
        metavar="N",
        help=f"graph degree, HNSW's M (default {DEFAULT_MAX_NEIGHBORS})",
    )
    hnsw.add_argument(
        "--sweep",
        type=_int_list,
        nargs="?",
        const=_int_list(DEFAULT_SWEEP),
        default=[],
        metavar="N,N,...",
        help=f"also measure the index at these ef_search values (bare --sweep: {DEFAULT_SWEEP})",
    )
    cache = parser.add_argument_group("embedding cache")
    cache.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "corpus embedding cache (default $TASB_CACHE_DIR/embeddings, else "
            "~/.cache/langchain-tasb/embeddings)"
        ),
    )
    cache.add_argument(
        "--no-cache", action="store_true", help="encode the corpus without the cache"
    )
    parser.add_argument(
        "--hybrid",
        action="store_true",
        help=(
            "also score hybrid search as users get it (each query through search_type="
            "'hybrid' on the evaluation collection, k=10) and BM25 alone from its lexical index"
        ),
    )
    parser.add_argument(
        "--fusion", choices=("rrf", "weighted"), default="rrf", help="fusion for --hybrid"
    )
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="dense weight for --fusion weighted (0 to 1)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def _load(data: str, split: str) -> BeirDataset:
    from langchain_tasb.evaluation import find_data_dir, load_beir

    path = Path(data).expanduser()
    if not path.exists() and "/" not in data and "\\" not in data and data not in (".", ".."):
        found = find_data_dir(data)
        if found is not None:
            path = found
    return load_beir(path, split=split)


_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
_AT_10 = ("ndcg@10", "mrr@10")  # hybrid search returns k=10: deeper cut-offs do not apply


def run(args: argparse.Namespace) -> int:
    """Run ``tasb eval``: evaluate, print the markdown table, write JSON and the plot."""
    from langchain_tasb.evaluation.experiment import run_evaluation
    from langchain_tasb.evaluation.report import require_matplotlib

    if args.plot is not None:
        try:
            require_matplotlib()  # before minutes of encoding, not after
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    dataset = _load(args.data, args.split)
    embeddings = common.make_embeddings(args)
    # Exact fp32 vectors by default: the library's "auto" (int8 on CPU) moves nDCG@10.
    backend = args.backend or os.environ.get(BACKEND_ENV_VAR)
    settings: dict[str, Any] = (
        {"backend": backend} if backend else {"backend": "torch", "precision": "float32"}
    )
    if args.document_max_tokens is not None:
        settings["document_max_tokens"] = args.document_max_tokens
    embeddings = type(embeddings).model_validate({**embeddings.model_dump(), **settings})
    hybrid = None
    if args.hybrid:
        from langchain_tasb.evaluation.product import HYBRID_K
        from langchain_tasb.search import SearchSettings

        hybrid = SearchSettings(
            search_type="hybrid", k=HYBRID_K, fusion=args.fusion, alpha=args.alpha
        )
    report = run_evaluation(
        dataset,
        embeddings,
        hnsw=HnswSettings(args.ef_search, args.ef_construction, args.max_neighbors),
        ef_search_sweep=args.sweep,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.quiet,
        hybrid=hybrid,
    )
    print(report.to_markdown(), end="")
    payload = report.to_dict()
    if report.hybrid is not None:
        s = report.hybrid.settings
        label = "RRF" if s.fusion == "rrf" else f"weighted, alpha {s.alpha}"
        print(f"\n| retrieval | {' | '.join(_METRICS)} |")
        print("|---" * (len(_METRICS) + 1) + "|")
        rows = (
            ("BM25 (the collection's lexical index)", report.hybrid.bm25, _METRICS),
            ("dense, exact", report.exact.metrics, _METRICS),
            (
                f"hybrid search ({label}, k={s.k}, fetch_k={s.fetch_k})",
                report.hybrid.hybrid,
                _AT_10,
            ),
        )
        for name, metrics, shown in rows:
            cells = (f"{metrics[m]:.4f}" if m in shown else "-" for m in _METRICS)
            print(f"| {name} | {' | '.join(cells)} |")
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        if not args.quiet:
            print(f"wrote {args.json}", file=sys.stderr)
    if args.plot is not None:
        report.plot(args.plot)
        if not args.quiet:
            print(f"wrote {args.plot}", file=sys.stderr)
    return 0
