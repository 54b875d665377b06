"""What the subcommands share: the store options, argparse types, and printing safely."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from langchain_tasb.chroma.client import DEFAULT_TIMEOUT, check_collection_name, parse_chroma_url
from langchain_tasb.chroma.collection import Collection
from langchain_tasb.collection import Connection, TasbCollection
from langchain_tasb.config import DEFAULT_COLLECTION_NAME, HEADERS_ENV_VAR, MODEL_ENV_VAR
from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.encoding.selection import default_model_name
from langchain_tasb.errors import CollectionMismatchError, CollectionNotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable

N = TypeVar("N", int, float)

DEFAULT_DB = "./.tasb"

# DEL, the C1 controls (some terminals read U+009B as CSI) and the bidi embeddings/overrides/
# isolates that reorder what is shown: json.dumps leaves these raw (it escapes U+0000-U+001F).
_RAW = "\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_RAW_IN_JSON = re.compile(f"[{_RAW}]")
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f{_RAW}]")  # and C0 but tab and newline
_UNSAFE_ONE_LINE = re.compile(f"[\x00-\x08\x0a-\x1f{_RAW}]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode()  # \r, \n, \x1b, \u202e


def safe_text(text: object, *, multiline: bool = True) -> str:
    r"""``str(text)`` with terminal control characters escaped (``\x1b``, ``\u202e``).

    Indexed text may hold control sequences a terminal obeys: the CLI prints through this.
    ``multiline=False`` escapes newlines too, for one-line fields.
    """
    return (_UNSAFE if multiline else _UNSAFE_ONE_LINE).sub(_escape, str(text))


def dumps_json(value: Any) -> str:
    r"""``value`` as indented JSON, non-ASCII text readable, every control character escaped."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def plural(count: int, noun: str) -> str:
    """``"1 file"``, ``"2 files"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def add_model_option(parser: argparse.ArgumentParser, *, recorded: bool = False) -> None:
    """``--model NAME_OR_PATH``; ``recorded``: the default is the collection's own model."""
    fallback = "the model recorded in the collection, else TAS-B" if recorded else "TAS-B"
    parser.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help=f"sentence-transformers model (default: ${MODEL_ENV_VAR}, else {fallback})",
    )


