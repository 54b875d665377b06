"""The model-bound store: an inner-product collection that only its own model may use.

It never imports torch or a model: it is handed one, a ``TextEncoder``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_tasb.chroma.client import (
    check_collection_name,
    find_collection,
    hold_writer_lock,
    location,
    not_found,
    retry_policy,
)
from langchain_tasb.chroma.collection import Collection, collection_space
from langchain_tasb.chroma.identity import PREFIX, ModelIdentity, calibrate, probe_vector
from langchain_tasb.chroma.retry import RetryPolicy, call_with_retry
from langchain_tasb.errors import ModelMismatchError, SpaceMismatchError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tasb.encoding.types import TextEncoder
    from langchain_tasb.scoring import RelevanceScale

logger = logging.getLogger(__name__)

# Chosen so the index ranks as exact dot-product search does, where Chroma's own defaults fall
# short (benchmarks/RESULTS.md, "Index quality").
DEFAULT_EF_SEARCH = 128
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_MAX_NEIGHBORS = 32


@dataclass(frozen=True)
class HnswSettings:
    """HNSW index settings for a new collection (``ef_search`` can change later).

    Chroma reads ``ef_search`` when it loads an index, so a change applies to later clients.
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


class ChromaStore(Collection):
    """An inner-product Chroma collection bound to one model identity (and its dimension)."""

    def __init__(
        self, client: Any, collection: Any, identity: ModelIdentity, retry: RetryPolicy | None
    ) -> None:
        super().__init__(client, collection, retry)
        self.identity = identity
        self.dimension = identity.dimension

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
        encoder: TextEncoder,
        hnsw: HnswSettings | None = None,
        metadata: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        create: bool = True,
    ) -> ChromaStore:
        """Open (or create, when ``create``) collection ``name``; check it fits the model.

        Args:
            client: A Chroma client.
            name: Collection name.
            encoder: The model; its relevance is calibrated only when a collection is created.
            hnsw: Settings for a new collection; for an existing one, only ``ef_search``.
            metadata: Extra metadata for a new collection.
            retry: Retry policy; default retries for a server, none for embedded Chroma.
            create: Create the collection when it does not exist.

        Raises:
            CollectionNotFoundError: ``create`` is False and there is no such collection.
            ValueError: ``name`` is not a valid Chroma collection name.
            SpaceMismatchError: the collection exists with a space other than ``ip``.
            ModelMismatchError: it was filled by another model or dimension.
        """
        check_collection_name(name)
        policy = retry_policy(client, retry)
        probe = probe_vector(encoder)
        args = (client, name, encoder, probe, hnsw, metadata, create)
        collection, identity = call_with_retry(policy, location(client), _open, *args)
        return cls(client, collection, identity, policy)


def _new_identity(encoder: TextEncoder, probe: list[float]) -> ModelIdentity:
    similarity, name = encoder.similarity, str(encoder.model_name)
    return ModelIdentity(len(probe), similarity, tuple(probe), calibrate(encoder), name)


def _open(
    client: Any,
    name: str,
    encoder: TextEncoder,
    probe: list[float],
    hnsw: HnswSettings | None,
    metadata: Mapping[str, Any] | None,
    create: bool,
) -> tuple[Any, ModelIdentity]:
    from chromadb.errors import ChromaError

    collection = find_collection(client, name)
    if collection is None and not create:
        raise not_found(client, name)
    if collection is None:
        hold_writer_lock(client)
        identity = _new_identity(encoder, probe)
        theirs = {k: v for k, v in (metadata or {}).items() if not k.startswith(PREFIX)}
        try:
            collection = client.create_collection(
                name,
                configuration=(hnsw or HnswSettings()).configuration(),
                metadata={**theirs, **identity.to_metadata()},
                embedding_function=None,
            )
        except ChromaError as exc:  # embedded Chroma raises InternalError, a server ChromaError
            if "already exists" not in str(exc):
                raise
            collection = client.get_collection(name, embedding_function=None)  # a race, lost
        else:
            logger.debug("created collection %s (ip, dim %d)", name, len(probe))
            return collection, ModelIdentity.from_metadata(collection.metadata) or identity
    identity = _verify(collection, encoder, probe)
    current = (collection.configuration or {}).get("hnsw") or {}
    if hnsw is not None and current.get("ef_search") != hnsw.ef_search:
        collection.modify(configuration={"hnsw": {"ef_search": hnsw.ef_search}})
    logger.debug("opened collection %s", name)
    return collection, identity


def _verify(collection: Any, encoder: TextEncoder, probe: list[float]) -> ModelIdentity:
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
        identity = _new_identity(encoder, probe)
        # modify() replaces metadata rather than merging: merge ourselves.
        collection.modify(metadata={**(collection.metadata or {}), **identity.to_metadata()})
        return identity
    found = identity.mismatch(len(probe), encoder.similarity, probe)
    if found is not None:
        msg = (
            f"Collection {name!r} was filled with {found}; this store's model "
            f"{encoder.model_name!r} gives {len(probe)}-dimensional {encoder.similarity} "
            "vectors. Open it with the model that built it, or index into a new "
            "collection name."
        )
        raise ModelMismatchError(msg)
    return identity


def recorded_model_name(
    client: Any, collection_name: str, *, retry: RetryPolicy | None = None
) -> str | None:
    """The model name recorded in collection ``collection_name`` (reads only), or None."""
    policy = retry_policy(client, retry)
    found = call_with_retry(policy, location(client), find_collection, client, collection_name)
    identity = ModelIdentity.from_metadata(found.metadata) if found is not None else None
    return (identity.model_name or None) if identity else None
