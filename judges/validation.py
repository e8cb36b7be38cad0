"""Small strict readers for settings that come from forms, the API and the admin alike: each records what is
wrong in `errors[field]` (words a user can act on) and returns the clean value or None."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models


def text(errors: dict[str, str], field: str, value: Any, *, max_chars: int, strip: bool = True) -> str:
    """A string setting: None means empty; a number, list or object is refused (never turned into its text)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[field] = f"must be text, not {type(value).__name__ if not isinstance(value, (dict, list)) else 'a JSON ' + ('object' if isinstance(value, dict) else 'list')}"
        return ""
    if len(value) > max_chars:
        errors[field] = f"is {len(value):,} characters long; the limit is {max_chars:,}"
        return ""
    return value.strip() if strip else value


def positive_int(errors: dict[str, str], field: str, value: Any, *, minimum: int = 1, maximum: int, required: bool) -> int | None:
    if value in (None, ""):
        if required:
            errors[field] = "is required"
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        errors[field] = "must be a whole number"
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        errors[field] = "must be a whole number"
        return None
    if not minimum <= number <= maximum:
        errors[field] = f"must be between {minimum} and {maximum:,}"
        return None
    return number


def decimal_amount(errors: dict[str, str], field: str, value: Any, *, column: models.DecimalField) -> Decimal | None:
    """An amount ≥ 0 that fits `column` once rounded to its decimal places (the database rounds it on save)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        errors[field] = "must be a number"
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        errors[field] = "must be a number"
        return None
    if not number.is_finite() or number < 0 or number.is_signed():  # is_signed: -0 too
        errors[field] = "must be a number ≥ 0"
        return None
    limit = Decimal(1).scaleb(column.max_digits - column.decimal_places)
    # Compared once rounded too (999999.9999999 rounds up to the limit); huge numbers first, which can't be rounded.
    if number >= limit or number.quantize(Decimal(1).scaleb(-column.decimal_places)) >= limit:
        errors[field] = f"must be less than {limit:,f}"
        return None
    return number


def finite_number(errors: dict[str, str], field: str, value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        errors[field] = "must be a number"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors[field] = "must be a number"
        return None
    except OverflowError:  # an int beyond a float, e.g. 10**400
        errors[field] = "must be a finite number"
        return None
    if number != number or number in (float("inf"), float("-inf")):
        errors[field] = "must be a finite number"
        return None
    return number
