"""Provider outages: transient failures are retried later, never recorded as errors while the provider is down.

A call that still fails with a transient error after the model call's own retries (5xx, 429, timeouts, refused
connections) gives its evaluation back to the queue with a backoff (`not_before`). The endpoint remembers when
its current run of failures began (`failing_since`; any answer clears it, in the statement with which
judges.limits.record_calls adapts the endpoint's limit to a round of answers); after `outage_retry_seconds` of
nothing but failures it pauses itself with the reason, so nobody's work is claimed and failed one by one. The sweep
checks each paused endpoint once a minute with a tiny call and resumes it when it answers.

An evaluation that keeps failing while its endpoint answers others (each of its failures starts a new run) is
not an outage but a request the provider can't serve: after MAX_ISOLATED_FAILURES it is recorded as an error."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from judges.llm import ERROR_TITLES, TRANSIENT, CallResult, complete
from judges.models import Evaluation, EvaluationStatus, ModelEndpoint
from judges.preparation import endpoint_config

logger = logging.getLogger(__name__)

MAX_ISOLATED_FAILURES = 5
FIRST_RETRY_SECONDS = 5.0
MIN_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


def is_transient(result: CallResult) -> bool:
    return result.error_code in TRANSIENT


def retry_delay(failures: int, retry_after: float | None) -> float:
    """5, 10, 20, 40, 60, 60 … seconds, or what the provider asked for (within the cap)."""
    if retry_after is not None:
        return min(MAX_RETRY_SECONDS, max(MIN_RETRY_SECONDS, retry_after))
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** min(failures, 6))


def defer(evaluation: Evaluation, token: str, result: CallResult) -> datetime | None:
    """After a transient failure: give the evaluation back to the queue for a later try and return when — or
    None when it should be recorded as an error (it keeps failing while the endpoint serves others)."""
    endpoint = evaluation.judge.endpoint
    now = timezone.now()
    starts_a_run = ModelEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now) == 1
    if starts_a_run and evaluation.transient_failures + 1 >= MAX_ISOLATED_FAILURES:
        return None
    failing_since = ModelEndpoint.objects.filter(pk=endpoint.pk).values_list("failing_since", flat=True).first() or now
    if now - failing_since >= timedelta(seconds=endpoint.outage_retry_seconds):
        pause(endpoint, result, failing_since)
    retry_at = now + timedelta(seconds=retry_delay(evaluation.transient_failures, result.retry_after_seconds))
    Evaluation.objects.filter(pk=evaluation.pk, claimed_by=token, status=EvaluationStatus.RUNNING).update(
        status=EvaluationStatus.PENDING,
        claimed_by="",
        lease_expires_at=None,
        attempts=F("attempts") - 1,  # a provider's failure is not a worker's attempt
        transient_failures=F("transient_failures") + (1 if starts_a_run else 0),
        not_before=retry_at,
        error_code=result.error_code,
        error_message=result.error_message,
    )
    logger.info("evaluation %s: %s from %s; retried from %s", evaluation.pk, result.error_code, endpoint.name, retry_at)
    return retry_at


def pause(endpoint: ModelEndpoint, result: CallResult, failing_since) -> None:
    title = ERROR_TITLES.get(result.error_code, result.error_code)
    reason = (
        f"{title} since {failing_since:%Y-%m-%d %H:%M:%S} UTC: {result.error_message} "
        "Judging on this endpoint is paused; evalapp checks it every minute and resumes by itself when it answers."
    )
    if ModelEndpoint.objects.filter(pk=endpoint.pk, paused_reason="").update(paused_reason=reason, paused_at=timezone.now()):
        logger.warning("paused model endpoint %s: %s", endpoint.name, reason)
    endpoint.paused_reason = reason


def probe_paused(now=None) -> list[str]:
    """The sweep's check of each paused endpoint: one tiny call, no retries; resumed when it answers. Returns
    the names of the endpoints resumed."""
    resumed = []
    for endpoint in ModelEndpoint.objects.exclude(paused_reason=""):
        config = endpoint_config(endpoint)
        config.max_retries = 0
        config.timeout_seconds = min(config.timeout_seconds, 10)
        result = complete(config, [{"role": "user", "content": "Reply with the word OK."}], None, max_tokens=5)
        if result.ok:
            ModelEndpoint.objects.filter(pk=endpoint.pk).update(paused_reason="", paused_at=None, failing_since=None)
            logger.warning("model endpoint %s answers again: resumed", endpoint.name)
            resumed.append(endpoint.name)
        elif not is_transient(result):
            logger.warning("paused model endpoint %s still fails: %s", endpoint.name, result.error_message)
    return resumed
