"""GET /api/v1/experiments/<id>/overview and the aggregates behind it (evalapp.overview), on a small hand-made
experiment whose every number can be worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import RangeError, parse_range
from judges.actions import create_judge, update_judge
from tests.conftest import ingest, record_verdict, window_plan_queries
from traces.actions import create_experiment
from traces.feedback import add_feedback
from traces.models import Assessment, AssessmentSource, Session, Trace

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(hour: int, minute: int, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def logged(trace_id: str, start: datetime, duration_ms: int, *, status: str = "OK", tokens: int = 100, session_id: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "trace_id": trace_id,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=duration_ms)).isoformat(),
        "status": status,
        "request": {"question": trace_id},
        "response": {"answer": trace_id},
        "token_usage": {"input_tokens": tokens - 20, "output_tokens": 20},
    }
    if session_id:
        item["session_id"] = session_id
    return item


@pytest.fixture
def dataset(experiment, endpoint, user):
    """Five traces in the last 24 h (four at 09:xx, one at 10:05), one three days old, and four judges.

    durations 09:xx = 100, 200, 400, 1000 ms (t3 an ERROR); 10:05 = 50 ms; the old one 9999 ms."""
    stored = ingest(
        experiment,
        logged("t1", at(9, 10), 100, session_id="s1"),
        logged("t2", at(9, 20), 200, session_id="s1", tokens=200),
        logged("t3", at(9, 40), 400, status="ERROR"),
        logged("t4", at(9, 50), 1000),
        logged("t5", at(10, 5), 50),
        logged("old", at(9, 0, day=17), 9999),
    )
    t = {trace.trace_id: trace for trace in stored}
    with time_machine.travel(at(8, 0, day=19), tick=False):  # v1 of every judge: before the 24 h range
        correct = create_judge(experiment, name="correct", instructions="Is {{ outputs }} correct?", endpoint=endpoint)
        score = create_judge(experiment, name="score", instructions="Rate {{ outputs }} 1-5.", output_type="integer", endpoint=endpoint)
        tone = create_judge(experiment, name="tone", instructions="Tone of {{ outputs }}?", output_type="categorical",
                            categories=["friendly", "neutral", "rude"], endpoint=endpoint)
        resolved = create_judge(experiment, name="resolved", scope="session", instructions="Resolved? {{ conversation }}", endpoint=endpoint)
    with time_machine.travel(at(10, 30), tick=False):
        correct = update_judge(correct, instructions="Is {{ outputs }} correct and complete?")

    record_verdict(correct, t["t1"], False)  # overridden by a re-run: costs money, doesn't count
    record_verdict(correct, t["t1"], True)
    record_verdict(correct, t["t2"], False)
    record_verdict(correct, t["t3"], True)
    record_verdict(correct, t["t4"], error_code="not_applicable", cost="0")
    record_verdict(correct, t["t5"], error_code="rate_limited")
    record_verdict(correct, t["old"], False)  # outside the range
    add_feedback(user=user, name="correct", value=True, trace=t["t2"])

    record_verdict(score, t["t1"], 4)
    record_verdict(score, t["t2"], 5)
    record_verdict(score, t["t5"], 2)

    record_verdict(tone, t["t1"], "friendly")
    record_verdict(tone, t["t2"], "friendly")
    record_verdict(tone, t["t3"], "rude")
    record_verdict(tone, t["t5"], "neutral")

    record_verdict(resolved, Session.objects.get(session_id="s1"), True, cost="0.01")
    return experiment


def get_overview(api: APIClient, experiment, **params: str) -> dict[str, Any]:
    with time_machine.travel(NOW, tick=False):
        response = api.get(f"/api/v1/experiments/{experiment.pk}/overview", params)
    assert response.status_code == 200, response.content
    return response.json()


def judge(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in body["judges"] if entry["name"] == name)


def point(series: list[dict[str, Any]], bucket: str) -> dict[str, Any]:
    return next(entry for entry in series if entry["bucket"] == bucket)


def test_last_24_hours_come_in_hour_buckets(api, dataset):
    body = get_overview(api, dataset, range="24h")

    assert body["range"] == {"from": "2026-11-19T12:00:00Z", "to": "2026-11-20T12:00:00Z", "bucket": "hour", "preset": "24h"}
    buckets = [entry["bucket"] for entry in body["performance"]["series"]]
    assert len(buckets) == 24 and buckets[0] == "2026-11-19T12:00:00Z" and buckets[-1] == "2026-11-20T11:00:00Z"
    assert all(len(entry["series"]) == 24 for entry in body["judges"])


def test_performance_counts_latency_percentiles_and_tokens_per_bucket(api, dataset):
    performance = get_overview(api, dataset, range="24h")["performance"]

    # Overall 50, 100, 200, 400, 1000 ms: p50 = 200; p95 sits at 3.8 of 0..4 → 400 + 0.8 × 600.
    assert performance | {"series": None} == {
        "traces": 5, "errors": 1, "error_rate": 0.2, "p50_ms": 200.0, "p95_ms": 880.0, "percentiles_approximate": False, "tokens": 600,
        "judge_cost_usd": pytest.approx(0.022), "series": None,
    }
    nine = point(performance["series"], "2026-11-20T09:00:00Z")
    # 100, 200, 400, 1000: p50 halfway between 200 and 400; p95 at 2.85 → 400 + 0.85 × 600.
    assert nine == {"bucket": "2026-11-20T09:00:00Z", "traces": 4, "errors": 1, "error_rate": 0.25, "p50_ms": 300.0, "p95_ms": 910.0,
                    "tokens": 500, "judge_cost_usd": pytest.approx(0.019)}
    ten = point(performance["series"], "2026-11-20T10:00:00Z")
    assert (ten["traces"], ten["p50_ms"], ten["p95_ms"], ten["judge_cost_usd"]) == (1, 50.0, 50.0, pytest.approx(0.003))
    empty = point(performance["series"], "2026-11-20T11:00:00Z")
    assert (empty["traces"], empty["error_rate"], empty["p50_ms"], empty["tokens"]) == (0, None, None, 0)


def test_boolean_judge_pass_rate_errors_and_version_marks(api, dataset):
    correct = judge(get_overview(api, dataset, range="24h"), "correct")

    # t1 yes (its overridden "no" doesn't count), t2 no, t3 yes; t4 not applicable; t5 failed; "old" is out of range.
    assert (correct["judged"], correct["errors"], correct["not_applicable"]) == (3, 1, 1)
    assert correct["pass_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert (correct["n"], correct["pass_rate_low"], correct["pass_rate_high"]) == (3, 0.2077, 0.9385)  # 95% Wilson, scipy
    assert (correct["mean"], correct["categories"]) == (None, None)
    assert correct["cost_usd"] == pytest.approx(0.005)  # the re-run's cost counts
    assert correct["human"] == {"count": 1, "pass_rate": 1.0}
    assert correct["versions"] == [{"version": 2, "created_at": "2026-11-20T10:30:00Z"}]
    assert correct["version"] == 2
    assert point(correct["series"], "2026-11-20T09:00:00Z") == {
        "bucket": "2026-11-20T09:00:00Z", "judged": 3, "errors": 0, "n": 3, "pass_rate": 0.6667, "pass_rate_low": 0.2077, "pass_rate_high": 0.9385,
    }
    assert point(correct["series"], "2026-11-20T10:00:00Z") == {
        "bucket": "2026-11-20T10:00:00Z", "judged": 0, "errors": 1, "n": 0, "pass_rate": None, "pass_rate_low": None, "pass_rate_high": None,
    }


def test_numeric_judge_mean_per_bucket(api, dataset):
    score = judge(get_overview(api, dataset, range="24h"), "score")

    assert score["mean"] == pytest.approx(11 / 3, abs=1e-4)
    assert (score["pass_rate"], score["judged"]) == (None, 3)
    assert point(score["series"], "2026-11-20T09:00:00Z")["mean"] == 4.5
    assert point(score["series"], "2026-11-20T10:00:00Z")["mean"] == 2.0
    assert point(score["series"], "2026-11-20T11:00:00Z") == {"bucket": "2026-11-20T11:00:00Z", "judged": 0, "errors": 0, "mean": None, "n": 0}
    assert score["n"] == 3


def test_categorical_judge_shares_in_declared_order(api, dataset):
    tone = judge(get_overview(api, dataset, range="24h"), "tone")

    assert tone["categories"] == {"friendly": 0.5, "neutral": 0.25, "rude": 0.25}
    assert list(tone["categories"]) == ["friendly", "neutral", "rude"]
    assert point(tone["series"], "2026-11-20T09:00:00Z")["shares"] == {"friendly": 0.6667, "neutral": 0.0, "rude": 0.3333}
    assert point(tone["series"], "2026-11-20T10:00:00Z")["shares"] == {"friendly": 0.0, "neutral": 1.0, "rude": 0.0}
    assert point(tone["series"], "2026-11-20T11:00:00Z")["shares"] == {}


def test_session_judge_counts_at_the_conversations_last_turn(api, dataset):
    resolved = judge(get_overview(api, dataset, range="24h"), "resolved")

    assert (resolved["scope"], resolved["judged"], resolved["pass_rate"], resolved["cost_usd"]) == ("session", 1, 1.0, 0.01)
    assert point(resolved["series"], "2026-11-20T09:00:00Z")["judged"] == 1  # s1's last turn (t2) started at 09:20


def test_seven_days_come_in_day_buckets_and_include_older_traces(api, dataset):
    body = get_overview(api, dataset, range="7d")

    assert body["range"]["bucket"] == "day"
    assert [entry["bucket"] for entry in body["performance"]["series"]][-2:] == ["2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z"]
    assert point(body["performance"]["series"], "2026-11-17T00:00:00Z")["traces"] == 1
    correct = judge(body, "correct")
    assert (correct["judged"], correct["pass_rate"]) == (4, 0.5)
    assert [mark["version"] for mark in correct["versions"]] == [2]  # its creation (v1) is no change to mark


def test_custom_dates_include_the_whole_last_day(api, dataset):
    body = get_overview(api, dataset, **{"from": "2026-11-17", "to": "2026-11-17"})

    assert body["range"] == {"from": "2026-11-17T00:00:00Z", "to": "2026-11-18T00:00:00Z", "bucket": "hour", "preset": None}
    assert body["performance"]["traces"] == 1
    assert body["performance"]["p95_ms"] == 9999.0


def test_bad_range_is_a_400_naming_the_parameter(api, experiment):
    response = api.get(f"/api/v1/experiments/{experiment.pk}/overview", {"range": "2w"})

    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [{"field": "range", "message": "'2w' is not a range; use one of 1h, 24h, 7d, 30d, or give 'from' and 'to'"}]
    assert "2w" in body["detail"]


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"from": "last tuesday"}, "from", "is not a date"),
        ({"from": "2026-11-20", "to": "2026-11-19"}, "to", "must be after 'from'"),
        ({"to": "2026-11-19"}, "from", "is required"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "to", "at most 366 days"),
    ],
)
def test_bad_custom_range_is_a_400(api, experiment, params, field, fragment):
    response = api.get(f"/api/v1/experiments/{experiment.pk}/overview", params)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field and fragment in error["message"]


def test_unknown_experiment_is_404(api, db):
    assert api.get("/api/v1/experiments/999999/overview").status_code == 404


def test_without_a_token_is_401(experiment):
    assert APIClient().get(f"/api/v1/experiments/{experiment.pk}/overview").status_code == 401


def test_viewers_can_read_it(viewer_api, experiment):
    body = viewer_api.get(f"/api/v1/experiments/{experiment.pk}/overview").json()

    assert body["judges"] == [] and body["performance"]["traces"] == 0 and body["range"]["preset"] == "7d"


def test_range_parsing():
    assert parse_range({"range": "1h"}, NOW).bucket == "minute"
    assert parse_range({"range": "30d"}, NOW).bucket == "day"
    assert parse_range({"from": "2026-11-20T09:30"}, NOW).start == at(9, 30)  # no offset: UTC
    assert parse_range({"from": "2026-11-20T09:30+02:00"}, NOW).start == at(7, 30)
    with pytest.raises(RangeError):
        parse_range({"range": "forever"}, NOW)


def _overview_queries(experiment, preset: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        compute_overview(experiment, parse_range({"range": preset}, NOW), NOW)
    return len(queries)


def test_query_count_does_not_grow_with_judges_or_traces(api, endpoint):
    small = create_experiment("small")
    ingest(small, logged("s-1", NOW - timedelta(hours=1), 100))
    create_judge(small, name="only", instructions="ok? {{ outputs }}", endpoint=endpoint)
    create_judge(small, name="conversation", scope="session", instructions="? {{ conversation }}", endpoint=endpoint)

    large = create_experiment("large")
    ingest(large, *[logged(f"l-{index}", NOW - timedelta(hours=index), 100 + index, session_id=f"c{index % 4}") for index in range(60)])
    for index, output_type in enumerate(["boolean", "integer", "float", "categorical", "string"]):
        extra = {"categories": ["a", "b"]} if output_type == "categorical" else {}
        create_judge(large, name=f"judge-{index}", output_type=output_type, instructions="? {{ outputs }}", endpoint=endpoint, **extra)
    create_judge(large, name="conversation", scope="session", instructions="? {{ conversation }}", endpoint=endpoint)
    for trace in Trace.objects.filter(experiment=large):
        Assessment.objects.create(trace=trace, name="judge-0", judge_name="judge-0", value=True, source_type=AssessmentSource.LLM_JUDGE)

    # From the raw rows (minute buckets): judges, version marks, a GROUP BY per scope, one over traces, two for
    # exact percentiles (and the planner options on PostgreSQL), and people's labels for the yes/no judges'
    # corrected pass rates (one query for every judge; a second, for the verdicts on the labelled items, only when
    # there are labels).
    plans = window_plan_queries()
    assert _overview_queries(large, "1h") == _overview_queries(small, "1h") <= 8 + plans
    # From the hourly rollups: the first view also stores the hours it summed (savepoint, insert, release) ...
    assert _overview_queries(large, "7d") == _overview_queries(small, "7d") <= 10 + plans
    # ... later ones read them (one query) and sum only the partial and current hours from the raw rows.
    assert _overview_queries(large, "7d") == _overview_queries(small, "7d") <= 7 + plans
    # Hour buckets (24 h) read the same stored hours and take their two exact percentiles from the raw rows (the
    # large one's hours are all stored: no raw sums; the small one's empty hours from before it was made never are,
    # so they are summed again, finding nothing).
    assert _overview_queries(large, "24h") <= _overview_queries(small, "24h") <= 9 + plans