def add_store_options(parser: argparse.ArgumentParser, *, recorded_model: bool = False) -> None:
    """``--db``, ``--chroma-url``, ``--header``, ``--timeout``, ``--collection``, ``--model``."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="DIR", help=f"embedded Chroma folder (default {DEFAULT_DB})")
    where.add_argument(
        "--chroma-url", metavar="URL", help="a Chroma server (user:password@ is HTTP Basic auth)"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="K=V",
        help=f"HTTP header for the server (repeatable; or KEY=VALUE lines in ${HEADERS_ENV_VAR})",
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=DEFAULT_TIMEOUT, help="request limit %(default)gs"
    )
    parser.add_argument(
        "--collection",
        default=DEFAULT_COLLECTION_NAME,
        type=collection_name,
        help="default %(default)s",
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
    return urlunsplit(parts._replace(netloc=f"***@{parts.netloc.rpartition('@')[2]}"))


def server_settings(args: argparse.Namespace) -> tuple[str, int, bool, dict[str, str]]:
    """``(host, port, ssl, headers)`` for ``--chroma-url``, ``--header`` and the environment.

    ``--header`` wins over ``$TASB_CHROMA_HEADERS``; URL user info becomes Basic auth.

    Raises:
        ValueError: A malformed header or URL, or user info and an Authorization header
            both given. No message shows a secret.
    """
    url = str(args.chroma_url)
    lines = [line for line in os.environ.get(HEADERS_ENV_VAR, "").splitlines() if line.strip()]
    headers = parse_pairs(lines, f"${HEADERS_ENV_VAR}")
    for key, value in parse_pairs(args.header, "--header").items():
        headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
        headers[key] = value
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if "@" in parts.netloc:
        if any(key.lower() == "authorization" for key in headers):
            msg = (
                f"--chroma-url {redact_url(url)} has user info and an Authorization header is "
                f"also given (--header or ${HEADERS_ENV_VAR}); keep only one of them"
            )
            raise ValueError(msg)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    host, port, ssl = parse_chroma_url(redact_url(url))  # the same host and port, no secret
    return host, port, ssl, headers


def make_embeddings(args: argparse.Namespace, **settings: Any) -> TasbModel:
    """The model named by ``--model`` (else ``$TASB_MODEL``, else TAS-B), with ``settings``."""
    return TasbModel(model_name=args.model or default_model_name(), **settings)


def make_client(args: argparse.Namespace) -> Any:
    """The Chroma client named by ``--chroma-url`` (with ``--header``) or ``--db``."""
    if not args.chroma_url:
        return Connection(persist_directory=str(args.db or DEFAULT_DB)).connect()
    host, port, ssl, headers = server_settings(args)
    try:
        return Connection(host=host, port=port, ssl=ssl, headers=dict(headers)).connect(
            args.timeout
        )
    except ValueError as exc:  # chromadb's error for a refused request (401, 403, ...)
        msg = (
            f"the Chroma server at {where_label(args)} refused the client "
            f"({str(exc).strip() or 'no reason given'}); if it needs auth, check --header, "
            f"${HEADERS_ENV_VAR} or the user info in the URL"
        )
        raise ValueError(msg) from exc


def where_label(args: argparse.Namespace) -> str:
    """Where the store options point, for messages: the URL (no password) or the ``--db``."""
    return redact_url(args.chroma_url) if args.chroma_url else str(args.db or DEFAULT_DB)


def open_existing_collection(args: argparse.Namespace) -> tuple[Any, Collection]:
    """``(client, collection)`` named by the store options: neither created, nor checked.

    Raises:
        FileNotFoundError: If the ``--db`` folder does not exist.
        CollectionNotFoundError: If the collection does not exist (the message says the fix).
    """
    where = where_label(args)
    if not args.chroma_url and not (Path(where) / "chroma.sqlite3").is_file():
        msg = f"no index at {where}: run `tasb index PATHS --db {where}` first"
        raise FileNotFoundError(msg)
    client = make_client(args)
    try:
        return client, Collection.open_existing(client, args.collection)
    except CollectionNotFoundError as exc:
        msg = f"{exc}: run `tasb index PATHS --collection {args.collection}` first"
        raise CollectionNotFoundError(msg) from exc


def open_store(args: argparse.Namespace, embeddings: TasbModel | None = None) -> TasbCollection:
    """The collection the store options name, checked against ``embeddings`` (created if missing).

    Without ``embeddings`` it must exist, and its model is ``--model``, else the one it records.

    Raises:
        CollectionMismatchError: If the collection was made by another model or space.
    """
    if embeddings is None:
        client, collection = open_existing_collection(args)  # missing: fails before a model loads
        name, model = collection.name, make_embeddings(args) if args.model else None
    else:
        client, name, model = make_client(args), args.collection, embeddings
    try:
        return TasbCollection(
            model,
            name,
            connection=Connection(client=client),
            create_collection_if_not_exists=embeddings is not None,
        )
    except CollectionMismatchError as exc:
        msg = (
            f"{exc} With the CLI: pass the model that built it with --model, or "
            f"{'search' if embeddings is None else 'choose'} another --collection."
        )
        raise CollectionMismatchError(msg) from exc


def collection_name(text: str) -> str:
    """An argparse type: a name Chroma accepts for a collection."""
    try:
        return check_collection_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(kind: Callable[[str], N], *, positive: bool) -> Callable[[str], N]:
    """An argparse type: a finite ``kind`` > 0 (``positive``) or >= 0."""
    what = "a whole number" if kind is int else "a finite number"

    def parse(text: str) -> N:
        with contextlib.suppress(ValueError):
            value = kind(text)
            if (value > 0 if positive else value >= 0) and value != math.inf:
                return value
        msg = f"must be {what} {'> 0' if positive else '>= 0'}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)

    return parse


positive_int = _number(int, positive=True)
non_negative_int = _number(int, positive=False)
positive_float = _number(float, positive=True)
non_negative_float = _number(float, positive=False)
