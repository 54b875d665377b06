"""The Chroma side: clients, an inner-product collection that checks its model, batched I/O.

This module never imports torch or a model. It receives vectors and the identity of the model
that made them, and guards the collection against being read or written by any other model.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from langchain_tasb.chroma.identity import ModelIdentity, identity_keys
from langchain_tasb.chroma.retry import NO_RETRY, RetryPolicy, call_with_retry
from langchain_tasb.errors import ChromaUnavailableError, ModelMismatchError, SpaceMismatchError
from langchain_tasb.scoring import dot_from_distance
from langchain_tasb.validation import check_text

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from numpy.typing import NDArray

    from langchain_tasb.scoring import RelevanceScale

logger = logging.getLogger(__name__)

# HNSW defaults chosen so that the index loses at most 0.002 nDCG@10 against exact dot-product
# search, with top-10 recall >= 0.99, on SciFact and Cranfield, build after build, for
# normalised and unnormalised vectors alike (benchmarks/RESULTS_quality.md). Chroma's own
# defaults (ef_search 100, ef_construction 100, max_neighbors 16) lose 0.0033 on SciFact, and
# with unnormalised vectors max_neighbors 16 failed one build in four.
DEFAULT_EF_SEARCH = 128
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_MAX_NEIGHBORS = 32

MetadataValue = str | int | float | bool | list[str] | list[int] | list[float] | list[bool]
Metadata = dict[str, MetadataValue]


@dataclass(frozen=True)
class HnswSettings:
    """HNSW index settings for a new collection (``ef_search`` can change later).

    Chroma reads ``ef_search`` when it loads a collection's index: a change made while the
    index is loaded in this process takes effect for clients opened afterwards.
    """

    ef_search: int = DEFAULT_EF_SEARCH
    """Candidates explored per query: higher is slower and closer to exact search."""
    ef_construction: int = DEFAULT_EF_CONSTRUCTION
    """Candidates explored when inserting: higher builds slower and a better graph."""
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS
    """Graph degree (HNSW's M): higher costs memory and improves recall."""

    def configuration(self) -> dict[str, Any]:
        """Chroma collection configuration for an inner-product HNSW index."""
        return {
            "hnsw": {
                "space": "ip",
                "ef_search": self.ef_search,
                "ef_construction": self.ef_construction,
                "max_neighbors": self.max_neighbors,
            }
        }


# Seconds one HTTP request to a Chroma server may take; chromadb's own client waits forever.
DEFAULT_TIMEOUT = 60.0

# Connecting retries briefly: a wrong URL should fail in seconds, not minutes.
_CONNECT_RETRY = RetryPolicy(attempts=3, initial=0.5, maximum=1.0)


def connect(
    *,
    client: Any = None,
    persist_directory: str | None = None,
    host: str | None = None,
    port: int | None = None,
    ssl: bool = False,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Any:
    """A Chroma client: the given one, a server (host/port), a directory, or in-memory.

    Every in-memory ``EphemeralClient`` in one process shares one store: isolate by
    collection name, or use ``persist_directory``. A server client gets a per-request
    ``timeout`` (seconds; None waits forever) and auth through ``headers``, for example
    ``{"Authorization": "Bearer TOKEN"}`` or ``{"X-Chroma-Token": "TOKEN"}``.
    """
    import chromadb

    given = [x is not None for x in (client, persist_directory, host)]
    if sum(given) > 1:
        msg = "Pass only one of client=, persist_directory= or host=/port=, not several."
        raise ValueError(msg)
    if client is not None:
        return client
    if host is not None:
        url = f"{'https' if ssl else 'http'}://{host}:{port or 8000}"
        try:
            http = call_with_retry(
                _CONNECT_RETRY, url, _http_client, host, port or 8000, ssl, dict(headers or {})
            )
        except ChromaUnavailableError as exc:
            msg = f"Could not reach a Chroma server at {url}: is `chroma run` up there? ({exc})"
            raise ChromaUnavailableError(msg) from exc
        session = getattr(getattr(http, "_server", None), "_session", None)
        if session is not None and timeout is not None:
            import httpx

            session.timeout = httpx.Timeout(timeout)
        return http
    if persist_directory is not None:
        return chromadb.PersistentClient(path=str(persist_directory))
    return chromadb.EphemeralClient()


def _http_client(host: str, port: int, ssl: bool, headers: dict[str, str]) -> Any:
    import chromadb
    import httpx

    try:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, headers=headers)
    except ValueError as exc:
        if "Could not connect" not in str(exc):
            raise
        # chromadb wraps the refused connection in a ValueError: make it retryable.
        raise httpx.ConnectError(str(exc)) from exc


def server_url(client: Any) -> str | None:
    """The API URL of a Chroma server client; None for embedded and in-memory clients."""
    url = getattr(getattr(client, "_server", None), "_api_url", None)
    return str(url) if url else None


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """``http(s)://host[:port]`` to ``(host, port, ssl)``; the port defaults to 8000 / 443."""
    parsed = urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        msg = f"Chroma URL must look like http://HOST:PORT or https://HOST, got {url!r}"
        raise ValueError(msg)
    ssl = parsed.scheme == "https"
    try:
        port = parsed.port or (443 if ssl else 8000)
    except ValueError as exc:
        msg = f"Chroma URL {url!r} has an invalid port"
        raise ValueError(msg) from exc
    return parsed.hostname, port, ssl


# Chroma's rule for collection names (chromadb 1.x): checked here so that a bad name fails
# with this message before a model loads, not with Chroma's error halfway through opening.
_COLLECTION_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,510})[a-zA-Z0-9]")


