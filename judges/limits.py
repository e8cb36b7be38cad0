"""Endpoint limits that hold across processes and machines: concurrency as leased slots, requests per minute as
a per-minute counter, both in the database every worker shares. Used by engine.drain, from its main thread."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Case, F, FloatField, Q, Value, When
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from judges.llm import RATE_LIMITED, CallResult
from judges.models import ADAPTIVE_START, EndpointMinute, EndpointSlot, ModelEndpoint

# The working concurrency limit of an endpoint that has not answered yet; it then adapts between 1 and the
# endpoint's max_concurrency (its ceiling).
INITIAL_LIMIT = float(ADAPTIVE_START)
# A call slower than this many times the fastest lately means the provider is queueing: back off.
SLOW_FACTOR = 3.0
# Lower the limit at most this often, so one burst of 429s halves it once, not once per call.
LOWER_EVERY = timedelta(seconds=2)

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
    acquisition uses) in one UPDATE: three statements for a round of calls rather than two for each call."""
    if count <= 0:
        return []
    now = timezone.now()
    free = Q(holder="") | Q(expires_at__lt=now)
    # Below the adaptive limit (read from the row every worker updates, not from this possibly stale object).
    working = Coalesce(F("endpoint__adaptive_limit"), Value(INITIAL_LIMIT), output_field=FloatField())
    candidates = list(
        EndpointSlot.objects.filter(free, endpoint=endpoint, slot__lt=endpoint.max_concurrency)
        .filter(slot__lt=working)
        .values_list("pk", flat=True)[: count + 8]
    )
    if not candidates and not EndpointSlot.objects.filter(endpoint=endpoint).exists():
        # The slots this process remembers creating are gone (a rolled-back transaction, an endpoint re-created
        # under the same id): make them again rather than wait for a slot that can never free up.
        with _known_lock:
            _known_slots.discard((endpoint.pk, endpoint.max_concurrency))
        ensure_slots(endpoint)
        return try_acquire_many(endpoint, holder, count) if EndpointSlot.objects.filter(endpoint=endpoint).exists() else []
    if not candidates:
        return []
    random.shuffle(candidates)  # fewer collisions between workers racing for the same slots
    chosen = candidates[:count]
    EndpointSlot.objects.filter(free, pk__in=chosen).update(holder=holder, expires_at=now + timedelta(seconds=settings.EVALAPP_LEASE_SECONDS))
    return list(EndpointSlot.objects.filter(pk__in=chosen, holder=holder).values_list("pk", flat=True))


def release(slot_pk: int, holder: str) -> None:
    EndpointSlot.objects.filter(pk=slot_pk, holder=holder).update(holder="", expires_at=None)


def release_many(slots: list[tuple[int, str]]) -> None:
    """Give back (slot, holder) pairs in one UPDATE; a slot whose lease ran out and was taken since stays taken."""
    if slots:
        held = Q()
        for slot_pk, holder in slots:
            held |= Q(pk=slot_pk, holder=holder)
        EndpointSlot.objects.filter(held).update(holder="", expires_at=None)


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


def _lower(endpoint_pk: int, now) -> None:
    recently = Q(limit_lowered_at__isnull=False) & Q(limit_lowered_at__gt=now - LOWER_EVERY)
    current = Coalesce(F("adaptive_limit"), Value(INITIAL_LIMIT), output_field=FloatField())
    ModelEndpoint.objects.filter(pk=endpoint_pk).exclude(recently).update(
        adaptive_limit=Greatest(Value(1.0), current / 2, output_field=FloatField()), limit_lowered_at=now
    )


def record_call(endpoint: ModelEndpoint, result: CallResult) -> None:
    record_calls(endpoint, [result])


def record_calls(endpoint: ModelEndpoint, results: list[CallResult]) -> None:
    """Adapt the endpoint's working limit to how its provider answered these calls, in one UPDATE: +1 for every quick
    answer (so a round of N quick answers doubles it, up to the ceiling); halved on a 429 or an answer far slower
    than the fastest lately (at most once per LOWER_EVERY, so one burst halves it once)."""
    now = timezone.now()
    if any(result.error_code == RATE_LIMITED for result in results):
        _lower(endpoint.pk, now)
        return
    latencies = [float(result.latency_ms) for result in results if result.ok and result.latency_ms]
    if not latencies:
        return
    slowest, fastest = max(latencies), min(latencies)
    floor = Coalesce(F("latency_floor_ms"), Value(fastest), output_field=FloatField())
    current = Coalesce(F("adaptive_limit"), Value(INITIAL_LIMIT), output_field=FloatField())
    slow = Q(latency_floor_ms__lt=slowest / SLOW_FACTOR) & (Q(limit_lowered_at__isnull=True) | Q(limit_lowered_at__lte=now - LOWER_EVERY))
    quick = Q(latency_floor_ms__isnull=True) | Q(latency_floor_ms__gte=slowest / SLOW_FACTOR)
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(
        # The floor follows the fastest answers, drifting up 2% a round so a provider that got slower for good
        # isn't taken for a queueing one forever.
        latency_floor_ms=Least(floor * 1.02 + 1, Value(fastest), output_field=FloatField()),
        adaptive_limit=Case(
            When(slow, then=Greatest(Value(1.0), current / 2, output_field=FloatField())),
            When(quick, then=Least(F("max_concurrency") * 1.0, current + len(latencies), output_field=FloatField())),
            default=F("adaptive_limit"),
            output_field=FloatField(),
        ),
        limit_lowered_at=Case(When(slow, then=Value(now)), default=F("limit_lowered_at")),
    )


def working_limit(endpoint: ModelEndpoint) -> int:
    """How many calls may be in flight now (for pages and messages)."""
    limit = ModelEndpoint.objects.filter(pk=endpoint.pk).values_list("adaptive_limit", flat=True).first()
    return max(1, min(endpoint.max_concurrency, int(limit if limit is not None else INITIAL_LIMIT)))
