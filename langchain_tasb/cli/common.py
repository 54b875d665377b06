"""Options shared by subcommands: where Chroma is, which collection, which model."""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from langchain_tasb.chroma import writer_lock
from langchain_tasb.chroma.catalog import check_collection_name
from langchain_tasb.chroma.client import DEFAULT_TIMEOUT, parse_chroma_url
from langchain_tasb.chroma.collection import Collection
from langchain_tasb.cli.output import safe_text
from langchain_tasb.config import DEFAULT_COLLECTION_NAME, HEADERS_ENV_VAR, MODEL_ENV_VAR
from langchain_tasb.connection import Connection
from langchain_tasb.encoding.loading import default_model_name
from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.errors import CollectionMismatchError, CollectionNotFoundError, StoreLockedError

if TYPE_CHECKING:
    from langchain_tasb.collection import TasbCollection

DEFAULT_DB = "./.tasb"
DEFAULT_COLLECTION = DEFAULT_COLLECTION_NAME


def add_model_option(parser: argparse.ArgumentParser, *, recorded: bool = False) -> None:
    """``--model NAME_OR_PATH``; ``recorded``: the default is the collection's own model."""
    fallback = "the model recorded in the collection, else TAS-B" if recorded else "TAS-B"
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME_OR_PATH",
        help=f"sentence-transformers model (default: ${MODEL_ENV_VAR}, else {fallback})",
    )


def add_store_options(parser: argparse.ArgumentParser, *, recorded_model: bool = False) -> None:
    """``--db``, ``--chroma-url``, ``--header``, ``--timeout``, ``--collection``, ``--model``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        default=None,
        metavar="DIR",
        help=f"embedded Chroma directory (default {DEFAULT_DB})",
    )
    where.add_argument(
        "--chroma-url",
        default=None,
        metavar="URL",
        help=(
            "a Chroma server, e.g. http://127.0.0.1:8000 (user:password@ in the URL is sent "
            "as HTTP Basic auth)"
        ),
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="K=V",
        help=(
            "HTTP header for the Chroma server (repeatable), e.g. 'Authorization=Bearer TOKEN'; "
            f"to keep a token out of `ps`, put KEY=VALUE lines in ${HEADERS_ENV_VAR} instead "
            "(--header wins for the same KEY)"
        ),
    )
    parser.add_argument(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        type=positive_float,
        metavar="SECONDS",
        help=f"longest wait for one request to the Chroma server (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--collection",
        default=DEFAULT_COLLECTION,
        type=collection_name,
        help=f"collection name (default {DEFAULT_COLLECTION})",
    )
    add_model_option(parser, recorded=recorded_model)


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; the error for a bad pair does not repeat it (a token)."""
    out: dict[str, str] = {}
    for number, pair in enumerate(pairs, start=1):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            msg = (
                f"{option} expects KEY=VALUE, e.g. 'Authorization=Bearer TOKEN'; entry {number} "
                "has no '=' or no KEY (its value is not shown here, it may be a secret)"
            )
            raise ValueError(msg)
        out[key.strip()] = value
    return out


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for messages and output."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def server_settings(args: argparse.Namespace) -> tuple[str, int, bool, dict[str, str]]:
    """``(host, port, ssl, headers)`` for ``--chroma-url``, ``--header`` and the environment.

    ``--header`` wins over ``$TASB_CHROMA_HEADERS`` for the same key; user info in the URL
    becomes an ``Authorization: Basic`` header.

    Raises:
        ValueError: If a header is malformed, the URL is not a Chroma URL, or the URL has user
            info and an Authorization header is also given. No message shows a secret.
    """
    url = str(args.chroma_url)
    lines = [line for line in os.environ.get(HEADERS_ENV_VAR, "").splitlines() if line.strip()]
    headers = parse_pairs(lines, f"${HEADERS_ENV_VAR}")
    for key, value in parse_pairs(args.header, "--header").items():
        headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
        headers[key] = value
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        if any(key.lower() == "authorization" for key in headers):
            msg = (
                f"--chroma-url {redact_url(url)} has user info and an Authorization header is "
                f"also given (--header or ${HEADERS_ENV_VAR}); keep only one of them"
            )
            raise ValueError(msg)
        user, _, password = userinfo.partition(":")
        basic = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    host, port, ssl = parse_chroma_url(redact_url(url))  # the same host and port, no secret
    return host, port, ssl, headers


def make_embeddings(args: argparse.Namespace) -> TasbModel:
    """The embedding model named by ``--model`` (else ``$TASB_MODEL``, else TAS-B)."""
    return TasbModel(model_name=args.model or default_model_name())


