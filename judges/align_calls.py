"""align()'s model calls (judges.align): the rewrite call, and the held-out items judged with each candidate's
instructions — direct calls under the workers' limits, kept out of the judge's verdicts.

Every call holds one of the endpoint's shared concurrency slots and room in its per-minute budget
(`worker.take_slot`), leases renewed while calls run, and feeds the endpoint's adaptive limit
(`limits.record_call`); judging calls also reserve against the judge's daily spend cap and settle it
(`spend.reserve` / `spend.settle`). Pool threads make only HTTP calls; the calling thread does the database work."""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from judges import limits, spend, worker
from judges.llm import PROVIDER_ERROR, RATE_LIMITED, CallResult, complete
from judges.models import AlignRun, Judge, ModelEndpoint
from judges.preparation import Prepared, endpoint_config
from judges.results import Outcome

logger = logging.getLogger(__name__)

PARALLEL_CALLS = 4  # in flight at once for one run, within the endpoint's own shared limits
SLOT_WAIT_SLACK_SECONDS = 60


class Progress:
    """A run's call count and cost, updated as each call finishes (the page and the API poll them)."""

    def __init__(self, run_id: Any) -> None:
        self.run_id = run_id

    def add(self, result: CallResult) -> None:
        unknown_price = result.cost_usd is None and result.attempts > 0 and not result.error_code
        AlignRun.objects.filter(pk=self.run_id).update(
            calls_done=F("calls_done") + 1,
            cost_usd=F("cost_usd") + (result.cost_usd or 0),
            cost_unknown_calls=F("cost_unknown_calls") + (1 if unknown_price else 0),
            updated_at=timezone.now(),
        )


def _longest_call(endpoint: ModelEndpoint) -> float:
    return endpoint.timeout_seconds * (endpoint.max_retries + 1)


def rewrite(endpoint: ModelEndpoint, messages: list[dict[str, str]], progress: Progress, *, max_tokens: int) -> CallResult:
    """One plain-text call of the rewriting endpoint, within its slots and per-minute budget."""
    holder = f"{worker.new_token()}:align-rewrite"
    give_up_at = time.monotonic() + _longest_call(endpoint) + SLOT_WAIT_SLACK_SECONDS
    while (slot := worker.take_slot(endpoint, holder)) is None:
        if time.monotonic() >= give_up_at:
            result = CallResult(error_code=RATE_LIMITED, error_message=f"every concurrent call of {endpoint.name} stayed busy; try again later")
            progress.add(result)
            return result
        time.sleep(0.2)
    try:
        result = complete(endpoint_config(endpoint), messages, None, max_tokens=max_tokens)
    finally:
        limits.release(slot, holder)
    limits.record_call(endpoint, result)
    progress.add(result)
    return result


def judge_all(judge: Judge, work: list[tuple[str, int, Prepared]], progress: Progress, *, stop_taking_at: float) -> dict[tuple[str, int], CallResult]:
    """(candidate key, item pk, prepared prompt) → what the judge's endpoint answered. Takes no new call after
    `stop_taking_at` (time.monotonic(); at least one call is always made), then lets the calls in flight finish:
    what is left out of the answer is for the next task."""
    endpoint = judge.endpoint
    token = worker.new_token()
    results: dict[tuple[str, int], CallResult] = {}
    pending = deque(work)
    in_flight: dict[Any, tuple[str, int, int, str, Decimal]] = {}
    give_up_at = time.monotonic() + _longest_call(endpoint) + SLOT_WAIT_SLACK_SECONDS
    renewed = time.monotonic()
    reserve: Decimal | None = None

    def taking() -> bool:
        return bool(pending) and (not results and not in_flight or time.monotonic() < stop_taking_at)

    def settle(key: str, pk: int, result: CallResult) -> None:
        results[(key, pk)] = result
        progress.add(result)

    with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
        while taking() or in_flight:
            while taking() and len(in_flight) < PARALLEL_CALLS:
                key, pk, prepared = pending[0]
                outcome = worker.outcome_without_call(prepared)
                if outcome is None:
                    holder = f"{token}:{key}:{pk}"
                    slot = worker.take_slot(endpoint, holder)
                    if slot is None:
                        break
                    if reserve is None:
                        reserve = spend.estimate(judge, prepared) if judge.daily_cost_cap_usd is not None else Decimal(0)
                    if (capped := spend.reserve(judge, reserve)) is None:
                        pending.popleft()
                        in_flight[pool.submit(worker.call_model, judge, prepared)] = (key, pk, slot, holder, reserve)
                        give_up_at = time.monotonic() + _longest_call(endpoint) + SLOT_WAIT_SLACK_SECONDS
                        continue
                    limits.release(slot, holder)
                    outcome = Outcome(capped)
                pending.popleft()
                settle(key, pk, outcome.result)
            if time.monotonic() - renewed > settings.EVALAPP_LEASE_SECONDS / 3:
                limits.renew(token)
                renewed = time.monotonic()
            if in_flight:
                done, _ = wait(list(in_flight), timeout=0.05, return_when=FIRST_COMPLETED)
                for future in done:
                    key, pk, slot, holder, reserved = in_flight.pop(future)
                    limits.release(slot, holder)
                    try:
                        result = future.result().result
                    except Exception as error:  # a bug on our side: an error of this item, not of the run
                        logger.exception("align call on item %s failed", pk)
                        result = CallResult(error_code=PROVIDER_ERROR, error_message=f"internal error: {type(error).__name__}: {error}")
                    spend.settle(judge, reserved, result.cost_usd)
                    limits.record_call(endpoint, result)
                    settle(key, pk, result)
            elif taking():
                if time.monotonic() > give_up_at:  # the endpoint's slots stayed busy elsewhere all along
                    while pending:
                        key, pk, _ = pending.popleft()
                        settle(key, pk, CallResult(error_code=RATE_LIMITED, error_message=f"no free slot of {endpoint.name}"))
                    break
                time.sleep(0.2)
    return results
