"""Keyset pagination over (time desc, id desc): stable while new rows arrive, cheap at any depth."""

from __future__ import annotations

import base64
from datetime import datetime

from django.db.models import Q, QuerySet

from traces.payload import supported_utc


class CursorError(ValueError):
    pass


def encode_cursor(moment: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment_text, pk_text = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        moment = datetime.fromisoformat(moment_text)
        # Cursors we hand out hold an aware time within the years we store and a row id (ASCII digits).
        if moment.tzinfo is None or not (pk_text.isascii() and pk_text.isdigit()):
            raise ValueError(cursor)
        return supported_utc(moment), int(pk_text)
    except ValueError:  # UnicodeDecodeError and binascii.Error too
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
