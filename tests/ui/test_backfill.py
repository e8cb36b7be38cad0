"""Backfills: older traces judged on purpose — counted and priced first, then a job with progress and Cancel, after live work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from judges.actions import create_judge
from judges.backfill import daily_forecast
from judges.llm import CallResult
from judges.models import BACKFILL_PRIORITY, Evaluation
from judges.results import Outcome, record_result
from tests.conftest import judge_pending, make_trace
from traces.actions import ingest_traces
from traces.models import Trace
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db(transaction=True)


def days_ago(trace_id: str, days: float, **fields) -> dict:
    moment = timezone.now() - timedelta(days=days)
    trace = make_trace(trace_id, **fields)
    for span in trace["spans"]:
        span["start_time"] = moment.isoformat()
        span["end_time"] = (moment + timedelta(seconds=1)).isoformat()
    return trace


@pytest.fixture
def history(experiment, endpoint):
    ingest_traces(experiment, parse_trace_batch(
        [days_ago(f"old{n}", 3 + n / 10) for n in range(6)] + [days_ago("staging", 3, metadata={"environment": "staging"}), days_ago("ancient", 40)],
        max_traces=100,
    ))
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint, active=True,
                         filter_string="metadata.environment = 'production'")
    record_result(judge, Outcome(CallResult(value=True, rationale="already judged", cost_usd=None)), trace=Trace.objects.get(trace_id="old0"))
    assert not Evaluation.objects.exists()  # switching on looked back one hour only
    return judge


def test_a_backfill_is_counted_priced_started_and_judged_after_live_work(client, user, experiment, history, standin):
    client.force_login(user)
    url = reverse("judge-backfill", args=[experiment.pk, history.pk])
    since = (timezone.now() - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    estimate = client.post(url, {"since": since, "confirm": "estimate"}).content.decode()
    # old1..old5: in range, production, not judged yet (old0 is, staging is filtered out, ancient is out of range)
    assert "<strong>5</strong> traces to judge" in estimate and "from a typical prompt at the endpoint" in estimate
    started = client.post(url, {"since": since, "confirm": "start"})
    assert started.status_code == 302 and "/backfill/" in started["Location"]
    evaluations = Evaluation.objects.all()
    assert evaluations.count() == 5 and {e.priority for e in evaluations} == {BACKFILL_PRIORITY}
    page = client.get(started["Location"]).content.decode()
    assert "<strong>0</strong> of 5 done" in page and 'hx-trigger="every 2s"' in page and "Cancel" in page
    judge_pending()
    page = client.get(started["Location"]).content.decode()
    assert "<strong>5</strong> of 5 done" in page and "every 2s" not in page


def test_a_backfill_can_be_cancelled_and_nothing_queued_is_judged(client, user, experiment, history):
    client.force_login(user)
    url = reverse("judge-backfill", args=[experiment.pk, history.pk])
    since = (timezone.now() - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    location = client.post(url, {"since": since, "confirm": "start"})["Location"]
    client.post(location + "/cancel")
    assert set(Evaluation.objects.values_list("status", flat=True)) == {"cancelled"}
    assert "5 cancelled" in client.get(location).content.decode()


def test_bad_ranges_and_viewers_are_refused(client, user, viewer, experiment, history):
    client.force_login(user)
    url = reverse("judge-backfill", args=[experiment.pk, history.pk])
    page = client.post(url, {"since": "2026-12-05T00:00", "until": "2026-12-01T00:00", "confirm": "start"}).content.decode()
    assert "must be after" in page and not Evaluation.objects.exists()
    page = client.post(url, {"since": "2026-12-01T00:00", "filter_string": "trace.sttus = 'OK'", "confirm": "estimate"}).content.decode()
    assert "did you mean" in page
    client.force_login(viewer)
    assert client.get(url).status_code == 403


def test_the_daily_forecast_follows_volume_and_sample_rate(experiment, history):
    ingest_traces(experiment, parse_trace_batch([days_ago(f"week{n}", n / 2) for n in range(14)], max_traces=100))
    history.sample_rate = 0.5
    forecast = daily_forecast(history)
    # 14 + 6 production traces in the last 7 days (old0..old5 at 3–3.5 days, week0..week13), half sampled, per day
    assert forecast.count == round(20 * 0.5 / 7)
    assert forecast.cost is not None and forecast.cost_low <= forecast.cost <= forecast.cost_high


def test_the_judge_form_forecasts_a_day_of_judging_as_settings_change(client, user, experiment, history, endpoint):
    ingest_traces(experiment, parse_trace_batch([days_ago(f"week{n}", n / 2) for n in range(14)], max_traces=100))
    client.force_login(user)
    url = reverse("judge-forecast", args=[experiment.pk])
    full = client.get(url, {"scope": "trace", "sample_rate_percent": "100", "endpoint": endpoint.pk}).content.decode()
    half = client.get(url, {"scope": "trace", "sample_rate_percent": "50", "endpoint": endpoint.pk}).content.decode()
    assert "about <strong>3</strong> judgements a day" in full  # 21 traces in 7 days (all environments), all judged
    assert "about <strong>2</strong> judgements a day" in half and "a day (" in half
    form = client.get(reverse("judge-edit", args=[experiment.pk, history.pk])).content.decode()
    assert 'id="judge-forecast"' in form and "judgement" in form
