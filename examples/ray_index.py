r"""Index folders into a Chroma server with encoding on Ray workers: ``tasb index --ray`` in code.

The same ids, metadata, manifest and skips as ``tasb index``; only encoding and writing run
on Ray Data actors, one model copy each. On one machine::

    pip install "langchain-tasb[ray]"
    chroma run --path ./chroma-data --port 8000 &
    python examples/ray_index.py docs/ --chroma-url http://127.0.0.1:8000 --workers 2

On a cluster (``ray start`` on each node), pass ``--ray auto`` and the Chroma deployment's URL.
"""

from __future__ import annotations

import argparse
import sys

from langchain_tasb.collection import Connection, TasbCollection
from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.ingest import RayIndexing, index_paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="files and folders to index")
    parser.add_argument("--chroma-url", required=True)
    parser.add_argument("--collection", default="tasb")
    parser.add_argument("--ray", default="local", help="'local', 'auto' or ray://HOST:PORT")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (model copies)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    args = parser.parse_args()

    store = TasbCollection(TasbModel(), args.collection, connection=Connection(url=args.chroma_url))
    ray = RayIndexing(args.ray, workers=args.workers, gpus_per_worker=args.gpus_per_worker)
    report = index_paths(store, args.paths, ray=ray, prune=True)
    print(
        f"{report.chunks_written} chunks written, {report.chunks_unchanged} unchanged, "
        f"{report.chunks_pruned} pruned in {report.seconds:.1f}s; by worker: {report.workers}"
    )
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
