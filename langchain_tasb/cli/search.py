"""``tasb search QUERY``: the best chunks by dot product, as text or JSON."""

from __future__ import annotations

import argparse
import bisect
import contextlib
import re
from operator import itemgetter
from typing import Any

from langchain_tasb.cli.common import (
    add_store_options,
    dumps_json,
    open_store,
    positive_int,
    safe_text,
)
from langchain_tasb.config import DEFAULT_K
from langchain_tasb.search import SearchSettings, SearchType

SNIPPET_CHARS = 240

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    """a an and are as at be by do does for from how i in is it of on or the to was what when
    where which who why with""".split()  # noqa: SIM905
)


def add_parser(subparsers: Any) -> None:
    """Register ``tasb search``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "search",
        help="search an index",
        description="Print the chunks with the largest dot product with QUERY, best first. "
        "Repeated --filter: different keys must all match, a repeated key any of its values.",
    )
    parser.add_argument("query", metavar="QUERY", help="what to look for")
    parser.add_argument(
        "-k", "--k", type=positive_int, default=DEFAULT_K, help=f"results (default {DEFAULT_K})"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument(
        "--filter", action="append", default=[], metavar="KEY=VALUE", help="metadata must match"
    )
    parser.add_argument("--mmr", action="store_true", help="diversify by marginal relevance")
    parser.add_argument("--hybrid", action="store_true", help="fuse BM25 and dense results")
    parser.add_argument("--fusion", choices=("rrf", "weighted"), default="rrf", help="for --hybrid")
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="dense weight for --fusion weighted (0 to 1)"
    )
    add_store_options(parser, recorded_model=True)
    parser.set_defaults(func=run)


def build_where(pairs: list[str]) -> dict[str, Any] | None:
    """``--filter`` pairs to a Chroma ``where`` (None for none): keys ANDed, a key's values ORed.

    A value that reads as a number or boolean also matches that typed value (``chunk=0``).

    Raises:
        ValueError: If a pair has no ``=`` or an empty key.
    """
    by_key: dict[str, list[dict[str, Any]]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            msg = f"--filter expects KEY=VALUE, e.g. source=guide.md; got {pair!r}"
            raise ValueError(msg)
        by_key.setdefault(key.strip(), []).extend({key.strip(): v} for v in _typed(value))
    conditions = [ors[0] if len(ors) == 1 else {"$or": ors} for ors in by_key.values()]
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _typed(value: str) -> list[str | int | float | bool]:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return [value, lowered == "true"]
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return [value, kind(value)]
    return [value]


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """The part of ``text``, about ``width`` characters, that holds most of the query's words.

    Windows rank by distinct query words, then occurrences (else the start); ``…`` marks a cut.
    """
    if len(text) <= width:
        return " ".join(text.split())
    terms = {w for w in _WORD.findall(query.lower()) if w not in _STOPWORDS}
    words = [(m.start(), m.group().lower()) for m in _WORD.finditer(text)]
    matches = [(position, word) for position, word in words if word in terms]
    lead = width // 6  # context shown before the first match
    start, best = 0, (0, 0)
    for i, (position, _) in enumerate(matches):
        last = bisect.bisect_left(matches, position - lead + width, key=itemgetter(0))
        score = (len({term for _, term in matches[i:last]}), last - i)
        if score > best:
            start, best = position, score
    if best[0]:
        start = words[bisect.bisect_left(words, start - lead, key=itemgetter(0))][0]
    end = min(len(text), start + width)
    if end < len(text) and (cut := text.rfind(" ", start, end)) > start:
        end = cut
    body = " ".join(text[start:end].split())
    return f"{'…' if start > 0 else ''}{body}{'…' if end < len(text) else ''}"


def run(args: argparse.Namespace) -> int:
    """Search and print results."""
    if args.hybrid and args.mmr:
        msg = "--hybrid and --mmr cannot be combined; pick one"
        raise ValueError(msg)
    search_type: SearchType = "hybrid" if args.hybrid else "mmr" if args.mmr else "similarity"
    fusion = {"fusion": args.fusion, "alpha": args.alpha} if args.hybrid else {}
    settings = SearchSettings(search_type, k=args.k, filter=build_where(args.filter), **fusion)
    store = open_store(args)
    hits = store.search(settings, query=args.query)
    results = [
        {
            "rank": rank,
            "id": hit.id,
            **hit.scores(),
            "source": hit.metadata.get("source"),
            "chunk": hit.metadata.get("chunk"),
            "snippet": snippet(hit.text, args.query),
            "text": hit.text,
            "metadata": hit.metadata,
        }
        for rank, hit in enumerate(hits, start=1)
    ]
    if args.json:
        payload = {
            "query": args.query,
            "collection": store.collection_name,
            "k": args.k,
            "filter": settings.filter,
            "results": results,
        }
        print(dumps_json(payload))
        return 0
    if not results:
        print(
            f"no results in collection {store.collection_name!r}"
            + (" for this filter" if settings.filter else "")
        )
        return 0
    for r in results:
        name = str(r["source"] or r["id"]) + ("" if r["chunk"] is None else f" #{r['chunk']}")
        print(
            f"{r['rank']:>2}. {safe_text(name, multiline=False)}  score {r['score']:.3f}  "
            f"relevance {r['relevance']:.3f}\n    {safe_text(r['snippet'], multiline=False)}"
        )
    return 0
