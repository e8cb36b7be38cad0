"""Automatic evaluation: selecting work, claiming it, judging it concurrently, and sweeping up what was missed.

Evaluation rows are the source of truth: unique per (judge, trace) and per (judge, session, generation), claimed
with one conditional UPDATE, finished with another that only succeeds for the claim holder — so two workers can
never both record a result. Tasks (judges.tasks) carry only ids; if one is lost, the sweep finds its work again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Q, Sum
from django.utils import timezone

from judges import limits, selection
from judges.actions import _record
from judges.llm import AUTHENTICATION, BUDGET_EXCEEDED, CONFIGURATION, NOT_APPLICABLE, CallResult, complete
from judges.models import Evaluation, EvaluationStatus, Judge, Scope, SweepState
from judges.runner import Outcome, Prepared, definition_of, prepare_session, prepare_trace, session_traces
from judges.secrets import SecretUnreadable
from traces.models import Assessment, AssessmentSource, Session, Span, Trace, TraceStatus

logger = logging.getLogger(__name__)
decisions = logging.getLogger("judges.decisions")

PENDING, RUNNING, DONE, ERROR, CANCELLED, SKIPPED = (
    EvaluationStatus.PENDING,
    EvaluationStatus.RUNNING,
    EvaluationStatus.DONE,
    EvaluationStatus.ERROR,
    EvaluationStatus.CANCELLED,
    EvaluationStatus.SKIPPED,
)
MAX_ATTEMPTS = 3
SWEEP_OVERLAP = timedelta(minutes=2)
SWEEP_SETTLE = timedelta(seconds=5)
SWEEP_MAX_TRACES = 20_000
STALE_PENDING = timedelta(seconds=30)


def lease_seconds() -> int:
    return settings.EVALAPP_LEASE_SECONDS


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- selection ------------------------------------------------------------------------------------------


def _span_index(trace_pks: list[int]) -> dict[int, list[tuple[str, str]]]:
    index: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for trace_id, span_type, name in Span.objects.filter(trace_id__in=trace_pks).values_list("trace_id", "span_type", "name"):
        index[trace_id].append((span_type, name))
    return index


def select_traces(experiment_id: int, trace_pks: list[int], *, judges: list[Judge] | None = None) -> list[int]:
    """Create pending evaluations for every active trace judge that should judge these traces; returns the ids
    of the pending evaluations for them (new or left over)."""
    if judges is None:
        judges = list(Judge.objects.filter(experiment_id=experiment_id, active=True, scope=Scope.TRACE).select_related("endpoint"))
    if not judges or not trace_pks:
        return []
    traces = list(Trace.objects.filter(pk__in=trace_pks, experiment_id=experiment_id).exclude(status=TraceStatus.IN_PROGRESS))
    spans = _span_index([t.pk for t in traces]) if any(selection.filter_uses_spans(j.filter_string) for j in judges) else {}
    rows = []
    for judge in judges:
        for trace in traces:
            decision = selection.decide_trace(judge, trace, lambda trace=trace: selection.trace_record(trace, spans.get(trace.pk, [])))
            if decision.code == selection.SELECTED:
                rows.append(Evaluation(judge=judge, judge_version=judge.version, trace=trace))
    if not rows:
        return []
    Evaluation.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        Evaluation.objects.filter(
            judge__in=judges, trace_id__in=[row.trace_id for row in rows], status=PENDING, manual=False
        ).values_list("pk", flat=True)
    )


def select_sessions(now: datetime | None = None, *, judges: list[Judge] | None = None) -> list[int]:
    """Pending evaluations for every idle session generation an active session judge hasn't decided on yet."""
    now = now or timezone.now()
    if judges is None:
        judges = list(Judge.objects.filter(active=True, scope=Scope.SESSION).select_related("endpoint"))
    created: list[int] = []
    for judge in judges:
        decided = Evaluation.objects.filter(judge=judge, session=OuterRef("pk"), session_generation=OuterRef("trace_count"), manual=False)
        candidates = Session.objects.filter(
            experiment_id=judge.experiment_id,
            trace_count__gt=0,
            last_ingested_at__lte=now - timedelta(seconds=judge.idle_seconds()),
        ).filter(~Exists(decided))
        if judge.lookback_start():
            candidates = candidates.filter(last_ingested_at__gte=judge.lookback_start())
        candidates = list(candidates[:5000])
        if not candidates:
            continue
        first_traces = {}
        if judge.filter_string:
            for trace in Trace.objects.filter(experiment_id=judge.experiment_id, session_id__in=[s.session_id for s in candidates]).order_by("session_id", "started_at", "pk").prefetch_related("spans"):
                first_traces.setdefault(trace.session_id, trace)
        rows = []
        for session in candidates:
            decision = selection.decide_session(judge, session, first_traces.get(session.session_id), now)
            if decision.code == selection.SELECTED:
                rows.append(Evaluation(judge=judge, judge_version=judge.version, session=session, session_generation=session.trace_count))
            elif decision.code in (selection.FILTERED_OUT, selection.SAMPLED_OUT):
                rows.append(
                    Evaluation(
                        judge=judge, judge_version=judge.version, session=session, session_generation=session.trace_count,
                        status=SKIPPED, error_code=decision.code, error_message=decision.detail,
                    )
                )
        Evaluation.objects.bulk_create(rows, ignore_conflicts=True)
        created.extend(
            Evaluation.objects.filter(judge=judge, session__in=candidates, status=PENDING, manual=False).values_list("pk", flat=True)
        )
    return created


