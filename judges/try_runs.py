"""The form's "Try it", run by a worker rather than inside the web request: a slow or hanging model holds a worker
thread for at most the endpoint's timeout, never a web worker. judges.manual.start_try writes a TryRun and queues
`run`; the page polls `outcome_of` every few seconds until it is done (or `expired`: no worker took it)."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core import serializers
from django.db import connection
from django.utils import timezone

from judges import limits, spend, worker
from judges.llm import PROVIDER_ERROR, RATE_LIMITED, CallResult
from judges.models import Judge, Scope, TryRun
from judges.preparation import Prepared, definition_of, prepare_session, prepare_trace
from judges.results import Outcome
from traces.models import Session, Trace

logger = logging.getLogger(__name__)

KEPT_FOR = timedelta(days=1)
WAIT_FOR_A_WORKER = timedelta(seconds=60)  # on top of the longest the call itself may take


def try_judge(unsaved: Judge, target: Trace | Session, *, shown_name: str = "") -> Outcome:
    """The unsaved definition on one trace or session: one model call under the endpoint's limits (and the judge's
    spend cap when it is a saved judge being edited); nothing is recorded."""
    definition = definition_of(unsaved)
    if shown_name:
        definition.name = shown_name
    prepared = prepare_session(definition, target) if unsaved.scope == Scope.SESSION else prepare_trace(definition, target)
    return call_within_limits(unsaved, prepared, wait_seconds=unsaved.endpoint.timeout_seconds)


def call_within_limits(judge: Judge, prepared: Prepared, *, wait_seconds: float) -> Outcome:
    """One call outside any evaluation ("Try it" on the form's unsaved judge), under the same limits as the
    workers: the judge's spend cap, one of the endpoint's shared slots and its per-minute budget. Waits up to
    `wait_seconds` for a slot."""
    outcome = worker.outcome_without_call(prepared)
    if outcome is not None:
        return outcome
    holder = f"{worker.new_token()}:try"
    deadline = time.monotonic() + wait_seconds
    while (slot := worker.take_slot(judge.endpoint, holder)) is None:
        if time.monotonic() >= deadline:
            message = f"All {judge.endpoint.max_concurrency} concurrent calls of {judge.endpoint.name} are busy judging; try again in a moment."
            return Outcome(CallResult(error_code=RATE_LIMITED, error_message=message))
        time.sleep(worker.POLL_SECONDS * 4)
    reserved = spend.estimate(judge, prepared) if judge.pk and judge.daily_cost_cap_usd is not None else worker.ZERO
    if (capped := spend.reserve(judge, reserved)) is not None:
        limits.release(slot, holder)
        return Outcome(capped)
    try:
        outcome = worker.call_model(judge, prepared)
    finally:
        limits.release(slot, holder)
    spend.settle(judge, reserved, outcome.result.cost_usd)
    return outcome


def definition_json(unsaved: Judge) -> dict[str, Any]:
    return json.loads(serializers.serialize("json", [unsaved]))[0]


def judge_from(definition: dict[str, Any]) -> Judge:
    """The unsaved judge back (never to be saved: it may carry an existing judge's pk, for its spend cap)."""
    [found] = serializers.deserialize("json", json.dumps([definition]))
    return found.object


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    result = {key: str(value) if isinstance(value, Decimal) else value for key, value in asdict(outcome.result).items()}
    return {"result": result, "truncated": outcome.truncated, "messages": outcome.messages}


def outcome_of(run: TryRun) -> Outcome | None:
    """What the call said, once the run is done; None while it is not."""
    if run.status != TryRun.Status.DONE or run.outcome is None:
        return None
    result = dict(run.outcome["result"])
    if result.get("cost_usd") is not None:
        result["cost_usd"] = Decimal(result["cost_usd"])
    return Outcome(CallResult(**result), truncated=run.outcome["truncated"], messages=run.outcome["messages"])


def expired(run: TryRun, now=None) -> bool:
    """Not done long after any worker would have finished it (none is running, or it died on it)."""
    if run.status == TryRun.Status.DONE:
        return False
    endpoint = judge_from(run.definition).endpoint
    longest = timedelta(seconds=endpoint.timeout_seconds * (endpoint.max_retries + 1)) + WAIT_FOR_A_WORKER
    return (now or timezone.now()) - run.created_at > longest


def run(run_id: str) -> bool:
    """Make the run's call and store what it said. False when there was nothing to do (taken by another worker,
    done already, or its trace is gone)."""
    if not TryRun.objects.filter(pk=run_id, status=TryRun.Status.QUEUED).update(status=TryRun.Status.RUNNING):
        return False
    tried = TryRun.objects.select_related("trace", "session").get(pk=run_id)
    target = tried.trace or tried.session
    try:
        outcome = try_judge(judge_from(tried.definition), target, shown_name=tried.shown_name)
    except Exception as error:  # a bug on our side: shown on the page (and logged), not retried
        logger.exception("Try it %s failed", run_id)
        outcome = Outcome(CallResult(error_code=PROVIDER_ERROR, error_message=f"internal error: {type(error).__name__}: {error}"))
    TryRun.objects.filter(pk=run_id).update(status=TryRun.Status.DONE, outcome=outcome_json(outcome), finished_at=timezone.now())
    return True


def run_waiting(pool: ThreadPoolExecutor, limit: int = 4) -> int:
    """Start runs still waiting for a worker in `pool` (a judging drain's: side work, so that a Try it doesn't wait
    behind a drain that may last minutes on a lone worker process); their queued tasks then find them taken.
    Returns how many were started."""
    waiting = list(TryRun.objects.filter(status=TryRun.Status.QUEUED).order_by("created_at").values_list("pk", flat=True)[:limit])
    for run_id in waiting:
        pool.submit(_run_in_thread, str(run_id))
    return len(waiting)


def _run_in_thread(run_id: str) -> None:
    try:
        run(run_id)
    finally:
        connection.close()  # the pool's thread is not Django's: its connection would outlive the run


def drop_old(now=None) -> int:
    return TryRun.objects.filter(created_at__lt=(now or timezone.now()) - KEPT_FOR).delete()[0]
