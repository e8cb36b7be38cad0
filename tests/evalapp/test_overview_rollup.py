"""The Overview's hourly rollups (evalapp.overview.rollups): day buckets summed from stored hours give the raw rows'
numbers, and exactly the hours a write changed are recomputed."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import evalapp.overview.rollups
from evalapp.models import OverviewHour
from evalapp.overview.compute import compute_overview, wilson_interval
from evalapp.overview.ranges import parse_range
from evalapp.overview.tallies import histogram_percentiles, interpolate
from judges.actions import create_judge, update_judge
from tests.conftest import ingest, judge_now, record_verdict, window_plan_queries
from traces.feedback import add_feedback
from traces.models import Assessment, AssessmentSource, Experiment, Session, Trace

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)  # half past: the current hour is open
HOUR = timedelta(hours=1)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def logged(trace_id: str, start: datetime, duration_ms: int | None, *, status: str = "OK", tokens: int = 100, session_id: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "trace_id": trace_id,
        "start_time": start.isoformat(),
        "status": status,
        "request": {"question": trace_id},
        "response": {"answer": trace_id},
        "token_usage": {"input_tokens": tokens - 20, "output_tokens": 20},
    }
    if duration_ms is not None:
        item["end_time"] = (start + timedelta(milliseconds=duration_ms)).isoformat()
    if session_id:
        item["session_id"] = session_id
    return item


@pytest.fixture
def judges(experiment, endpoint) -> dict[str, Any]:
    """Off, so ingesting queues no judging: these tests record verdicts themselves."""
    def make(name: str, **fields: Any):
        fields.setdefault("instructions", "Is {{ outputs }} right?")
        return create_judge(experiment, name=name, endpoint=endpoint, active=False, **fields)

    return {
        "correct": make("correct"),
        "score": make("score", output_type="integer"),
        "tone": make("tone", output_type="categorical", categories=["friendly", "neutral", "rude"]),
        "notes": make("notes", output_type="string"),
        "resolved": make("resolved", scope="session", instructions="Resolved? {{ conversation }}"),
        "mood": make("mood", scope="session", output_type="categorical", categories=["calm", "upset"], instructions="Mood? {{ conversation }}"),
    }


@pytest.fixture
def dataset(experiment, judges, user):
    """60 traces over the 12 days before NOW (none in the current hour), in three-turn conversations whose turns
    lie hours apart; every kind of verdict, error, re-run and feedback the Overview counts."""
    rng = random.Random(5)
    items = []
    for index in range(60):
        start = NOW - timedelta(minutes=45 + 283 * index + rng.randint(0, 40))
        duration = None if index == 17 else rng.choice([rng.randint(40, 400), rng.randint(400, 5000), 1200])
        items.append(logged(f"t{index}", start, duration, status="ERROR" if index % 7 == 0 else "OK", tokens=80 + index, session_id=f"s{index // 3}"))
    ingest(experiment, *items)
    traces = list(Trace.objects.filter(experiment=experiment).order_by("trace_id"))
    for index, trace in enumerate(traces):
        if index % 11 == 0:
            record_verdict(judges["correct"], trace, error_code="rate_limited")
        elif index % 13 == 0:
            record_verdict(judges["correct"], trace, error_code="not_applicable", cost="0")
        else:
            if index % 5 == 0:
                record_verdict(judges["correct"], trace, True)  # overridden by a re-run: costs, doesn't count
            record_verdict(judges["correct"], trace, index % 3 != 0)
        record_verdict(judges["score"], trace, index % 5 + 1, cost="0.002")
        record_verdict(judges["tone"], trace, ["friendly", "neutral", "rude", "sarcastic"][index % 4])  # one undeclared
        record_verdict(judges["notes"], trace, "fine" if index % 2 else "meh")
        if index % 4 == 0:
            add_feedback(user=user, name="correct", value=index % 8 == 0, trace=trace)
    for index, session in enumerate(Session.objects.filter(experiment=experiment).order_by("session_id")):
        record_verdict(judges["resolved"], session, index % 3 != 1, cost="0.01")
        record_verdict(judges["mood"], session, "upset" if index % 4 == 0 else "calm", cost="0.01")
    return experiment


def split_percentiles(overview: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[float | None, float | None]]]:
    copy = json.loads(json.dumps(overview))
    performance = copy["performance"]
    del performance["percentiles_approximate"]
    return copy, [(point.pop("p50_ms"), point.pop("p95_ms")) for point in [performance, *performance["series"]]]


def assert_same_as_raw(experiment, time_range) -> dict[str, Any]:
    """Rolled up and raw agree on everything; latency percentiles within the histogram's 5%."""
    raw = compute_overview(experiment, time_range, NOW, rollups=False)
    rolled = compute_overview(experiment, time_range, NOW)
    assert (rolled["performance"]["percentiles_approximate"], raw["performance"]["percentiles_approximate"]) == (True, False)
    exact, exact_percentiles = split_percentiles(raw)
    approximate, approximate_percentiles = split_percentiles(rolled)
    assert approximate == exact
    for found_pair, expected_pair in zip(approximate_percentiles, exact_percentiles, strict=True):
        for found, expected in zip(found_pair, expected_pair):
            assert found == (None if expected is None else pytest.approx(expected, rel=0.05, abs=0.1))
    return rolled


