from __future__ import annotations

import gzip
import json

import pytest
from rest_framework.test import APIClient

from tests.conftest import make_trace
from traces.models import Experiment, Session, Span, Trace

pytestmark = pytest.mark.django_db


def post(api: APIClient, experiment: Experiment, traces, **extra):
    return api.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": traces}, format="json", **extra)


def test_ingested_trace_comes_back_with_spans_and_derived_fields(api, experiment):
    response = post(api, experiment, [make_trace("t1", session_id="s1", user_id="u1")])
    assert response.status_code == 200
    assert response.json() == {"created": 1, "updated": 0, "spans": 3, "trace_ids": ["t1"]}

    trace = api.get("/api/v1/traces/t1").json()
    assert trace["name"] == "agent"
    assert trace["status"] == "OK"
    assert trace["duration_ms"] == 1200
    assert trace["request"] == {"messages": [{"role": "user", "content": "question t1"}]}
    assert trace["request_preview"] == "question t1"
    assert (trace["session_id"], trace["user_id"]) == ("s1", "u1")
    assert (trace["input_tokens"], trace["output_tokens"], trace["total_tokens"]) == (120, 30, 150)
    assert [span["span_type"] for span in trace["spans"]] == ["AGENT", "RETRIEVER", "CHAT_MODEL"]
    assert trace["spans"][1]["parent_span_id"] == "t1-root"
    assert trace["spans"][1]["outputs"] == [{"page_content": "Returns are accepted within 30 days."}]


def test_resending_a_trace_updates_it_without_duplicates(api, experiment):
    post(api, experiment, [make_trace("t1", session_id="s1")])
    changed = make_trace("t1", session_id="s1", tags={"reviewed": "yes"})
    changed["spans"][0]["outputs"] = {"content": "a better answer"}
    response = post(api, experiment, [changed])

    assert response.json()["updated"] == 1
    assert Trace.objects.count() == 1
    assert Span.objects.count() == 3
    trace = Trace.objects.get()
    assert trace.response == {"content": "a better answer"}
    assert trace.tags == {"reviewed": "yes"}
    assert Session.objects.get().trace_count == 1


def test_spans_of_one_trace_may_arrive_in_several_requests(api, experiment):
    whole = make_trace("t1")
    root, *children = whole["spans"]
    post(api, experiment, [{"trace_id": "t1", "spans": children}])
    partial = api.get("/api/v1/traces/t1").json()
    assert partial["status"] == "IN_PROGRESS"
    assert partial["span_count"] == 2

    post(api, experiment, [{"trace_id": "t1", "spans": [root], "metadata": {"environment": "production"}}])
    trace = api.get("/api/v1/traces/t1").json()
    assert trace["status"] == "OK"
    assert trace["name"] == "agent"
    assert trace["span_count"] == 3
    assert trace["total_tokens"] == 150  # from a span that arrived in the first request
    assert len(trace["spans"]) == 3


def test_a_batch_with_one_bad_item_stores_nothing(api, experiment):
    bad = make_trace("t2")
    bad["spans"][2]["start_time"] = "yesterday"
    response = post(api, experiment, [make_trace("t1"), bad, make_trace("t3")])

    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [
        {"field": "traces[1].spans[2].start_time", "message": "'yesterday' is not an ISO 8601 time (e.g. 2026-11-22T10:15:00Z)"}
    ]
    assert body["detail"].startswith("traces[1].spans[2].start_time:")
    assert Trace.objects.count() == 0
    assert Span.objects.count() == 0


def test_trace_id_of_another_experiment_is_refused_and_nothing_written(api, experiment):
    other = Experiment.objects.create(name="other")
    post(api, other, [make_trace("shared")])
    response = post(api, experiment, [make_trace("mine"), make_trace("shared")])
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "traces[1].trace_id"
    assert "already belongs to another experiment" in response.json()["detail"]
    assert not Trace.objects.filter(trace_id="mine").exists()


