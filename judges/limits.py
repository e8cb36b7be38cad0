"""Endpoint limits that hold across processes and machines: concurrency as leased slots, requests per minute as
a per-minute counter, both in the database every worker shares. Used by engine.drain, from its main thread."""

from __future__ import annotations

import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection
from django.db.models import F
from django.utils import timezone

from judges import sql
from judges.llm import RATE_LIMITED, CallResult
from judges.models import ADAPTIVE_START, EndpointMinute, EndpointSlot, ModelEndpoint

# The working concurrency limit of an endpoint that has not answered yet; it then adapts between 1 and the
# endpoint's max_concurrency (its ceiling).
INITIAL_LIMIT = float(ADAPTIVE_START)
# A call slower than this many times the fastest lately means the provider is queueing: back off.
SLOW_FACTOR = 3.0
# Lower the limit at most this often, so one burst of 429s halves it once, not once per call.
LOWER_EVERY = timedelta(seconds=2)

# The drain's per-round statements (take slots, give them back, adapt the limit) are written in SQL: Django compiling
# them took ~20% of the draining thread's time (py-spy, design note 53), more than the databases spent running them.


_known_slots: set[tuple[int, int]] = set()
_known_lock = threading.Lock()


def ensure_slots(endpoint: ModelEndpoint) -> None:
    key = (endpoint.pk, endpoint.max_concurrency)
    with _known_lock:
        if key in _known_slots:
            return
    EndpointSlot.objects.bulk_create(
        [EndpointSlot(endpoint=endpoint, slot=number) for number in range(endpoint.max_concurrency)], ignore_conflicts=True
    )
    with _known_lock:
        _known_slots.add(key)


def try_acquire(endpoint: ModelEndpoint, holder: str) -> int | None:
    acquired = try_acquire_many(endpoint, holder, 1)
    return acquired[0] if acquired else None


def try_acquire_many(endpoint: ModelEndpoint, holder: str, count: int) -> list[int]:
    """Up to `count` free slots below the endpoint's working limit, all leased to `holder` (a name no other
    acquisition uses): the choice and the lease in one UPDATE … RETURNING, as a claim is (judges.claims._take) —
    one statement a round in the draining thread rather than two (note 56)."""
    if count <= 0:
        return []
    now = timezone.now()
    free_at = sql.when(now)
    # Free, and below the adaptive limit (read from the row every worker updates, not from this possibly stale object).
    # PostgreSQL: slots another worker is taking this moment are passed over, not waited for; SQLite runs the
    # statement inside its write lock. What was chosen is checked again as it is updated (still free).
    lock = " FOR UPDATE OF s SKIP LOCKED" if connection.vendor == "postgresql" else ""
    chosen = (
        f"SELECT s.id FROM {sql.table(EndpointSlot)} s JOIN {sql.table(ModelEndpoint)} e ON e.id = s.endpoint_id"
        " WHERE s.endpoint_id = %s AND s.slot < %s AND s.slot < COALESCE(e.adaptive_limit, %s)"
        f" AND (s.holder = '' OR s.expires_at < %s) LIMIT %s{lock}"
    )
    until = sql.when(now + timedelta(seconds=settings.EVALAPP_LEASE_SECONDS))
    taken = sql.rows(
        f"WITH chosen AS ({chosen}) UPDATE {sql.table(EndpointSlot)} SET holder = %s, expires_at = %s"
        " WHERE id IN (SELECT id FROM chosen) AND (holder = '' OR expires_at < %s) RETURNING id",
        [endpoint.pk, endpoint.max_concurrency, INITIAL_LIMIT, free_at, count, holder, until, free_at],
    )
    if not taken and not EndpointSlot.objects.filter(endpoint=endpoint).exists():
        # The slots this process remembers creating are gone (a rolled-back transaction, an endpoint re-created
        # under the same id): make them again rather than wait for a slot that can never free up.
        with _known_lock:
            _known_slots.discard((endpoint.pk, endpoint.max_concurrency))
        ensure_slots(endpoint)
        return try_acquire_many(endpoint, holder, count) if EndpointSlot.objects.filter(endpoint=endpoint).exists() else []
    return [pk for (pk,) in taken]


def release(slot_pk: int, holder: str) -> None:
    EndpointSlot.objects.filter(pk=slot_pk, holder=holder).update(holder="", expires_at=None)


def release_many(slots: list[tuple[int, str]]) -> None:
    """Give back (slot, holder) pairs in one UPDATE; a slot whose lease ran out and was taken since stays taken."""
    if not slots:
        return
    by_holder: dict[str, list[int]] = {}
    for slot_pk, holder in slots:
        by_holder.setdefault(holder, []).append(slot_pk)  # a round's slots share one holder name
    held = " OR ".join(f"(holder = %s AND id IN ({sql.placeholders(pks)}))" for pks in by_holder.values())
    params = [value for holder, pks in by_holder.items() for value in (holder, *pks)]
    sql.rows(f"UPDATE {sql.table(EndpointSlot)} SET holder = '', expires_at = NULL WHERE {held}", params)


