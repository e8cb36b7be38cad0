"""Endpoint limits that hold across processes and machines: concurrency as leased slots, requests per minute as
a per-minute counter, both in the database every worker shares. Used by engine.drain, from its main thread."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone

from judges.models import EndpointMinute, EndpointSlot, ModelEndpoint

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
    now = timezone.now()
    free = Q(holder="") | Q(expires_at__lt=now)
    candidates = list(
        EndpointSlot.objects.filter(free, endpoint=endpoint, slot__lt=endpoint.max_concurrency).values_list("pk", flat=True)[:8]
    )
    if not candidates and not EndpointSlot.objects.filter(endpoint=endpoint).exists():
        # The slots this process remembers creating are gone (a rolled-back transaction, an endpoint re-created
        # under the same id): make them again rather than wait for a slot that can never free up.
        with _known_lock:
            _known_slots.discard((endpoint.pk, endpoint.max_concurrency))
        ensure_slots(endpoint)
        return try_acquire(endpoint, holder) if EndpointSlot.objects.filter(endpoint=endpoint).exists() else None
    random.shuffle(candidates)  # fewer collisions between workers racing for the same slot
    for pk in candidates:
        if EndpointSlot.objects.filter(free, pk=pk).update(holder=holder, expires_at=now + timedelta(seconds=settings.EVALAPP_LEASE_SECONDS)):
            return pk
    return None


def release(slot_pk: int, holder: str) -> None:
    EndpointSlot.objects.filter(pk=slot_pk, holder=holder).update(holder="", expires_at=None)


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