def backfill_judge(judge_id: int) -> list[int]:
    """A judge just created or switched on: what was logged up to an hour before counts as new."""
    judge = Judge.objects.select_related("endpoint").filter(pk=judge_id, active=True).first()
    if judge is None:
        return []
    if judge.scope == Scope.SESSION:
        return select_sessions(judges=[judge])
    ids: list[int] = []
    pks = list(
        Trace.objects.filter(experiment_id=judge.experiment_id, created_at__gte=judge.lookback_start())
        .exclude(status=TraceStatus.IN_PROGRESS)
        .values_list("pk", flat=True)
    )
    for start in range(0, len(pks), 1000):
        ids.extend(select_traces(judge.experiment_id, pks[start : start + 1000], judges=[judge]))
    return ids


# --- claiming and judging -------------------------------------------------------------------------------


def new_token() -> str:
    return f"{worker_id()}:{uuid.uuid4().hex[:8]}"


def claim(ids: list[int] | None, *, limit: int = 64, token: str | None = None) -> tuple[str, list[Evaluation]]:
    """Atomically take up to `limit` pending evaluations (of unpaused judges) for this worker, with a lease."""
    token = token or new_token()
    now = timezone.now()
    # Work asked for by hand (a job) runs even when automatic evaluation is off.
    pending = Evaluation.objects.filter(Q(judge__active=True) | Q(manual=True), status=PENDING, judge__paused_reason="")
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    chosen = list(pending.order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
    if not chosen:
        return token, []
    Evaluation.objects.filter(pk__in=chosen, status=PENDING).update(
        status=RUNNING,
        claimed_by=token,
        lease_expires_at=now + timedelta(seconds=lease_seconds()),
        attempts=F("attempts") + 1,
        started_at=now,
    )
    claimed = list(
        Evaluation.objects.filter(pk__in=chosen, claimed_by=token, status=RUNNING).select_related(
            "judge__endpoint", "judge__experiment", "trace", "session"
        )
    )
    for evaluation in claimed:
        decisions.debug("claimed evaluation %s (judge %s) as %s", evaluation.pk, evaluation.judge.name, token)
    return token, claimed


def _spent_today(judge: Judge) -> Decimal:
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    total = Assessment.objects.filter(source_type=AssessmentSource.LLM_JUDGE, source_id=f"judge:{judge.pk}", created_at__gte=midnight).aggregate(total=Sum("cost_usd"))["total"]
    return total or Decimal(0)


def _heartbeat(token: str, stop: threading.Event) -> None:
    """Keep our leases alive while we work, so only a dead worker's evaluations are reclaimed."""
    interval = max(1.0, lease_seconds() / 3)
    try:
        while not stop.wait(interval):
            Evaluation.objects.filter(claimed_by=token, status=RUNNING).update(
                lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
            )
            limits.renew(token)
    finally:
        connection.close()


def _finish(evaluation: Evaluation, token: str, outcome: Outcome) -> bool:
    """Record the result if we still hold the claim. False if the lease was lost to another worker."""
    result = outcome.result
    with transaction.atomic():
        won = Evaluation.objects.filter(pk=evaluation.pk, claimed_by=token, status=RUNNING).update(
            status=DONE if result.ok else ERROR,
            error_code=result.error_code,
            error_message=result.error_message,
            cost_usd=result.cost_usd,
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        if not won:
            decisions.debug("evaluation %s: lease lost, result dropped", evaluation.pk)
            return False
        if evaluation.trace_id:
            assessment = _record(evaluation.judge, outcome, trace=evaluation.trace)
        else:
            assessment = _record(evaluation.judge, outcome, session=evaluation.session)
        Evaluation.objects.filter(pk=evaluation.pk).update(assessment=assessment)
    decisions.debug(
        "evaluation %s (judge %s): %s",
        evaluation.pk,
        evaluation.judge.name,
        repr(result.value) if result.ok else f"{result.error_code}: {result.error_message}",
    )
    return True


def _load(evaluations: list[Evaluation]) -> dict[int, Prepared]:
    """Read what the judges will see (in this thread: worker threads only make HTTP calls and hold slots)."""
    trace_pks = [e.trace_id for e in evaluations if e.trace_id]
    if trace_pks:
        traces = {t.pk: t for t in Trace.objects.filter(pk__in=trace_pks).prefetch_related(Prefetch("spans", queryset=Span.objects.order_by("started_at", "pk")))}
        for evaluation in evaluations:
            if evaluation.trace_id:
                evaluation.trace = traces[evaluation.trace_id]
    prepared: dict[int, Prepared | CallResult] = {}
    for evaluation in evaluations:
        try:
            definition = definition_of(evaluation.judge)
            if evaluation.trace_id:
                prepared[evaluation.pk] = prepare_trace(definition, evaluation.trace)
            else:
                prepared[evaluation.pk] = prepare_session(definition, evaluation.session, session_traces(evaluation.session))
        except SecretUnreadable as error:
            prepared[evaluation.pk] = CallResult(error_code=CONFIGURATION, error_message=str(error))
        except Exception as error:  # one broken evaluation must not strand the batch
            logger.exception("preparing evaluation %s failed", evaluation.pk)
            prepared[evaluation.pk] = CallResult(error_code=CONFIGURATION, error_message=f"Could not prepare the prompt: {type(error).__name__}: {error}")
    return prepared


class _Budgets:
    """Today's spend per capped judge, counted up as results arrive (calls in flight may overshoot a little)."""

    def __init__(self) -> None:
        self.spent: dict[int, Decimal] = {}
        self.lock = threading.Lock()

    def load(self, judge: Judge) -> None:
        if judge.daily_cost_cap_usd is not None and judge.pk not in self.spent:
            self.spent[judge.pk] = _spent_today(judge)

    def exhausted(self, judge: Judge) -> CallResult | None:
        if judge.daily_cost_cap_usd is None:
            return None
        with self.lock:
            spent = self.spent[judge.pk]
        if spent < judge.daily_cost_cap_usd:
            return None
        return CallResult(
            error_code=BUDGET_EXCEEDED,
            error_message=f"The judge's daily spend cap of ${judge.daily_cost_cap_usd} was reached "
            f"(${spent:.4f} spent today, UTC); not judged. It resumes tomorrow, or raise the cap.",
        )

    def add(self, judge: Judge, cost: Decimal | None) -> None:
        if cost and judge.daily_cost_cap_usd is not None:
            with self.lock:
                self.spent[judge.pk] += cost


def _call(evaluation: Evaluation, prepared: Prepared) -> Outcome:
    """Runs in a pool thread: HTTP only, no database (a thread per call would mean a connection per call)."""
    definition = definition_of(evaluation.judge)
    result = complete(definition.endpoint, prepared.prompt.messages, definition.spec)
    return Outcome(result, truncated=prepared.prompt.truncated)


def _release_claim(evaluation: Evaluation, token: str) -> None:
    """Give back work that was claimed but never started (time budget spent, judge paused meanwhile): it is
    picked up again, and the claim doesn't count as an attempt."""
    Evaluation.objects.filter(pk=evaluation.pk, claimed_by=token, status=RUNNING).update(
        status=PENDING, claimed_by="", lease_expires_at=None, attempts=F("attempts") - 1
    )


def _start(waiting: list[tuple[Evaluation, Prepared]], in_flight: dict, pool: ThreadPoolExecutor, token: str, paused: set[int]) -> list:
    """Start the calls that endpoint slots (and per-minute budgets) allow now; returns what must still wait.
    Work of a judge paused meanwhile (its key was refused) is given back to wait for the fix."""
    blocked: set[int] = set()
    still_waiting = []
    for evaluation, ready in waiting:
        if evaluation.judge_id in paused:
            _release_claim(evaluation, token)
            continue
        endpoint = evaluation.judge.endpoint
        holder = f"{token}:{evaluation.pk}"
        slot = None
        if endpoint.pk not in blocked:
            limits.ensure_slots(endpoint)
            slot = limits.try_acquire(endpoint, holder)
            if slot is not None and endpoint.requests_per_minute and limits.take_minute_budget(endpoint) > 0:
                limits.release(slot, holder)
                slot = None
        if slot is None:
            blocked.add(endpoint.pk)
            still_waiting.append((evaluation, ready))
            continue
        in_flight[pool.submit(_call, evaluation, ready)] = (evaluation, slot)
    return still_waiting


def drain(
    first_ids: list[int] | None,
    *,
    take_more: bool = True,
    budget_seconds: float | None = None,
    max_in_flight: int | None = None,
) -> int:
    """Judge `first_ids` and (with `take_more`) whatever else is pending, until nothing is or the time budget is
    spent. This thread claims work, takes a shared slot of the endpoint for each call (and room in its
    requests-per-minute budget), and records each result as it returns; pool threads only make the HTTP calls.
    Returns how many results this worker recorded."""
    budget_seconds = budget_seconds if budget_seconds is not None else settings.EVALAPP_DRAIN_SECONDS
    max_in_flight = max_in_flight or settings.EVALAPP_DRAIN_CONCURRENCY
    deadline = time.monotonic() + budget_seconds
    token = new_token()
    stop = threading.Event()
    heartbeat = threading.Thread(target=_heartbeat, args=(token, stop), daemon=True)
    heartbeat.start()
    budgets = _Budgets()
    waiting: list[tuple[Evaluation, Prepared]] = []
    in_flight: dict = {}  # future -> (evaluation, slot pk)
    finished = 0
    ids: list[int] | None = first_ids
    may_claim = True
    paused: set[int] = set()
    claimed_here: list[Evaluation] = []
    try:
        with ThreadPoolExecutor(max_workers=max_in_flight) as pool:
            while True:
                found_nothing = False
                room = max_in_flight - len(in_flight) - len(waiting)
                if may_claim and room > 0 and time.monotonic() < deadline:
                    _, claimed = claim(ids, limit=room, token=token)
                    if ids is not None and take_more and len(claimed) < room:
                        claimed += claim(None, limit=room - len(claimed), token=token)[1]
                    if ids is not None and not take_more:
                        may_claim = False
                    ids = None
                    found_nothing = not claimed
                    if claimed:
                        claimed_here.extend(claimed)
                        prepared = _load(claimed)
                        for evaluation in claimed:
                            budgets.load(evaluation.judge)
                            ready = prepared[evaluation.pk]
                            if isinstance(ready, CallResult):
                                outcome = Outcome(ready)
                            elif ready.not_applicable or ready.prompt is None:
                                outcome = Outcome(CallResult(error_code=NOT_APPLICABLE, error_message=ready.not_applicable))
                            elif (capped := budgets.exhausted(evaluation.judge)) is not None:
                                outcome = Outcome(capped)
                            else:
                                waiting.append((evaluation, ready))
                                continue
                            finished += _finish(evaluation, token, outcome)
                if time.monotonic() >= deadline and waiting:
                    for evaluation, _ in waiting:  # out of time: what hasn't started goes back to the queue
                        _release_claim(evaluation, token)
                    waiting = []
                waiting = _start(waiting, in_flight, pool, token, paused)
                if not in_flight and not waiting:
                    if may_claim and not found_nothing and time.monotonic() < deadline:
                        continue  # take another look: more may have arrived meanwhile
                    break
                if in_flight:
                    done, _ = wait(list(in_flight), timeout=0.05, return_when=FIRST_COMPLETED)
                else:
                    done = set()
                    time.sleep(0.05)  # everything waits for a slot held elsewhere
                for future in done:
                    evaluation, slot = in_flight.pop(future)
                    limits.release(slot, f"{token}:{evaluation.pk}")
                    try:
                        outcome = future.result()
                    except Exception as error:  # a bug on our side: recorded (and visible), never retried in a loop
                        logger.exception("judging evaluation %s failed", evaluation.pk)
                        outcome = Outcome(CallResult(error_code="provider_error", error_message=f"internal error: {type(error).__name__}: {error}"))
                    budgets.add(evaluation.judge, outcome.result.cost_usd)
                    if outcome.result.error_code == AUTHENTICATION:
                        paused.add(evaluation.judge_id)
                    finished += _finish(evaluation, token, outcome)
    finally:
        stop.set()
        heartbeat.join(timeout=5)
        for evaluation in claimed_here:  # anything still ours after an unexpected error goes back to the queue
            _release_claim(evaluation, token)
    return finished


def judge_pending(ids: list[int], *, limit: int = 64) -> int:
    """Judge up to `limit` of exactly these pending evaluations, and nothing else."""
    return drain(ids, take_more=False, max_in_flight=max(1, min(limit, len(ids) or 1)))


# --- sweeping -------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    traces_examined: int = 0
    sessions_selected: int = 0
    reclaimed: int = 0
    abandoned: int = 0
    pending_ids: list[int] = field(default_factory=list)


def reclaim_expired(now: datetime | None = None) -> tuple[list[int], int]:
    """Running evaluations whose lease ran out (their worker died): back to pending, or error after
    MAX_ATTEMPTS tries."""
    now = now or timezone.now()
    expired = Evaluation.objects.filter(status=RUNNING, lease_expires_at__lt=now)
    abandoned = expired.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=ERROR,
        error_code="provider_error",
        error_message=f"The worker judging this stopped {MAX_ATTEMPTS} times before finishing; not retried automatically.",
        finished_at=now,
        lease_expires_at=None,
    )
    reclaimable = list(expired.filter(attempts__lt=MAX_ATTEMPTS).values_list("pk", flat=True))
    reclaimed = Evaluation.objects.filter(pk__in=reclaimable, status=RUNNING, lease_expires_at__lt=now).update(
        status=PENDING, claimed_by="", lease_expires_at=None
    )
    if reclaimed or abandoned:
        logger.info("sweep: %d expired leases reclaimed, %d abandoned", reclaimed, abandoned)
    return reclaimable, abandoned


def sweep_traces(now: datetime | None = None, *, max_traces: int = SWEEP_MAX_TRACES) -> int:
    """Look again at traces written since the last sweep (with an overlap), selecting what an enqueue missed.
    A run that hits the size cap leaves a (time, id) cursor, and the next run continues from it."""
    now = now or timezone.now()
    state = SweepState.objects.filter(name="traces").first()
    end = now - SWEEP_SETTLE
    traces = Trace.objects.filter(updated_at__lt=end).exclude(status=TraceStatus.IN_PROGRESS)
    if state is None:
        traces = traces.filter(updated_at__gte=now - timedelta(hours=1))
    elif state.cursor_pk is not None:
        traces = traces.filter(Q(updated_at__gt=state.watermark) | Q(updated_at=state.watermark, pk__gt=state.cursor_pk))
    else:
        traces = traces.filter(updated_at__gte=state.watermark - SWEEP_OVERLAP)
    rows = list(traces.order_by("updated_at", "pk").values_list("pk", "experiment_id", "updated_at")[:max_traces])
    by_experiment: dict[int, list[int]] = defaultdict(list)
    for pk, experiment_id, _ in rows:
        by_experiment[experiment_id].append(pk)
    for experiment_id, pks in by_experiment.items():
        for chunk in range(0, len(pks), 1000):
            select_traces(experiment_id, pks[chunk : chunk + 1000])
    if len(rows) == max_traces:
        defaults = {"watermark": rows[-1][2], "cursor_pk": rows[-1][0]}
    else:
        defaults = {"watermark": end, "cursor_pk": None}
    SweepState.objects.update_or_create(name="traces", defaults=defaults)
    return len(rows)


def stale_pending(now: datetime | None = None) -> list[int]:
    """Pending work nobody has picked up for a while: its task was lost (or the judge was just resumed)."""
    now = now or timezone.now()
    return list(
        Evaluation.objects.filter(
            Q(judge__active=True) | Q(manual=True), status=PENDING, created_at__lt=now - STALE_PENDING, judge__paused_reason=""
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:10_000]
    )


def sweep(now: datetime | None = None) -> SweepReport:
    report = SweepReport()
    reclaimed_ids, report.abandoned = reclaim_expired(now)
    report.reclaimed = len(reclaimed_ids)
    report.traces_examined = sweep_traces(now)
    fresh_sessions = select_sessions(now)
    report.sessions_selected = len(fresh_sessions)
    report.pending_ids = list(dict.fromkeys(reclaimed_ids + fresh_sessions + stale_pending(now)))
    return report