def stale_hours(experiment) -> set[datetime]:
    return {row.hour for row in OverviewHour.objects.filter(experiment=experiment) if row.computed_version != row.version}


def judge_cost(overview: dict[str, Any], name: str) -> float:
    return next(judge for judge in overview["judges"] if judge["name"] == name)["cost_usd"]


def judged(overview: dict[str, Any], name: str, day: datetime | None = None) -> int:
    entry = next(judge for judge in overview["judges"] if judge["name"] == name)
    if day is None:
        return entry["judged"]
    return next(point["judged"] for point in entry["series"] if point["bucket"] == day.strftime("%Y-%m-%dT00:00:00Z"))


# --- the same numbers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"range": "7d"},
        {"range": "30d"},
        {"from": "2026-11-12T09:30", "to": "2026-11-19T17:45"},  # partial hours at both edges, all in the past
        {"from": "2026-11-14", "to": "2026-11-20"},  # ends at midnight tonight: the current hour and later are raw
    ],
)
def test_rolled_up_days_equal_the_raw_computation(dataset, params):
    time_range = parse_range(params, NOW)
    assert time_range.bucket == "day"

    first = assert_same_as_raw(dataset, time_range)  # sums every hour from the raw rows and stores them
    again = assert_same_as_raw(dataset, time_range)  # reads them back

    assert first == again
    assert first["performance"]["traces"] > 10 and judged(first, "mood") > 2
    stored = OverviewHour.objects.filter(experiment=dataset, data__isnull=False)
    assert stored.exists() and all(row.hour < hour_of(NOW) for row in stored)  # the open hour is never stored
    assert all(row.computed_version == row.version for row in stored)


@pytest.mark.parametrize("params", [{"range": "24h"}, {"from": "2026-11-18T09:30", "to": "2026-11-19T17:45"}])
def test_hour_buckets_read_the_rollups_and_equal_the_raw_computation_exactly(dataset, params):
    time_range = parse_range(params, NOW)
    assert time_range.bucket == "hour"
    raw = compute_overview(dataset, time_range, NOW, rollups=False)

    first = compute_overview(dataset, time_range, NOW)  # sums the closed hours and stores them
    assert OverviewHour.objects.filter(experiment=dataset, data__isnull=False).exists()
    again = compute_overview(dataset, time_range, NOW)  # reads them back

    # Every figure the same, latency percentiles too: hour buckets take them from the raw rows, not histograms.
    assert first == again == raw
    assert first["performance"]["percentiles_approximate"] is False
    assert first["performance"]["traces"] > 3 and first["performance"]["p95_ms"] is not None


def test_histogram_percentiles_stay_within_the_bin_width():
    rng = random.Random(3)
    durations = sorted(int(rng.lognormvariate(7, 0.8)) for _ in range(2000))
    histogram: dict[int, list[int]] = {}
    for duration in durations:
        entry = histogram.setdefault(-1 if duration < 1 else math.floor(math.log(duration) / math.log(1.05)), [0, 0])
        entry[0] += 1
        entry[1] += duration

    found = histogram_percentiles(histogram)
    for name, fraction in (("p50_ms", 0.5), ("p95_ms", 0.95)):
        exact = interpolate(dict(enumerate(durations)), len(durations), fraction)
        assert found[name] == pytest.approx(exact, rel=0.05)
    assert histogram_percentiles({}) == {"p50_ms": None, "p95_ms": None}
    assert histogram_percentiles({140: [1, 1200]}) == {"p50_ms": 1200.0, "p95_ms": 1200.0}  # one value: exact