def check_collection_name(name: object) -> str:
    """``name`` if Chroma accepts it as a collection name, else a ValueError that says why."""
    if not isinstance(name, str):
        msg = f"collection name must be str, got {type(name).__name__}"
        raise TypeError(msg)
    if not _COLLECTION_NAME.fullmatch(name) or ".." in name or _is_ip_address(name):
        msg = (
            f"invalid collection name {name!r}: Chroma wants 3 to 512 characters from "
            "a-z, A-Z, 0-9, '.', '_' and '-', starting and ending with a letter or digit, "
            "with no '..', and not an IP address"
        )
        raise ValueError(msg)
    return name


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def collection_space(collection: Any) -> str:
    """The distance space of an open Chroma collection ("ip", "l2" or "cosine")."""
    configuration = getattr(collection, "configuration", None) or {}
    for index in ("hnsw", "spann"):
        settings = configuration.get(index) or {}
        if settings.get("space"):
            return str(settings["space"])
    legacy = (collection.metadata or {}).get("hnsw:space")
    return str(legacy or "l2")


@dataclass(frozen=True)
class Hit:
    """One stored record: id, text, metadata, dot product with the query (if queried)."""

    id: str
    text: str
    metadata: dict[str, Any] | None
    dot: float = math.nan
    vector: NDArray[np.float32] | None = None


def validate_records(
    ids: Sequence[str],
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None],
) -> list[Metadata | None]:
    """Check a write before any of it happens; return metadata cleaned for Chroma.

    ``None`` values are dropped (Chroma has no null), and an empty dict becomes ``None``
    (Chroma rejects empty metadata). Anything Chroma would reject or silently drop (nested
    dicts, NaN, non-string keys, lone surrogates in text) raises ``ValueError`` or
    ``TypeError`` naming the position.
    """
    if not len(ids) == len(texts) == len(metadatas):
        msg = (
            f"ids, texts and metadatas differ in length: {len(ids)}, {len(texts)}, {len(metadatas)}"
        )
        raise ValueError(msg)
    cleaned: list[Metadata | None] = []
    for i, (id_, text, metadata) in enumerate(zip(ids, texts, metadatas, strict=True)):
        if not isinstance(id_, str) or not id_:
            msg = f"ids[{i}] must be a non-empty string, got {id_!r}"
            raise ValueError(msg)
        check_text(text, f"texts[{i}]")
        cleaned.append(_clean_metadata(metadata, i))
    return cleaned


# Metadata keys Chroma refuses: its Rust core reserves the '#' prefix ("#document",
# "#embedding" name fields in its schema), its Python client "chroma:document".
RESERVED_KEY_PREFIX = "#"
RESERVED_DOCUMENT_KEY = "chroma:document"


def _clean_metadata(metadata: Mapping[str, Any] | None, i: int) -> Metadata | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        msg = f"metadatas[{i}] must be a dict or None, got {type(metadata).__name__}"
        raise TypeError(msg)
    out: Metadata = {}
    for key, value in metadata.items():
        where = f"metadatas[{i}][{key!r}]"
        if not isinstance(key, str) or not key:
            msg = f"metadatas[{i}] has key {key!r}: keys must be non-empty strings"
            raise ValueError(msg)
        if key.startswith(RESERVED_KEY_PREFIX) or key == RESERVED_DOCUMENT_KEY:
            msg = (
                f"metadatas[{i}] has key {key!r}, which Chroma reserves for its own use (keys "
                f"starting with {RESERVED_KEY_PREFIX!r}, and {RESERVED_DOCUMENT_KEY!r}); "
                "rename it"
            )
            raise ValueError(msg)
        if value is None:
            continue
        out[key] = _check_value(value, where)
    return out or None


