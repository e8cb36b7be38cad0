"""Judging pending work: claim it, call the model within the endpoint's limits, record each result.

Evaluation rows are the source of truth: unique per (judge, trace) and per (judge, session, generation), claimed
and settled by judges.claims so that two workers can never both record a result (the drain calls those steps by
the names imported here, which tests replace). A heartbeat keeps this worker's leases alive; a dead worker's work
is reclaimed by the sweep (judges.sweep) when its lease runs out.

`drain` is what the background task runs; the same limits (the endpoint's shared concurrency slots, its
requests-per-minute budget, the judge's daily spend cap) apply to every judgement, by hand or automatic."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from judges import limits, outages, spend
from judges.claims import announce_if_settled, claim, finish, finish_many, heartbeat, new_token, release_all, release_claim
from judges.llm import AUTHENTICATION, CONFIGURATION, NOT_APPLICABLE, CallResult, complete
from judges.models import Evaluation, Judge, ModelEndpoint
from judges.preparation import Prepared, definition_of, prepare_session, prepare_trace, session_traces
from judges.results import Outcome
from judges.secrets import SecretUnreadable
from traces.models import Span, Trace

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
SIDE_WORK_SECONDS = 1.0
# A drain that keeps finding more than it claims asks for another worker process at most this often (see _Drain).
HELP_SECONDS = 1.0
ZERO = Decimal(0)
# Claimed work waiting for an endpoint slot, at most: a round that hoarded more would keep live work that arrives
# meanwhile (claimed first, by priority) behind its backlog.
MAX_WAITING = 8
# Answered results are written in batches (_Drain.record_due): at most this many seconds after the oldest came in,
# or as soon as this many are waiting.
RECORD_SECONDS = 0.1
RECORD_BATCH = 16
# A claim that found nothing waits this long before the next while calls are in flight (_Drain.claim_more).
CLAIM_QUIET_SECONDS = 0.1


# --- what each judgement needs before its call -----------------------------------------------------------


def _load(evaluations: list[Evaluation]) -> dict[int, Prepared | CallResult]:
    """Read what the judges will see (in the draining thread: pool threads only make HTTP calls)."""
    trace_pks = [e.trace_id for e in evaluations if e.trace_id]
    spans_of: dict[int, list[Span]] = {}
    if trace_pks:
        traces = Trace.objects.in_bulk(trace_pks)
        # The spans read on their own, not prefetched: prefetching caches each span's trace on it, a reference cycle
        # per trace (the trace, its spans, their inputs and outputs) that only the cyclic collector's full pass freed
        # — pauses of up to 0.2 s with every call's thread stopped (design note 55).
        for span in Span.objects.filter(trace_id__in=trace_pks).order_by("started_at", "pk"):
            spans_of.setdefault(span.trace_id, []).append(span)
        for evaluation in evaluations:
            if evaluation.trace_id:
                evaluation.trace = traces[evaluation.trace_id]
    prepared: dict[int, Prepared | CallResult] = {}
    definitions = {}  # one per judge (or shadow version) in the batch: building it decrypts the endpoint's key
    for evaluation in evaluations:
        try:
            key = (evaluation.judge.pk, evaluation.shadow_id)
            if key not in definitions:
                definitions[key] = definition_of(evaluation.judge)
            definition = definitions[key]
            if evaluation.trace_id:
                prepared[evaluation.pk] = prepare_trace(definition, evaluation.trace, spans_of.get(evaluation.trace_id, []))
            else:
                prepared[evaluation.pk] = prepare_session(definition, evaluation.session, session_traces(evaluation.session))
        except SecretUnreadable as error:
            prepared[evaluation.pk] = CallResult(error_code=CONFIGURATION, error_message=str(error))
        except Exception as error:  # one broken evaluation must not strand the batch
            logger.exception("preparing evaluation %s failed", evaluation.pk)
            prepared[evaluation.pk] = CallResult(error_code=CONFIGURATION, error_message=f"Could not prepare the prompt: {type(error).__name__}: {error}")
    return prepared


def outcome_without_call(ready: Prepared | CallResult) -> Outcome | None:
    """The outcome when no call is needed (the prompt couldn't be built, the judge doesn't apply); None when the
    model should be called."""
    if isinstance(ready, CallResult):
        return Outcome(ready)
    if ready.not_applicable or ready.prompt is None:
        return Outcome(CallResult(error_code=NOT_APPLICABLE, error_message=ready.not_applicable))
    return None


def call_model(judge: Judge, prepared: Prepared) -> Outcome:
    """Runs in a pool thread: HTTP only, no database (a thread per call would mean a connection per call)."""
    definition = prepared.definition or definition_of(judge)
    result = complete(definition.endpoint, prepared.prompt.messages, definition.spec)
    return Outcome(result, truncated=prepared.prompt.truncated, messages=prepared.prompt.messages)


def take_slot(endpoint, holder: str) -> int | None:
    """One of the endpoint's shared concurrency slots and room in its requests-per-minute budget, or None."""
    limits.ensure_slots(endpoint)
    slot = limits.try_acquire(endpoint, holder)
    if slot is not None and endpoint.requests_per_minute and limits.take_minute_budget(endpoint) > 0:
        limits.release(slot, holder)
        return None
    return slot


