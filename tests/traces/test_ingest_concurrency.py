from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from tests.conftest import BASE_TIME
from traces.actions import ingest_traces
from traces.models import Session, Trace
from traces.records import SpanIn, TraceIn
from traces.signals import traces_ingested

pytestmark = pytest.mark.django_db(transaction=True)


def turn(trace_id: str, minute: int) -> TraceIn:
    start = BASE_TIME + timedelta(minutes=minute)
    return TraceIn(
        trace_id=trace_id,
        session_id="shared-session",
        spans=[SpanIn(span_id="root", started_at=start, ended_at=start + timedelta(seconds=1), name="turn")],
    )


def test_concurrent_ingests_into_one_session_count_every_trace(experiment):
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for round_number in range(10):
                ingest_traces(experiment, [turn(f"w{worker}-r{round_number}", round_number)])
        except BaseException as error:  # surfaced below, with the worker's traceback
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    session = Session.objects.get(session_id="shared-session")
    assert session.trace_count == Trace.objects.count() == 40
    assert session.last_trace_at == BASE_TIME + timedelta(minutes=9)


def test_ingest_announces_what_it_wrote_after_commit(experiment):
    received: list[dict] = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    traces_ingested.connect(listener)
    try:
        result = ingest_traces(experiment, [turn("t1", 0), turn("t2", 1)])
    finally:
        traces_ingested.disconnect(listener)
    assert len(received) == 1
    assert received[0]["experiment_id"] == experiment.pk
    assert sorted(received[0]["trace_pks"]) == sorted(Trace.objects.values_list("pk", flat=True))
    assert received[0]["session_pks"] == [Session.objects.get().pk]
    assert result.created == 2


def test_spans_of_one_trace_sent_concurrently_make_a_whole_trace(experiment):
    start = BASE_TIME
    root = SpanIn(span_id="root", started_at=start, ended_at=start + timedelta(seconds=2), name="agent")
    children = [
        SpanIn(span_id=f"child-{n}", parent_span_id="root", started_at=start + timedelta(milliseconds=n), name=f"step {n}")
        for n in range(6)
    ]
    parts = [[root], *[[child] for child in children]]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(parts))

    def send(spans) -> None:
        try:
            barrier.wait()
            ingest_traces(experiment, [TraceIn(trace_id="split", spans=spans)])
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(spans,)) for spans in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    trace = Trace.objects.get(trace_id="split")
    assert (trace.span_count, trace.status, trace.name) == (7, "OK", "agent")
