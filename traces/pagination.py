"""Keyset pagination over (time desc, id desc): stable while new rows arrive, cheap at any depth."""

from __future__ import annotations

import base64
from datetime import datetime

from django.db.models import Q, QuerySet


class CursorError(ValueError):
    pass


def encode_cursor(moment: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment_text, pk_text = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        return datetime.fromisoformat(moment_text), int(pk_text)
    except (ValueError, UnicodeDecodeError):
        raise CursorError("cursor is not one this server handed out; start again without it") from None


def page(queryset: QuerySet, *, time_field: str, cursor: str | None, size: int) -> tuple[list, str | None]:
    """One page, newest first, and the cursor of the next page (None at the end)."""
    ordered = queryset.order_by(f"-{time_field}", "-pk")
    if cursor:
        moment, pk = decode_cursor(cursor)
        ordered = ordered.filter(Q(**{f"{time_field}__lt": moment}) | Q(**{time_field: moment, "pk__lt": pk}))
    rows = list(ordered[: size + 1])
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, time_field), last.pk)
    return rows, next_cursor
