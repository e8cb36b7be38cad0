"""Endpoint slots survive this process forgetting about them."""

from __future__ import annotations

import pytest

from judges import limits
from judges.models import EndpointSlot

pytestmark = pytest.mark.django_db


def test_slots_lost_to_a_rollback_are_made_again_instead_of_waited_for(endpoint):
    limits.ensure_slots(endpoint)
    EndpointSlot.objects.filter(endpoint=endpoint).delete()  # what a rolled-back transaction leaves behind
    slot = limits.try_acquire(endpoint, "worker-1:1")
    assert slot is not None
    assert EndpointSlot.objects.filter(endpoint=endpoint).count() == endpoint.max_concurrency


def test_busy_slots_are_not_recreated(endpoint):
    limits.ensure_slots(endpoint)
    held = [limits.try_acquire(endpoint, f"worker-1:{n}") for n in range(endpoint.max_concurrency)]
    assert None not in held
    assert limits.try_acquire(endpoint, "worker-2:1") is None
    assert EndpointSlot.objects.filter(endpoint=endpoint).count() == endpoint.max_concurrency
