"""Checking a Chroma ``where`` filter that an agent wrote, before it reaches the store.

The agent gets a message that says which part of its filter is wrong and how to write it,
instead of whatever the store would raise. Two conveniences are applied on the way: an object
with several fields means all of them (``{"a": 1, "b": 2}`` becomes an ``$and``), and an
``$and`` / ``$or`` of one condition is that condition.
"""

from __future__ import annotations

import json
from typing import Any

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
"""Operators comparing a field with one value (``$gt`` and the like need a number)."""
MEMBERSHIP = ("$in", "$nin")
"""Operators comparing a field with a non-empty list of values."""
LOGICAL = ("$and", "$or")
"""Operators combining a list of conditions."""
OPERATORS = COMPARISONS + MEMBERSHIP + LOGICAL

EXAMPLE = '{"$and": [{"source": "guide.md"}, {"chunk": {"$lt": 3}}]}'
"""A filter shown in messages and in the tool description."""

_ORDERING = ("$gt", "$gte", "$lt", "$lte")
_Scalar = str | int | float | bool


def check_filter(value: Any) -> dict[str, Any] | None:
    """A Chroma ``where`` filter from what an agent passed, or an error saying what to change.

    Args:
        value: None, a dict, or a JSON object as a string (some hosts send JSON text).

    Returns:
        The filter, normalised (see the module docstring), or None for no filter.

    Raises:
        ValueError: If the filter is malformed or uses an unknown operator; the message names
            the offending part and shows a valid filter.
    """
    if value is None or value == {} or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            msg = f"filter is not valid JSON ({exc.msg}); write an object such as {EXAMPLE}"
            raise ValueError(msg) from None
    return _condition(value, "filter")


def _condition(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        msg = (
            f'{where} must be a non-empty JSON object such as {{"source": "guide.md"}}, '
            f"got {value!r}; combine conditions like this: {EXAMPLE}"
        )
        raise ValueError(msg)
    if len(value) > 1:
        return {"$and": [_condition({key: item}, where) for key, item in value.items()]}
    ((key, item),) = value.items()
    if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
        msg = f"{where}: field names are strings, got {key!r}"
        raise ValueError(msg)
    if key in LOGICAL:
        return _logical(key, item, where)
    if key.startswith("$"):
        msg = (
            f"{where}: unknown operator {key!r} at the top of a condition; only "
            f"{' and '.join(LOGICAL)} combine conditions there, e.g. {EXAMPLE}"
        )
        raise ValueError(msg)
    return {key: _operand(item, f"{where}.{key}")}


def _logical(operator: str, items: Any, where: str) -> dict[str, Any]:
    if not isinstance(items, list) or not items:
        msg = f"{where}: {operator} takes a non-empty list of conditions, e.g. {EXAMPLE}"
        raise ValueError(msg)
    conditions = [_condition(item, f"{where}.{operator}[{i}]") for i, item in enumerate(items)]
    return conditions[0] if len(conditions) == 1 else {operator: conditions}


def _operand(item: Any, where: str) -> Any:
    if _is_scalar(item):
        return item
    if not isinstance(item, dict) or len(item) != 1:
        msg = (
            f"{where}: a field takes a value (string, number or boolean) or one operator object "
            f'such as {{"$in": ["a.md", "b.md"]}}, got {item!r}'
        )
        raise ValueError(msg)
    ((operator, operand),) = item.items()
    if operator not in COMPARISONS + MEMBERSHIP:
        msg = (
            f"{where}: unknown operator {operator!r}; a field takes one of "
            f"{', '.join(COMPARISONS + MEMBERSHIP)}"
        )
        raise ValueError(msg)
    if operator in MEMBERSHIP:
        if not isinstance(operand, list) or not operand or not all(map(_is_scalar, operand)):
            msg = f"{where}: {operator} takes a non-empty list of values, got {operand!r}"
            raise ValueError(msg)
        if len({_kind(v) for v in operand}) > 1:
            msg = f"{where}: the values of {operator} must all be of one type, got {operand!r}"
            raise ValueError(msg)
    elif operator in _ORDERING:
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            msg = f"{where}: {operator} compares with a number, got {operand!r}"
            raise ValueError(msg)
    elif not _is_scalar(operand):
        msg = f"{where}: {operator} takes a string, number or boolean, got {operand!r}"
        raise ValueError(msg)
    return {operator: operand}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _Scalar)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "str"
