"""Records as Chroma stores them: validation before a write, and the shapes reads return."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from langchain_tasb.validation import check_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from numpy.typing import NDArray

MetadataValue = str | int | float | bool | list[str] | list[int] | list[float] | list[bool]
Metadata = dict[str, MetadataValue]


@dataclass(frozen=True)
class Hit:
    """One stored record: id, text, metadata, dot product with the query (if queried)."""

    id: str
    text: str
    metadata: dict[str, Any] | None
    dot: float = math.nan
    vector: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Records:
    """A page of stored records, column by column, as a get or a scan returns them.

    ``texts`` holds "" and ``metadatas`` None for a field that was not asked for;
    ``vectors`` is None unless vectors were asked for.
    """

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any] | None]
    vectors: list[NDArray[np.float32]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def hits(self) -> list[Hit]:
        """The records one by one."""
        vectors: Sequence[NDArray[np.float32] | None] = self.vectors or [None] * len(self.ids)
        return [
            Hit(id=i, text=t, metadata=m, vector=v)
            for i, t, m, v in zip(self.ids, self.texts, self.metadatas, vectors, strict=True)
        ]

    @classmethod
    def from_chroma(cls, result: Mapping[str, Any]) -> Records:
        """From the dict a chromadb ``collection.get`` returns."""
        ids = [str(i) for i in result["ids"]]
        docs = result.get("documents") or [""] * len(ids)
        metas = result.get("metadatas") or [None] * len(ids)
        vectors = result.get("embeddings")
        if vectors is not None:
            vectors = [np.asarray(v, dtype=np.float32) for v in vectors]
        return cls(ids, [d or "" for d in docs], list(metas), vectors)


def validate_records(
    ids: Sequence[str],
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None],
) -> list[Metadata | None]:
    """Check a write before any of it happens; return metadata cleaned for Chroma.

    ``None`` values are dropped and an empty dict becomes ``None``; anything Chroma would
    reject or silently drop raises ``ValueError`` or ``TypeError`` naming the position.
    """
    if not len(ids) == len(texts) == len(metadatas):
        msg = (
            f"ids, texts and metadatas differ in length: {len(ids)}, {len(texts)}, {len(metadatas)}"
        )
        raise ValueError(msg)
    _check_ids(ids)
    for i, text in enumerate(texts):
        check_text(text, f"texts[{i}]")
    return [_clean_metadata(metadata, i) for i, metadata in enumerate(metadatas)]


# Metadata keys Chroma reserves ("#document" in its Rust schema, "chroma:document" in Python).
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


def unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` without repeats, in order; each must be a non-empty string."""
    if isinstance(ids, str):
        msg = f"ids must be a list of strings, got the single string {ids!r}; wrap it: [id]"
        raise TypeError(msg)
    _check_ids(ids)
    return list(dict.fromkeys(ids))


def _check_ids(ids: Sequence[str]) -> None:
    for i, id_ in enumerate(ids):
        if not isinstance(id_, str) or not id_:
            msg = f"ids[{i}] must be a non-empty string, got {id_!r}"
            raise ValueError(msg)
