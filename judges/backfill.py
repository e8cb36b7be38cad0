"""Judging older traffic on purpose. Automatic evaluation judges what arrives (plus an hour's look-back when a judge
is switched on); going further back is an explicit backfill: a time range (and, optionally, a filter on top of the
judge's own), counted and priced before it starts, then run as one job of manual evaluations that the workers take
after live work (BACKFILL_PRIORITY), with progress and Cancel.

The same figures forecast a judge's daily volume and cost for the judge form: the last 7 days' matching traffic ×
the sample rate × what its calls cost."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from judges import audit, tasks
from judges.errors import ConfigError
from judges.llm import estimate_cost
from judges.models import BACKFILL_PRIORITY, Evaluation, EvaluationStatus, Judge, Scope
from judges.preparation import endpoint_config
from judges.sampling import is_sampled
from traces.filter_sql import filter_traces
from traces.filters import FilterError
from traces.models import Assessment, AssessmentSource, Session, Trace, TraceStatus

MAX_BACKFILL = 100_000
HISTORY = 200
CHUNK = 1000
FORECAST_DAYS = 7


@dataclass
class Forecast:
    """How many calls, and what they will likely cost (a range; None when the model's prices are unknown)."""

    count: int
    cost: Decimal | None = None
    cost_low: Decimal | None = None
    cost_high: Decimal | None = None
    basis: str = ""


def _recent_costs(judge: Judge) -> list[Decimal]:
    return list(
        Assessment.objects.filter(source_type=AssessmentSource.LLM_JUDGE, source_id=f"judge:{judge.pk}", cost_usd__isnull=False)
        .order_by("-pk")
        .values_list("cost_usd", flat=True)[:HISTORY]
    ) if judge.pk else []


def price(judge: Judge, count: int) -> Forecast:
    """`count` calls of this judge: the mean of its recent calls (the 10th–90th percentile for the range), or —
    before it has any — the size of a typical prompt at the endpoint's prices, ±50%."""
    costs = _recent_costs(judge)
    if len(costs) >= 5:
        cuts = statistics.quantiles([float(cost) for cost in costs], n=10)
        mean = sum(costs, Decimal(0)) / len(costs)
        return Forecast(count, _money(mean * count), _money(Decimal(str(cuts[0])) * count), _money(Decimal(str(cuts[-1])) * count),
                        f"the judge's last {len(costs)} calls")
    guess = estimate_cost(endpoint_config(judge.endpoint), [{"role": "user", "content": "x" * 6000}])  # a typical judge prompt
    if guess is None:
        return Forecast(count, basis="the model's prices are unknown")
    return Forecast(count, _money(guess * count), _money(guess * count / 2), _money(guess * count * 3 / 2), "a typical prompt at the endpoint's prices")


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.0001"))


def candidates(judge: Judge, since: datetime, until: datetime, filter_string: str = "") -> QuerySet[Trace]:
    """The judge's traces from [since, until) that match its filter (and `filter_string`) and that it has no valid
    verdict on and nothing queued for. Raises ConfigError for a bad range or filter."""
    if judge.scope != Scope.TRACE:
        raise ConfigError({"judge": "backfills are for trace judges; a session judge judges conversations as they go idle"})
    if until <= since:
        raise ConfigError({"until": "must be after 'since'"})
    judged = Assessment.objects.filter(trace=OuterRef("pk"), name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True)
    queued = Evaluation.objects.filter(trace=OuterRef("pk"), judge=judge, shadow__isnull=True, status__in=[EvaluationStatus.PENDING, EvaluationStatus.RUNNING])
    traces = Trace.objects.filter(
        experiment_id=judge.experiment_id, started_at__gte=since, started_at__lt=until, evaluation_run__isnull=True
    ).exclude(status=TraceStatus.IN_PROGRESS)
    traces = traces.filter(~Exists(judged), ~Exists(queued))
    try:
        traces = filter_traces(traces, judge.filter_string)
        return filter_traces(traces, filter_string)
    except FilterError as error:
        raise ConfigError({"filter_string": str(error)}) from None


def _sampled(judge: Judge, traces: QuerySet[Trace]) -> list[int]:
    return [pk for pk, trace_id in traces.values_list("pk", "trace_id").iterator(chunk_size=5000) if is_sampled(trace_id, judge.name, judge.sample_rate)]


def forecast(judge: Judge, since: datetime, until: datetime, filter_string: str = "") -> Forecast:
    """What a backfill of this range would judge (the judge's sample rate applies) and cost."""
    return price(judge, len(_sampled(judge, candidates(judge, since, until, filter_string))))


def start(judge: Judge, since: datetime, until: datetime, filter_string: str = "", *, user=None) -> uuid.UUID:
    """Queue the backfill as one job; returns its id (progress: judges.manual.job_json; cancel()). Refused when the
    judge is paused or the range holds more than MAX_BACKFILL traces."""
    if judge.is_paused:
        raise ConfigError({"judge": f"{judge.name} is paused: {judge.paused_reason}"})
    pks = _sampled(judge, candidates(judge, since, until, filter_string))
    if not pks:
        raise ConfigError({"since": "nothing to judge in this range: every matching trace has a verdict or is queued"})
    if len(pks) > MAX_BACKFILL:
        raise ConfigError({"since": f"{len(pks):,} traces: at most {MAX_BACKFILL:,} in one backfill; narrow the range or the filter"})
    job = uuid.uuid4()
    with transaction.atomic():
        for start_at in range(0, len(pks), CHUNK):
            Evaluation.objects.bulk_create([
                Evaluation(judge=judge, judge_version=judge.version, trace_id=pk, manual=True, job=job, priority=BACKFILL_PRIORITY)
                for pk in pks[start_at : start_at + CHUNK]
            ])
        audit.record("backfill started", user=user, judge=judge, changes={
            "range": [since.isoformat(), until.isoformat()], "filter": [None, filter_string or None], "traces": [None, len(pks)],
        })
        tasks.enqueue_judging(list(Evaluation.objects.filter(job=job).values_list("pk", flat=True)))
    return job


def cancel(job: uuid.UUID, *, user=None) -> int:
    """Drop what the backfill hasn't started yet (what is running finishes); returns how many were cancelled."""
    with transaction.atomic():
        first = Evaluation.objects.filter(job=job).select_related("judge").first()
        cancelled = Evaluation.objects.filter(job=job, status=EvaluationStatus.PENDING).update(status=EvaluationStatus.CANCELLED, finished_at=timezone.now())
        if first is not None and cancelled:
            audit.record("backfill cancelled", user=user, judge=first.judge, changes={"cancelled": [None, cancelled]})
    return cancelled


def daily_forecast(judge: Judge, now: datetime | None = None) -> Forecast:
    """Judgements and cost per day if this judge (possibly unsaved: the form's settings) ran on the last 7 days'
    traffic: matching traces × sample rate, per day, priced like its calls."""
    now = now or timezone.now()
    since = now - timedelta(days=FORECAST_DAYS)
    traces = Trace.objects.filter(experiment_id=judge.experiment_id, started_at__gte=since, evaluation_run__isnull=True).exclude(status=TraceStatus.IN_PROGRESS)
    try:
        matching = filter_traces(traces, judge.filter_string).count()
    except FilterError:
        return Forecast(0, basis="the filter doesn't parse")
    if judge.scope == Scope.SESSION:  # conversations, in the share of traffic the filter lets through
        total = traces.count()
        sessions = Session.objects.filter(experiment_id=judge.experiment_id, last_trace_at__gte=since).count()
        matching = round(sessions * matching / total) if total else 0
    return price(judge, round(matching * judge.sample_rate / FORECAST_DAYS))