def test_a_stored_range_takes_a_few_queries_however_long(dataset):
    for preset in ("7d", "30d"):
        compute_overview(dataset, parse_range({"range": preset}, NOW), NOW)

    counts = []
    for preset in ("7d", "30d"):
        with CaptureQueriesContext(connection) as queries:
            compute_overview(dataset, parse_range({"range": preset}, NOW), NOW)
        counts.append(len(queries))
        # Nothing to store: judges, stored hours, the raw partial and current hours (3), version marks; and for the
        # corrected pass rates, people's labels and the verdicts on the labelled items (2).
        assert not [query for query in queries.captured_queries if query["sql"].startswith("INSERT")]
    assert counts[0] == counts[1] <= 8 + window_plan_queries()


# --- what goes stale ---------------------------------------------------------------------------------------------


@pytest.fixture
def computed(dataset):
    """Every hour of the last 30 days stored and fresh."""
    compute_overview(dataset, parse_range({"range": "30d"}, NOW), NOW)
    assert stale_hours(dataset) == set()
    return dataset


def test_ingesting_marks_the_new_traces_hours_stale(computed, django_capture_on_commit_callbacks):
    at = datetime(2026, 11, 16, 3, 20, tzinfo=UTC)
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        ingest(computed, logged("new-1", at, 300), logged("new-2", at + timedelta(minutes=30), 500, status="ERROR"))

    assert len([query for query in queries.captured_queries if "evalapp_overviewhour" in query["sql"]]) == 1
    assert stale_hours(computed) == {hour_of(at)}
    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    assert after["performance"]["traces"] == before["performance"]["traces"] + 2
    assert after["performance"]["errors"] == before["performance"]["errors"] + 1
    assert stale_hours(computed) == set()


def test_a_new_turn_moves_the_conversations_verdicts_and_both_hours_go_stale(computed, judges, django_capture_on_commit_callbacks):
    session = Session.objects.get(experiment=computed, session_id="s5")
    previous = session.last_trace_at
    new_turn = previous.replace(hour=1, minute=5) + timedelta(days=1)  # a later day, so the day buckets show it
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)

    with django_capture_on_commit_callbacks(execute=True):
        ingest(computed, logged("s5-late", new_turn, 200, session_id="s5"))

    assert stale_hours(computed) == {hour_of(previous), hour_of(new_turn)}
    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    for name in ("resolved", "mood"):
        assert judged(after, name, previous) == judged(before, name, previous) - 1
        assert judged(after, name, new_turn) == judged(before, name, new_turn) + 1


def test_a_late_root_span_moves_the_trace_and_both_hours_go_stale(computed, django_capture_on_commit_callbacks):
    root_start = datetime(2026, 11, 15, 23, 59, 50, tzinfo=UTC)
    child = {"span_id": "late-llm", "parent_span_id": "late-root", "name": "chat", "span_type": "CHAT_MODEL",
             "start_time": (root_start + timedelta(seconds=20)).isoformat(), "end_time": (root_start + timedelta(seconds=25)).isoformat()}
    root = {"span_id": "late-root", "name": "agent", "span_type": "AGENT",
            "start_time": root_start.isoformat(), "end_time": (root_start + timedelta(seconds=30)).isoformat()}
    with django_capture_on_commit_callbacks(execute=True):
        ingest(computed, {"trace_id": "late", "spans": [child]})  # started "at" the child: 00:00:10 the next day
    compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)

    with django_capture_on_commit_callbacks(execute=True):
        ingest(computed, {"trace_id": "late", "spans": [root]})

    assert Trace.objects.get(trace_id="late").started_at == root_start
    assert stale_hours(computed) == {hour_of(root_start), hour_of(root_start) + HOUR}
    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    days = {point["bucket"]: point["traces"] for point in after["performance"]["series"]}
    days_before = {point["bucket"]: point["traces"] for point in before["performance"]["series"]}
    assert days["2026-11-15T00:00:00Z"] == days_before["2026-11-15T00:00:00Z"] + 1
    assert days["2026-11-16T00:00:00Z"] == days_before["2026-11-16T00:00:00Z"] - 1


