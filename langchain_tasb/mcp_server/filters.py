"""Checking a Chroma ``where`` filter that an agent wrote, before it reaches the store.

An object with several fields becomes an ``$and``, and an ``$and`` / ``$or`` of one condition
is that condition. Bounds (:data:`MAX_DEPTH`, :data:`MAX_TERMS`) make a hostile filter cheap to
refuse; messages repeat little of what the agent sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from langchain_tasb.validation import echo

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
"""Operators comparing a field with one value (``$gt`` and the like need a number)."""
MEMBERSHIP = ("$in", "$nin")
"""Operators comparing a field with a non-empty list of values."""
LOGICAL = ("$and", "$or")
"""Operators combining a list of conditions."""
OPERATORS = COMPARISONS + MEMBERSHIP + LOGICAL

EXAMPLE = '{"$and": [{"source": "guide.md"}, {"chunk": {"$lt": 3}}]}'
"""A filter shown in messages and in the tool description."""

MAX_DEPTH = 32
"""Most levels of ``$and`` / ``$or`` one filter may nest."""
MAX_TERMS = 1_000
"""Most conditions and list values one filter may hold, counted together."""

_ORDERING = ("$gt", "$gte", "$lt", "$lte")
_Scalar = str | int | float | bool


def check_filter(value: Any) -> dict[str, Any] | None:
    """A Chroma ``where`` filter from what an agent passed, or an error saying what to change.

    Args:
        value: None, a dict, or a JSON object as a string (some hosts send JSON text).

    Returns:
        The filter, normalised (see the module docstring), or None for no filter.

    Raises:
        ValueError: If the filter is malformed, uses an unknown operator, or is over the
            bounds; the message names the offending part.
    """
    if value is None or value == {} or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            msg = f"filter is not valid JSON ({exc.msg}); write an object such as {EXAMPLE}"
            raise ValueError(msg) from None
        except RecursionError:
            raise ValueError(_TOO_LARGE) from None
    return _Walk().condition(value, "filter", 0)


_TOO_LARGE = (
    f"filter is too large: at most {MAX_DEPTH} levels of $and/$or and {MAX_TERMS} conditions "
    "and list values in all; use fewer values or split the search"
)


@dataclass
class _Walk:
    """One pass over a filter, counting what it holds against the bounds."""

    terms: int = 0

    def count(self, n: int = 1) -> None:
        self.terms += n
        if self.terms > MAX_TERMS:
            raise ValueError(_TOO_LARGE)

    def condition(self, value: Any, where: str, depth: int) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            msg = (
                f'{where} must be a non-empty JSON object such as {{"source": "guide.md"}}, '
                f"got {echo(value)}; combine conditions like this: {EXAMPLE}"
            )
            raise ValueError(msg)
        if len(value) > 1:
            self.count(len(value))
            return {"$and": [self.condition({k: v}, where, depth) for k, v in value.items()]}
        ((key, item),) = value.items()
        if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
            msg = f"{where}: field names are strings, got {echo(key)}"
            raise ValueError(msg)
        if key in LOGICAL:
            return self.logical(key, item, where, depth + 1)
        if key.startswith("$"):
            msg = (
                f"{where}: unknown operator {echo(key)} at the top of a condition; only "
                f"{' and '.join(LOGICAL)} combine conditions there, e.g. {EXAMPLE}"
            )
            raise ValueError(msg)
        self.count()
        return {key: self.operand(item, f"{where}.{key if len(key) <= 60 else echo(key, 60)}")}

    def logical(self, operator: str, items: Any, where: str, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise ValueError(_TOO_LARGE)
        if not isinstance(items, list) or not items:
            msg = f"{where}: {operator} takes a non-empty list of conditions, e.g. {EXAMPLE}"
            raise ValueError(msg)
        self.count(len(items))
        conditions = [
            self.condition(item, f"{where}.{operator}[{i}]", depth) for i, item in enumerate(items)
        ]
        return conditions[0] if len(conditions) == 1 else {operator: conditions}

    def operand(self, item: Any, where: str) -> Any:
        if _is_scalar(item):
            return item
        if not isinstance(item, dict) or len(item) != 1:
            msg = (
                f"{where}: a field takes a value (string, number or boolean) or one operator "
                f'object such as {{"$in": ["a.md", "b.md"]}}, got {echo(item)}'
            )
            raise ValueError(msg)
        ((operator, operand),) = item.items()
        if operator not in COMPARISONS + MEMBERSHIP:
            msg = (
                f"{where}: unknown operator {echo(operator)}; a field takes one of "
                f"{', '.join(COMPARISONS + MEMBERSHIP)}"
            )
            raise ValueError(msg)
        if operator in MEMBERSHIP:
            if isinstance(operand, list):
                self.count(len(operand))
            if not isinstance(operand, list) or not operand or not all(map(_is_scalar, operand)):
                msg = f"{where}: {operator} takes a non-empty list of values, got {echo(operand)}"
                raise ValueError(msg)
            if len({_kind(v) for v in operand}) > 1:
                msg = (
                    f"{where}: the values of {operator} must all be of one type, got "
                    f"{echo(operand)}"
                )
                raise ValueError(msg)
        elif operator in _ORDERING:
            if isinstance(operand, bool) or not isinstance(operand, int | float):
                msg = f"{where}: {operator} compares with a number, got {echo(operand)}"
                raise ValueError(msg)
        elif not _is_scalar(operand):
            msg = f"{where}: {operator} takes a string, number or boolean, got {echo(operand)}"
            raise ValueError(msg)
        return {operator: operand}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _Scalar)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "str"
