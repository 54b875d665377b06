"""Options shared by subcommands: where Chroma is, which collection, which model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tasb.chroma.client import DEFAULT_TIMEOUT, connect, parse_chroma_url
from langchain_tasb.chroma.collection import Collection, check_collection_name
from langchain_tasb.embeddings import TasbEmbeddings
from langchain_tasb.encoding.encoder import MODEL_ENV_VAR, default_model_name
from langchain_tasb.errors import CollectionMismatchError, CollectionNotFoundError

if TYPE_CHECKING:
    from langchain_tasb.vectorstore import TasbVectorStore

DEFAULT_DB = "./.tasb"
DEFAULT_COLLECTION = "tasb"


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model NAME_OR_PATH``."""
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME_OR_PATH",
        help=f"sentence-transformers model (default: ${MODEL_ENV_VAR}, else TAS-B)",
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
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
        help="a Chroma server, e.g. http://127.0.0.1:8000",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="K=V",
        help="HTTP header for the Chroma server (repeatable), e.g. Authorization='Bearer TOKEN'",
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
    add_model_option(parser)


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; a pair without ``=`` is an error naming the option."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"{option} expects KEY=VALUE, got {pair!r}"
            raise ValueError(msg)
        out[key.strip()] = value
    return out


def make_embeddings(args: argparse.Namespace) -> TasbEmbeddings:
    """The embedding model named by ``--model`` (else ``$TASB_MODEL``, else TAS-B)."""
    return TasbEmbeddings(model_name=args.model or default_model_name())


def make_client(args: argparse.Namespace) -> Any:
    """The Chroma client named by ``--chroma-url`` (with ``--header``) or ``--db``."""
    if args.chroma_url:
        host, port, ssl = parse_chroma_url(args.chroma_url)
        return connect(
            host=host,
            port=port,
            ssl=ssl,
            headers=parse_pairs(args.header, "--header"),
            timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
        )
    return connect(persist_directory=str(args.db or DEFAULT_DB))


def where_label(args: argparse.Namespace) -> str:
    """Where the store options point, for messages: the URL or the ``--db`` folder."""
    return str(args.chroma_url or args.db or DEFAULT_DB)


def open_store(
    args: argparse.Namespace, embeddings: TasbEmbeddings | None = None
) -> TasbVectorStore:
    """Open (or create) the collection named by the store options."""
    from langchain_tasb.vectorstore import TasbVectorStore

    return TasbVectorStore(
        embedding=embeddings or make_embeddings(args),
        collection_name=args.collection,
        client=make_client(args),
    )


def open_existing_collection(args: argparse.Namespace) -> tuple[Any, Collection]:
    """The client and the collection named by the store options, without creating either.

    Returns:
        ``(client, collection)``: the collection is the gateway to it, checked for nothing.

    Raises:
        FileNotFoundError: If the ``--db`` folder does not exist.
        CollectionNotFoundError: If the collection does not exist (the message lists those
            that do).
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


def open_existing_store(args: argparse.Namespace) -> TasbVectorStore:
    """The vector store over an existing collection, checked against the model.

    Raises:
        CollectionMismatchError: If the collection was made by another model or space.
    """
    from langchain_tasb.vectorstore import TasbVectorStore

    client, collection = open_existing_collection(args)
    try:
        return TasbVectorStore(
            embedding=make_embeddings(args),
            collection_name=collection.name,
            client=client,
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