def make_client(args: argparse.Namespace) -> Any:
    """The Chroma client named by ``--chroma-url`` (with ``--header``) or ``--db``."""
    if args.chroma_url:
        host, port, ssl, headers = server_settings(args)
        try:
            return Connection(host=host, port=port, ssl=ssl, headers=dict(headers)).connect(
                timeout=getattr(args, "timeout", DEFAULT_TIMEOUT)
            )
        except ValueError as exc:  # chromadb's error for a refused request (401, 403, ...)
            reason = str(exc).strip() or "no reason given"
            msg = (
                f"the Chroma server at {where_label(args)} refused the client ({reason}); if it "
                f"needs auth, check --header, ${HEADERS_ENV_VAR} or the user info in the URL"
            )
            raise ValueError(msg) from exc
    return Connection(persist_directory=str(args.db or DEFAULT_DB)).connect()


def where_label(args: argparse.Namespace) -> str:
    """Where the store options point, for messages: the URL (no password) or the ``--db``."""
    if args.chroma_url:
        return redact_url(args.chroma_url)
    return str(args.db or DEFAULT_DB)


def open_store(args: argparse.Namespace, embeddings: TasbModel | None = None) -> TasbCollection:
    """Open (or create) the collection named by the store options."""
    from langchain_tasb.collection import TasbCollection

    return TasbCollection(
        embeddings or make_embeddings(args),
        args.collection,
        connection=Connection(client=make_client(args)),
    )


def lock_db(args: argparse.Namespace, *, wait: float) -> None:
    """Take the ``--db`` folder's writer lock, waiting up to ``wait`` seconds (said on stderr).

    Raises:
        StoreLockedError: another process holds it; the message names it and ``--wait``.
    """
    folder = str(args.db or DEFAULT_DB)

    def waiting(holder: writer_lock.Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        line = f"waiting up to {wait:g}s for {who} to finish writing {folder}"
        print(safe_text(line, multiline=False), file=sys.stderr, flush=True)

    try:
        writer_lock.acquire(folder, wait=wait, on_wait=waiting)
    except StoreLockedError as exc:
        hint = "or pass --wait SECONDS" if wait <= 0 else "or pass a longer --wait"
        msg = f"{exc}; {hint}"
        raise StoreLockedError(msg) from exc


def open_existing_collection(args: argparse.Namespace) -> tuple[Any, Collection]:
    """The client and the collection named by the store options, without creating either.

    Returns:
        ``(client, collection)``: the collection is the gateway to it, checked for nothing.

    Raises:
        FileNotFoundError: If the ``--db`` folder does not exist.
        CollectionNotFoundError: If the collection does not exist.
        ChromaUnavailableError: If the ``--chroma-url`` server cannot be reached.
    """
    where = where_label(args)
    if not args.chroma_url and not (Path(where) / "chroma.sqlite3").is_file():
        msg = f"no index at {where}: run `tasb index PATHS --db {where}` first"
        raise FileNotFoundError(msg)
    client = make_client(args)
    try:
        collection = Collection.open_existing(client, args.collection)
    except CollectionNotFoundError as exc:
        msg = f"{exc}: run `tasb index PATHS --collection {args.collection}` first"
        raise CollectionNotFoundError(msg) from exc
    return client, collection


def open_existing_store(args: argparse.Namespace) -> TasbCollection:
    """The existing core collection, checked against ``--model`` (else the recorded model).

    Raises:
        CollectionMismatchError: If the collection was made by another model or space.
    """
    from langchain_tasb.collection import TasbCollection

    client, collection = open_existing_collection(args)
    try:
        return TasbCollection(
            make_embeddings(args) if args.model else None,
            collection.name,
            connection=Connection(client=client),
            create_collection_if_not_exists=False,
        )
    except CollectionMismatchError as exc:
        msg = (
            f"{exc} With the CLI: pass the model that built it with --model, or search "
            "another --collection."
        )
        raise CollectionMismatchError(msg) from exc


def collection_name(text: str) -> str:
    """An argparse type: a name Chroma accepts for a collection."""
    try:
        return check_collection_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        msg = f"must be a whole number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value < 0:
        msg = f"must not be negative, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        msg = f"must be a number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not value >= 0 or value == float("inf"):
        msg = f"must be a finite number of seconds >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        msg = f"must be a number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not value > 0 or value == float("inf"):
        msg = f"must be a positive number of seconds, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = non_negative_int(text)
    if value < 1:
        msg = f"must be at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
