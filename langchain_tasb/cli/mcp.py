"""``tasb mcp``: serve a collection to agents over the Model Context Protocol."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from langchain_tasb.cli.common import add_store_options, open_store
from langchain_tasb.cli.info import describe, for_clients

if TYPE_CHECKING:
    from collections.abc import Callable


def add_parser(subparsers: Any) -> None:
    """Register ``tasb mcp``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "mcp",
        help="serve an index to agents over MCP",
        description="Serve the collection read-only (tools search, fetch, collection_info).",
    )
    parser.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="serve HTTP at http://HOST:PORT/mcp (HOST 127.0.0.1; others need --token-env)",
    )
    parser.add_argument(
        "--token-env", metavar="NAME", help="require 'Authorization: Bearer $NAME' (with --http)"
    )
    parser.add_argument(
        "--show-paths", action="store_true", help="let collection_info show paths and roots"
    )
    add_store_options(parser)
    parser.set_defaults(func=run)


def collection_info(args: argparse.Namespace) -> Callable[[], dict[str, Any]]:
    """What ``collection_info`` returns: ``tasb info --json``, paths only with ``--show-paths``."""
    return lambda: describe(args) if args.show_paths else for_clients(describe(args))


def run(args: argparse.Namespace) -> int:
    """Check the transport options, open the collection, warm the model, serve."""
    try:
        from langchain_tasb import mcp_server
    except ImportError as exc:
        msg = f"tasb mcp needs the MCP SDK (1.x or 2.x): pip install 'langchain-tasb[mcp]' ({exc})"
        raise ValueError(msg) from exc
    token = None
    if args.token_env:
        if not args.http:
            msg = "--token-env applies to --http only; stdio is reachable by its own parent process"
            raise ValueError(msg)
        token = os.environ.get(args.token_env, "").strip()
        if not token:
            name = args.token_env
            msg = f"--token-env {name}: the environment variable {name} is not set or is empty"
            raise ValueError(msg)
    address = mcp_server.parse_address(args.http) if args.http else None
    if address:
        mcp_server.check_exposure(address[0], token)
    # stdout is the protocol channel on stdio: nothing else may print there.
    with contextlib.redirect_stdout(sys.stderr):
        store = open_store(args)
        store.encoder.embed_query("warm up")  # load the model now, not on the first call
        # stdio serves one client: its tool calls may run on the event loop itself.
        server = mcp_server.build_server(store, info=collection_info(args), on_loop=address is None)
    where = "stdio"
    if address:
        host = f"[{address[0]}]" if ":" in address[0] else address[0]  # IPv6 in brackets
        where = f"http://{host}:{address[1]}/mcp"
    print(
        f"tasb mcp: serving collection {store.collection_name!r} on {where}"
        + (" (bearer token required)" if token else ""),
        file=sys.stderr,
        flush=True,
    )
    if address:
        mcp_server.serve_http(server, *address, token=token)
    else:
        mcp_server.serve_stdio(server)
    return 0
