"""How a filter compares a judge's verdict (`assessment.<judge> = 'no'`, `< 3`, `IS NULL`). Pure Python; the SQL back
end (traces.filter_sql) follows the same rules, and the property test holds them together.

A verdict is the judge's latest valid answer on the trace (an error or "not applicable" is no verdict). It may be a
yes/no, a number, or a text (a category): 'yes'/'no' (or 'true'/'false') read as a yes/no verdict as well as a
text; a number compares with numbers only, text with text only. A comparison between kinds is false — `!=` and
`NOT IN` too — as SQL's NULL makes it."""

from __future__ import annotations

from typing import Any

YES, NO = frozenset({"yes", "true"}), frozenset({"no", "false"})


def as_bool(target: Any) -> bool | None:
    """What a target means to a yes/no verdict, if anything."""
    if isinstance(target, str):
        word = target.strip().lower()
        return True if word in YES else False if word in NO else None
    return None


def _equal(value: Any, target: Any) -> bool | None:
    """True/False when the two can be compared, None when they are of different kinds."""
    if isinstance(value, bool):
        wanted = as_bool(target)
        return None if wanted is None else value == wanted
    if isinstance(value, (int, float)):
        return value == target if isinstance(target, (int, float)) else None
    if isinstance(value, str):
        return value == target if isinstance(target, str) else None
    return None


def compare(value: Any, op: str, target: Any) -> bool:
    if op == "IS NULL":
        return value is None
    if op == "IS NOT NULL":
        return value is not None
    if value is None:
        return False
    if op in ("=", "!="):
        equal = _equal(value, target)
        return equal is not None and (equal if op == "=" else not equal)
    if op in ("IN", "NOT IN"):
        answers = [_equal(value, item) for item in target]
        if op == "IN":
            return any(answers)
        return bool(answers) and all(answer is False for answer in answers)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(target, (int, float))
    if not numeric:
        return False
    return {"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[op]
