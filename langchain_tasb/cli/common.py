"""Options shared by subcommands: where Chroma is, which collection, which model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tasb.chroma.store import check_collection_name, connect, parse_chroma_url
from langchain_tasb.config import DEFAULT_COLLECTION_NAME
from langchain_tasb.embeddings import TasbEmbeddings
from langchain_tasb.encoding.encoder import MODEL_ENV_VAR, default_model_name
from langchain_tasb.errors import CollectionMismatchError

if TYPE_CHECKING:
    from langchain_tasb.vectorstore import TasbVectorStore

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
    """``--db``, ``--chroma-url``, ``--header``, ``--collection`` and ``--model``.

    ``recorded_model``: for commands that read an existing collection, whose model defaults
    to the one recorded in it (see :func:`open_existing_store`).
    """
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
        "--collection",
        default=DEFAULT_COLLECTION,
        type=collection_name,
        help=f"collection name (default {DEFAULT_COLLECTION})",
    )
    add_model_option(parser, recorded=recorded_model)


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
        return connect(host=host, port=port, ssl=ssl, headers=parse_pairs(args.header, "--header"))
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


def open_existing_collection(args: argparse.Namespace) -> tuple[Any, Any]:
    """The client and the collection named by the store options, without creating either.

    Returns:
        ``(client, collection)``.

    Raises:
        FileNotFoundError: If the ``--db`` folder does not exist.
        ValueError: If the collection does not exist (the message lists those that do).
        ChromaUnavailableError: If the ``--chroma-url`` server cannot be reached.
    """
    from chromadb.errors import NotFoundError

    where = where_label(args)
    if not args.chroma_url and not (Path(where) / "chroma.sqlite3").is_file():
        msg = f"no index at {where}: run `tasb index PATHS --db {where}` first"
        raise FileNotFoundError(msg)
    client = make_client(args)
    try:
        collection = client.get_collection(args.collection, embedding_function=None)
    except (NotFoundError, ValueError) as exc:
        names = sorted(str(getattr(c, "name", c)) for c in client.list_collections())
        there = f" (collections there: {', '.join(names)})" if names else ""
        msg = (
            f"no collection {args.collection!r} at {where}{there}: run "
            f"`tasb index PATHS --collection {args.collection}` first"
        )
        raise ValueError(msg) from exc
    return client, collection


def open_existing_store(args: argparse.Namespace) -> TasbVectorStore:
    """The vector store over an existing collection, checked against the model.

    The model is ``--model``, else ``$TASB_MODEL``, else the one recorded in the collection
    (said at INFO, shown with ``-v``), else TAS-B.

    Raises:
        CollectionMismatchError: If the collection was made by another model or space.
    """
    from langchain_tasb.vectorstore import TasbVectorStore

    client, collection = open_existing_collection(args)
    try:
        # Without --model, TasbVectorStore takes $TASB_MODEL, else the recorded model.
        return TasbVectorStore(
            embedding=make_embeddings(args) if args.model else None,
            collection_name=collection.name,
            client=client,
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


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = non_negative_int(text)
    if value < 1:
        msg = f"must be at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
