"""Alerts: rules checked over sliding windows, opened with their figures and cause, resolved with hysteresis,
delivered by a signed webhook (retried, logged) and by e-mail."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalapp.alerts import evaluate, notify
from evalapp.models import AlertDelivery, AlertEvent, AlertKind, AlertRule, AlertStatus
from judges import secrets
from judges.actions import create_judge
from judges.models import JudgeVersion, ModelEndpoint
from traces.models import Assessment, AssessmentSource, Trace

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def judge(experiment):
    endpoint = ModelEndpoint.objects.create(name="m", model="openai/m")
    return create_judge(experiment, name="helpful", endpoint=endpoint, instructions="Is {{ outputs }} helpful?", output_type="boolean")


def traffic(experiment, judge, start: datetime, count: int, passes, *, errors=lambda minute: False, step: int = 1) -> None:
    """`count` traces, one every `step` minutes from `start`, the i-th with the judge's verdict `passes(i)`;
    `errors(i)` marks the trace as failed."""
    traces = Trace.objects.bulk_create(
        Trace(
            trace_id=f"t-{start.timestamp():.0f}-{minute}", experiment=experiment, started_at=start + timedelta(minutes=minute * step, seconds=1),
            duration_ms=100, status="ERROR" if errors(minute) else "OK",
        )
        for minute in range(count)
    )
    Assessment.objects.bulk_create(
        Assessment(
            trace=trace, name=judge.name, value=bool(passes(minute)), source_type=AssessmentSource.LLM_JUDGE, judge_name=judge.name,
            judge_version=1, cost_usd="0.001", created_at=trace.started_at,
        )
        for minute, trace in enumerate(traces)
    )


def every(share_failing: int):
    """A verdict pattern failing 1 in `share_failing` minutes (0: never)."""
    return lambda minute: not (share_failing and minute % share_failing == 0)


def sweeps(start: datetime, end: datetime, step=timedelta(minutes=10)):
    moment = start
    while moment <= end:
        yield moment
        moment += step


def test_a_scripted_drop_fires_one_alert_that_resolves_when_quality_returns(experiment, judge):
    rule = AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, hysteresis=0.02, window_minutes=60)
    traffic(experiment, judge, START, 6 * 60, every(10))  # 90% for six hours
    traffic(experiment, judge, START + timedelta(hours=6), 3 * 60, every(2))  # 50% for three
    traffic(experiment, judge, START + timedelta(hours=9), 4 * 60, every(20))  # 95% again
    opened_at = resolved_at = None
    for now in sweeps(START + timedelta(hours=1), START + timedelta(hours=13)):
        report = evaluate.check_rules(now)
        if report.opened:
            assert opened_at is None, "opened twice"
            opened_at = now
        if report.resolved:
            resolved_at = now
    event = AlertEvent.objects.get()
    # A 60-minute window crosses 80% about 24 minutes into the drop (and back above 82% some 40 minutes after).
    assert START + timedelta(hours=6) < opened_at <= START + timedelta(hours=6, minutes=40)
    assert START + timedelta(hours=9) < resolved_at <= START + timedelta(hours=10)
    assert event.status == AlertStatus.RESOLVED and event.cause == evaluate.QUALITY_DROPPED
    assert event.figures["n"] == 60 and event.figures["low"] < event.figures["value"] < event.figures["high"]
    assert "n = 60" in event.summary and "95% CI" in event.summary
    rule.refresh_from_db()
    assert rule.last_figures["n"] == 60


@pytest.mark.parametrize(("hysteresis", "events"), [(0.05, 1), (0.0, 1)])
def test_a_rate_hovering_at_the_threshold_does_not_flap(experiment, judge, hysteresis, events):
    rule = AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, hysteresis=hysteresis, window_minutes=60)
    traffic(experiment, judge, START, 60, every(10))  # 90%
    traffic(experiment, judge, START + timedelta(hours=1), 60, every(2))  # 50%: opens
    # Then an hour at 83% and one at 80%, in turns: back at the line, but not clearly above it.
    for hour in range(6):
        traffic(experiment, judge, START + timedelta(hours=2 + hour), 60, every(6) if hour % 2 == 0 else every(5))
    for now in sweeps(START + timedelta(hours=1), START + timedelta(hours=8)):
        evaluate.check_rules(now)
    # Whatever the margin, it opened once (re-opening needs the whole interval below 80% again)...
    assert rule.events.count() == events
    # ...and with a 5-point margin it stays open, where no margin resolves it at the first 83% hour.
    assert rule.events.get().status == (AlertStatus.OPEN if hysteresis else AlertStatus.RESOLVED)


def test_a_flat_month_fires_nothing(experiment, judge):
    for kind, threshold in ((AlertKind.PASS_RATE_BELOW, 0.7), (AlertKind.PASS_RATE_DROP, 0.1)):
        AlertRule.objects.create(experiment=experiment, judge=judge, kind=kind, threshold=threshold, window_minutes=60)
    rng = random.Random(7)
    days = 30
    flips = [rng.random() < 0.85 for _ in range(days * 24 * 30)]
    # 30 traces an hour (one every other minute) at an 85% pass rate, by chance alone.
    traffic(experiment, judge, START, days * 24 * 30, lambda minute: flips[minute], step=2)
    checked = 0
    for now in sweeps(START + timedelta(hours=2), START + timedelta(days=days), step=timedelta(hours=1)):
        report = evaluate.check_rules(now)
        assert not report.opened, f"fired at {now}: {AlertEvent.objects.first().summary}"
        checked += 1
    assert checked == days * 24 - 1


def test_a_drop_is_tested_against_the_window_before_and_a_judge_change_is_named(experiment, judge):
    rule = AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_DROP, threshold=0.1, significance=0.001, window_minutes=60)
    traffic(experiment, judge, START, 2 * 60, every(10))  # 90%
    traffic(experiment, judge, START + timedelta(hours=2), 60, every(2))  # 50%
    JudgeVersion.objects.create(judge=judge, version=2, config={}, created_at=START + timedelta(hours=2))
    report = evaluate.check_rules(START + timedelta(hours=3))
    assert report.opened == 1
    event = AlertEvent.objects.get()
    assert event.cause == evaluate.JUDGE_CHANGED and "version 2" in event.summary
    assert event.figures["previous"] == pytest.approx(0.9) and event.figures["value"] == pytest.approx(0.5)
    assert event.figures["p_value"] < 1e-5 and "Fisher's exact test" in event.summary
    # The drop stays: still open, never opened again; back at 90% it resolves.
    traffic(experiment, judge, START + timedelta(hours=3), 60, every(2))
    assert evaluate.check_rules(START + timedelta(hours=4)).opened == 0
    traffic(experiment, judge, START + timedelta(hours=4), 60, every(10))
    assert evaluate.check_rules(START + timedelta(hours=5)).resolved == 1
    assert rule.events.get().status == AlertStatus.RESOLVED


def test_too_few_verdicts_change_nothing(experiment, judge):
    AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60, min_samples=20)
    traffic(experiment, judge, START, 10, every(2))  # 50%, but n = 10
    assert evaluate.check_rules(START + timedelta(minutes=30)).opened == 0


def test_trace_error_rate_and_judge_cost(experiment, judge):
    errors = AlertRule.objects.create(experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.1, window_minutes=60)
    cost = AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.JUDGE_COST_ABOVE, threshold=1.0, window_minutes=60)
    traffic(experiment, judge, START, 60, every(0), errors=lambda minute: minute % 4 == 0)  # 25% errors, $0.06/h = $1.44/day
    evaluate.check_rules(START + timedelta(hours=1))
    assert errors.events.get().figures["value"] == pytest.approx(0.25)
    assert cost.events.get().figures["value"] == pytest.approx(1.44)


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    failures_left = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        status = 500 if Receiver.failures_left > 0 else 200
        Receiver.failures_left -= 1
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.failures_left = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/secret-path"
    server.shutdown()


def test_the_webhook_gets_a_signed_body_and_a_failed_delivery_is_retried_and_logged(experiment, judge, receiver, mailoutbox):
    AlertRule.objects.create(
        experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60,
        webhook_url=receiver, webhook_secret_encrypted=secrets.encrypt("s3cret"), email_to="oncall@example.com, pm@example.com",
    )
    traffic(experiment, judge, START, 60, every(2))
    Receiver.failures_left = 1
    now = START + timedelta(hours=1)
    report = evaluate.check_rules(now)
    assert report.opened == 1 and report.failed == 1 and report.delivered == 1  # the webhook failed, the mail went
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert webhook.next_attempt_at == now + timedelta(minutes=1) and webhook.last_error == "HTTP 500"
    assert webhook.target == "http://127.0.0.1:%s/…" % receiver.split(":")[2].split("/")[0]  # the path (a secret) is not shown
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["oncall@example.com", "pm@example.com"]
    assert "helpful pass rate 50.0% (n = 60" in mailoutbox[0].body
    # The next check before the retry is due sends nothing; the one after it delivers.
    assert evaluate.check_rules(now + timedelta(seconds=30)).delivered == 0
    assert evaluate.check_rules(now + timedelta(seconds=61)).delivered == 1
    webhook.refresh_from_db()
    assert webhook.delivered_at is not None and [entry["outcome"] for entry in webhook.log] == ["HTTP 500", "delivered"]
    headers, body = Receiver.received[-1]
    expected = "sha256=" + hmac.new(b"s3cret", headers["X-Evalapp-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Evalapp-Signature"], expected)
    sent = json.loads(body)
    assert sent["text"].startswith("*[checkout-agent] Alert: helpful") and sent["alert"]["figures"]["n"] == 60
    assert "trace.timestamp_ms" in sent["alert"]["traces_url"]


def test_a_delivery_that_keeps_failing_is_given_up_after_five_attempts(experiment, judge, receiver):
    AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60, webhook_url=receiver)
    traffic(experiment, judge, START, 60, every(2))
    Receiver.failures_left = 99
    now = START + timedelta(hours=1)
    evaluate.check_rules(now)
    for minutes in (1, 3, 7, 15):
        now = START + timedelta(hours=1, minutes=minutes, seconds=1)
        notify.deliver_due(now)
    delivery = AlertDelivery.objects.get()
    assert delivery.attempts == notify.MAX_ATTEMPTS and delivery.next_attempt_at is None and delivery.delivered_at is None
    assert delivery.last_error == "HTTP 500; gave up after 5 attempts" and len(delivery.log) == 5
    assert "X-Evalapp-Signature" not in Receiver.received[0][0]  # no secret, no signature


def test_a_muted_rule_records_its_alert_but_sends_nothing(experiment, judge, mailoutbox):
    AlertRule.objects.create(
        experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60,
        email_to="oncall@example.com", muted_until=START + timedelta(days=1),
    )
    traffic(experiment, judge, START, 60, every(2))
    assert evaluate.check_rules(START + timedelta(hours=1)).opened == 1
    assert not AlertDelivery.objects.exists() and mailoutbox == []


def test_check_alerts_is_scheduled_every_minute(db):
    from django_q.models import Schedule

    from evalapp import tasks

    tasks.ensure_schedule()
    tasks.ensure_schedule()
    schedule = Schedule.objects.get(name=tasks.ALERTS_SCHEDULE)
    assert schedule.func == "evalapp.tasks.check_alerts" and schedule.minutes == 1


# --- the Alerts tab ----------------------------------------------------------------------------------------------


def test_an_editor_adds_a_rule_in_percent_and_the_tab_shows_it_with_its_figures(client, user, experiment, judge):
    client.force_login(user)
    url = f"/experiments/{experiment.pk}/alerts"
    assert "No alert rules yet" in client.get(url).content.decode()
    response = client.post(f"{url}/rules", {
        "kind": "pass_rate_below", "judge": judge.pk, "threshold": "80", "window_minutes": "60", "min_samples": "20",
        "significance": "0.001", "webhook_url": "https://hooks.example.com/services/T0/B0/abc", "webhook_secret": "s3cret", "email_to": "",
    })
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.threshold == 0.8 and rule.hysteresis == 0.02 and secrets.decrypt(rule.webhook_secret_encrypted) == "s3cret"
    traffic(experiment, judge, START, 60, every(2))
    evaluate.check_rules(START + timedelta(hours=1))
    page = client.get(url).content.decode()
    assert "helpful pass rate 50.0% (n = 60, 95% CI" in page and "Acknowledge" in page
    assert "s3cret" not in page and "/services/T0" not in page  # the secret and the hook's path are never shown
    assert client.get(f"{url}/badge").content.decode().count(">1<") == 1
    event = AlertEvent.objects.get()
    client.post(f"{url}/{event.pk}/acknowledge")
    event.refresh_from_db()
    assert event.status == AlertStatus.ACKNOWLEDGED and event.acknowledged_by == "pat"


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"kind": "pass_rate_below", "threshold": "80"}, "judge", "pick one"),
    ({"kind": "pass_rate_below", "threshold": "180", "judge": "JUDGE"}, "threshold", "between 0 and 100"),
    ({"kind": "mean_below", "threshold": "3", "judge": "JUDGE"}, "judge", "needs a judge that gives numbers"),
    ({"kind": "latency_p95_above", "threshold": "-5"}, "threshold", "above 0"),
    ({"kind": "trace_error_rate_above", "threshold": "5", "email_to": "oncall, x@example.com"}, "email_to", "'oncall' is not an e-mail address"),
    ({"kind": "trace_error_rate_above", "threshold": "5", "window_minutes": "1"}, "window_minutes", "greater than or equal to 5"),
    ({"kind": "nonsense", "threshold": "5"}, "kind", "Select a valid choice"),
])
def test_a_bad_rule_is_refused_with_the_field_named_and_nothing_saved(client, user, experiment, judge, data, field, message):
    client.force_login(user)
    defaults = {"window_minutes": "60", "min_samples": "20", "significance": "0.001"}
    data = {**defaults, **{key: (judge.pk if value == "JUDGE" else value) for key, value in data.items()}}
    response = client.post(f"/experiments/{experiment.pk}/alerts/rules", data)
    assert response.status_code == 400
    assert any(message in error for error in response.context["form"].errors[field])
    assert not AlertRule.objects.exists()


def test_viewers_read_alerts_but_change_nothing(client, viewer, experiment, judge):
    rule = AlertRule.objects.create(experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.1)
    client.force_login(viewer)
    assert client.get(f"/experiments/{experiment.pk}/alerts").status_code == 200
    assert client.post(f"/experiments/{experiment.pk}/alerts/rules", {"kind": "trace_error_rate_above", "threshold": "5"}).status_code == 403
    assert client.post(f"/experiments/{experiment.pk}/alerts/rules/{rule.pk}/delete").status_code == 403
    assert AlertRule.objects.count() == 1


def test_mute_and_delete(client, user, experiment):
    rule = AlertRule.objects.create(experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.1)
    client.force_login(user)
    base = f"/experiments/{experiment.pk}/alerts/rules/{rule.pk}"
    assert client.post(f"{base}/mute", {"hours": "5"}).status_code == 400
    client.post(f"{base}/mute", {"hours": "8"})
    rule.refresh_from_db()
    assert rule.is_muted() and "muted until" in client.get(f"/experiments/{experiment.pk}/alerts").content.decode()
    client.post(f"{base}/mute", {"hours": "0"})
    rule.refresh_from_db()
    assert not rule.is_muted()
    client.post(f"{base}/delete")
    assert not AlertRule.objects.exists()


def test_alerts_need_a_login(client, experiment):
    assert client.get(f"/experiments/{experiment.pk}/alerts").status_code == 302
    assert client.get(f"/experiments/{experiment.pk}/alerts/badge").status_code == 302


def test_the_readme_signature_is_the_one_evalapp_sends():
    # The README's receiver example checks this exact signature; it must be what notify.sign makes.
    assert notify.sign("s3cret", "1764000000", b'{"text": "hi"}') == "sha256=e59594ab7bcbb044b404366821f57bd0a5f79758c4f61837c0bebcd261cb348c"
