"""evalapp_client against a live server: logging and searching traces and sessions, assessments, people's
feedback, and the overview."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evalapp_client import BadRequestError
from tests.conftest import BASE_TIME, make_trace
from traces.models import Trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_logged_traces_come_back_whole(client, exp):
    result = client.log_traces(exp, [make_trace("t1", session_id="s1", user_id="u1")])
    assert result == {"created": 1, "updated": 0, "spans": 3, "trace_ids": ["t1"]}
    trace = client.get_trace("t1")
    assert (trace["name"], trace["status"], trace["session_id"], trace["total_tokens"]) == ("agent", "OK", "s1", 150)
    assert [span["span_type"] for span in trace["spans"]] == ["AGENT", "RETRIEVER", "CHAT_MODEL"]


def test_a_large_log_is_sent_in_batches_and_the_counts_add_up(client, exp):
    traces = [make_trace(f"t{n:02}", minutes=n) for n in range(25)]
    first = client.log_traces(exp.name, traces, batch_size=10)
    assert (first["created"], first["updated"], first["spans"], len(first["trace_ids"])) == (25, 0, 75, 25)
    again = client.log_traces(exp, traces[:12], batch_size=5)
    assert (again["created"], again["updated"]) == (0, 12)
    assert Trace.objects.count() == 25


def test_a_big_body_is_gzipped_and_still_stored(client, exp):
    long_answer = "Returns are accepted within 30 days. " * 10_000  # ~370 KB: over the client's gzip threshold
    client.log_traces(exp, [make_trace("t1", response={"content": long_answer})])
    assert Trace.objects.get(trace_id="t1").response == {"content": long_answer}


def test_search_follows_cursors_newest_first_up_to_max_results(client, exp):
    client.log_traces(exp, [make_trace(f"t{n:02}", minutes=n) for n in range(12)])
    everything = client.search_traces(exp, page_size=5, max_results=None)
    assert [t["trace_id"] for t in everything] == [f"t{n:02}" for n in range(11, -1, -1)]
    assert [t["trace_id"] for t in client.search_traces(exp, max_results=7, page_size=3)] == [f"t{n:02}" for n in range(11, 4, -1)]
    lazily = client.iter_traces(exp, page_size=2)
    assert [next(lazily)["trace_id"] for _ in range(3)] == ["t11", "t10", "t09"]


def test_search_filters_by_filter_string_status_session_and_time(client, exp):
    client.log_traces(
        exp,
        [
            make_trace("ok-prod", session_id="s1"),
            make_trace("ok-stage", minutes=1, metadata={"environment": "staging"}),
            make_trace("failed", minutes=2, status="ERROR", session_id="s1"),
        ],
    )
    ids = lambda traces: [t["trace_id"] for t in traces]  # noqa: E731
    assert ids(client.search_traces(exp, filter_string="trace.status = 'OK'")) == ["ok-stage", "ok-prod"]
    assert ids(client.search_traces(exp, filter_string="metadata.environment = 'production'")) == ["failed", "ok-prod"]
    assert ids(client.search_traces(exp, status="error")) == ["failed"]
    assert ids(client.search_traces(exp, session_id="s1")) == ["failed", "ok-prod"]
    window = client.search_traces(exp, since=BASE_TIME + timedelta(seconds=30), until=BASE_TIME + timedelta(minutes=2))
    assert ids(window) == ["ok-stage"]
    epoch_ms = int((BASE_TIME + timedelta(minutes=2)).timestamp() * 1000)
    assert ids(client.search_traces(exp, since=epoch_ms)) == ["failed"]


def test_a_bad_filter_is_a_400_with_a_suggestion(client, exp):
    with pytest.raises(BadRequestError) as caught:
        client.search_traces(exp, filter_string="trace.sttus = 'OK'")
    assert "did you mean 'trace.status'" in caught.value.fields["filter_string"]


def test_sessions_are_listed_and_read_with_their_turns(client, exp):
    client.log_traces(
        exp,
        [
            make_trace("a1", session_id="support-a", user_id="u1"),
            make_trace("a2", minutes=1, session_id="support-a", user_id="u1"),
            make_trace("b1", minutes=2, session_id="billing-b", user_id="u2"),
        ],
    )
    sessions = client.search_sessions(exp)
    assert [(s["session_id"], s["trace_count"]) for s in sessions] == [("billing-b", 1), ("support-a", 2)]
    assert [s["session_id"] for s in client.search_sessions(exp, user_id="u1")] == ["support-a"]
    assert [s["session_id"] for s in client.search_sessions(exp, search="bill")] == ["billing-b"]
    detail = client.get_session(exp, "support-a")
    assert [t["trace_id"] for t in detail["traces"]] == ["a1", "a2"]


def test_feedback_is_a_human_assessment_and_a_newer_one_replaces_it(client, exp):
    client.log_traces(exp, [make_trace("t1", session_id="s1")])
    first = client.log_feedback(exp, trace_id="t1", name="thumbs", value=False, rationale="wrong order number")
    assert (first["source_type"], first["source_id"], first["value"], first["trace_id"]) == ("HUMAN", "pat", False, "t1")
    second = client.log_feedback(exp, trace_id="t1", name="thumbs", value=True)
    on_session = client.log_feedback(exp, session_id="s1", name="resolved", value="yes")
    assert on_session["session_id"] == "s1"

    human = client.list_assessments(exp, source_type="HUMAN")
    assert {a["id"] for a in human} == {first["id"], second["id"], on_session["id"]}
    current = client.list_assessments(exp, trace_id="t1", valid=True)
    assert [(a["id"], a["value"]) for a in current] == [(second["id"], True)]
    assert [a["name"] for a in client.list_assessments(exp, session_id="s1")] == ["resolved"]
    assert [a["id"] for a in client.list_assessments(exp, max_results=1)] == [on_session["id"]]


def test_bad_feedback_names_the_field(client, exp):
    client.log_traces(exp, [make_trace("t1")])
    with pytest.raises(BadRequestError) as bad_value:
        client.log_feedback(exp, trace_id="t1", name="thumbs", value={"up": True})
    assert "value" in bad_value.value.fields
    with pytest.raises(BadRequestError) as bad_trace:
        client.log_feedback(exp, trace_id="nope", name="thumbs", value=True)
    assert "no trace 'nope'" in bad_trace.value.fields["trace_id"]
    with pytest.raises(BadRequestError) as bad_source:
        client.list_assessments(exp, source_type="ROBOT")
    assert "source_type" in bad_source.value.fields


def test_overview_counts_the_traces_and_verdicts_of_its_range(client, exp, endpoint, sync_tasks):
    client.log_traces(exp, [make_trace("t1"), make_trace("t2", minutes=5, status="ERROR"), make_trace("later", minutes=24 * 60)])
    client.register_judge(exp, name="helpful", instructions="Is {{ outputs }} helpful?", model=endpoint.name).run(["t1", "t2", "later"]).wait(timeout=30)

    overview = client.get_overview(exp, start=BASE_TIME.date(), end=BASE_TIME + timedelta(hours=1))
    assert (overview["performance"]["traces"], overview["performance"]["errors"]) == (2, 1)
    assert [(j["name"], j["judged"], j["errors"]) for j in overview["judges"]] == [("helpful", 2, 0)]
    assert overview["range"]["from"].startswith("2026-11-20T00:00:00")
    assert client.get_overview(exp, range="24h")["range"]["preset"] == "24h"


def test_a_bad_overview_range_names_the_field(client, exp):
    with pytest.raises(BadRequestError) as caught:
        client.get_overview(exp, range="2w")
    assert "range" in caught.value.fields


def test_export_streams_the_filtered_traces_with_verdicts_to_a_file(client, exp, tmp_path):
    import csv
    import json

    client.log_traces(exp, [make_trace("t1"), make_trace("t2", minutes=1, metadata={"environment": "staging"})])
    target = tmp_path / "traces.csv"
    written = client.export_traces(exp, target, filter_string="metadata.environment = 'staging'")
    assert written == target.stat().st_size > 0
    assert [row["trace_id"] for row in csv.DictReader(target.open())] == ["t2"]
    lines = tmp_path / "traces.jsonl"
    client.export_traces(exp.name, lines, format="jsonl")
    assert [json.loads(line)["trace_id"] for line in lines.read_text().splitlines()] == ["t2", "t1"]
    with pytest.raises(BadRequestError, match="filter_string"):
        client.export_traces(exp, tmp_path / "bad.csv", filter_string="trace.sttus = 'OK'")


def test_a_busy_server_is_waited_out_as_its_retry_after_says(client, exp, settings, monkeypatch):
    """The server answers 503 + Retry-After while every ingest slot is taken (traces.admission); the client waits
    as told and sends again, so an application logging from many threads loses nothing."""
    import evalapp_client.transport
    from traces.admission import ingest_slot

    settings.EVALAPP_INGEST_WRITERS = 1
    waits: list[float] = []
    slot = ingest_slot()
    slot.__enter__()  # another writer holds the only slot

    def wait_then_free(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            slot.__exit__(None, None, None)

    monkeypatch.setattr(evalapp_client.transport.time, "sleep", wait_then_free)
    try:
        result = client.log_traces(exp, [make_trace("t1")])
    finally:
        if len(waits) < 2:
            slot.__exit__(None, None, None)
    assert waits == [1.0, 1.0] and result["created"] == 1
    assert Trace.objects.filter(trace_id="t1").exists()


def test_a_server_busy_for_longer_than_the_client_waits_is_an_error(client, exp, settings, monkeypatch):
    import evalapp_client.transport
    from evalapp_client import EvalappError

    settings.EVALAPP_INGEST_WRITERS = 0  # refuses every ingest
    waits: list[float] = []
    monkeypatch.setattr(evalapp_client.transport.time, "sleep", waits.append)
    with pytest.raises(EvalappError) as refused:
        client.log_traces(exp, [make_trace("t1")])
    assert refused.value.status_code == 503 and len(waits) == evalapp_client.transport.BUSY_RETRIES
    assert not Trace.objects.exists()
