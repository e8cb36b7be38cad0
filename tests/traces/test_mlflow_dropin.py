"""The MLflow tracking-URI drop-in: MLflow's own tracing client (`mlflow-tracing`, pinned in the test extras), in an
app process of its own configured only by MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN, against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from judges import selection
from judges.actions import create_judge
from tests.conftest import judge_pending
from traces.actions import create_experiment
from traces.filter_sql import filter_traces
from traces.models import Assessment, Experiment, Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)

APP = Path(__file__).with_name("mlflow_app.py")
ROOT = APP.parents[2]


def run_app(command: str, tracking_uri: str, token: str) -> dict:
    """The instrumented app, as its own process: MLflow's settings are the tracking URI and the token; the rest only
    keeps it off the Internet (no usage telemetry; any address but this machine's goes to a closed port)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "DATABRICKS_"))}
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_TRACKING_TOKEN=token,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
    )
    done = subprocess.run([sys.executable, str(APP), command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_mlflow_app_logs_its_traces_to_evalapp_with_everything_intact(live_server, token, editor_client, endpoint):
    bot = create_experiment("support-bot")
    frustration = create_judge(
        bot, endpoint=endpoint, name="frustration", scope="session", builtin_key="UserFrustration", active=True, session_idle_seconds=60
    )

    seen = run_app("log", live_server.url, token)

    traces = Trace.objects.filter(experiment=bot)
    assert traces.count() == 20 and {f"tr-{trace.trace_id}" for trace in traces} == set(seen["trace_ids"])
    sessions = Session.objects.filter(experiment=bot)
    assert sorted((s.session_id, s.user_id, s.trace_count) for s in sessions) == [
        ("conv-a", "user-a", 5),
        ("conv-b", "user-b", 5),
        ("conv-c", "user-c", 5),
        ("conv-d", "user-d", 5),
    ]
    failed = traces.get(session_id="conv-d", tags__turn="4")
    assert failed.status == "ERROR" and traces.exclude(pk=failed.pk).filter(status="OK").count() == 19
    first = traces.get(trace_id=seen["trace_ids"][0].removeprefix("tr-"))
    assert first.metadata["app_version"] == "2.1.0" and first.tags["team"] == "support"
    assert first.request == {"question": "conv-a question 0?", "session": "conv-a", "turn": 0}
    assert first.response == "Answer to: conv-a question 0?"
    assert (first.input_tokens, first.output_tokens, first.total_tokens, first.span_count) == (30, 12, 42, 3)
    spans = {span.name: span for span in Span.objects.filter(trace=first)}
    assert {name: span.span_type for name, span in spans.items()} == {
        "support_agent": "AGENT",
        "search_help_center": "RETRIEVER",
        "call_model": "CHAT_MODEL",
    }
    assert spans["search_help_center"].outputs[0]["page_content"] == "Orders ship in 2 days."
    assert spans["call_model"].parent_span_id == spans["support_agent"].span_id

    # The filter language finds them by their metadata.
    conv_b = filter_traces(traces, "metadata.`mlflow.trace.session` = 'conv-b' AND metadata.app_version = '2.1.0'")
    assert conv_b.count() == 5

    # log_feedback / log_expectation became assessments of the trace.
    verdicts = {a.name: a for a in Assessment.objects.filter(trace=first)}
    assert (verdicts["helpful"].source_type, verdicts["helpful"].source_id, verdicts["helpful"].value) == (
        "HUMAN",
        "alice@example.com",
        True,
    )
    assert verdicts["helpful"].rationale == "Answered the question."
    assert (verdicts["answer_length"].source_type, verdicts["answer_length"].value) == ("CODE", 42)
    assert verdicts["expected_answer"].value == {"answer": "Orders ship in 2 days."}

    # What the app read back through mlflow.search_traces and mlflow.get_trace.
    assert seen["all"] == 20 and seen["sessions_seen"] == ["conv-a", "conv-b", "conv-c", "conv-d"]
    assert seen["conv_b"] == sorted(f"tr-{trace.trace_id}" for trace in conv_b)
    assert seen["first"]["spans"] == [["call_model", "CHAT_MODEL"], ["search_help_center", "RETRIEVER"], ["support_agent", "AGENT"]]
    assert seen["first"]["inputs"] == {"question": "conv-a question 0?", "session": "conv-a", "turn": 0}
    assert seen["first"]["token_usage"] == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    assert seen["first"]["tags"] == "support"
    assert seen["first"]["assessments"] == [
        ["answer_length", "CODE", "42.0"],  # MLflow's feedback values are protobuf Values: numbers are doubles
        ["expected_answer", "HUMAN", repr({"answer": "Orders ship in 2 days."})],
        ["helpful", "HUMAN", "True"],
        ["relevant", "CODE", "'yes'"],
    ]
    assert seen["first"]["relevant_span"] == seen["first"]["retriever_span"] == spans["search_help_center"].span_id

    # The Sessions tab lists the four conversations, and the session judge judges each once it goes quiet.
    page = editor_client.get(reverse("experiment-sessions", args=[bot.pk])).content.decode()
    assert all(f"/sessions/conv-{letter}" in page for letter in "abcd")
    with time_machine.travel(timezone.now() + timedelta(seconds=120)):
        judge_pending(selection.select_sessions())
    judged = Assessment.objects.filter(session__experiment=bot, name=frustration.name, source_type="LLM_JUDGE", valid=True)
    assert sorted(judged.values_list("session__session_id", flat=True)) == ["conv-a", "conv-b", "conv-c", "conv-d"]


def test_a_bad_token_gets_the_clients_authentication_error(live_server, token):
    refused = run_app("connect", live_server.url, "ea_not-a-token")
    assert (refused["error_code"], refused["http_status"]) == ("UNAUTHENTICATED", 401)
    assert "MLFLOW_TRACKING_TOKEN" in refused["message"]
    assert not Experiment.objects.filter(name="support-bot").exists()

    assert run_app("connect", live_server.url, token) == {"error_code": None}
    assert Experiment.objects.filter(name="support-bot").exists()


@pytest.fixture
def bearer(token) -> APIClient:
    """What MLflow's client sends: the token as a Bearer token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


TRACE_HEX = "5b8efff798038103d269b633813fc60c"


def start_body(experiment_id: str, **info) -> dict:
    return {
        "trace": {
            "trace_info": {
                "trace_id": f"tr-{TRACE_HEX}",
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
                "request_time": "2026-12-06T15:40:45.607Z",
                "execution_duration": "1.500s",
                "state": "OK",
                "trace_metadata": {"mlflow.trace.session": "s-1", "mlflow.traceInputs": '{"q": "x"}', "plan": "pro"},
                "tags": {"team": "support"},
                **info,
            }
        }
    }


def span_data(**root) -> dict:
    """What the client uploads as traces.json: MLflow's span dictionaries (base64 ids, JSON-encoded attributes)."""
    return {
        "spans": [
            {
                "trace_id": "W47/95gDgQPSabYzgT/GDA==",
                "span_id": "7uGbfsPBsXQ=",
                "parent_span_id": None,
                "name": "answer",
                "start_time_unix_nano": 1796571645607000000,
                "end_time_unix_nano": 1796571647107000000,
                "events": [],
                "status": {"code": "STATUS_CODE_OK", "message": ""},
                "attributes": {
                    "mlflow.traceRequestId": f'"tr-{TRACE_HEX}"',
                    "mlflow.spanType": '"CHAIN"',
                    "mlflow.spanInputs": '{"q": "x"}',
                    "mlflow.spanOutputs": '"{not json, a string}"',
                    "retries": "2",
                },
                **root,
            }
        ]
    }


def test_a_trace_stays_in_progress_until_its_spans_arrive(bearer, experiment):
    """The client sends the trace's info first, then its spans: no judge may read it in between."""
    started = bearer.post("/api/3.0/mlflow/traces", start_body(str(experiment.pk)), format="json")
    assert started.status_code == 200, started.content
    info = started.json()["trace"]["trace_info"]
    assert info["tags"]["mlflow.artifactLocation"] == f"mlflow-artifacts:/traces/tr-{TRACE_HEX}"
    trace = Trace.objects.get(trace_id=TRACE_HEX)
    assert (trace.status, trace.session_id, trace.metadata) == ("IN_PROGRESS", "s-1", {"mlflow.trace.session": "s-1", "plan": "pro"})

    url = f"/api/2.0/mlflow-artifacts/artifacts/traces/tr-{TRACE_HEX}/traces.json"
    assert bearer.put(url, json.dumps(span_data()), content_type="application/json").status_code == 200
    trace.refresh_from_db()
    assert (trace.status, trace.duration_ms, trace.request, trace.response) == ("OK", 1500, {"q": "x"}, "{not json, a string}")
    assert trace.metadata["plan"] == "pro" and trace.tags == {"team": "support"}
    assert Span.objects.get(trace=trace).attributes["retries"] == 2

    # Read back as the client reads it: the same span dictionary, give or take what we derived.
    [span] = bearer.get(url).json()["spans"]
    assert (span["span_id"], span["parent_span_id"], span["status"]["code"]) == ("7uGbfsPBsXQ=", None, "STATUS_CODE_OK")
    assert json.loads(span["attributes"]["mlflow.spanOutputs"]) == "{not json, a string}"
    assert json.loads(span["attributes"]["mlflow.spanType"]) == "CHAIN"


def test_bad_input_is_a_400_in_mlflows_shape_and_writes_nothing(bearer, experiment):
    for info, says in [
        ({"trace_id": 7}, "trace_id"),
        ({"request_time": "yesterday"}, "request_time"),
        ({"trace_metadata": {"k": 1}}, "trace_metadata"),
        ({"assessments": [{"assessment_name": "x", "feedback": {"value": True}, "source": {"source_type": "ROBOT"}}]}, "source_type"),
    ]:
        answer = bearer.post("/api/3.0/mlflow/traces", start_body(str(experiment.pk), **info), format="json")
        assert answer.status_code == 400, info
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE" and says in answer.json()["message"]
    missing = bearer.post("/api/3.0/mlflow/traces", start_body("987654"), format="json")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not Trace.objects.exists()

    bearer.post("/api/3.0/mlflow/traces", start_body(str(experiment.pk)), format="json")
    url = f"/api/2.0/mlflow-artifacts/artifacts/traces/tr-{TRACE_HEX}/traces.json"
    bad_span = bearer.put(url, json.dumps(span_data(span_id="AAAA")), content_type="application/json")
    assert bad_span.status_code == 400 and "spans[0].spanId" in bad_span.json()["message"]
    assert not Span.objects.exists()
    feedback = {"assessment": {"assessment_name": "helpful", "source": {"source_type": "HUMAN", "source_id": "kim"}, "feedback": {}}}
    refused = bearer.post(f"/api/3.0/mlflow/traces/tr-{TRACE_HEX}/assessments", feedback, format="json")
    assert refused.status_code == 400 and "value" in refused.json()["message"]
    assert not Assessment.objects.exists()


def test_unknown_and_unsupported_calls_answer_json_never_a_500(bearer, client, experiment):
    runs = bearer.post("/api/2.0/mlflow/runs/create", {"experiment_id": str(experiment.pk)}, format="json")
    assert runs.status_code == 404 and runs.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "/api/2.0/mlflow/runs/create" in runs.json()["message"]
    artifacts = bearer.get("/api/2.0/mlflow-artifacts/artifacts/models/m-1/MLmodel")
    assert (artifacts.status_code, artifacts.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    version = bearer.get("/version")  # MLflow 3.4+ servers name their version here; we don't, on purpose
    assert (version.status_code, version.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    delete = bearer.delete(f"/api/3.0/mlflow/traces/tr-{TRACE_HEX}/assessments/1")
    assert (delete.status_code, delete.json()["error_code"]) == (501, "NOT_IMPLEMENTED")
    anonymous = client.get("/api/2.0/mlflow/experiments/get-by-name", {"experiment_name": "x"})
    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
    bad_search = bearer.post(
        "/api/3.0/mlflow/traces/search",
        {
            "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(experiment.pk)}}],
            "filter": "trace.sttus = 'OK'",
        },
        format="json",
    )
    assert bad_search.status_code == 400 and "did you mean 'trace.status'" in bad_search.json()["message"]


def test_mlflows_default_experiment_is_the_one_named_default(bearer):
    """Experiment id "0" is where the full `mlflow` package logs when the app names no experiment."""
    assert bearer.post("/api/3.0/mlflow/traces", start_body("0"), format="json").status_code == 200
    default = Experiment.objects.get(name="Default")
    assert Trace.objects.get(trace_id=TRACE_HEX).experiment == default
    got = bearer.get("/api/2.0/mlflow/experiments/get", {"experiment_id": "0"}).json()["experiment"]
    assert (got["experiment_id"], got["name"]) == (str(default.pk), "Default")
    search = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}]}
    [found] = bearer.post("/api/3.0/mlflow/traces/search", search, format="json").json()["traces"]
    assert found["trace_id"] == f"tr-{TRACE_HEX}" and found["trace_metadata"]["mlflow.trace.session"] == "s-1"


ODD_BODIES = [[], "text", 7, None, {"trace": []}, {"trace": {"trace_info": []}}, {"trace": {"trace_info": {"trace_location": "x"}}}]
ODD_FIELDS = [
    {"assessment": {"assessment_name": "x", "feedback": []}},
    {"assessment": {"assessment_name": "x", "feedback": {"value": 1}, "source": "me", "metadata": [1]}},
    {"assessment": {"assessment_name": "x", "expectation": {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": "{"}}}},
    {"locations": "0"},
    {"locations": [{"mlflow_experiment": {"experiment_id": "1" * 30}}]},
    {"locations": [{"mlflow_experiment": {"experiment_id": "0"}}], "page_token": 5, "max_results": "x", "order_by": ["name"]},
    {"key": 3, "value": ["x"]},
    {"name": ["x"]},
]


@pytest.mark.parametrize("body", [*ODD_BODIES, *ODD_FIELDS], ids=repr)
def test_odd_bodies_get_a_4xx_in_mlflows_shape_at_every_call(bearer, experiment, body):
    bearer.post("/api/3.0/mlflow/traces", start_body(str(experiment.pk)), format="json")
    calls = [
        ("post", "/api/3.0/mlflow/traces"),
        ("post", "/api/3.0/mlflow/traces/search"),
        ("post", f"/api/3.0/mlflow/traces/tr-{TRACE_HEX}/assessments"),
        ("patch", f"/api/2.0/mlflow/traces/tr-{TRACE_HEX}/tags"),
        ("post", "/api/2.0/mlflow/experiments/create"),
        ("put", f"/api/2.0/mlflow-artifacts/artifacts/traces/tr-{TRACE_HEX}/traces.json"),
    ]
    for method, url in calls:
        answer = getattr(bearer, method)(url, json.dumps(body), content_type="application/json")
        assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.content)
        assert set(answer.json()) == {"error_code", "message"}, (url, answer.json())
    assert Trace.objects.get().span_count == 0 and not Assessment.objects.exists()


def test_an_experiment_being_deleted_takes_no_more_traces_from_mlflow(bearer, experiment, user):
    from traces.deletion import request_deletion

    assert bearer.post("/api/3.0/mlflow/traces", start_body(str(experiment.pk)), format="json").status_code == 200
    request_deletion(experiment, experiment.name, by=user.get_username())

    again = bearer.post("/api/3.0/mlflow/traces", start_body(str(experiment.pk)), format="json")
    assert again.status_code == 404 and "is being deleted" in again.json()["message"]
    url = f"/api/2.0/mlflow-artifacts/artifacts/traces/tr-{TRACE_HEX}/traces.json"
    spans = bearer.put(url, json.dumps(span_data()), content_type="application/json")
    assert (spans.status_code, spans.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    create = bearer.post("/api/2.0/mlflow/experiments/create", {"name": experiment.name}, format="json")
    assert create.json()["error_code"] == "RESOURCE_ALREADY_EXISTS" and "is being deleted" in create.json()["message"]
    assert not Span.objects.exists()