def test_recording_and_superseding_a_verdict_marks_its_traces_hour_stale(computed, judges):
    trace = Trace.objects.get(trace_id="t30")
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)

    judge_now(judges["correct"], trace)  # the real path: the stand-in model, judges.actions._record
    assert stale_hours(computed) == {hour_of(trace.started_at)}
    first = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    correct = next(judge for judge in first["judges"] if judge["name"] == "correct")
    assert correct["judged"] == judged(before, "correct")  # t30 had a verdict: the new one replaced it

    judge_now(judges["correct"], trace)  # judged again: supersedes the first
    assert stale_hours(computed) == {hour_of(trace.started_at)}
    second = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    again = next(judge for judge in second["judges"] if judge["name"] == "correct")
    assert again["judged"] == correct["judged"]
    assert Assessment.objects.filter(trace=trace, name="correct", source_type=AssessmentSource.LLM_JUDGE, valid=True).count() == 1


def test_a_round_of_verdicts_written_together_marks_each_targets_hour_stale_and_counts_like_the_raw_rows(computed, judges):
    """A drain writes a round's results with bulk_create (judges.results.record_results), which sends no post_save:
    the hours must go stale all the same, the superseded verdicts must stop counting."""
    from judges.llm import CallResult
    from judges.results import Outcome, record_results

    trace, other = Trace.objects.get(trace_id="t30"), Trace.objects.get(trace_id="t3")
    session = Session.objects.get(experiment=computed, session_id="s7")
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)
    record_results(
        [
            (judges["correct"], Outcome(CallResult(value=False)), {"trace": trace}),
            (judges["correct"], Outcome(CallResult(value=True)), {"trace": other}),
            (judges["resolved"], Outcome(CallResult(value=True)), {"session": session}),
        ]
    )
    assert stale_hours(computed) == {hour_of(trace.started_at), hour_of(other.started_at), hour_of(session.last_trace_at)}
    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    assert judged(after, "correct") == judged(before, "correct") + (0 if trace.assessments.filter(name="correct", valid=False).exists() else 1) + (
        0 if other.assessments.filter(name="correct", valid=False).exists() else 1
    )
    for target, name in ((trace, "correct"), (other, "correct"), (session, "resolved")):
        assert target.assessments.filter(name=name, source_type=AssessmentSource.LLM_JUDGE, valid=True).count() == 1


def test_feedback_on_a_conversation_marks_its_last_turns_hour_stale(computed, user):
    session = Session.objects.get(experiment=computed, session_id="s7")
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)

    add_feedback(user=user, name="resolved", value=False, session=session)
    assert stale_hours(computed) == {hour_of(session.last_trace_at)}
    add_feedback(user=user, name="resolved", value=True, session=session)  # replaces the first
    assert stale_hours(computed) == {hour_of(session.last_trace_at)}

    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    resolved, resolved_before = ({judge["name"]: judge for judge in result["judges"]}["resolved"] for result in (after, before))
    assert resolved["human"]["count"] == resolved_before["human"]["count"] + 1


def test_a_write_during_the_computation_leaves_the_hour_stale(computed, judges, monkeypatch):
    """A verdict lands after the raw rows were summed and before the hours are stored: its hour must not be stored
    as fresh (its sums miss the verdict), and the next view counts it."""
    trace = Trace.objects.get(trace_id="t40")
    before = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW, rollups=False)
    record_verdict(judges["notes"], trace, "early")  # the hour is stale, so this view recomputes it ...
    original = evalapp.overview.rollups.raw_tallies

    def raw_tallies_then_a_write(*args, **kwargs):
        result = original(*args, **kwargs)
        record_verdict(judges["notes"], trace, "late")  # ... and this lands while it does
        return result

    monkeypatch.setattr(evalapp.overview.rollups, "raw_tallies", raw_tallies_then_a_write)
    during = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)

    # Each verdict replaces the one before it (so "judged" stays put), but every call costs: the cost tells them apart.
    assert judge_cost(during, "notes") == pytest.approx(judge_cost(before, "notes") + 0.001)  # the early one only
    assert stale_hours(computed) == {hour_of(trace.started_at)}
    monkeypatch.setattr(evalapp.overview.rollups, "raw_tallies", original)
    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    assert judge_cost(after, "notes") == pytest.approx(judge_cost(before, "notes") + 0.002)
    assert judged(after, "notes") == judged(before, "notes")
    assert stale_hours(computed) == set()


