"""``TasbCollection``, the framework-free collection every skin opens, and where it lives."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from langchain_tasb.chroma.client import (
    DEFAULT_TIMEOUT,
    check_collection_name,
    connect,
    parse_chroma_url,
)
from langchain_tasb.chroma.records import Hit, validate_records
from langchain_tasb.chroma.store import ChromaStore, HnswSettings, recorded_model_name
from langchain_tasb.config import DEFAULT_COLLECTION_NAME, MODEL_ENV_VAR
from langchain_tasb.encoding.model import TasbModel
from langchain_tasb.hybrid.lexical import attach_persisted
from langchain_tasb.search import search
from langchain_tasb.validation import check_texts, check_user_metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence

    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.scoring import RelevanceScale
    from langchain_tasb.search import ScoredHit, SearchSettings

logger = logging.getLogger(__name__)

_R = TypeVar("_R")

# A str is tried as a SecretStr first, so every header value is hidden from repr and dumps.
_Secret = Annotated[SecretStr | str, Field(union_mode="left_to_right")]


class Connection(BaseModel):
    """One of ``client``, ``persist_directory``, ``url`` or ``host``; in memory when none."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    persist_directory: str | None = None
    """Embedded Chroma directory."""
    host: str | None = None
    """Chroma server host."""
    port: int | None = None
    """Chroma server port (default 8000)."""
    ssl: bool = False
    """Use https for the Chroma server."""
    url: str | None = None
    """Chroma server URL, ``http(s)://HOST[:PORT]`` (instead of ``host``/``port``/``ssl``)."""
    headers: dict[str, _Secret] | None = None
    """Extra HTTP headers for Chroma, kept as ``SecretStr``: hidden in repr, dumps and traces."""
    client: Any = None
    """A ready Chroma client."""

    def connect(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """The Chroma client these fields name (``timeout``: seconds per server request).

        Raises:
            ValueError: Several places are named, or ``url`` is malformed.
            ChromaUnavailableError: The server did not answer.
        """
        host, port, ssl = self.host, self.port, self.ssl
        if self.url is not None:
            if host is not None:
                msg = f"Pass url= or host=/port=, not both (got url={self.url!r}, host={host!r})"
                raise ValueError(msg)
            host, port, ssl = parse_chroma_url(self.url)
        headers = {
            key: value.get_secret_value() if isinstance(value, SecretStr) else value
            for key, value in (self.headers or {}).items()
        }
        return connect(
            client=self.client,
            persist_directory=self.persist_directory,
            host=host,
            port=port,
            ssl=ssl,
            headers=headers,
            timeout=timeout,
        )


# Embedded and written in slices: memory stays bounded, and a crash keeps what was written.
WRITE_SLICE = 2048


def content_id(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """32 hex characters of a SHA-256 of ``metadata["source"]`` and the text (one per source)."""
    source = "" if metadata is None else str(metadata.get("source", ""))
    data = f"{source}\x00{text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


class TasbCollection:
    """An inner-product Chroma collection, opened with (and checked against) its model.

    ``encoder`` defaults to ``$TASB_MODEL``, else the model recorded in the collection, else
    TAS-B, built by ``model_factory`` (a skin passes its own model class). ``hnsw`` configures
    a new collection; only its ``ef_search`` applies to an existing one.
    """

    def __init__(
        self,
        encoder: TextEncoder | None = None,
        collection_name: str = DEFAULT_COLLECTION_NAME,
        *,
        connection: Connection | None = None,
        hnsw: HnswSettings | None = None,
        collection_metadata: Mapping[str, Any] | None = None,
        create_collection_if_not_exists: bool = True,
        model_factory: Callable[..., TextEncoder] = TasbModel,
    ) -> None:
        check_collection_name(collection_name)  # before connecting or loading a model
        self.client = (connection or Connection()).connect()
        if encoder is None and not os.environ.get(MODEL_ENV_VAR):
            recorded = recorded_model_name(self.client, collection_name)
            if recorded:
                logger.info("using model %s recorded in collection %s", recorded, collection_name)
                encoder = model_factory(model_name=recorded)
        self.encoder: TextEncoder = encoder if encoder is not None else model_factory()
        self.store = ChromaStore.open(
            self.client,
            collection_name,
            encoder=self.encoder,
            hnsw=hnsw,
            metadata=collection_metadata,
            create=create_collection_if_not_exists,
        )
        self.collection_name: str = self.store.name
        self.relevance_scale: RelevanceScale = self.store.relevance
        attach_persisted(self)

    def search(
        self,
        settings: SearchSettings,
        *,
        query: str | None = None,
        vector: Sequence[float] | None = None,
    ) -> list[ScoredHit]:
        """:func:`langchain_tasb.search.search` on this collection."""
        return search(self, settings, query=query, vector=vector)

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Embed and upsert texts; returns their ids, in input order.

        A missing id is derived from the text and ``metadata["source"]``; of repeated ids, the
        last wins. A reserved or result metadata key raises ValueError before anything is written.
        """
        items = check_texts(texts)
        for name, given in (("metadatas", metadatas), ("ids", ids)):
            if given is not None and len(given) != len(items):
                msg = f"Got {len(items)} texts but {len(given)} {name}; pass one per text"
                raise ValueError(msg)
        metas = list(metadatas) if metadatas is not None else [None] * len(items)
        for i, meta in enumerate(metas):
            check_user_metadata(meta, f"metadatas[{i}]")
        given_ids: Sequence[str | None] = ids or [None] * len(items)
        resolved = [
            given if given is not None else content_id(text, meta)
            for text, meta, given in zip(items, metas, given_ids, strict=True)
        ]
        self.upsert(resolved, items, metas)
        return resolved

    def upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None],
        embed: Callable[[list[int]], list[list[float]]] | None = None,
    ) -> None:
        """Write records in slices (of repeated ids, the last wins), each checked, then embedded.

        ``embed(positions)`` gives the vectors of those records; by default the encoder's.
        """
        picks = sorted({id_: i for i, id_ in enumerate(ids)}.values())
        for start in range(0, len(picks), WRITE_SLICE):
            rows = picks[start : start + WRITE_SLICE]
            batch_ids, batch = [ids[i] for i in rows], [texts[i] for i in rows]
            metas = [metadatas[i] for i in rows]
            validate_records(batch_ids, batch, metas)  # before spending time on encoding
            vectors = embed(rows) if embed else self.encoder.embed_documents(batch)
            self.store.upsert(batch_ids, batch, vectors, metas)
        logger.debug("upserted %d records into %s", len(picks), self.collection_name)

    def delete(
        self, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None
    ) -> None:
        """Delete by ids and/or a metadata filter (Chroma ``where``). Missing ids are fine."""
        self.store.delete(ids=ids, where=where)

    def get(
        self, ids: Sequence[str] | None = None, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """Stored records for ``ids`` (in that order, missing ones skipped) and/or ``where``."""
        if ids is not None:
            return self.store.get(ids, where=where)
        pages = self.store.scan(where, include=["documents", "metadatas"])
        return [hit for page in pages for hit in page.hits()]


def in_thread(method: Callable[..., _R]) -> Callable[..., Coroutine[Any, Any, _R]]:
    """The async twin of ``method``: the same call, in a worker thread."""

    async def twin(*args: Any, **kwargs: Any) -> _R:
        return await asyncio.to_thread(method, *args, **kwargs)

    twin.__doc__ = f":meth:`{method.__name__}` in a worker thread."
    return twin
