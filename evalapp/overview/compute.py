"""The Overview's answer: per judge and per bucket, quality (pass rate, mean or category shares), errors, people's
feedback, versions and cost; and the application's volume, errors, latency and tokens. Day buckets add up hourly
rollups, shorter ones are summed from the raw rows (see the package docstring). Also the experiment list's pass
rates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from evalapp.overview.aggregates import exact_percentiles, raw_tallies
from evalapp.overview.ranges import TimeRange
from evalapp.overview.rollups import rollup_tallies
from evalapp.overview.sql import window_plans
from evalapp.overview.tallies import JudgeTally, Tally, add_durations, histogram_percentiles
from judges import agreement
from judges.agreement import MIN_PAIRS
from judges.labels import corrected_rate, load_pairs
from judges.models import Judge, JudgeVersion, OutputType, Scope
from traces.json_sql import JSONBool
from traces.models import Assessment, AssessmentSource, Experiment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _money(amount: Decimal | float | None) -> float:
    return round(float(amount or 0), 6)


def wilson_interval(passes: int, total: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a pass rate (judges.agreement.wilson_interval), or None with nothing to
    estimate from."""
    interval = agreement.wilson_interval(int(passes), int(total))
    return None if interval is None else (round(interval[0], 4), round(interval[1], 4))


def _quality(judge: Judge, counts: Mapping[str, float], categories: Mapping[str, int]) -> dict[str, Any]:
    """pass_rate / mean / shares for one judge over one set of counts (a bucket or the whole range), each with the
    number of verdicts behind it (`n`), and a pass rate with its 95% Wilson interval."""
    if judge.output_type == OutputType.BOOLEAN:
        interval = wilson_interval(counts["passes"], counts["yes_no"])
        return {
            "pass_rate": _ratio(counts["passes"], counts["yes_no"]),
            "n": int(counts["yes_no"]),
            "pass_rate_low": interval[0] if interval else None,
            "pass_rate_high": interval[1] if interval else None,
        }
    if judge.output_type in (OutputType.INTEGER, OutputType.FLOAT):
        return {"mean": round(counts["number_sum"] / counts["numbers"], 4) if counts["numbers"] else None, "n": int(counts["numbers"])}
    if judge.output_type == OutputType.CATEGORICAL:
        total = sum(categories.values())
        return {"shares": {name: _ratio(count, total) for name, count in categories.items()} if total else {}, "n": int(total)}
    return {"n": int(counts["judged"])}


def _category_order(judge: Judge, seen: Iterable[str]) -> list[str]:
    declared = [str(category) for category in judge.categories or []]
    return declared + sorted(set(seen) - set(declared))


def _version_marks(experiment: Experiment, time_range: TimeRange) -> dict[int, list[dict[str, Any]]]:
    versions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    # A judge's first version is its creation, not a change: nothing to mark.
    for row in JudgeVersion.objects.filter(
        judge__experiment=experiment, version__gt=1, created_at__gte=time_range.start, created_at__lt=time_range.end
    ).order_by("created_at", "version").values("judge_id", "version", "created_at"):
        versions[row["judge_id"]].append({"version": row["version"], "created_at": _iso(row["created_at"])})
    return versions


def _judge_summaries(
    judges: list[Judge],
    versions: Mapping[int, list[dict[str, Any]]],
    tallies: Mapping[datetime, Tally],
    buckets: list[datetime],
    labelled: Mapping[int, Any],
) -> tuple[list[dict[str, Any]], dict[datetime, float]]:
    summaries = []
    cost_by_bucket: dict[datetime, float] = defaultdict(float)
    nothing = JudgeTally()
    for judge in judges:
        key = (judge.scope, judge.name)
        per_bucket = [(bucket, tallies[bucket].judges.get(key, nothing) if bucket in tallies else nothing) for bucket in buckets]
        order = _category_order(judge, {name for _, found in per_bucket for name in found.categories})
        total = JudgeTally()
        series = []
        for bucket, found in per_bucket:
            total.add(found)
            cost_by_bucket[bucket] += float(found.cost)
            ordered = {name: found.categories.get(name, 0) for name in order}
            series.append({"bucket": _iso(bucket), "judged": found.counts["judged"], "errors": found.counts["errors"], **_quality(judge, found.counts, ordered)})
        overall = _quality(judge, total.counts, {name: total.categories.get(name, 0) for name in order})
        summaries.append(
            {
                "name": judge.name,
                "scope": judge.scope,
                "output_type": judge.output_type,
                "active": judge.active,
                "version": judge.version,
                "judged": total.counts["judged"],
                "errors": total.counts["errors"],
                "not_applicable": total.counts["not_applicable"],
                "pass_rate": overall.get("pass_rate"),
                "pass_rate_low": overall.get("pass_rate_low"),
                "pass_rate_high": overall.get("pass_rate_high"),
                "corrected": _corrected(judge, labelled, total.counts),
                "agreement": _agreement(judge, labelled),
                "n": overall["n"],
                "mean": overall.get("mean"),
                "categories": overall.get("shares") if judge.output_type == OutputType.CATEGORICAL else None,
                "cost_usd": _money(total.cost),
                "human": {"count": total.counts["human"], "pass_rate": _ratio(total.counts["human_passes"], total.counts["human_yes_no"])},
                "series": series,
                "versions": versions.get(judge.pk, []),
            }
        )
    return summaries, cost_by_bucket


