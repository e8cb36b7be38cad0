"""The Overview's time range: presets (`range=1h|24h|7d|30d`) or `from`/`to`, and the bucket size that goes with
the range's length (minutes up to 2 h, hours up to 48 h, days beyond). All in UTC.

The presets are also the Traces tab's time quick filters and the Sessions tab's "last activity" choices."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from traces.payload import EARLIEST_TIME, LATEST_TIME, supported_utc


@dataclass(frozen=True)
class Preset:
    label: str
    span: timedelta


PRESETS: dict[str, Preset] = {
    "1h": Preset("Last hour", timedelta(hours=1)),
    "24h": Preset("Last 24 hours", timedelta(hours=24)),
    "7d": Preset("Last 7 days", timedelta(days=7)),
    "30d": Preset("Last 30 days", timedelta(days=30)),
}
DEFAULT_PRESET = "7d"
MAX_RANGE = timedelta(days=366)
# Minute buckets for short ranges (an hour in hour buckets is one point), hours up to 48 h, days beyond.
BUCKETS: tuple[tuple[timedelta, str], ...] = ((timedelta(hours=2), "minute"), (timedelta(hours=48), "hour"))
BUCKET_STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class RangeError(ValueError):
    """A bad `range`/`from`/`to`: each problem with the parameter it is about."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors

    def as_json(self) -> dict[str, Any]:
        return {"detail": str(self), "errors": [{"field": field, "message": message} for field, message in self.errors]}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime  # exclusive
    bucket: str  # "minute" | "hour" | "day"
    preset: str | None = None  # "1h", "24h", "7d", "30d"; None for a custom from/to

    @property
    def label(self) -> str:
        if self.preset:
            return PRESETS[self.preset].label
        return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC"

    def buckets(self) -> list[datetime]:
        """Every bucket start in the range, oldest first (the first may begin before `start`)."""
        current = truncate(self.start, self.bucket)
        step = BUCKET_STEPS[self.bucket]
        found = []
        while current < self.end:
            found.append(current)
            current += step
        return found


def truncate(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_for(span: timedelta) -> str:
    for longest, bucket in BUCKETS:
        if span <= longest:
            return bucket
    return "day"


def _parse_moment(field: str, raw: str, *, end_of_day: bool) -> datetime:
    """An ISO date (a whole UTC day: `to` includes it) or an ISO date-time (without an offset it is UTC)."""
    raw = raw.strip()
    moment = day = None
    try:
        if DATE_ONLY.fullmatch(raw):
            day = parse_date(raw)
        else:
            moment = parse_datetime(raw)
    except ValueError:  # well-formed but impossible, like 2026-02-30
        pass
    if moment is None and day is None:
        raise RangeError([(field, f"{raw!r} is not a date; use YYYY-MM-DD or an ISO date-time like 2026-11-20T09:30Z")])
    if moment is None:
        assert isinstance(day, date)
        if not EARLIEST_TIME.year <= day.year < LATEST_TIME.year:  # before adding a day to 9999-12-31
            raise RangeError([(field, f"{day.isoformat()} is outside the years 1970–2099 that evalapp stores")])
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), tzinfo=UTC)
    elif timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        return supported_utc(moment, end=end_of_day)
    except ValueError as error:
        raise RangeError([(field, str(error))]) from None


def parse_range(params: Mapping[str, str], now: datetime | None = None) -> TimeRange:
    """From query parameters: `range=1h|24h|7d|30d` (default 7d), or `from` (and optionally `to`, default now)
    as ISO dates or date-times, which win over `range`. Raises RangeError."""
    now = now or timezone.now()
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    if raw_from or raw_to:
        if not raw_from:
            raise RangeError([("from", "is required with 'to': give the start of the range, e.g. 2026-11-01")])
        start = _parse_moment("from", raw_from, end_of_day=False)
        end = _parse_moment("to", raw_to, end_of_day=True) if raw_to else now
        if end <= start:
            raise RangeError([("to", "must be after 'from'")])
        if end - start > MAX_RANGE:
            raise RangeError([("to", f"the range can span at most {MAX_RANGE.days} days; narrow it")])
        return TimeRange(start, end, bucket_for(end - start))
    preset = (params.get("range") or DEFAULT_PRESET).strip()
    if preset not in PRESETS:
        raise RangeError([("range", f"{preset!r} is not a range; use one of {', '.join(PRESETS)}, or give 'from' and 'to'")])
    span = PRESETS[preset].span
    return TimeRange(now - span, now, bucket_for(span), preset)
