"""The database unavailable: the web side answers 503 with Retry-After (JSON for the API and exporters, a short page
for a browser) and stores nothing, /healthz says the database is down, the worker's broker waits it out with a
line a minute instead of a traceback per poll; and all of it works again, by itself, once the database is back.

"Down" here is the app pointed at a closed port (PostgreSQL) or at a file that can't be opened (SQLite), then
back at the real test database."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connections

from judges.brokers import Outage, PatientORM
from judges.quiet_log import LOG_EVERY_SECONDS, QuietOutageFilter
from tests.conftest import make_trace
from tests.hostile.conftest import free_port, otlp_body, serve_gunicorn, trace_ids
from traces.database import database_busy, database_unavailable
from traces.models import Trace

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_down(tmp_path) -> Iterator[None]:
    """The default connection pointed at a closed port (or, for SQLite, a file in a folder that doesn't exist)."""
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-folder" / "evalapp.sqlite3")
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def no_tracebacks(caplog) -> list[str]:
    return [f"{record.name}: {record.getMessage()}" for record in caplog.records if record.exc_info]


def test_healthz_says_the_database_is_down_with_a_503_and_recovers(client, tmp_path, caplog):
    with database_down(tmp_path):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert (body["status"], body["database"]) == ("down", "down")
    assert body["problems"][0].startswith("database: OperationalError")
    assert no_tracebacks(caplog) == []

    response = client.get("/healthz")
    assert (response.status_code, response.json()["database"]) == (200, "ok")


def test_ingest_answers_503_with_retry_after_and_stores_nothing_until_the_database_is_back(client, token, experiment, tmp_path, caplog):
    ids = trace_ids(3)
    otlp = {"content_type": "application/x-protobuf", "HTTP_AUTHORIZATION": f"Token {token}", "HTTP_X_EVALAPP_EXPERIMENT_ID": str(experiment.pk)}
    batch = json.dumps({"traces": [make_trace("json-1")]})
    with caplog.at_level(logging.WARNING), database_down(tmp_path):
        exported = client.post("/v1/traces", otlp_body(*ids), **otlp)
        sent = client.post(f"/api/v1/experiments/{experiment.pk}/traces", batch, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}")
    for response in (exported, sent):
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert "unavailable" in response.json()["detail"]
    assert no_tracebacks(caplog) == []
    warnings = [record.getMessage() for record in caplog.records if record.name == "evalapp.middleware"]
    assert len(warnings) == 1 and "database unavailable" in warnings[0]  # one line, not one per request
    assert not Trace.objects.exists()

    # The exporter's retry, once the database is back: stored whole.
    assert client.post("/v1/traces", otlp_body(*ids), **otlp).status_code == 200
    assert client.post(f"/api/v1/experiments/{experiment.pk}/traces", batch, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert sorted(Trace.objects.values_list("trace_id", flat=True)) == sorted([*ids, "json-1"])


def test_a_browser_page_gets_a_short_503_page_not_a_server_error(editor_client, tmp_path):
    with database_down(tmp_path):
        response = editor_client.get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 503 and response["Retry-After"]
    assert "can't answer right now" in response.content.decode()
    assert editor_client.get("/").status_code == 200


def sqlite_error(message: str) -> OperationalError:
    try:
        try:
            raise sqlite3.OperationalError(message)
        except sqlite3.OperationalError as cause:
            raise OperationalError(message) from cause
    except OperationalError as error:
        return error


def test_only_an_unreachable_database_counts_as_down_and_a_locked_one_as_busy():
    assert database_unavailable(sqlite_error("unable to open database file"))
    assert not database_busy(sqlite_error("unable to open database file"))
    assert database_busy(sqlite_error("database is locked")) and not database_unavailable(sqlite_error("database is locked"))
    # A query that went wrong is neither: it stays a 500 with its traceback.
    assert not database_unavailable(sqlite_error("no such column: x")) and not database_busy(sqlite_error("no such column: x"))


def test_a_locked_sqlite_database_is_a_503_busy_with_a_short_retry_after(client, token, experiment, monkeypatch):
    def locked(*args, **kwargs):
        raise sqlite_error("database is locked")

    monkeypatch.setattr("traces.api.ingest_traces", locked)
    response = client.post(
        f"/api/v1/experiments/{experiment.pk}/traces",
        json.dumps({"traces": [make_trace("t-locked")]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert "busy" in response.json()["detail"]


def test_another_database_error_is_still_a_500(client, token, experiment, monkeypatch):
    def broken(*args, **kwargs):
        raise sqlite_error("no such column: x")

    monkeypatch.setattr("traces.api.ingest_traces", broken)
    client.raise_request_exception = False
    response = client.post(
        f"/api/v1/experiments/{experiment.pk}/traces",
        json.dumps({"traces": [make_trace("t-broken")]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 500


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_worker_waits_out_the_outage_with_a_line_a_minute_and_resumes_by_itself(tmp_path, caplog):
    fake = FakeTime()
    broker = PatientORM(list_key="outage-test")
    broker.outage = Outage("database", clock=fake.clock, sleep=fake.sleep)
    with caplog.at_level(logging.WARNING, logger="judges.brokers"), database_down(tmp_path):
        polls = [broker.dequeue() for _ in range(12)]
    assert polls == [None] * 12  # no exception: the pusher process stays up
    assert fake.slept[:6] == [1, 2, 4, 8, 16, 30] and max(fake.slept) == 30  # backs off, capped
    lines = [record.getMessage() for record in caplog.records if record.name == "judges.brokers"]
    minutes = sum(fake.slept) / LOG_EVERY_SECONDS
    assert 1 < len(lines) <= 1 + minutes  # the start, then at most one a minute
    assert lines[0].startswith("database unavailable (OperationalError")
    assert no_tracebacks(caplog) == []

    broker.enqueue("a task")
    assert [payload for _, payload in broker.dequeue()] == ["a task"]
    assert "database is back" in caplog.records[-1].getMessage()
    assert broker.outage.wait_seconds == 1  # the next outage starts from a short wait again


def test_a_task_finished_as_the_database_went_away_stays_queued_instead_of_killing_the_monitor(tmp_path):
    broker = PatientORM(list_key="outage-test")
    broker.enqueue("a task")
    (task_id, _), = broker.dequeue()
    with database_down(tmp_path):
        assert broker.acknowledge(task_id) is None  # no exception
    assert broker.lock_size() == 1  # still there, handed out again once its lock runs out


def test_a_judging_task_that_loses_the_database_ends_with_a_line_not_a_traceback(tmp_path, caplog):
    from judges.tasks import judge_evaluations

    with caplog.at_level(logging.WARNING, logger="judges.tasks"), database_down(tmp_path):
        assert judge_evaluations([1, 2]) == 0  # no exception for django-q2 to log with its traceback
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["judging stopped: the database is unavailable"]


def test_django_q_tracebacks_about_the_outage_become_one_line_a_minute(tmp_path):
    from django_q.scheduler import scheduler

    assert any(isinstance(each, QuietOutageFilter) for each in logging.getLogger("django-q").filters)  # in settings
    fake = FakeTime()
    quiet = QuietOutageFilter(clock=fake.clock)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger = logging.getLogger("django-q")
    broker = PatientORM(list_key="outage-test")  # made when the cluster starts
    configured = logger.filters[:]  # settings.LOGGING's own filter, on the real clock
    logger.filters[:] = [quiet]
    logger.addHandler(handler)
    try:
        with database_down(tmp_path):
            for _ in range(3):  # the cluster's guard calls it every 30 s
                scheduler(broker=broker)
                fake.now += 30
        logger.error("something else", exc_info=ValueError("not an outage"))
    finally:
        logger.filters[:] = configured
        logger.removeHandler(handler)
    outage_lines = [record for record in seen if "store unavailable" in record.getMessage()]
    assert len(outage_lines) == 2  # at 0 s and at 60 s; the one at 30 s dropped
    assert all(record.exc_info is None and record.levelname == "WARNING" for record in outage_lines)
    assert "Could not create task from schedule" in outage_lines[0].getMessage()
    assert seen[-1].exc_info is not None  # anything else keeps its traceback


def test_gunicorn_on_a_dead_database_answers_503_and_logs_no_traceback(tmp_path, token, experiment):
    if connections["default"].vendor == "sqlite":
        dead = f"sqlite:///{tmp_path}/no-such-folder/evalapp.sqlite3"
    else:
        dead = f"postgres://postgres@127.0.0.1:{free_port()}/evalapp"
    log = tmp_path / "gunicorn.log"
    with serve_gunicorn(log, dead, ready_status=503) as server:
        health = server.request("GET", "/healthz")
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/x-protobuf", "x-evalapp-experiment-id": str(experiment.pk)}
        exported = server.request("POST", "/v1/traces", otlp_body(*trace_ids(2)), headers)
    assert json.loads(health.data)["database"] == "down"
    assert (exported.status, exported.getheader("Retry-After")) == (503, "30")
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert text.count("database unavailable") == 1, text[-3000:]