def test_an_older_computation_does_not_overwrite_a_newer_one(computed, judges, monkeypatch):
    """Two views at once: the slow one summed the hour before a verdict landed, the quick one after, and stored
    first. The slow one's store must not replace the quick one's sums."""
    trace = Trace.objects.get(trace_id="t40")
    record_verdict(judges["notes"], trace, "early")
    original = evalapp.overview.rollups.raw_tallies
    nested: list[dict[str, Any]] = []

    def raw_tallies_then_another_view(*args, **kwargs):
        result = original(*args, **kwargs)
        if not nested:
            nested.append({})
            record_verdict(judges["notes"], trace, "late")
            nested[0] = compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)
        return result

    monkeypatch.setattr(evalapp.overview.rollups, "raw_tallies", raw_tallies_then_another_view)
    compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW)
    monkeypatch.setattr(evalapp.overview.rollups, "raw_tallies", original)

    assert stale_hours(computed) == set()  # the quick view's hour stands
    with CaptureQueriesContext(connection) as queries:
        assert compute_overview(computed, parse_range({"range": "30d"}, NOW), NOW) == nested[0]
    assert not [query for query in queries.captured_queries if query["sql"].startswith("INSERT")]


def test_a_write_to_a_missing_hour_during_the_computation_leaves_it_stale(dataset, judges, monkeypatch):
    trace = Trace.objects.get(trace_id="t20")
    OverviewHour.objects.filter(experiment=dataset).delete()  # a cold start: no hour stored or marked
    original = evalapp.overview.rollups.raw_tallies

    def raw_tallies_then_a_write(*args, **kwargs):
        result = original(*args, **kwargs)
        record_verdict(judges["notes"], trace, "late")  # inserts the hour's row as stale
        return result

    monkeypatch.setattr(evalapp.overview.rollups, "raw_tallies", raw_tallies_then_a_write)
    compute_overview(dataset, parse_range({"range": "30d"}, NOW), NOW)

    assert stale_hours(dataset) == {hour_of(trace.started_at)}
    monkeypatch.setattr(evalapp.overview.rollups, "raw_tallies", original)
    assert_same_as_raw(dataset, parse_range({"range": "30d"}, NOW))
    assert stale_hours(dataset) == set()


def test_a_judge_that_becomes_categorical_gets_its_hours_recounted(computed, judges):
    update_judge(judges["notes"], output_type="categorical", categories=["fine", "meh"])

    after = assert_same_as_raw(computed, parse_range({"range": "30d"}, NOW))
    notes = next(judge for judge in after["judges"] if judge["name"] == "notes")
    assert set(notes["categories"]) == {"fine", "meh"} and sum(notes["categories"].values()) == pytest.approx(1)


def test_empty_hours_from_before_the_experiment_existed_are_not_stored(experiment):
    Experiment.objects.filter(pk=experiment.pk).update(created_at=NOW - timedelta(days=2))
    experiment.refresh_from_db()
    ingest(experiment, logged("old", NOW - timedelta(days=5, minutes=30), 500))  # backfilled before it existed
    compute_overview(experiment, parse_range({"from": "2025-11-25", "to": "2026-11-19"}, NOW), NOW)
    stored = set(OverviewHour.objects.filter(experiment=experiment).values_list("hour", flat=True))
    born = hour_of(NOW - timedelta(days=2))
    # The one hour with a trace, then every closed hour since the experiment was created — not a year of hours.
    assert hour_of(NOW - timedelta(days=5, minutes=30)) in stored
    assert min(hour for hour in stored if hour != hour_of(NOW - timedelta(days=5, minutes=30))) == born
    assert len(stored) == 1 + (datetime(2026, 11, 20, tzinfo=UTC) - born) // timedelta(hours=1)


@pytest.mark.parametrize("passes, total", [(0, 1), (1, 1), (0, 40), (40, 40), (19, 29), (1, 3), (850, 1000), (7, 100_000), (33_001, 33_082)])
def test_the_wilson_interval_is_scipys(passes, total):
    from scipy.stats import binomtest

    expected = binomtest(passes, total).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(passes, total) == (round(float(expected.low), 4), round(float(expected.high), 4))
    assert wilson_interval(0, 0) is None
