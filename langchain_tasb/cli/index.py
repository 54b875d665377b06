"""``tasb index PATHS...``: index files and folders into a collection, incrementally."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from langchain_tasb.cli.common import (
    add_store_options,
    lock_db,
    make_embeddings,
    non_negative_float,
    non_negative_int,
    open_store,
    positive_int,
    where_label,
)
from langchain_tasb.cli.output import safe_text
from langchain_tasb.cli.ray_options import add_ray_options, ray_settings
from langchain_tasb.errors import CollectionMismatchError
from langchain_tasb.ingest import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CHUNKS_PER_FILE,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_OVERLAP_TOKENS,
    IndexProgress,
    IndexReport,
    index_paths,
    make_chunker,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)

_LOG_EVERY_SECONDS = 5.0  # plain progress lines, when stderr is not a terminal


def add_parser(subparsers: Any) -> None:
    """Register ``tasb index``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "index",
        help="index files and folders (incremental and resumable)",
        description=(
            "Read .txt, .md, .rst, .html, .jsonl (and .pdf with langchain-tasb[pdf]) files "
            "under PATHS, cut them into chunks that fit the model, embed them and write them "
            "to Chroma. Re-running writes only what changed; an interrupted run resumes."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATHS", help="files and folders to index")
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only index files whose path under its root matches (repeatable; .gitignore "
        "patterns), e.g. '*.md' or '/docs/'",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out files and folders that match (repeatable; .gitignore patterns), "
        "e.g. 'build/' or '*.html'",
    )
    parser.add_argument(
        "--no-gitignore",
        dest="gitignore",
        action="store_false",
        help="also index what .gitignore files under PATHS ignore (by default they are "
        "honoured as git reads them, nested ones too)",
    )
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also follow symlinks that lead outside the given paths",
    )
    parser.add_argument(
        "--overlap",
        type=non_negative_int,
        default=DEFAULT_OVERLAP_TOKENS,
        metavar="N",
        help=f"tokens shared by consecutive chunks (default {DEFAULT_OVERLAP_TOKENS})",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"chunks encoded and written together (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--max-file-bytes",
        type=non_negative_int,
        default=DEFAULT_MAX_FILE_BYTES,
        metavar="N",
        help=f"larger files fail instead of being read; 0 for no limit "
        f"(default {DEFAULT_MAX_FILE_BYTES}, 256 MiB)",
    )
    parser.add_argument(
        "--max-chunks-per-file",
        type=non_negative_int,
        default=DEFAULT_MAX_CHUNKS_PER_FILE,
        metavar="N",
        help=f"a file cut into more chunks fails; 0 for no limit "
        f"(default {DEFAULT_MAX_CHUNKS_PER_FILE})",
    )
    parser.add_argument(
        "--root-id",
        metavar="ID",
        help="the identity of the one PATH, which chunk ids and --prune are keyed on "
        "(default HOSTNAME:RESOLVED_PATH)",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="delete chunks of files gone from PATHS; files filtered out (--include, "
        "--exclude, .gitignore), skipped or failed are kept, and nothing is pruned under a "
        "PATH with a folder that could not be listed",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="read every file even if the manifest says it is unchanged, and rewrite the "
        "manifest (for chunks deleted from the collection by something other than tasb)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="exit 0 even if some files or folders could not be read (they are still reported)",
    )
    parser.add_argument(
        "--wait",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="when another process is writing the --db, wait up to SECONDS for it to finish "
        "(default: refuse at once, naming that process)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no summary; errors only"
    )
    add_ray_options(parser)
    add_store_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Index ``args.paths``; exit 1 if some files or folders failed (0 with ``--keep-going``)."""
    ray = ray_settings(args)  # before loading the model or opening Chroma
    for path in args.paths:  # before loading the model or creating a collection
        if not Path(path).expanduser().exists():
            msg = f"no such file or folder: {path}"
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
        lock_db(args, wait=args.wait)
    try:
        store = open_store(args, embeddings)
    except CollectionMismatchError as exc:
        msg = (
            f"{exc} With the CLI: pass the model that built it with --model, or choose "
            "another --collection."
        )
        raise CollectionMismatchError(msg) from exc
    try:
        chunker = make_chunker(embeddings, args.overlap)
    except ValueError as exc:
        msg = f"--overlap {args.overlap} does not fit the model's chunk size: {exc}"
        raise ValueError(msg) from exc
    with _reporter(quiet=args.quiet, stream=sys.stderr) as progress:
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
            progress=progress,
            chunker=chunker,
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
    for failure in report.failures:
        line = f"failed: {failure.path}: {failure.reason}"
        print(safe_text(line, multiline=False), file=sys.stderr)
    for root in report.prune_skipped:
        line = f"not pruned: {root}: a folder under it could not be listed"
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
    files = _plural(report.files_seen, "file")
    if not report.changed:
        lines = [
            f"nothing to write: {files} and {_plural(report.chunks_unchanged, 'chunk')} "
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
                f"pruned: {_plural(report.chunks_pruned, 'chunk')} of "
                f"{_plural(report.files_pruned, 'file')} no longer under the paths"
            )
    skipped = report.skipped
    counts = {
        "hidden": skipped.hidden,
        "binary": skipped.binary,
        "unsupported": skipped.unsupported,
        "excluded": skipped.excluded,
        "gitignored": skipped.ignored,
        "symlinks outside the paths": skipped.outside_symlinks,
        "broken symlinks": skipped.broken_symlinks,
        "duplicates": skipped.duplicates,
    }
    parts = [f"{count} {name}" for name, count in counts.items() if count]
    if parts:
        lines.append("skipped: " + ", ".join(parts))
    if report.workers and report.seconds > 0:
        rates = [
            f"{worker} {count} ({count / report.seconds:.1f}/s)"
            for worker, count in sorted(report.workers.items())
        ]
        lines.append("chunks by Ray worker: " + ", ".join(rates))
    if report.metadata_keys_dropped:
        lines.append(
            f"dropped: {_plural(report.metadata_keys_dropped, 'metadata key')} reserved for "
            "langchain-tasb or search results (_tasb_*, score, relevance, fused_score, "
            "bm25_score); rename them in the files to keep them"
        )
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _Reporter:
    """Turns :class:`IndexProgress` snapshots into a tqdm bar or periodic log lines."""

    def __init__(self, stream: TextIO, *, bar: bool) -> None:
        self.stream = stream
        self.began = time.monotonic()
        self.last_line = self.began  # the first plain line comes after a few seconds
        self.printed = False
        self.bar: Any = None
        if bar:
            # tqdm ships no type hints.
            tqdm: Any = importlib.import_module("tqdm").tqdm
            self.bar = tqdm(
                total=0,
                unit="file",
                desc="indexing",
                file=stream,
                dynamic_ncols=True,
                bar_format=(
                    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} files "
                    "[{elapsed}<{remaining}{postfix}]"
                ),
            )

    def __call__(self, progress: IndexProgress) -> None:
        elapsed = max(time.monotonic() - self.began, 1e-9)
        rate = progress.chunks_done / elapsed
        if self.bar is not None:
            if self.bar.total != progress.files_total:
                self.bar.total = progress.files_total
            self.bar.update(progress.files_done - self.bar.n)
            self.bar.set_postfix_str(
                f"{progress.chunks_done} chunks, {rate:.1f} chunks/s{_workers(progress, elapsed)}",
                refresh=False,
            )
            self.bar.refresh()
            return
        now = time.monotonic()
        if progress.finished and not self.printed:
            return  # a short run: the summary says it all
        if not progress.finished and now - self.last_line < _LOG_EVERY_SECONDS:
            return
        self.last_line = now
        self.printed = True
        print(_plain_line(progress, elapsed, rate), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _plain_line(progress: IndexProgress, elapsed: float, rate: float) -> str:
    eta = "?"
    if progress.files_done:
        left = progress.files_total - progress.files_done
        eta = _duration(elapsed / progress.files_done * max(left, 0))
    return (
        f"indexing: {progress.files_done}/{progress.files_total} files, "
        f"{progress.chunks_done} chunks ({progress.chunks_written} written), "
        f"{rate:.1f} chunks/s, ETA {eta}{_workers(progress, elapsed)}"
    )


def _workers(progress: IndexProgress, elapsed: float) -> str:
    """Files read ahead and each Ray worker's rate, when Ray workers write."""
    if not progress.workers:
        return ""
    rates = " ".join(f"{w} {n / elapsed:.1f}/s" for w, n in sorted(progress.workers.items()))
    return f"; {progress.files_read} read; workers {rates}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@contextlib.contextmanager
def _reporter(*, quiet: bool, stream: TextIO) -> Iterator[_Reporter | None]:
    """The progress callback for the output at hand: a bar, log lines, or None when quiet."""
    if quiet:
        yield None
        return
    reporter = _Reporter(stream, bar=bool(getattr(stream, "isatty", lambda: False)()))
    try:
        yield reporter
    finally:
        reporter.close()
