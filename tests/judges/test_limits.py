"""Endpoint slots survive this process forgetting about them; the working limit adapts to the provider."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from judges import limits
from judges.endpoint_actions import update_endpoint
from judges.llm import RATE_LIMITED, CallResult
from judges.models import EndpointSlot, ModelEndpoint

pytestmark = pytest.mark.django_db


def test_slots_lost_to_a_rollback_are_made_again_instead_of_waited_for(endpoint):
    limits.ensure_slots(endpoint)
    EndpointSlot.objects.filter(endpoint=endpoint).delete()  # what a rolled-back transaction leaves behind
    slot = limits.try_acquire(endpoint, "worker-1:1")
    assert slot is not None
    assert EndpointSlot.objects.filter(endpoint=endpoint).count() == endpoint.max_concurrency


def test_busy_slots_are_not_recreated(endpoint):
    limits.ensure_slots(endpoint)
    held = [limits.try_acquire(endpoint, f"worker-1:{n}") for n in range(limits.working_limit(endpoint))]
    assert None not in held
    assert limits.try_acquire(endpoint, "worker-2:1") is None
    assert EndpointSlot.objects.filter(endpoint=endpoint).count() == endpoint.max_concurrency


def held_at_once(endpoint, tries: int = 100) -> int:
    return sum(limits.try_acquire(endpoint, f"probe:{n}") is not None for n in range(tries))


def test_quick_answers_raise_the_limit_to_the_ceiling_and_no_further(endpoint):
    update_endpoint(endpoint, max_concurrency=20)
    assert limits.working_limit(endpoint) == 20  # where an endpoint starts (64), within its ceiling
    update_endpoint(endpoint, max_concurrency=100)
    assert limits.working_limit(endpoint) == 64
    for _ in range(5):
        limits.record_call(endpoint, CallResult(value=True, latency_ms=500))
    assert limits.working_limit(endpoint) == 69  # +1 an answer: a round of N quick answers doubles it
    for _ in range(40):
        limits.record_call(endpoint, CallResult(value=True, latency_ms=500))
    assert limits.working_limit(endpoint) == 100  # the configured ceiling
    limits.ensure_slots(endpoint)
    assert held_at_once(endpoint) == 100


def test_a_429_halves_the_limit_once_per_burst(endpoint):
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=32)
    for _ in range(5):  # one burst of 429s
        limits.record_call(endpoint, CallResult(error_code=RATE_LIMITED, error_message="slow down"))
    assert limits.working_limit(endpoint) == 16
    limits.ensure_slots(endpoint)
    assert held_at_once(endpoint) == 16


def test_an_answer_far_slower_than_the_fastest_halves_the_limit(endpoint):
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=32)
    for _ in range(3):
        limits.record_call(endpoint, CallResult(value=True, latency_ms=400))
    limits.record_call(endpoint, CallResult(value=True, latency_ms=5000))  # the provider is queueing us
    assert limits.working_limit(endpoint) == 17  # 35 / 2


def test_a_round_takes_many_slots_at_once_under_the_working_limit_and_gives_back_only_its_own(endpoint):
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=10)
    limits.ensure_slots(endpoint)
    first = limits.try_acquire_many(endpoint, "worker-1:round-1", 6)
    assert len(set(first)) == 6
    second = limits.try_acquire_many(endpoint, "worker-2:round-1", 6)
    assert len(set(second)) == 4 and not set(first) & set(second)  # the working limit (10) caps them
    assert limits.try_acquire_many(endpoint, "worker-3:round-1", 1) == []
    # a pair whose holder doesn't match (the lease ran out and was taken since) stays taken
    limits.release_many([(first[0], "worker-1:round-1"), (second[0], "worker-1:round-1")])
    assert set(EndpointSlot.objects.filter(holder="").filter(pk__in=first + second).values_list("pk", flat=True)) == {first[0]}
    limits.release_many([(slot, "worker-1:round-1") for slot in first] + [(slot, "worker-2:round-1") for slot in second])
    assert held_at_once(endpoint) == 10


def test_a_round_of_answers_adapts_the_limit_as_the_same_answers_one_by_one(endpoint):
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=32)
    limits.record_calls(endpoint, [CallResult(value=True, latency_ms=400 + n) for n in range(8)])
    assert limits.working_limit(endpoint) == 40  # +1 for each quick answer
    assert ModelEndpoint.objects.get(pk=endpoint.pk).latency_floor_ms == 400  # the fastest of the round
    limits.record_calls(endpoint, [CallResult(value=True, latency_ms=400), CallResult(value=True, latency_ms=5000)])
    assert limits.working_limit(endpoint) == 20  # one answer far slower than the fastest: halved
    limits.record_calls(endpoint, [CallResult(value=True, latency_ms=400), CallResult(error_code=RATE_LIMITED, error_message="slow down")])
    assert limits.working_limit(endpoint) == 20  # a 429 halves it, but at most once every 2 s


def test_a_slot_whose_lease_ran_out_is_taken_by_the_next_round_and_only_that_one(endpoint):
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=4)
    limits.ensure_slots(endpoint)
    held = limits.try_acquire_many(endpoint, "dead-worker:round-1", 4)
    assert len(held) == 4 and limits.try_acquire_many(endpoint, "worker-2:round-1", 4) == []
    EndpointSlot.objects.filter(pk=held[2]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert limits.try_acquire_many(endpoint, "worker-2:round-2", 4) == [held[2]]
    assert EndpointSlot.objects.get(pk=held[2]).holder == "worker-2:round-2"


def test_slow_answers_halve_the_limit_once_then_not_again_for_two_seconds(endpoint):
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(adaptive_limit=32, latency_floor_ms=400)
    limits.record_calls(endpoint, [CallResult(value=True, latency_ms=5000)])
    assert limits.working_limit(endpoint) == 16
    limits.record_calls(endpoint, [CallResult(value=True, latency_ms=5000)])
    assert limits.working_limit(endpoint) == 16  # the same slowdown: not halved twice
    with time_machine.travel(timezone.now() + timedelta(seconds=3)):
        limits.record_calls(endpoint, [CallResult(value=True, latency_ms=5000)])
        assert limits.working_limit(endpoint) == 8


def test_a_round_with_an_answer_ends_the_endpoints_run_of_failures_and_one_without_does_not(endpoint):
    began = timezone.now() - timedelta(seconds=30)
    failing = lambda: ModelEndpoint.objects.get(pk=endpoint.pk).failing_since  # noqa: E731
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=began)
    limits.record_calls(endpoint, [CallResult(error_code="provider_error", error_message="502"), CallResult(error_code="timeout", error_message="slow")])
    assert failing() == began
    limits.record_calls(endpoint, [CallResult(error_code="timeout", error_message="slow"), CallResult(value=True, latency_ms=400)])
    assert failing() is None
    for answers in ([CallResult(value=True, latency_ms=0)], [CallResult(value=True, latency_ms=400), CallResult(error_code=RATE_LIMITED, error_message="slow down")]):
        ModelEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=began)
        limits.record_calls(endpoint, answers)  # an answer with no measured time; an answer beside a 429
        assert failing() is None
