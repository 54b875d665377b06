"""Checking a Chroma ``where`` filter that an agent wrote, before it reaches the store.

An object with several fields becomes an ``$and``, and an ``$and`` / ``$or`` of one condition
is that condition. Bounds (:data:`MAX_DEPTH`, :data:`MAX_TERMS`) make a hostile filter cheap to
refuse; messages repeat little of what the agent sent.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from langchain_tasb.validation import echo

if TYPE_CHECKING:
    from collections.abc import Callable

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
"""Operators comparing a field with one value (``$gt`` and the like need a number)."""
MEMBERSHIP = ("$in", "$nin")
"""Operators comparing a field with a non-empty list of values."""
LOGICAL = ("$and", "$or")
OPERATORS = COMPARISONS + MEMBERSHIP + LOGICAL

EXAMPLE = '{"$and": [{"source": "guide.md"}, {"chunk": {"$lt": 3}}]}'
"""A filter shown in messages and in the tool description."""

MAX_DEPTH = 32
"""Most levels of ``$and`` / ``$or`` one filter may nest."""
MAX_TERMS = 1_000
"""Most conditions and list values one filter may hold, counted together."""

_TOO_LARGE = (
    f"filter is too large: at most {MAX_DEPTH} levels of $and/$or and {MAX_TERMS} conditions "
    "and list values in all; use fewer values or split the search"
)
_Scalar = str | int | float | bool


def check_filter(value: Any) -> dict[str, Any] | None:
    """A Chroma ``where`` filter from what an agent passed, or an error saying what to change.

    ``value`` may be a JSON object as a string (some hosts send JSON text). Returns the filter
    normalised (see the module docstring), None for no filter.

    Raises:
        ValueError: A malformed filter, an unknown operator, or one over the bounds; the
            message names the offending part.
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
    terms = 0

    def count(n: int) -> None:
        nonlocal terms
        terms += n
        if terms > MAX_TERMS:
            raise ValueError(_TOO_LARGE)

    def condition(value: Any, where: str, depth: int) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            msg = (
                f'{where} must be a non-empty JSON object such as {{"source": "guide.md"}}, '
                f"got {echo(value)}; combine conditions like this: {EXAMPLE}"
            )
            raise ValueError(msg)
        if len(value) > 1:
            count(len(value))
            return {"$and": [condition({k: v}, where, depth) for k, v in value.items()]}
        ((key, item),) = value.items()
        if key in LOGICAL:
            if depth >= MAX_DEPTH:
                raise ValueError(_TOO_LARGE)
            if not isinstance(item, list) or not item:
                msg = f"{where}: {key} takes a non-empty list of conditions, e.g. {EXAMPLE}"
                raise ValueError(msg)
            count(len(item))
            found = [condition(c, f"{where}.{key}[{i}]", depth + 1) for i, c in enumerate(item)]
            return found[0] if len(found) == 1 else {key: found}
        if not isinstance(key, str) or key.startswith("$"):
            msg = (
                f"{where}: unknown operator {echo(key)} at the top of a condition; only "
                f"{' and '.join(LOGICAL)} combine conditions there, e.g. {EXAMPLE}"
            )
            raise ValueError(msg)
        count(1)
        field = f"{where}.{key if len(key) <= 60 else echo(key, 60)}"
        return {key: item if isinstance(item, _Scalar) else _operator(item, field, count)}

    return condition(value, "filter", 0)


def _operator(item: Any, where: str, count: Callable[[int], None]) -> dict[str, Any]:
    """``{OP: OPERAND}`` on a field, checked."""
    if not isinstance(item, dict) or len(item) != 1:
        msg = (
            f"{where}: a field takes a value (string, number or boolean) or one operator "
            f'object such as {{"$in": ["a.md", "b.md"]}}, got {echo(item)}'
        )
        raise ValueError(msg)
    ((operator, operand),) = item.items()
    if operator in MEMBERSHIP:
        if isinstance(operand, list):
            count(len(operand))
        if not isinstance(operand, list) or not operand or not all(map(_is_scalar, operand)):
            msg = f"{where}: {operator} takes a non-empty list of values, got {echo(operand)}"
            raise ValueError(msg)
        if len({_kind(v) for v in operand}) > 1:
            msg = f"{where}: the values of {operator} must all be of one type, got {echo(operand)}"
            raise ValueError(msg)
    elif operator in COMPARISONS[2:]:
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            msg = f"{where}: {operator} compares with a number, got {echo(operand)}"
            raise ValueError(msg)
    elif operator not in COMPARISONS:
        msg = (
            f"{where}: unknown operator {echo(operator)}; a field takes one of "
            f"{', '.join(COMPARISONS + MEMBERSHIP)}"
        )
        raise ValueError(msg)
    elif not _is_scalar(operand):
        msg = f"{where}: {operator} takes a string, number or boolean, got {echo(operand)}"
        raise ValueError(msg)
    return {operator: operand}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _Scalar)


def _kind(value: Any) -> str:
    return (
        "bool" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "str"
    )