def _check_value(value: object, where: str) -> MetadataValue:
    if isinstance(value, bool | int | str):
        if isinstance(value, str):
            check_text(value, where)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            msg = f"{where} = {value} does not fit in a 64-bit integer"
            raise ValueError(msg)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"{where} is {value!r}; Chroma would drop it silently, so it is refused"
            raise ValueError(msg)
        return value
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, int, float, bool}:
            for v in value:
                _check_value(v, where)
            return value
    msg = (
        f"{where} has type {type(value).__name__}; Chroma stores str, int, float, bool or a "
        "non-empty list of one of those. Flatten it or store json.dumps(value)."
    )
    raise TypeError(msg)


class ChromaStore:
    """An inner-product Chroma collection bound to one model identity.

    Calls to a Chroma server are retried with backoff on transient errors (connection
    refused or reset, timeouts, 5xx) and never on client errors; embedded stores are not
    retried. Writes are upserts of content-derived ids, so a retried write is harmless.
    """

    def __init__(
        self,
        client: Any,
        collection: Any,
        identity: ModelIdentity,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.collection = collection
        self.identity = identity
        url = server_url(client)
        self.where = url or "embedded Chroma"
        self.retry = retry or (RetryPolicy() if url else NO_RETRY)

    def _call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return call_with_retry(self.retry, self.where, fn, *args, **kwargs)

    @property
    def name(self) -> str:
        """The collection's name."""
        return str(self.collection.name)

    @property
    def relevance(self) -> RelevanceScale:
        """The relevance scale recorded for this collection."""
        return self.identity.relevance

    @classmethod
    def open(
        cls,
        client: Any,
        name: str,
        *,
        probe: list[float],
        similarity: str,
        calibrate: Callable[[], RelevanceScale],
        model_name: str = "",
        hnsw: HnswSettings | None = None,
        metadata: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> ChromaStore:
        """Open or create collection ``name`` and check it fits the model.

        Args:
            client: A Chroma client.
            name: Collection name.
            probe: The model's embedding of the probe sentence (its identity).
            similarity: "dot" or "cosine".
            calibrate: Called only when a collection is created, to fit its relevance scale.
            model_name: Recorded for messages; never used to decide anything.
            hnsw: Settings for a new collection; for an existing one, only ``ef_search``
                is applied, and only when given.
            metadata: Extra collection metadata for a new collection.
            retry: Retry policy for a server; defaults to :class:`RetryPolicy()` for
                server clients and no retries for embedded ones.

        Raises:
            ValueError: ``name`` is not a valid Chroma collection name.
            SpaceMismatchError: the collection exists with a space other than ``ip``.
            ModelMismatchError: it was filled by another model or dimension.
        """
        check_collection_name(name)
        url = server_url(client)
        policy = retry or (RetryPolicy() if url else NO_RETRY)
        model = _Model(probe, similarity, calibrate, model_name)
        collection, identity = call_with_retry(
            policy, url or "embedded Chroma", cls._open, client, name, model, hnsw, metadata
        )
        return cls(client, collection, identity, policy)

    @classmethod
    def _open(
        cls,
        client: Any,
        name: str,
        model: _Model,
        hnsw: HnswSettings | None,
        metadata: Mapping[str, Any] | None,
    ) -> tuple[Any, ModelIdentity]:
        from chromadb.errors import NotFoundError

        try:
            collection = client.get_collection(name, embedding_function=None)
        except NotFoundError:
            collection = cls._create(client, name, model, hnsw, metadata)
            if collection is not None:
                logger.debug("created collection %s (ip, dim %d)", name, len(model.probe))
                identity = ModelIdentity.from_metadata(collection.metadata)
                assert identity is not None  # noqa: S101  (we just wrote it)
                return collection, identity
            collection = client.get_collection(name, embedding_function=None)
        identity = cls._verify(collection, model)
        if hnsw is not None:
            current = (collection.configuration or {}).get("hnsw") or {}
            if current.get("ef_search") != hnsw.ef_search:
                collection.modify(configuration={"hnsw": {"ef_search": hnsw.ef_search}})
        logger.debug("opened collection %s", name)
        return collection, identity

    @staticmethod
    def _create(
        client: Any,
        name: str,
        model: _Model,
        hnsw: HnswSettings | None,
        metadata: Mapping[str, Any] | None,
    ) -> Any:
        """Create the collection; None if another process created it first."""
        from chromadb.errors import ChromaError

        identity = model.new_identity()
        try:
            return client.create_collection(
                name,
                configuration=(hnsw or HnswSettings()).configuration(),
                metadata={**identity_keys(metadata), **identity.to_metadata()},
                embedding_function=None,
            )
        except ChromaError as exc:
            # Embedded Chroma raises InternalError, a server a plain ChromaError.
            if "already exists" not in str(exc):
                raise
            return None

    @staticmethod
    def _verify(collection: Any, model: _Model) -> ModelIdentity:
        name = collection.name
        space = collection_space(collection)
        if space != "ip":
            msg = (
                f"Collection {name!r} uses the {space!r} distance space; TAS-B-style models "
                "need 'ip' (inner product), or rankings are silently wrong. A collection's "
                "space cannot change: index into a new collection name, or delete this one "
                f"with client.delete_collection({name!r}) and re-index."
            )
            raise SpaceMismatchError(msg)
        identity = ModelIdentity.from_metadata(collection.metadata)
        if identity is None:
            count = collection.count()
            if count:
                msg = (
                    f"Collection {name!r} holds {count} vectors but no langchain-tasb record "
                    "of the model that made them, so they cannot be trusted to match this "
                    "model. Re-index into a new collection name."
                )
                raise ModelMismatchError(msg)
            identity = model.new_identity()
            # modify() replaces metadata rather than merging: merge ourselves.
            collection.modify(metadata={**(collection.metadata or {}), **identity.to_metadata()})
            return identity
        found = identity.mismatch(len(model.probe), model.similarity, model.probe)
        if found is not None:
            msg = (
                f"Collection {name!r} was filled with {found}; this store's model "
                f"{model.name!r} gives {len(model.probe)}-dimensional {model.similarity} "
                "vectors. Open it with the model that built it, or index into a new "
                "collection name."
            )
            raise ModelMismatchError(msg)
        return identity

    def count(self) -> int:
        """Number of stored records."""
        return int(self._call(self.collection.count))

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vectors: NDArray[np.float32] | Sequence[Sequence[float]],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Insert or replace records, validated first, written in the client's batch size."""
        metas = validate_records(ids, texts, metadatas or [None] * len(ids))
        array = np.asarray(vectors, dtype=np.float32)
        if len(ids) and (array.ndim != 2 or array.shape != (len(ids), self.identity.dimension)):
            msg = (
                f"Expected {len(ids)} vectors of dimension {self.identity.dimension}, got an "
                f"array of shape {array.shape}"
            )
            raise ValueError(msg)
        if not np.isfinite(array).all():
            msg = "Some vectors contain NaN or infinity; nothing was written"
            raise ValueError(msg)
        if len(set(ids)) != len(ids):
            msg = "ids contain duplicates within one write; merge them first"
            raise ValueError(msg)
        step = max(1, int(self.client.get_max_batch_size()))
        for start in range(0, len(ids), step):
            end = start + step
            batch_ids = list(ids[start:end])
            self._call(
                self.collection.upsert,
                ids=batch_ids,
                embeddings=array[start:end],
                documents=list(texts[start:end]),
                metadatas=self._replacing(batch_ids, metas[start:end]),
            )

    def _replacing(
        self, ids: list[str], metadatas: list[Metadata | None]
    ) -> list[dict[str, MetadataValue | None] | None]:
        """Metadata that replaces, rather than merges into, what ``ids`` already hold.

        Chroma's upsert merges metadata keys into an existing record, and ``None`` metadata
        leaves the old keys in place; a key set to ``None`` is deleted. So every old key
        missing from the new metadata is sent as ``None``.
        """
        existing = self._call(self.collection.get, ids=ids, include=["metadatas"])
        old = dict(zip(existing["ids"], existing["metadatas"], strict=True))
        out: list[dict[str, MetadataValue | None] | None] = []
        for id_, new in zip(ids, metadatas, strict=True):
            stale = set(old.get(id_) or {}) - set(new or {})
            if stale:
                out.append({**(new or {}), **dict.fromkeys(stale)})
            else:
                out.append(dict(new) if new else None)
        return out

    def query(
        self,
        vector: Sequence[float] | NDArray[np.float32],
        k: int,
        *,
        where: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        with_vectors: bool = False,
        ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` records with the largest dot product with ``vector``, best first.

        ``ids``, when given, restricts the search to those records.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            msg = f"k must be a positive integer, got {k!r}"
            raise ValueError(msg)
        from chromadb.errors import InvalidArgumentError

        include = ["documents", "metadatas", "distances"]
        if with_vectors:
            include.append("embeddings")
        try:
            result = self._call(
                self.collection.query,
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                ids=None if ids is None else _unique_ids(ids),
                n_results=k,
                where=dict(where) if where else None,
                where_document=dict(where_document) if where_document else None,
                include=include,
            )
        except InvalidArgumentError as exc:
            msg = (
                f"Chroma refused the filter (where={where!r}, where_document="
                f"{where_document!r}): {exc}. See Chroma's metadata filtering syntax."
            )
            raise ValueError(msg) from exc
        ids = result["ids"][0]
        docs = result["documents"][0]
        metas = result["metadatas"][0]
        dists = result["distances"][0]
        vecs = result["embeddings"][0] if with_vectors else [None] * len(ids)
        return [
            Hit(
                id=i,
                text=d or "",
                metadata=m,
                dot=dot_from_distance(s),
                vector=None if v is None else np.asarray(v, dtype=np.float32),
            )
            for i, d, m, s, v in zip(ids, docs, metas, dists, vecs, strict=True)
        ]

    def get(
        self, ids: Sequence[str] | None = None, *, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """Stored records for ``ids``, in the order asked, skipping missing ones.

        With ``ids=None``: every record matching ``where`` (all records when it is None).
        """
        if ids is None:
            return self._scan(where)
        unique = _unique_ids(ids)
        if not unique:
            return []
        result = self._call(
            self.collection.get,
            ids=unique,
            where=dict(where) if where else None,
            include=["documents", "metadatas"],
        )
        found = {
            i: Hit(id=i, text=d or "", metadata=m)
            for i, d, m in zip(result["ids"], result["documents"], result["metadatas"], strict=True)
        }
        return [found[i] for i in unique if i in found]

    def _scan(self, where: Mapping[str, Any] | None) -> list[Hit]:
        step = max(1, int(self.client.get_max_batch_size()))
        hits: list[Hit] = []
        while True:
            page = self._call(
                self.collection.get,
                where=dict(where) if where else None,
                include=["documents", "metadatas"],
                limit=step,
                offset=len(hits),
            )
            hits.extend(
                Hit(id=i, text=d or "", metadata=m)
                for i, d, m in zip(page["ids"], page["documents"], page["metadatas"], strict=True)
            )
            if len(page["ids"]) < step:
                return hits

    def clear(self) -> int:
        """Delete every record, keeping the collection and its model record; returns how many."""
        step = max(1, int(self.client.get_max_batch_size()))
        removed = 0
        while True:
            ids = self._call(self.collection.get, include=[], limit=step)["ids"]
            if not ids:
                return removed
            self._call(self.collection.delete, ids=ids)
            removed += len(ids)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are already stored."""
        unique = _unique_ids(ids)
        if not unique:
            return set()
        return set(self._call(self.collection.get, ids=unique, include=[])["ids"])

    def delete(
        self, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None
    ) -> None:
        """Delete by ids and/or a metadata filter, in the client's batch size."""
        if ids is None and where is None:
            msg = "delete() needs ids or a where filter; to drop everything, delete the collection"
            raise ValueError(msg)
        if ids is None:
            self._call(self.collection.delete, where=dict(where or {}))
            return
        unique = _unique_ids(ids)
        step = max(1, int(self.client.get_max_batch_size()))
        for start in range(0, len(unique), step):
            self._call(
                self.collection.delete,
                ids=unique[start : start + step],
                where=dict(where) if where else None,
            )


def _unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` without repeats, in order; each must be a non-empty string."""
    if isinstance(ids, str):
        msg = f"ids must be a list of strings, got the single string {ids!r}; wrap it: [id]"
        raise TypeError(msg)
    for i, id_ in enumerate(ids):
        if not isinstance(id_, str) or not id_:
            msg = f"ids[{i}] must be a non-empty string, got {id_!r}"
            raise ValueError(msg)
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class _Model:
    """The model a collection must match: its probe vector, similarity and name."""

    probe: list[float]
    similarity: str
    calibrate: Callable[[], RelevanceScale]
    name: str

    def new_identity(self) -> ModelIdentity:
        """The record a collection gets when it is created or adopted: calibrates once."""
        return ModelIdentity(
            len(self.probe), self.similarity, tuple(self.probe), self.calibrate(), self.name
        )