def test_invalid_json_body_is_400(api, experiment):
    response = api.generic(
        "POST", f"/api/v1/experiments/{experiment.pk}/traces", b'{"traces": [', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Body is not valid JSON")


def test_unknown_experiment_is_404(api):
    response = api.post("/api/v1/experiments/999/traces", {"traces": [make_trace("t1")]}, format="json")
    assert response.status_code == 404
    assert Trace.objects.count() == 0


@pytest.mark.parametrize("header", [None, "Token ea_not-a-real-token", "Bearer "])
def test_missing_or_invalid_token_is_401(experiment, header):
    client = APIClient()
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.post(f"/api/v1/experiments/{experiment.pk}/traces", {"traces": [make_trace("t1")]}, format="json", **extra)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert Trace.objects.count() == 0


def test_revoked_token_is_401(api, experiment, user):
    user.api_tokens.update(revoked_at="2026-01-01T00:00:00Z")
    assert post(api, experiment, [make_trace("t1")]).status_code == 401


def test_oversized_body_is_413_with_the_limit(api, experiment, settings):
    settings.EVALAPP_MAX_BODY_BYTES = 2048
    response = post(api, experiment, [make_trace(f"t{i}") for i in range(5)])
    assert response.status_code == 413
    assert "limit of 2 KiB" in response.json()["detail"]
    assert Trace.objects.count() == 0


def test_gzip_body_is_inflated_and_limited_after_inflating(api, experiment, settings):
    body = json.dumps({"traces": [make_trace("t1")]}).encode()
    response = api.generic(
        "POST",
        f"/api/v1/experiments/{experiment.pk}/traces",
        gzip.compress(body),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200
    assert Trace.objects.filter(trace_id="t1").exists()

    settings.EVALAPP_MAX_BODY_BYTES = 4096
    bomb = gzip.compress(json.dumps({"traces": [make_trace("t2", tags={"pad": "x" * 100_000})]}).encode())
    assert len(bomb) < 4096
    response = api.generic(
        "POST",
        f"/api/v1/experiments/{experiment.pk}/traces",
        bomb,
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 413
    assert not Trace.objects.filter(trace_id="t2").exists()


def test_sessions_are_kept_current_across_traces(api, experiment):
    post(api, experiment, [make_trace("t1", minutes=0, session_id="s1", user_id="u1"), make_trace("t2", minutes=5, session_id="s1")])
    post(api, experiment, [make_trace("t3", minutes=9, session_id="s1"), make_trace("t4", minutes=2, session_id="s2")])
    post(api, experiment, [make_trace("t2", minutes=5, session_id="s1")])  # re-send: no double count

    s1 = Session.objects.get(session_id="s1")
    assert s1.trace_count == 3
    assert s1.user_id == "u1"
    assert s1.first_trace_at == Trace.objects.get(trace_id="t1").started_at
    assert s1.last_trace_at == Trace.objects.get(trace_id="t3").started_at
    assert Session.objects.get(session_id="s2").trace_count == 1

    sessions = api.get(f"/api/v1/experiments/{experiment.pk}/sessions").json()["sessions"]
    assert [(s["session_id"], s["trace_count"]) for s in sessions] == [("s1", 3), ("s2", 1)]
    detail = api.get(f"/api/v1/experiments/{experiment.pk}/sessions/s1").json()
    assert [t["trace_id"] for t in detail["traces"]] == ["t1", "t2", "t3"]


def test_trace_moving_to_another_session_updates_both(api, experiment):
    post(api, experiment, [make_trace("t1", session_id="s1"), make_trace("t2", minutes=1, session_id="s1")])
    post(api, experiment, [make_trace("t2", minutes=1, session_id="s2")])
    assert Session.objects.get(session_id="s1").trace_count == 1
    assert Session.objects.get(session_id="s2").trace_count == 1


def test_trace_list_is_newest_first_with_keyset_pages(api, experiment):
    post(api, experiment, [make_trace(f"t{i}", minutes=i) for i in range(5)])
    first = api.get(f"/api/v1/experiments/{experiment.pk}/traces?page_size=2").json()
    assert [t["trace_id"] for t in first["traces"]] == ["t4", "t3"]
    second = api.get(f"/api/v1/experiments/{experiment.pk}/traces?page_size=2&cursor={first['next_cursor']}").json()
    assert [t["trace_id"] for t in second["traces"]] == ["t2", "t1"]
    third = api.get(f"/api/v1/experiments/{experiment.pk}/traces?page_size=2&cursor={second['next_cursor']}").json()
    assert [t["trace_id"] for t in third["traces"]] == ["t0"]
    assert third["next_cursor"] is None

    bad = api.get(f"/api/v1/experiments/{experiment.pk}/traces?cursor=garbage")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "cursor"
    assert api.get(f"/api/v1/experiments/{experiment.pk}/traces?page_size=0").status_code == 400


def test_experiments_can_be_created_and_listed(api):
    response = api.post("/api/v1/experiments", {"name": "  my-agent ", "description": "prod"}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "my-agent"
    duplicate = api.post("/api/v1/experiments", {"name": "my-agent"}, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"] == [{"field": "name", "message": "An experiment named 'my-agent' already exists; pick another name."}]
    assert [e["name"] for e in api.get("/api/v1/experiments").json()["experiments"]] == ["my-agent"]


def test_trace_search_uses_the_filter_language(api, experiment):
    post(api, experiment, [make_trace("fast", minutes=1), make_trace("staging", minutes=2, metadata={"environment": "staging"})])
    url = f"/api/v1/experiments/{experiment.pk}/traces"
    found = api.get(url, {"filter_string": "metadata.environment = 'staging' AND span.type = 'RETRIEVER'"}).json()["traces"]
    assert [t["trace_id"] for t in found] == ["staging"]
    bad = api.get(url, {"filter_string": "trace.sttus = 'OK'"})
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "filter_string", "message": "unknown field 'trace.sttus'; did you mean 'trace.status'? (at column 1)"}]


class _Rollback(Exception):
    pass


def test_an_ingest_rolled_back_after_its_commit_hooks_ran_does_not_break_the_next(api, experiment, django_capture_on_commit_callbacks):
    # On PostgreSQL ingest stages rows in a temporary table; a rollback drops a table made inside it. A commit hook
    # that once remembered the table as made ran here (as it would for a savepoint inside a longer transaction),
    # so the next ingest found no table. Both ingests must store their trace.
    from django.db import transaction

    with pytest.raises(_Rollback), transaction.atomic():
        with django_capture_on_commit_callbacks(execute=True):
            assert post(api, experiment, [make_trace("undone")]).status_code == 200
        raise _Rollback
    assert post(api, experiment, [make_trace("kept")]).status_code == 200
    assert list(Trace.objects.values_list("trace_id", flat=True)) == ["kept"]
