"""``TasbVectorStore``: a LangChain ``VectorStore`` over an inner-product Chroma collection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.vectorstores import VectorStore

from langchain_tasb.config import DEFAULT_K
from langchain_tasb.documents import DocumentCollection, to_document
from langchain_tasb.retriever import TasbRetriever
from langchain_tasb.search import SearchSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from langchain_core.documents import Document

    from langchain_tasb.chroma.records import Hit
    from langchain_tasb.search import ScoredHit

_R = TypeVar("_R")


def _in_thread(method: Callable[..., _R]) -> Callable[..., Coroutine[Any, Any, _R]]:
    async def twin(*args: Any, **kwargs: Any) -> _R:
        return await asyncio.to_thread(method, *args, **kwargs)

    twin.__doc__ = f":meth:`{method.__name__}` in a worker thread."
    return twin


class TasbVectorStore(DocumentCollection, VectorStore):
    """A LangChain vector store on a Chroma collection created for inner-product search.

    Scores are dot products (higher is better); relevance is a calibrated logistic of the dot
    product, in [0, 1]. Opening (the init args), writing and ``from_texts`` are
    :class:`~langchain_tasb.documents.DocumentCollection`'s. Async twins run in a thread.
    """

    def _search(
        self, search_type: str, target: str | Sequence[float], /, **options: Any
    ) -> list[ScoredHit]:
        settings = SearchSettings.from_options(search_type, **options)
        if isinstance(target, str):
            return self.core.search(settings, query=target)
        return self.core.search(settings, vector=target)

    def search_hits(
        self,
        embedding: Sequence[float],
        k: int = DEFAULT_K,
        *,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """One Chroma query: the ``k`` best records by dot product with ``embedding``."""
        return self.store.query(
            embedding, k, where=filter, where_document=where_document, with_vectors=with_vectors
        )

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """Documents for ``query`` by ``search_type`` (any of SearchSettings, "hybrid" too).

        ``kwargs`` are the other :class:`~langchain_tasb.search.SearchSettings` fields.
        """
        return [to_document(hit) for hit in self._search(search_type, query, **kwargs)]

    def similarity_search(self, query: str, k: int = DEFAULT_K, **kwargs: Any) -> list[Document]:
        """The ``k`` documents with the largest dot product with the query, best first."""
        return [to_document(hit) for hit in self._search("similarity", query, k=k, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their dot product with the query (higher is better), best first."""
        hits = self._search("similarity", query, k=k, **kwargs)
        return [(to_document(hit), hit.score) for hit in hits]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = DEFAULT_K, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents with the largest dot product with ``embedding``."""
        return [to_document(hit) for hit in self._search("similarity", embedding, k=k, **kwargs)]

    def similarity_search_by_vector_with_score(
        self, embedding: Sequence[float], k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their dot product with ``embedding``, best first."""
        hits = self._search("similarity", embedding, k=k, **kwargs)
        return [(to_document(hit), hit.score) for hit in hits]

    def similarity_search_with_relevance_scores(
        self, query: str, k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents with their calibrated relevance in [0, 1], best first."""
        hits = self._search("similarity", query, k=k, **kwargs)
        return [(to_document(hit), hit.relevance) for hit in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self.relevance_scale.relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = DEFAULT_K,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse results: MMR over the ``fetch_k`` best, computed on dot products."""
        options = {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, **kwargs}
        return [to_document(hit) for hit in self._search("mmr", query, **options)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = DEFAULT_K,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR over the ``fetch_k`` best by dot product with ``embedding``."""
        options = {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, **kwargs}
        return [to_document(hit) for hit in self._search("mmr", embedding, **options)]

    asearch = _in_thread(search)
    asimilarity_search_by_vector_with_score = _in_thread(similarity_search_by_vector_with_score)
    asimilarity_search_with_relevance_scores = _in_thread(similarity_search_with_relevance_scores)
    amax_marginal_relevance_search = _in_thread(max_marginal_relevance_search)
    amax_marginal_relevance_search_by_vector = _in_thread(max_marginal_relevance_search_by_vector)

    def as_retriever(self, **kwargs: Any) -> TasbRetriever:  # type: ignore[override]
        """A :class:`TasbRetriever`; takes ``search_type`` and ``search_kwargs`` or the fields."""
        search_kwargs = dict(kwargs.pop("search_kwargs", None) or {})
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return TasbRetriever(vectorstore=self, tags=tags, **search_kwargs, **kwargs)
