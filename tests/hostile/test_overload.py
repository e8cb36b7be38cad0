"""Overload (issue 16, bursts): with every ingest slot taken, or the database's write lock held past the bound,
ingest is refused at once with 503 + Retry-After (gRPC: UNAVAILABLE + RetryInfo) and stores nothing; the SDK's
exporter, told to retry, delivers everything once a slot is free."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading

import grpc
import pytest
from django.db import connection
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace.export import SpanExportResult

from evalapp.otlp_grpc import build_server
from tests.conftest import make_trace
from tests.hostile.test_outage import sqlite_error
from tests.traces.test_otlp import exporter_for, record_agent_run
from traces.admission import ingest_slot
from traces.models import Span, Trace

EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"  # where it says "Transient error ..., retrying"

pytestmark = [pytest.mark.hostile, pytest.mark.django_db(transaction=True)]  # live servers and other connections read what was committed


def post_json(client, token: str, experiment, trace_id: str):
    return client.post(
        f"/api/v1/experiments/{experiment.pk}/traces",
        json.dumps({"traces": [make_trace(trace_id)]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )


def post_otlp(client, token: str, experiment, body: bytes):
    return client.post(
        "/v1/traces",
        body,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk),
    )


def agent_run_body(session_id: str) -> tuple[bytes, str]:
    memory, trace_id = record_agent_run(session_id)
    return encode_spans(memory.get_finished_spans()).SerializeToString(), trace_id


def test_with_no_ingest_slots_every_ingest_path_is_refused_with_retry_after_and_stores_nothing(settings, client, token, experiment):
    settings.EVALAPP_INGEST_WRITERS = 0
    settings.EVALAPP_INGEST_RETRY_AFTER_SECONDS = 2

    refused = post_json(client, token, experiment, "t-refused")
    assert (refused.status_code, refused["Retry-After"]) == (503, "2")
    assert "nothing was stored" in refused.json()["detail"]

    body, _ = agent_run_body("conv-refused")
    refused_otlp = post_otlp(client, token, experiment, body)
    assert (refused_otlp.status_code, refused_otlp["Retry-After"], refused_otlp["Content-Type"]) == (503, "2", "application/x-protobuf")
    assert Status.FromString(refused_otlp.content).code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert not Trace.objects.exists() and not Span.objects.exists()

    settings.EVALAPP_INGEST_WRITERS = 1
    assert post_json(client, token, experiment, "t-refused").status_code == 200
    assert post_otlp(client, token, experiment, body).status_code == 200
    assert Trace.objects.count() == 2


def test_a_request_beyond_the_writer_limit_is_refused_while_the_others_write(settings, client, token, experiment):
    settings.EVALAPP_INGEST_WRITERS = 1
    with ingest_slot():  # another writer (process or thread) holds the only slot
        refused = post_json(client, token, experiment, "t-second")
        assert (refused.status_code, refused["Retry-After"]) == (503, "1")
        assert "already storing 1 ingest request" in refused.json()["detail"]
    assert not Trace.objects.exists()
    assert post_json(client, token, experiment, "t-second").status_code == 200  # the slot is free again
    assert Trace.objects.filter(trace_id="t-second").exists()


def test_two_slots_admit_two_writers_and_refuse_the_third(settings):
    settings.EVALAPP_INGEST_WRITERS = 2
    with ingest_slot() as first, ingest_slot() as second:
        assert first != second
        with pytest.raises(Exception, match="already storing 2 ingest request"):
            with ingest_slot():
                pass


@pytest.fixture
def write_lock_held_elsewhere():
    """Another connection holds what an ingest of trace 't-blocked' must wait for — SQLite's write lock, or on
    PostgreSQL the advisory lock ingest takes for that trace id (traces.actions._lock_trace_ids) — for 10 s: an
    ingest that waited for it (no bound, or SQLite's usual 30 s busy timeout) would end up stored."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(database["NAME"], isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = "ROLLBACK"
    else:
        import psycopg

        key = int.from_bytes(hashlib.sha256(b"t-blocked").digest()[:8], "big", signed=True)
        other = psycopg.connect(
            host=database["HOST"], port=database["PORT"] or 5432, user=database["USER"], password=database["PASSWORD"], dbname=database["NAME"], autocommit=True
        )
        other.execute("SELECT pg_advisory_lock(%s)", [key])
        release = "SELECT pg_advisory_unlock_all()"
    released = threading.Lock()

    def let_go() -> None:
        with released:
            if not other_closed:
                other.execute(release)
                other.close()
                other_closed.append(True)

    other_closed: list[bool] = []
    timer = threading.Timer(10, let_go)
    timer.start()
    yield
    timer.cancel()
    let_go()


def test_a_write_lock_held_past_the_bound_is_a_503_with_retry_after_and_nothing_half_written(settings, client, token, experiment, write_lock_held_elsewhere):
    settings.EVALAPP_INGEST_LOCK_WAIT_SECONDS = 1
    refused = post_json(client, token, experiment, "t-blocked")
    assert (refused.status_code, refused["Retry-After"]) == (503, "1")
    assert "busy" in refused.json()["detail"]
    assert not Trace.objects.exists() and not Span.objects.exists()


def test_the_write_lock_bound_is_undone_for_the_rest_of_the_connections_life(settings, client, token, experiment):
    settings.EVALAPP_INGEST_LOCK_WAIT_SECONDS = 1
    assert post_json(client, token, experiment, "t-1").status_code == 200
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 30_000  # evalapp.envconf.sqlite_database's
        else:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "0"


def test_the_sdk_exporter_told_to_retry_after_delivers_everything(settings, live_server, token, api, experiment, caplog):
    """The real OTLPSpanExporter: its first try meets a full server (503 + Retry-After: 1), it waits as told and
    the retry is stored whole."""
    settings.EVALAPP_INGEST_WRITERS = 1
    memory, trace_id = record_agent_run("conv-retried")
    exporter = exporter_for(live_server, token, experiment.pk)
    outcome: list[SpanExportResult] = []
    refused = threading.Event()

    class SeesRefusal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Transient error Service Unavailable"):
                refused.set()

    watcher = SeesRefusal(logging.WARNING)
    logging.getLogger(EXPORTER_LOGGER).addHandler(watcher)
    try:
        with ingest_slot():  # another writer holds the only slot while the exporter's first request arrives
            sender = threading.Thread(target=lambda: outcome.append(exporter.export(memory.get_finished_spans())))
            sender.start()
            assert refused.wait(10), "the exporter never saw a 503"
            assert not Trace.objects.exists()
        sender.join(15)
    finally:
        logging.getLogger(EXPORTER_LOGGER).removeHandler(watcher)
        exporter.shutdown()
    assert outcome == [SpanExportResult.SUCCESS]
    trace = api.get(f"/api/v1/traces/{trace_id}").json()
    assert (trace["name"], trace["status"], len(trace["spans"])) == ("support_agent", "OK", 4)


def export_over_grpc(token: str, experiment) -> grpc.RpcError:
    server, port = build_server("127.0.0.1:0", workers=1)
    server.start()
    try:
        memory, _ = record_agent_run("conv-grpc-refused")
        metadata = (("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", str(experiment.pk)))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as refused:
                TraceServiceStub(channel).Export(encode_spans(memory.get_finished_spans()), metadata=metadata, timeout=10)
    finally:
        server.stop(grace=None)
    return refused.value


def retry_delay_seconds(refused: grpc.RpcError) -> int:
    return RetryInfo.FromString(dict(refused.trailing_metadata())["google.rpc.retryinfo-bin"]).retry_delay.seconds


def test_grpc_ingest_under_overload_is_unavailable_with_retry_info(settings, token, experiment):
    settings.EVALAPP_INGEST_WRITERS = 0
    settings.EVALAPP_INGEST_RETRY_AFTER_SECONDS = 3
    refused = export_over_grpc(token, experiment)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE and "nothing was stored" in refused.details()
    assert retry_delay_seconds(refused) == 3
    assert not Trace.objects.exists()


def test_grpc_ingest_meeting_a_busy_or_unreachable_database_is_unavailable_with_retry_info(settings, token, experiment, monkeypatch):
    settings.EVALAPP_RETRY_AFTER_SECONDS = 40
    for message, delay in (("database is locked", settings.EVALAPP_INGEST_RETRY_AFTER_SECONDS), ("unable to open database file", 40)):

        def failing(*args, message: str = message, **kwargs):
            raise sqlite_error(message)

        monkeypatch.setattr("evalapp.otlp_grpc.store_export", failing)
        refused = export_over_grpc(token, experiment)
        assert refused.code() == grpc.StatusCode.UNAVAILABLE and "nothing was stored" in refused.details(), message
        assert retry_delay_seconds(refused) == delay


def test_the_sdks_grpc_exporter_told_to_retry_delivers_everything(settings, token, experiment):
    """The real gRPC OTLPSpanExporter: UNAVAILABLE with RetryInfo while the only slot is taken, then stored whole."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

    settings.EVALAPP_INGEST_WRITERS = 1
    server, port = build_server("127.0.0.1:0", workers=2)
    server.start()
    memory, trace_id = record_agent_run("conv-grpc-retried")
    exporter = GrpcSpanExporter(
        endpoint=f"127.0.0.1:{port}",
        insecure=True,
        headers=(("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", str(experiment.pk))),
        timeout=10,
    )
    outcome: list[SpanExportResult] = []
    refused = threading.Event()

    class SeesRefusal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Transient error StatusCode.UNAVAILABLE"):
                refused.set()

    grpc_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")
    watcher = SeesRefusal(logging.WARNING)
    grpc_logger.addHandler(watcher)
    try:
        with ingest_slot():
            sender = threading.Thread(target=lambda: outcome.append(exporter.export(memory.get_finished_spans())))
            sender.start()
            assert refused.wait(10), "the exporter never saw UNAVAILABLE"
            assert not Trace.objects.exists()
        sender.join(15)
    finally:
        grpc_logger.removeHandler(watcher)
        exporter.shutdown()
        server.stop(grace=None)
    assert outcome == [SpanExportResult.SUCCESS]
    assert Span.objects.filter(trace__trace_id=trace_id).count() == 4