def renew(holder_prefix: str) -> None:
    EndpointSlot.objects.filter(holder__startswith=holder_prefix).update(
        expires_at=timezone.now() + timedelta(seconds=settings.EVALAPP_LEASE_SECONDS)
    )


def take_minute_budget(endpoint: ModelEndpoint) -> float:
    """0 if a call may start now, else seconds until the next minute opens."""
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    if EndpointMinute.objects.filter(endpoint=endpoint, minute=minute, calls__lt=endpoint.requests_per_minute).update(calls=F("calls") + 1):
        return 0.0
    try:
        EndpointMinute.objects.create(endpoint=endpoint, minute=minute, calls=1)
        EndpointMinute.objects.filter(endpoint=endpoint, minute__lt=minute - timedelta(minutes=5)).delete()
        return 0.0
    except IntegrityError:  # another worker opened this minute first; it may still have room
        if EndpointMinute.objects.filter(endpoint=endpoint, minute=minute, calls__lt=endpoint.requests_per_minute).update(calls=F("calls") + 1):
            return 0.0
    return 60 - (now - minute).total_seconds()


# --- the adaptive limit (additive increase, multiplicative decrease) ------------------------------------


def _extremes() -> tuple[str, str]:
    """SQL's two-argument greatest and least on this back end."""
    return ("GREATEST", "LEAST") if connection.vendor == "postgresql" else ("MAX", "MIN")


def _lower(endpoint_pk: int, now) -> None:
    greatest, _ = _extremes()
    sql.rows(
        f"UPDATE {sql.table(ModelEndpoint)} SET adaptive_limit = {greatest}(1.0, COALESCE(adaptive_limit, %s) / 2), limit_lowered_at = %s"
        " WHERE id = %s AND (limit_lowered_at IS NULL OR limit_lowered_at <= %s)",
        [INITIAL_LIMIT, sql.when(now), endpoint_pk, sql.when(now - LOWER_EVERY)],
    )


def record_call(endpoint: ModelEndpoint, result: CallResult) -> None:
    record_calls(endpoint, [result])


def record_calls(endpoint: ModelEndpoint, results: list[CallResult]) -> None:
    """Adapt the endpoint's working limit to how its provider answered these calls, in one UPDATE: +1 for every quick
    answer (so a round of N quick answers doubles it, up to the ceiling); halved on a 429 or an answer far slower
    than the fastest lately (at most once per LOWER_EVERY, so one burst halves it once). An answer among them also
    ends the endpoint's run of failures (`failing_since`, judges.outages), in the same UPDATE where it can: the
    draining thread makes it after every round of answers (note 56)."""
    now = timezone.now()
    limited = any(result.error_code == RATE_LIMITED for result in results)
    latencies = [float(result.latency_ms) for result in results if result.ok and result.latency_ms]
    if limited or not latencies:
        if limited:
            _lower(endpoint.pk, now)
        if any(result.ok for result in results):
            sql.rows(f"UPDATE {sql.table(ModelEndpoint)} SET failing_since = NULL WHERE id = %s AND failing_since IS NOT NULL", [endpoint.pk])
        return
    slowest, fastest = max(latencies), min(latencies)
    greatest, least = _extremes()
    threshold, lowered_before = slowest / SLOW_FACTOR, sql.when(now - LOWER_EVERY)
    slow = "(latency_floor_ms < %s AND (limit_lowered_at IS NULL OR limit_lowered_at <= %s))"
    quick = "(latency_floor_ms IS NULL OR latency_floor_ms >= %s)"
    current = "COALESCE(adaptive_limit, %s)"
    sql.rows(
        f"UPDATE {sql.table(ModelEndpoint)} SET"
        # The floor follows the fastest answers, drifting up 2% a round so a provider that got slower for good isn't
        # taken for a queueing one forever.
        f" latency_floor_ms = {least}(COALESCE(latency_floor_ms, %s) * 1.02 + 1, %s),"
        f" adaptive_limit = CASE WHEN {slow} THEN {greatest}(1.0, {current} / 2)"
        f" WHEN {quick} THEN {least}(max_concurrency * 1.0, {current} + %s) ELSE adaptive_limit END,"
        f" limit_lowered_at = CASE WHEN {slow} THEN %s ELSE limit_lowered_at END,"
        " failing_since = NULL"
        " WHERE id = %s",
        [fastest, fastest, threshold, lowered_before, INITIAL_LIMIT, threshold, INITIAL_LIMIT, float(len(latencies)),
         threshold, lowered_before, sql.when(now), endpoint.pk],
    )


def working_limit(endpoint: ModelEndpoint) -> int:
    """How many calls may be in flight now (for pages and messages)."""
    limit = ModelEndpoint.objects.filter(pk=endpoint.pk).values_list("adaptive_limit", flat=True).first()
    return max(1, min(endpoint.max_concurrency, int(limit if limit is not None else INITIAL_LIMIT)))