def _performance(
    tallies: Mapping[datetime, Tally],
    buckets: list[datetime],
    judge_cost: Mapping[datetime, float],
    percentiles: Mapping[datetime | None, Mapping[str, float | None]],
    approximate: bool,
) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return round(value, 1) if value is not None else None

    series = []
    nothing = Tally()
    for bucket in buckets:
        tally = tallies.get(bucket, nothing)
        found = percentiles.get(bucket, {})
        series.append(
            {
                "bucket": _iso(bucket),
                "traces": tally.traces,
                "errors": tally.errors,
                "error_rate": _ratio(tally.errors, tally.traces),
                "p50_ms": rounded(found.get("p50_ms")),
                "p95_ms": rounded(found.get("p95_ms")),
                "tokens": tally.tokens,
                "judge_cost_usd": _money(judge_cost.get(bucket)),
            }
        )
    total, errors = sum(point["traces"] for point in series), sum(point["errors"] for point in series)
    overall = percentiles.get(None, {})
    return {
        "traces": total,
        "errors": errors,
        "error_rate": _ratio(errors, total),
        "p50_ms": rounded(overall.get("p50_ms")),
        "p95_ms": rounded(overall.get("p95_ms")),
        "percentiles_approximate": approximate,
        "tokens": sum(point["tokens"] for point in series),
        "judge_cost_usd": _money(sum(judge_cost.values())),
        "series": series,
    }


def compute_overview(experiment: Experiment, time_range: TimeRange, now: datetime | None = None, *, rollups: bool | None = None) -> dict[str, Any]:
    """The aggregates behind the Overview tab and GET /api/v1/experiments/<id>/overview (shape documented there).
    Day buckets come from the hourly rollups (refreshing stale hours on the way), shorter ones from the raw rows;
    `rollups` forces either route (the raw one gives exact percentiles at any bucket size)."""
    now = now or timezone.now()
    if rollups is None:
        rollups = time_range.bucket in ("day", "hour")
    if rollups and time_range.bucket == "minute":
        raise ValueError("hourly rollups can't make minute buckets")
    with window_plans():
        return _compute_overview(experiment, time_range, now, rollups)


def _categorical(judges: list[Judge]) -> dict[str, list[str]]:
    return {scope: [judge.name for judge in judges if judge.scope == scope and judge.output_type == OutputType.CATEGORICAL] for scope in (Scope.TRACE, Scope.SESSION)}


def traces_expiring_receiver(sender: Any, *, experiment_id: int, start: datetime, end: datetime, **kwargs: Any) -> None:
    """Retention is about to delete rows in [start, end) (whole hours): store those hours' rollups now, from the
    rows still there, so the Overview keeps their history (traces.retention)."""
    experiment = Experiment.objects.get(pk=experiment_id)
    judges = list(Judge.objects.filter(experiment=experiment))
    with window_plans():
        rollup_tallies(experiment, TimeRange(start, end, "hour"), _categorical(judges), timezone.now())


def _compute_overview(experiment: Experiment, time_range: TimeRange, now: datetime, rollups: bool) -> dict[str, Any]:
    buckets = time_range.buckets()
    judges = list(Judge.objects.filter(experiment=experiment).order_by("name"))
    scopes = (Scope.TRACE, Scope.SESSION)
    categorical = _categorical(judges)
    percentiles: dict[datetime | None, dict[str, float | None]]
    approximate = rollups and time_range.bucket == "day"
    if rollups:
        tallies = rollup_tallies(experiment, time_range, categorical, now)
        if approximate:
            everything: dict[int, list[int]] = {}
            for tally in tallies.values():
                add_durations(everything, tally.durations.items())
            percentiles = {bucket: histogram_percentiles(tally.durations) for bucket, tally in tallies.items()}
            percentiles[None] = histogram_percentiles(everything)
        else:  # hour buckets: the counts from the rollups, the percentiles exact (a few thousand durations an hour)
            percentiles = exact_percentiles(experiment, time_range)
    else:
        names = {scope: [judge.name for judge in judges if judge.scope == scope] for scope in scopes}
        tallies = raw_tallies(experiment, [(time_range.start, time_range.end)], time_range.bucket, names=names, categorical=categorical, histogram=False)
        percentiles = exact_percentiles(experiment, time_range)
    measured = [judge for judge in judges if judge.output_type != OutputType.STRING]
    labelled = load_pairs(measured) if measured else {}  # two queries for all the judges people's labels can check
    summaries, judge_cost = _judge_summaries(judges, _version_marks(experiment, time_range), tallies, buckets, labelled)
    return {
        "range": {
            "from": _iso(time_range.start),
            "to": _iso(time_range.end),
            "bucket": time_range.bucket,
            "preset": time_range.preset,
        },
        "judges": summaries,
        "performance": _performance(tallies, buckets, judge_cost, percentiles, approximate=approximate),
    }


