"""Retention (traces.retention): traces older than N days go, with what hangs off them, in batches, by the sweep;
the Overview's day buckets keep their numbers for the deleted days; a dry run is shown before it is saved."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection

from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import parse_range
from judges import sweep
from judges.actions import create_judge
from judges.models import Evaluation
from traces import retention
from traces.actions import ingest_traces
from traces.models import Assessment, AssessmentSource, Session, Span, Trace
from traces.payload import parse_trace_batch

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
CUTOFF = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # 10 days before NOW, down to the hour


def logged(trace_id: str, start: datetime, *, session_id: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "trace_id": trace_id,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=700)).isoformat(),
        "request": {"question": trace_id},
        "response": {"answer": trace_id},
        "token_usage": {"input_tokens": 80, "output_tokens": 20},
        "spans": [{"span_id": "root", "name": "agent", "start_time": start.isoformat(), "end_time": (start + timedelta(milliseconds=700)).isoformat()}],
    }
    if session_id:
        item["session_id"] = session_id
    return item


def ingest(experiment, *items: dict[str, Any]) -> None:
    ingest_traces(experiment, parse_trace_batch(list(items), max_traces=1000))


def verdict(judge, target, value: Any, *, evaluation: bool = True) -> Assessment:
    where = {"trace": target} if isinstance(target, Trace) else {"session": target}
    assessment = Assessment.objects.create(
        **where, name=judge.name, value=value, source_type=AssessmentSource.LLM_JUDGE, source_id=f"judge:{judge.pk}",
        judge_name=judge.name, judge_version=judge.version, cost_usd=Decimal("0.001"),
    )
    if evaluation:
        Evaluation.objects.create(judge=judge, judge_version=judge.version, status="done", assessment=assessment, **where)
    return assessment


@pytest.fixture
def judged(experiment, endpoint):
    """Traces either side of the cutoff (some in conversations that straddle it), each with a verdict and its
    evaluation; an off judge, so ingesting queues nothing."""
    judge = create_judge(experiment, name="correct", endpoint=endpoint, active=False, instructions="Is {{ outputs }} right?")
    old = [CUTOFF - timedelta(days=2, minutes=7 * n) for n in range(5)] + [CUTOFF - timedelta(seconds=1)]
    new = [CUTOFF, CUTOFF + timedelta(hours=3), NOW - timedelta(hours=2)]
    items = [logged(f"old-{n}", start, session_id="gone" if n < 2 else "") for n, start in enumerate(old)]
    items += [logged(f"new-{n}", start) for n, start in enumerate(new)]
    items.append(logged("straddling-old", CUTOFF - timedelta(hours=5), session_id="straddles"))
    items.append(logged("straddling-new", CUTOFF + timedelta(hours=5), session_id="straddles"))
    ingest(experiment, *items)
    for trace in Trace.objects.all():
        verdict(judge, trace, not trace.trace_id.endswith("1"))
    for session in Session.objects.all():
        verdict(judge, session, True)
    experiment.retention_days = 10
    experiment.save()
    return judge


@pytest.mark.django_db
def test_retention_deletes_exactly_what_is_older_than_n_days_in_batches(experiment, judged, monkeypatch):
    batches: list[tuple[int, int]] = []
    real_batch = retention.delete_batch

    def counting(*args, **kwargs):
        batches.append(real_batch(*args, **kwargs))
        return batches[-1]

    monkeypatch.setattr(retention, "delete_batch", counting)
    assert retention.count_expiring(experiment, 10, NOW).traces == 7

    assert retention.delete_expired(NOW, batch=3) == 7

    assert batches == [(3, 0), (3, 1), (1, 0)]  # "gone" emptied with the second batch; a short one ends it
    assert sorted(Trace.objects.values_list("trace_id", flat=True)) == ["new-0", "new-1", "new-2", "straddling-new"]
    kept = set(Trace.objects.values_list("pk", flat=True))
    assert set(Span.objects.values_list("trace_id", flat=True)) == kept
    assert set(Assessment.objects.filter(trace__isnull=False).values_list("trace_id", flat=True)) == kept
    assert set(Evaluation.objects.filter(trace__isnull=False).values_list("trace_id", flat=True)) == kept
    # A conversation wholly before the cutoff goes with its verdict; one that straddles it stays as it was.
    assert list(Session.objects.values_list("session_id", "trace_count")) == [("straddles", 2)]
    assert Assessment.objects.filter(session__isnull=False).count() == Evaluation.objects.filter(session__isnull=False).count() == 1
    assert retention.delete_expired(NOW) == 0


@pytest.mark.django_db
def test_retention_is_off_unless_switched_on(experiment, judged, settings):
    experiment.retention_days = None
    experiment.save()
    settings.EVALAPP_RETENTION_DAYS = 0
    assert sweep.sweep(NOW).traces_expired == 0
    assert Trace.objects.count() == 11

    experiment.retention_days = 0  # "kept for good" wins over a server default
    experiment.save()
    settings.EVALAPP_RETENTION_DAYS = 10
    assert sweep.sweep(NOW).traces_expired == 0

    experiment.retention_days = None  # the server's default
    experiment.save()
    assert sweep.sweep(NOW).traces_expired == 7
    assert Trace.objects.count() == 4


@pytest.mark.django_db
def test_overview_keeps_the_history_of_deleted_days(experiment, judged, endpoint):
    month = parse_range({"range": "30d"}, NOW)
    compute_overview(experiment, month, NOW)  # some hours stored, as any earlier view would have
    # A verdict after that view leaves its hour stale: retention must store it again before deleting it.
    verdict(judged, Trace.objects.get(trace_id="old-3"), True, evaluation=False)
    before = compute_overview(experiment, month, NOW, rollups=False)

    retention.delete_expired(NOW, batch=2)
    # A categorical judge made since has no counts in the stored hours; they are history and count as they are.
    create_judge(experiment, name="tone", endpoint=endpoint, active=False, output_type="categorical", categories=["calm", "rude"], instructions="{{ outputs }}")

    experiment.refresh_from_db()  # as a request would load it, with retained_from
    after = compute_overview(experiment, month, NOW)
    assert comparable(after) == comparable(before)
    assert before["performance"]["traces"] == 11


def comparable(overview: dict[str, Any]) -> dict[str, Any]:
    """The Overview without latency percentiles (the rollups' are approximate) and without the judge made since."""
    copy = json.loads(json.dumps(overview))
    performance = copy["performance"]
    del performance["percentiles_approximate"]
    for point in [performance, *performance["series"]]:
        del point["p50_ms"], point["p95_ms"]
    copy["judges"] = [judge for judge in copy["judges"] if judge["name"] != "tone"]
    return copy


@pytest.mark.django_db(transaction=True)
def test_retention_runs_while_ingest_goes_on(experiment, judged):
    """Ingest keeps writing new traces while retention deletes old ones batch by batch: nothing new is lost or
    refused, and exactly the old ones go."""
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for n in range(30):
                ingest(experiment, logged(f"live-{n}", NOW - timedelta(minutes=n), session_id=f"live-{n % 3}"))
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            done.set()
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    deleted = 0
    while not done.is_set() or deleted < 7:
        deleted += retention.delete_expired(NOW, batch=1)
        if done.is_set() and deleted >= 7:
            break
    thread.join()

    assert errors == []
    assert deleted == 7
    assert Trace.objects.filter(trace_id__startswith="live-").count() == 30
    assert not Trace.objects.filter(started_at__lt=CUTOFF).exists()
    assert Session.objects.get(session_id="live-0").trace_count == 10


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_retention_page_shows_a_dry_run_before_saving(client, user, experiment, judged):
    experiment.retention_days = None
    experiment.save()
    client.force_login(user)
    url = f"/experiments/{experiment.pk}/retention"

    refused = client.post(url, {"days": "10", "confirm": "save"})  # not counted yet: counted, not saved
    assert refused.status_code == 200
    assert "the next sweep deletes" in refused.content.decode()
    experiment.refresh_from_db()
    assert experiment.retention_days is None

    counted = client.post(url, {"days": "10", "confirm": "count"})
    page = counted.content.decode()
    assert "<strong>7</strong> traces" in page and "<strong>1</strong> conversation" in page
    assert Trace.objects.count() == 11  # a dry run deletes nothing

    saved = client.post(url, {"days": "10", "counted": "10", "confirm": "save"})
    assert saved.status_code == 302
    experiment.refresh_from_db()
    assert experiment.retention_days == 10

    assert "is not a number of days" in client.post(url, {"days": "ten", "confirm": "count"}).content.decode()
