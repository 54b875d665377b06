"""The ``tasb`` command: argument parsing and printing only; the work is library calls.

Each subcommand module has ``add_parser(subparsers)``, setting ``func`` to ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import TYPE_CHECKING

from langchain_tasb.cli.common import safe_text

if TYPE_CHECKING:
    from collections.abc import Sequence

SUBCOMMANDS = ("index", "search", "info", "eval", "mcp")


def build_parser() -> argparse.ArgumentParser:
    """The full ``tasb`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="tasb",
        description="Index folders into Chroma with TAS-B, search them, and evaluate retrieval.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"langchain_tasb.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tasb`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:  # ImportError: a missing extra
        print(f"error: {safe_text(exc)}", file=sys.stderr)
        return 2