def _corrected(judge: Judge, labelled: Mapping[int, Any], counts: Mapping[str, float]) -> dict[str, Any] | None:
    """A yes/no judge's pass rate corrected for its measured errors (Rogan–Gladen, from its current version's
    sensitivity and specificity against people's labels, with a 95% interval: judges.agreement); None for other
    judges."""
    if judge.output_type != OutputType.BOOLEAN or judge.pk not in labelled:
        return None
    return {"version": judge.version, **corrected_rate(labelled[judge.pk], int(counts["passes"]), int(counts["yes_no"])).as_json()}


def _agreement(judge: Judge, labelled: Mapping[int, Any]) -> dict[str, Any] | None:
    """The current version's agreement with people (judges.agreement): κ (weighted for whole numbers; MAE for
    decimals) with its 95% bootstrap interval and n, or "insufficient" below MIN_PAIRS; None for text judges. The
    same figure as the judge's card, from all of that version's labels (not only the range's)."""
    if judge.pk not in labelled:
        return None
    agreement = labelled[judge.pk].agreement(judge.version)
    figure = agreement.mae if judge.output_type == OutputType.FLOAT else agreement.kappa
    return {
        "version": judge.version,
        "n": agreement.n,
        "status": "ok" if agreement.sufficient else "insufficient",
        "min_pairs": MIN_PAIRS,
        "figure": "mae" if judge.output_type == OutputType.FLOAT else "kappa",
        "value": figure.as_json() if agreement.sufficient and figure is not None else None,
    }


def judge_totals(experiment: Experiment, judges: list[Judge], since: datetime, until: datetime) -> dict[int, JudgeTally]:
    """Per judge (by pk): its verdicts counted the Overview's way — on what was traced in [since, until): traces by
    their start, conversations by their last turn; judged, errors, not applicable, cost. The Judges tab's "last
    24 hours" is this, so a judge shows the same numbers on both pages."""
    # The closed hours from the rollups, as the Overview reads them (with every judge's categories, so the hours
    # stored here serve it too); one raw sum for the partial hours at the edges (design note 48).
    categorical = _categorical(list(Judge.objects.filter(experiment=experiment)))
    with window_plans():
        tallies = rollup_tallies(experiment, TimeRange(since, until, "hour"), categorical, timezone.now())
    totals: dict[int, JudgeTally] = {}
    for judge in judges:
        total = JudgeTally()
        for tally in tallies.values():
            if (found := tally.judges.get((judge.scope, judge.name))) is not None:
                total.add(found)
        totals[judge.pk] = total
    return totals


# --- the experiment list -----------------------------------------------------------------------------------------


def boolean_pass_rates(experiment_ids: list[int], since: datetime) -> dict[int, float | None]:
    """Per experiment id: the share of yes among valid yes/no judge verdicts on what was traced since `since`
    (traces by start, sessions by last turn). Two queries, whatever the number of experiments; naming the
    experiments lets both walk the (experiment, time) indexes instead of every assessment ever made."""
    verdict = Q(source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code="")
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    targets = (("trace__experiment_id", "trace__started_at"), ("session__experiment_id", "session__last_trace_at"))
    production = {"trace__experiment_id": Q(trace__evaluation_run__isnull=True), "session__experiment_id": Q()}  # note 40
    with window_plans():
        found = [
            list(
                Assessment.objects.filter(verdict, production[experiment_field], **{f"{experiment_field}__in": experiment_ids, f"{moment}__gte": since})
                .values(experiment_field)
                .annotate(passes=Sum(JSONBool("value")), yes_no=Count(JSONBool("value")))
                .order_by()
            )
            for experiment_field, moment in targets
        ]
    for (experiment_field, _), rows in zip(targets, found, strict=True):
        for row in rows:
            counts[row[experiment_field]][0] += row["passes"] or 0
            counts[row[experiment_field]][1] += row["yes_no"]
    return {experiment_id: _ratio(passes, yes_no) for experiment_id, (passes, yes_no) in counts.items() if yes_no}
