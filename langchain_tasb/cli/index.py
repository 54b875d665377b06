"""``tasb index PATHS...``: index files and folders into a collection, incrementally."""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from langchain_tasb.chroma import writer_lock
from langchain_tasb.cli.common import (
    DEFAULT_DB,
    add_store_options,
    make_embeddings,
    non_negative_float,
    non_negative_int,
    open_store,
    plural,
    positive_int,
    safe_text,
    where_label,
)
from langchain_tasb.errors import StoreLockedError
from langchain_tasb.ingest import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CHUNKS_PER_FILE,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_OVERLAP_TOKENS,
    IndexProgress,
    IndexReport,
    RayIndexing,
    index_paths,
)

_LOG_EVERY_SECONDS = 5.0  # plain progress lines, when stderr is not a terminal


def add_parser(subparsers: Any) -> None:
    """Register ``tasb index``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "index",
        help="index files and folders (incremental and resumable)",
        description="Chunk, embed and write .txt .md .rst .html .jsonl .pdf files; reruns "
        "write only what changed. A file over a --max-* limit fails (0: no limit).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATHS", help="files and folders to index")
    for option, what in (
        ("--include", "only files that match"),
        ("--exclude", "skip what matches"),
    ):
        parser.add_argument(option, action="append", default=[], metavar="GLOB", help=what)
    parser.add_argument(
        "--no-gitignore", dest="gitignore", action="store_false", help="ignore .gitignore files"
    )
    parser.add_argument("--follow-symlinks", action="store_true", help="follow links out of PATHS")
    for opt, kind, n, what in (
        ("--overlap", non_negative_int, DEFAULT_OVERLAP_TOKENS, "tokens consecutive chunks share"),
        ("--batch-size", positive_int, DEFAULT_BATCH_SIZE, "chunks encoded and written together"),
        ("--max-file-bytes", non_negative_int, DEFAULT_MAX_FILE_BYTES, "largest file"),
        ("--max-chunks-per-file", non_negative_int, DEFAULT_MAX_CHUNKS_PER_FILE, "most chunks"),
    ):
        parser.add_argument(opt, type=kind, default=n, metavar="N", help=f"{what} (default {n})")
    parser.add_argument(
        "--root-id", metavar="ID", help="the one PATH's id (default HOSTNAME:RESOLVED_PATH)"
    )
    parser.add_argument("--prune", action="store_true", help="delete chunks of files gone")
    parser.add_argument("--full", action="store_true", help="read files the manifest knows too")
    parser.add_argument("--keep-going", action="store_true", help="exit 0 even if files failed")
    parser.add_argument(
        "--wait",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="wait for another writer of the --db (default: refuse at once)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    ray = parser.add_argument_group("encoding on Ray (needs langchain-tasb[ray] and --chroma-url)")
    for option, parse, metavar, what in (
        ("--ray", str, "ADDRESS", "encode and write on Ray: local, auto or ray://HOST:PORT"),
        ("--ray-workers", positive_int, "N", "Ray workers (default 1)"),
        ("--ray-gpus-per-worker", non_negative_float, "F", "GPUs per worker (0.5: two share one)"),
    ):
        ray.add_argument(option, type=parse, metavar=metavar, help=what)
    add_store_options(parser)
    parser.set_defaults(func=run)


def ray_settings(args: argparse.Namespace) -> RayIndexing | None:
    """``--ray``, ``--ray-workers``, ``--ray-gpus-per-worker``; None without ``--ray``.

    Raises:
        ValueError: A Ray option without ``--ray``, or ``--ray`` without ``--chroma-url``.
    """
    if args.ray is None:
        if args.ray_workers is not None or args.ray_gpus_per_worker is not None:
            option = "--ray-workers" if args.ray_workers is not None else "--ray-gpus-per-worker"
            msg = f"{option} applies to --ray only: add --ray local (or auto, or ray://...)"
            raise ValueError(msg)
        return None
    if not args.chroma_url:
        msg = (
            f"--ray {args.ray} needs --chroma-url: Ray workers write to a Chroma server, not to "
            "an embedded --db. Start one (`chroma run --path DIR --port 8000`) and pass "
            "--chroma-url http://HOST:8000"
        )
        raise ValueError(msg)
    return RayIndexing(args.ray, args.ray_workers or 1, args.ray_gpus_per_worker or 0.0)


def _lock_db(args: argparse.Namespace) -> None:
    folder = str(args.db or DEFAULT_DB)

    def waiting(holder: writer_lock.Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        line = f"waiting up to {args.wait:g}s for {who} to finish writing {folder}"
        print(safe_text(line, multiline=False), file=sys.stderr, flush=True)

    try:
        writer_lock.acquire(folder, wait=args.wait, on_wait=waiting)
    except StoreLockedError as exc:
        msg = f"{exc}; or pass {'--wait SECONDS' if args.wait <= 0 else 'a longer --wait'}"
        raise StoreLockedError(msg) from exc


def run(args: argparse.Namespace) -> int:
    """Index ``args.paths``; exit 1 if some files or folders failed (0 with ``--keep-going``)."""
    ray = ray_settings(args)  # the checks come before loading the model or opening Chroma
    if missing := [path for path in args.paths if not Path(path).expanduser().exists()]:
        msg = f"no such file or folder: {missing[0]}"
        raise FileNotFoundError(msg)
    if args.root_id is not None and len(args.paths) > 1:
        msg = (
            f"--root-id names one root, got {len(args.paths)} PATHS: index each with its own "
            "--root-id, or leave it out"
        )
        raise ValueError(msg)
    embeddings = make_embeddings(args)
    if args.overlap >= embeddings.document_max_tokens - 2:  # known without loading the model
        msg = (
            f"--overlap {args.overlap} must be smaller than the chunk size "
            f"({embeddings.document_max_tokens - 2} tokens); try --overlap {DEFAULT_OVERLAP_TOKENS}"
        )
        raise ValueError(msg)
    if not args.chroma_url:  # before opening Chroma: its index is then read after the last writer
        _lock_db(args)
    store = open_store(args, embeddings)
    report = index_paths(
        store,
        args.paths,
        include=args.include,
        exclude=args.exclude,
        follow_symlinks=args.follow_symlinks,
        gitignore=args.gitignore,
        overlap_tokens=args.overlap,
        batch_size=args.batch_size,
        prune=args.prune,
        progress=None if args.quiet else _Reporter(sys.stderr),
        root_id=args.root_id,
        max_file_bytes=args.max_file_bytes or None,
        max_chunks_per_file=args.max_chunks_per_file or None,
        full=args.full,
        ray=ray,
    )
    if not args.quiet:
        where = f"collection {store.collection_name!r} at {where_label(args)}"
        for line in summary_lines(report, where):
            print(safe_text(line, multiline=False))
    errors = [f"failed: {failure.path}: {failure.reason}" for failure in report.failures]
    errors += [
        f"not pruned: {root}: a folder under it could not be listed"
        for root in report.prune_skipped
    ]
    for line in errors:
        print(safe_text(line, multiline=False), file=sys.stderr)
    if report.failures and not args.keep_going:
        what = "file or folder" if report.files_failed == 1 else "files or folders"
        print(
            f"{report.files_failed} {what} could not be read (listed above); their old "
            "chunks, if any, were kept. Fix or --exclude them, or pass --keep-going to exit 0.",
            file=sys.stderr,
        )
        return 1
    return 0


def summary_lines(report: IndexReport, where: str) -> list[str]:
    """What a run did, in a few human lines."""
    files = plural(report.files_seen, "file")
    if not report.changed:
        lines = [
            f"nothing to write: {files} and {plural(report.chunks_unchanged, 'chunk')} "
            f"already up to date in {where} ({report.seconds:.1f}s; "
            f"{report.files_not_read} unchanged since the manifest, not read)"
        ]
    else:
        rate = report.chunks_written / report.seconds if report.seconds > 0 else 0.0
        lines = [
            f"indexed {files} into {where} in {report.seconds:.1f}s ({rate:.1f} chunks/s)",
            f"files: {report.files_indexed} changed, {report.files_unchanged} unchanged, "
            f"{report.files_failed} failed ({report.files_not_read} unchanged files not read)",
            f"chunks: {report.chunks_written} written, {report.chunks_unchanged} unchanged, "
            f"{report.chunks_moved} moved, {report.chunks_deleted} deleted",
        ]
        if report.chunks_pruned:
            lines.append(
                f"pruned: {plural(report.chunks_pruned, 'chunk')} of "
                f"{plural(report.files_pruned, 'file')} no longer under the paths"
            )
    names = {"ignored": "gitignored", "outside_symlinks": "symlinks outside the paths"}
    skipped = [
        f"{n} {names.get(key, key.replace('_', ' '))}"
        for key, n in vars(report.skipped).items()
        if key not in ("files", "unlisted") and n
    ]
    if skipped:
        lines.append("skipped: " + ", ".join(skipped))
    if report.workers and report.seconds > 0:
        lines.append("chunks by Ray worker: " + _rates(report.workers, report.seconds, ", "))
    if report.metadata_keys_dropped:
        lines.append(
            f"dropped: {plural(report.metadata_keys_dropped, 'metadata key')} reserved for "
            "langchain-tasb or search results (_tasb_*, score, relevance, fused_score, "
            "bm25_score); rename them in the files to keep them"
        )
    return lines


def _rates(workers: dict[str, int], seconds: float, sep: str) -> str:
    return sep.join(f"{w} {n} ({n / seconds:.1f}/s)" for w, n in sorted(workers.items()))


class _Reporter:
    """Turns :class:`IndexProgress` snapshots into a tqdm bar on a terminal, else log lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.began = self.last_line = time.monotonic()  # the first line comes after a while
        self.bar: Any = None
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="file", desc="indexing", file=stream, dynamic_ncols=True)

    def __call__(self, progress: IndexProgress) -> None:
        now = time.monotonic()
        elapsed = max(now - self.began, 1e-9)
        line = f"{progress.chunks_done / elapsed:.1f} chunks/s"
        if progress.workers:  # files read ahead and each Ray worker's rate
            line += (
                f"; {progress.files_read} read; workers {_rates(progress.workers, elapsed, ' ')}"
            )
        if self.bar is not None:
            self.bar.total = progress.files_total
            self.bar.update(progress.files_done - self.bar.n)
            self.bar.set_postfix_str(f"{progress.chunks_done} chunks, {line}")
            if progress.finished:
                self.bar.close()
            return
        if progress.finished and self.last_line == self.began:
            return  # nothing printed yet: a short run, the summary says it all
        if not progress.finished and now - self.last_line < _LOG_EVERY_SECONDS:
            return
        self.last_line = now
        left = max(progress.files_total - progress.files_done, 0)
        eta = elapsed / progress.files_done * left if progress.files_done else None
        print(
            f"indexing: {progress.files_done}/{progress.files_total} files, "
            f"{progress.chunks_done} chunks ({progress.chunks_written} written), {line}, "
            f"ETA {'?' if eta is None else datetime.timedelta(seconds=int(eta))}",
            file=self.stream,
            flush=True,
        )
