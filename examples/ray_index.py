r"""Encode a large corpus with a pool of Ray actors and write it to a Chroma server.

Each actor loads the model once and writes its own batches, so encoding scales with the
actors (one per GPU, or one per few CPU cores) while Chroma serves the writes. Ids derive from
the content, so a rerun after a crash writes the same records again instead of duplicating.

Runs on one machine with Ray's local mode::

    pip install "ray[data]"
    chroma run --path ./chroma-data --host 127.0.0.1 --port 8000 &
    TASB_MODEL=/models/tas-b python examples/ray_index.py ../shared/data/scifact/corpus.jsonl \\
        --chroma-url http://127.0.0.1:8000 --collection scifact --actors 2

On a cluster, start Ray there (``ray start``) and point ``--chroma-url`` at the Chroma
deployment; nothing else changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma.store import parse_chroma_url
from langchain_tasb.ids import content_id


class EncodeAndWrite:
    """A Ray actor: one model and one Chroma connection, reused for every batch."""

    def __init__(self, chroma_url: str, collection: str) -> None:
        host, port, ssl = parse_chroma_url(chroma_url)
        self.store = TasbVectorStore(
            embedding=TasbEmbeddings(), collection_name=collection, host=host, port=port, ssl=ssl
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Encode one batch of records and upsert it; ids derive from doc id and text."""
        texts = [str(t) for t in batch["text"]]
        metadatas = [{"doc_id": str(i)} for i in batch["_id"]]
        ids = [
            content_id(t, {"source": m["doc_id"]}) for t, m in zip(texts, metadatas, strict=True)
        ]
        vectors = self.store.embeddings.embed_documents(texts)
        self.store.store.upsert(ids, texts, vectors, metadatas)
        return {"written": [len(ids)]}


def read_corpus(path: str) -> list[dict[str, str]]:
    """BEIR ``corpus.jsonl`` records as ``{"_id", "text"}`` with the title prepended."""
    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    return [
        {"_id": r["_id"], "text": f"{r.get('title', '')} {r.get('text', '')}".strip()}
        for r in records
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a BEIR corpus.jsonl")
    parser.add_argument("--chroma-url", required=True)
    parser.add_argument("--collection", default="ray")
    parser.add_argument("--actors", type=int, default=2, help="encoder actors (model copies)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=0, help="only the first N records")
    args = parser.parse_args()

    import ray

    records = read_corpus(args.corpus)
    if args.limit:
        records = records[: args.limit]
    # Create the collection (and check the model against it) once, before the actors start.
    host, port, ssl = parse_chroma_url(args.chroma_url)
    TasbVectorStore(
        embedding=TasbEmbeddings(), collection_name=args.collection, host=host, port=port, ssl=ssl
    )
    ray.init(num_cpus=max(2, args.actors), include_dashboard=False, log_to_driver=False)
    written = (
        ray.data.from_items(records)
        .map_batches(
            EncodeAndWrite,
            fn_constructor_args=(args.chroma_url, args.collection),
            batch_size=args.batch_size,
            concurrency=args.actors,
        )
        .sum("written")
    )
    ray.shutdown()
    print(f"wrote {written} records to {args.collection!r} at {args.chroma_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