def take_slots(endpoint, holder: str, count: int) -> list[int]:
    """Up to `count` of the endpoint's shared slots for one round of calls, all leased to `holder`. An endpoint
    with a per-minute budget takes them one at a time, each counted against the minute."""
    if endpoint.requests_per_minute:
        slots = []
        while len(slots) < count and (slot := take_slot(endpoint, holder)) is not None:
            slots.append(slot)
        return slots
    limits.ensure_slots(endpoint)
    return limits.try_acquire_many(endpoint, holder, count)


# --- the draining loop ----------------------------------------------------------------------------------


class _Drain:
    """One task's judging round: this thread claims, prepares and settles; pool threads only call models."""

    def __init__(
        self, first_ids: list[int] | None, *, take_more: bool, budget_seconds: float, max_in_flight: int,
        side_work: Callable[[ThreadPoolExecutor], object] | None = None,
        ask_for_help: Callable[[], object] | None = None,
    ):
        self.ids = first_ids
        # Called when a claim from the shared queue took all it had room for (a backlog: more is pending than this
        # process takes now), at most every HELP_SECONDS: the caller queues a judging task unless one waits already
        # (judges.bell), so an idle worker process — in this cluster or another machine's — joins in. Without it a
        # backlog stayed with the one process whose task came first: one task waits at a time (design note 52).
        self.ask_for_help = ask_for_help
        self.help_at = 0.0
        # Called about once a second with the call pool: other short work waiting for a worker ("Try it") runs
        # beside the drain instead of behind it (a drain may last EVALAPP_DRAIN_SECONDS).
        self.side_work = side_work
        self.side_work_at = 0.0
        self.take_more = take_more
        self.max_in_flight = max_in_flight
        self.deadline = time.monotonic() + budget_seconds
        self.token = new_token()
        self.estimates: dict[int, Decimal] = {}  # per judge: what a call is reserved against its spend cap
        self.waiting: list[tuple[Evaluation, Prepared]] = []
        self.in_flight: dict[Future, tuple[Evaluation, tuple[int, str], Decimal]] = {}  # -> (evaluation, (slot, holder), reserved)
        self.rounds = 0  # names each round's slot leases
        self.claimed_full = False  # the last claim took all it had room for: there may be more to start at once
        # A claim that found nothing isn't repeated for CLAIM_QUIET_SECONDS while calls are in flight (unless other
        # endpoints are skipped now): with a backlog behind a full endpoint, ~4 in 5 claims found nothing (note 54).
        self.quiet_skip: frozenset[int] = frozenset()
        self.quiet_until = 0.0
        self.just_claimed: set[int] = set()  # what the last claim took (the claim size grows while all of it starts)
        # How many to claim at a time: first the task's own work at once (one ingest's, at most a chunk: claimed in
        # rounds of 8, 16, 26 its last calls started a quarter second after the first), then MAX_WAITING, doubled
        # while all that was claimed could start at once, back to MAX_WAITING as soon as some had to wait.
        self.claim_size = min(max(MAX_WAITING, len(first_ids or ())), max_in_flight)
        self.saturated: set[int] = set()  # endpoints whose slots were all taken when calls were last started
        self.paused: set[int] = set()  # judges whose key was refused during this round
        self.paused_endpoints: set[int] = set()  # endpoints that paused themselves (an outage) during this round
        self.may_claim = True
        self.finished = 0
        # Calls that answered, their slots already given back: their results are written after the next calls
        # have started (record_answered), so a round's N result writes no longer hold N slots idle (note 52).
        self.answered: list[tuple[Evaluation, Outcome]] = []
        self.answered_since = 0.0  # when the oldest of `answered` came in
        self.jobs: set = set()  # jobs whose evaluations this round settled: told once a round (announce)
        self.deferred: dict[int, datetime] = {}  # given back after a provider failure: pk -> when to try again

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    def claim_more(self) -> bool:
        """Take what there is room for; False when nothing was found."""
        # Work waiting for an endpoint whose slots are all taken doesn't use up the room for other endpoints' work (a
        # look-back stuck behind its own endpoint's limit held live work for another endpoint back, one claim per
        # answer); such an endpoint gets no more claimed while MAX_WAITING of its work waits.
        stuck = Counter(evaluation.judge.endpoint.pk for evaluation, _ in self.waiting if evaluation.judge.endpoint.pk in self.saturated)
        skip = frozenset(pk for pk, count in stuck.items() if count >= MAX_WAITING)
        room = min(self.max_in_flight - len(self.in_flight), self.claim_size) - (len(self.waiting) - sum(stuck.values()))
        self.claimed_full = False
        if not (self.may_claim and room > 0 and self.time_left()):
            return True
        if self.ids is None and (self.in_flight or self.waiting) and skip == self.quiet_skip and time.monotonic() < self.quiet_until:
            return True  # the last look found nothing a moment ago, and the loop waits for answers anyway
        _, claimed = claim(self.ids, limit=room, token=self.token, skip_endpoints=skip)
        from_queue = self.ids is None or (self.take_more and len(claimed) < room)
        if self.ids is not None and self.take_more and len(claimed) < room:
            claimed += claim(None, limit=room - len(claimed), token=self.token, skip_endpoints=skip)[1]
        self.claimed_full = len(claimed) == room
        if self.claimed_full and from_queue and self.ask_for_help is not None and time.monotonic() >= self.help_at:
            self.help_at = time.monotonic() + HELP_SECONDS
            self.ask_for_help()
        self.just_claimed = {evaluation.pk for evaluation in claimed}
        if not claimed:
            self.quiet_skip, self.quiet_until = skip, time.monotonic() + CLAIM_QUIET_SECONDS
        if self.ids is not None and not self.take_more:
            self.may_claim = False
        self.ids = None
        self.prepare(claimed)
        return bool(claimed)

    def retry_deferred(self) -> bool:
        """Work this round gave back after a provider failure: wait for the earliest retry time (within the round's
        budget) and take it again, so a short outage costs seconds, not a sweep. False when there is none to wait
        for (nothing deferred, not within the budget, or its endpoint paused itself)."""
        if not self.deferred:
            return False
        earliest = min(self.deferred.values())
        wait_seconds = (earliest - timezone.now()).total_seconds()
        if time.monotonic() + max(0.0, wait_seconds) >= self.deadline:
            return False
        time.sleep(max(0.0, min(wait_seconds, 1.0)))
        due = [pk for pk, at in self.deferred.items() if at <= timezone.now()]
        if due:
            for pk in due:
                del self.deferred[pk]
            self.prepare(claim(due, limit=len(due), token=self.token)[1])  # not claimed: paused, or taken elsewhere
        return True

    def prepare(self, claimed: list[Evaluation]) -> None:
        """Load what the claimed judgements need; settle at once those needing no call, queue the rest."""
        if claimed:
            prepared = _load(claimed)
            for evaluation in claimed:
                ready = prepared[evaluation.pk]
                outcome = outcome_without_call(ready)
                if outcome is None:
                    self.waiting.append((evaluation, ready))
                else:
                    self.finish(evaluation, outcome)

    def start_calls(self, pool: ThreadPoolExecutor) -> None:
        """Start the calls that endpoint slots (and per-minute budgets) allow now; the rest keeps waiting. Work of
        a judge paused meanwhile (its key was refused) is given back to wait for the fix."""
        if not self.time_left():
            for evaluation, _ in self.waiting:  # out of time: what hasn't started goes back to the queue
                release_claim(evaluation, self.token)
            self.waiting = []
        runnable = []
        for evaluation, ready in self.waiting:
            if evaluation.judge_id in self.paused or evaluation.judge.endpoint_id in self.paused_endpoints:
                release_claim(evaluation, self.token)
            else:
                runnable.append((evaluation, ready))
        self.rounds += 1
        holder = f"{self.token}:{self.rounds}"
        endpoints = {evaluation.judge.endpoint.pk: evaluation.judge.endpoint for evaluation, _ in runnable}
        wanted = Counter(evaluation.judge.endpoint.pk for evaluation, _ in runnable)
        free = {pk: take_slots(endpoints[pk], holder, count) for pk, count in wanted.items()}
        still_waiting = []
        for evaluation, ready in runnable:
            slots = free[evaluation.judge.endpoint.pk]
            if not slots:
                still_waiting.append((evaluation, ready))
                continue
            slot = (slots.pop(), holder)
            judge = evaluation.judge
            if judge.daily_cost_cap_usd is not None and judge.pk not in self.estimates:
                self.estimates[judge.pk] = spend.estimate(judge, ready)
            reserved = self.estimates.get(judge.pk, ZERO)
            if (capped := spend.reserve(judge, reserved)) is not None:
                limits.release(*slot)
                self.finish(evaluation, Outcome(capped))
                continue
            self.in_flight[pool.submit(call_model, judge, ready)] = (evaluation, slot, reserved)
        limits.release_many([(slot, holder) for slots in free.values() for slot in slots])  # taken, not needed
        self.waiting = still_waiting
        self.saturated = {evaluation.judge.endpoint.pk for evaluation, _ in still_waiting}
        # Work that was already stuck behind its full endpoint (a look-back at its limit) doesn't hold the claim size
        # down for the rest: a burst for another endpoint arriving meanwhile was claimed 8 at a time, a round each.
        if self.just_claimed:
            grow = not any(evaluation.pk in self.just_claimed for evaluation, _ in still_waiting)
        else:
            grow = bool(runnable) and not still_waiting
        self.just_claimed = set()
        self.claim_size = min(self.claim_size * 2, self.max_in_flight) if grow else MAX_WAITING

    def finish(self, evaluation: Evaluation, outcome: Outcome) -> None:
        if finish(evaluation, self.token, outcome):
            self.finished += 1
            if evaluation.job is not None:
                self.jobs.add(evaluation.job)

    def record_due(self) -> bool:
        """Whether to write the answered results now: enough of them for a batch, the oldest waited RECORD_SECONDS,
        or nothing else is in flight. A round's writes cost about the same for 2 results as for 20 (a transaction,
        the earlier verdicts read, an INSERT each for the assessments and the judges' words): written after every
        answer, they took most of the draining thread (design note 54)."""
        if not self.answered:
            return False
        return len(self.answered) >= RECORD_BATCH or not self.in_flight or time.monotonic() - self.answered_since >= RECORD_SECONDS

    def record_answered(self) -> None:
        """Write the results settle() took in, then tell the jobs they belong to (one look each, not one a result)."""
        answered, self.answered = self.answered, []
        answered.sort(key=lambda pair: pair[0].priority)  # live verdicts first (and so first in id order), a run's after
        if answered:
            for evaluation in finish_many(answered, self.token):  # one transaction for the round's results
                self.finished += 1
                if evaluation.job is not None:
                    self.jobs.add(evaluation.job)
        jobs, self.jobs = self.jobs, set()
        for job in jobs:  # once the results are committed (at once, outside a transaction)
            transaction.on_commit(lambda job=job: announce_if_settled(job))

    def record_leftovers(self) -> None:
        """The drain is stopping on an error: results already paid for are written (and jobs told) if the database
        takes them, rather than given back to be judged again; whatever fails goes back with release_all."""
        try:
            self.record_answered()
        except Exception:
            logger.exception("writing a stopping drain's last results failed; they are judged again")
            for job in self.jobs:
                transaction.on_commit(lambda job=job: announce_if_settled(job))

    def settle(self, done: set[Future]) -> None:
        """Take in the calls that answered: their slots given back and the endpoints' limits adapted in one statement
        each for the whole round; their results wait in `answered` for record_answered."""
        answered = []
        for future in done:
            evaluation, slot, reserved = self.in_flight.pop(future)
            try:
                outcome = future.result()
            except Exception as error:  # a bug on our side: recorded (and visible), never retried in a loop
                logger.exception("judging evaluation %s failed", evaluation.pk)
                outcome = Outcome(CallResult(error_code="provider_error", error_message=f"internal error: {type(error).__name__}: {error}"))
            answered.append((evaluation, slot, reserved, outcome))
        limits.release_many([slot for _, slot, _, _ in answered])
        by_endpoint: dict[int, tuple[ModelEndpoint, list[CallResult]]] = {}
        for evaluation, _, _, outcome in answered:
            endpoint = evaluation.judge.endpoint
            by_endpoint.setdefault(endpoint.pk, (endpoint, []))[1].append(outcome.result)
        for endpoint, results in by_endpoint.values():
            limits.record_calls(endpoint, results)  # and an answer ends the endpoint's run of failures (outages)
        for evaluation, _, reserved, outcome in answered:
            spend.settle(evaluation.judge, reserved, outcome.result.cost_usd)
            if outcome.result.error_code == AUTHENTICATION and not evaluation.shadow_id:
                self.paused.add(evaluation.judge_id)
            if not outcome.ok and outages.is_transient(outcome.result) and (retry_at := outages.defer(evaluation, self.token, outcome.result)):
                if evaluation.judge.endpoint.is_paused:
                    self.paused_endpoints.add(evaluation.judge.endpoint_id)
                else:
                    self.deferred[evaluation.pk] = retry_at
                continue
            if not self.answered:
                self.answered_since = time.monotonic()
            self.answered.append((evaluation, outcome))

    def run(self) -> int:
        stop = threading.Event()
        beating = threading.Thread(target=heartbeat, args=(self.token, stop), daemon=True)
        beating.start()
        try:
            with ThreadPoolExecutor(max_workers=self.max_in_flight) as pool:
                while True:
                    found = self.claim_more()
                    self.start_calls(pool)
                    if self.record_due():
                        self.record_answered()
                    if self.side_work is not None and time.monotonic() >= self.side_work_at:
                        self.side_work_at = time.monotonic() + SIDE_WORK_SECONDS
                        self.side_work(pool)
                    if not self.in_flight and not self.waiting:
                        if self.may_claim and found and self.time_left():
                            continue  # take another look: more may have arrived meanwhile
                        if self.retry_deferred():
                            continue
                        break
                    if self.in_flight and self.claimed_full and not self.waiting:
                        # everything claimed has started and there may be more: claim again now, not after a poll
                        self.settle({future for future in self.in_flight if future.done()})
                    elif self.in_flight:
                        done, _ = wait(list(self.in_flight), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                        self.settle(done)
                    else:
                        time.sleep(POLL_SECONDS)  # everything waits for a slot held elsewhere
        finally:
            self.record_leftovers()
            stop.set()
            beating.join(timeout=5)
            release_all(self.token)  # anything still ours after an unexpected error goes back to the queue
        return self.finished


def drain(
    first_ids: list[int] | None,
    *,
    take_more: bool = True,
    budget_seconds: float | None = None,
    max_in_flight: int | None = None,
    side_work: Callable[[ThreadPoolExecutor], object] | None = None,
    ask_for_help: Callable[[], object] | None = None,
) -> int:
    """Judge `first_ids` and (with `take_more`) whatever else is pending, until nothing is or the time budget is
    spent; meanwhile `side_work(pool)` about once a second, and `ask_for_help()` while a backlog keeps its claims
    full. Returns how many results this worker recorded."""
    return _Drain(
        first_ids,
        take_more=take_more,
        budget_seconds=budget_seconds if budget_seconds is not None else settings.EVALAPP_DRAIN_SECONDS,
        max_in_flight=max_in_flight or settings.EVALAPP_DRAIN_CONCURRENCY,
        side_work=side_work,
        ask_for_help=ask_for_help,
    ).run()
