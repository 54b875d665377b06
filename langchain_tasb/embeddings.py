"""The LangChain ``Embeddings`` skin: :class:`TasbEmbeddings`, a core ``TasbModel``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from langchain_tasb.encoding.model import EmbeddingsEncoder, TasbModel

if TYPE_CHECKING:
    from langchain_tasb.encoding.types import TextEncoder


class TasbEmbeddings(TasbModel, Embeddings):
    """TAS-B embeddings for LangChain: a ``TasbModel`` that is a LangChain ``Embeddings``.

    CLS pooling, unnormalised vectors, scored by dot product. Queries and documents have
    separate settings (token limits and batch sizes) and one encode path; the model is loaded
    lazily, once per process. Every setting is documented on ``TasbModel``.

    Setup:
        ``pip install langchain-tasb``. Without access to the Hugging Face hub, set
        ``TASB_MODEL`` (or ``model_name``) to a local sentence-transformers directory.

    Key init args:
        model_name: hub name or local directory (default: ``$TASB_MODEL`` or TAS-B).
        device: "cpu", "cuda", "mps"; chosen automatically when None.
        backend: "auto", "torch", "onnx-int8" or "onnx-int8+torch".
        query_max_tokens / document_max_tokens: token limits per role.
        query_batch_size / document_batch_size: encode batch sizes per role.

    Example:
        .. code-block:: python

            from langchain_tasb import TasbEmbeddings

            emb = TasbEmbeddings()
            q = emb.embed_query("How many people live in London?")
            d = emb.embed_documents(["Around 9 Million people live in London"])
            score = sum(a * b for a, b in zip(q, d[0]))  # dot product, higher is better
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
