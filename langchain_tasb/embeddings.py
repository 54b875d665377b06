"""The LangChain ``Embeddings`` skin: :class:`TasbEmbeddings`, a core ``TasbModel``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from langchain_tasb.encoding.model import EmbeddingsEncoder, TasbModel

if TYPE_CHECKING:
    from langchain_tasb.encoding.types import TextEncoder


class TasbEmbeddings(TasbModel, Embeddings):
    """TAS-B embeddings for LangChain: a ``TasbModel`` that is a LangChain ``Embeddings``.

    Unnormalised vectors, scored by dot product; every setting is documented on ``TasbModel``.
    """


def as_embeddings(encoder: TextEncoder) -> Embeddings:
    """The LangChain ``Embeddings`` behind a core encoder (the inverse of ``as_encoder``)."""
    if isinstance(encoder, EmbeddingsEncoder) and isinstance(encoder.embeddings, Embeddings):
        return encoder.embeddings
    if isinstance(encoder, Embeddings):
        return encoder
    if isinstance(encoder, TasbModel):
        return TasbEmbeddings.model_validate(encoder.model_dump())
    msg = f"{type(encoder).__name__} is not a LangChain Embeddings; wrap it in one"
    raise TypeError(msg)
