"""LlamaIndex ``MetadataFilters`` as a Chroma ``where`` filter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

Where = dict[str, Any]

_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}
_CONDITIONS = {FilterCondition.AND: "$and", FilterCondition.OR: "$or"}
_SUPPORTED = [op.name for op in (*_OPERATORS, FilterOperator.ANY, FilterOperator.ALL)]


def to_where(filters: MetadataFilters | None) -> Where | None:
    """The Chroma ``where`` equivalent to ``filters``; None when there is nothing to filter.

    ANY and ALL become an ``$or`` or ``$and`` of ``$contains``; nested filters recurse.

    Raises:
        ValueError: an operator or condition Chroma cannot express (NOT, TEXT_MATCH, ...),
            or a None value.
    """
    if filters is None:
        return None
    condition = filters.condition or FilterCondition.AND
    if condition not in _CONDITIONS:
        msg = (
            f"MetadataFilters condition {condition.value!r} has no Chroma equivalent; use "
            "'and' or 'or' (negate each filter instead: EQ -> NE, IN -> NIN)"
        )
        raise ValueError(msg)
    clauses = [
        clause
        for item in filters.filters
        if (clause := to_where(item) if isinstance(item, MetadataFilters) else _clause(item))
    ]
    return combine(clauses, _CONDITIONS[condition])


def combine(clauses: Sequence[Where | None], operator: str = "$and") -> Where | None:
    """Clauses joined by ``operator``; Chroma wants two or more, so one stands alone."""
    kept = [clause for clause in clauses if clause]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else {operator: kept}


def _clause(item: MetadataFilter) -> Where:
    if item.value is None:
        msg = f"Filter on {item.key!r} has value None; Chroma stores no nulls, so nothing matches"
        raise ValueError(msg)
    if item.operator in (FilterOperator.ANY, FilterOperator.ALL):
        values = item.value if isinstance(item.value, list) else [item.value]
        joined = combine(
            [{item.key: {"$contains": value}} for value in values],
            "$or" if item.operator == FilterOperator.ANY else "$and",
        )
        if joined is None:
            msg = f"Filter {item.operator.name} on {item.key!r} needs at least one value"
            raise ValueError(msg)
        return joined
    operator = _OPERATORS.get(item.operator)
    if operator is None:
        msg = (
            f"Filter operator {item.operator.name} on {item.key!r} has no Chroma equivalent; "
            f"use one of {_SUPPORTED}"
        )
        raise ValueError(msg)
    return {item.key: {operator: item.value}}
