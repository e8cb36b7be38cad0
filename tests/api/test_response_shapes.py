"""What the API sends is what its OpenAPI schema says: real responses of every JSON GET (and of the main writes),
on data with judged traces, a conversation, a job and feedback, validated against the generated schema — every
documented field present and of its type, and no field the schema does not name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from jsonschema import Draft202012Validator

from datasets.actions import TraceSelection, add_traces_to_dataset, create_dataset, merge_records
from datasets.records import parse_records
from judges import shadow
from judges.acting import acting_judge
from judges.actions import create_judge
from judges.llm import CallResult
from judges.manual import start_job
from judges.results import Outcome, record_result
from tests.conftest import ingest, judge_now, make_trace, record_verdict
from traces.feedback import add_feedback
from traces.models import Session

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema dialect → JSON Schema 2020-12: `nullable` becomes a null alternative, and an object
    that lists its properties allows no others (unless it says what they may be)."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    if node.get("nullable"):
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def check(openapi: dict[str, Any], path: str, method: str, response: Any, status: int = 200) -> dict[str, Any]:
    """Validate one response against the schema of `path`'s `method` for its status; returns the body."""
    assert response.status_code == status, response.content
    documented = openapi["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    schema = {**as_json_schema(documented), "components": as_json_schema(openapi["components"])}
    body = response.json()
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda error: list(error.absolute_path))
    assert not errors, f"{method.upper()} {path}:\n" + "\n".join(
        f"  at {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}" for error in errors[:10]
    )
    return body


@pytest.fixture
def judged(experiment, endpoint, user):
    """Two traces in a conversation and one alone, a trace judge (one verdict, one error, one re-run) and a
    session judge, a job, and a person's feedback: every optional part of the shapes filled in somewhere."""
    ingest(
        experiment,
        make_trace("t1", session_id="s1"),
        make_trace("t2", minutes=1, session_id="s1"),
        make_trace("t3", minutes=2, status="ERROR"),
    )
    helpful = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)
    create_judge(experiment, name="frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint, daily_cost_cap_usd="2.50")
    t1, t2, t3 = experiment.traces.order_by("trace_id")
    judge_now(helpful, t1)
    record_verdict(helpful, t2, False, rationale="first try")
    record_verdict(helpful, t2, True, rationale="re-run")
    record_verdict(helpful, t3, error_code="rate_limited")
    add_feedback(user=user, name="helpful", value=True, trace=t1)
    add_feedback(user=user, name="helpful", value=False, trace=t2, rationale="It never answers.")  # a disagreement
    job = start_job(helpful, trace_ids=["t1"], queue=False)
    dataset = create_dataset(experiment, "refunds", user=user)
    add_traces_to_dataset(dataset, TraceSelection(trace_ids=("t1",)))
    merge_records(dataset, parse_records([{"inputs": {"q": "x"}, "expectations": {"expected_facts": ["a"]}, "tags": {"k": "v"}}]))
    # Two evaluation runs on the dataset's records: a verdict, a rationale and a regression in every shape.
    from tests.evaluations.conftest import Row, build_run

    records = list(dataset.records.order_by("pk"))
    rows = lambda values: [Row(inputs={}, record=record, outputs=f"answer {value}", verdicts={"helpful": value}) for record, value in zip(records, values)]  # noqa: E731
    base = build_run(experiment, [helpful], rows([True, True]), name="v1", dataset=dataset, gates=[("helpful", "pass_rate", ">=", 0.9)])
    new = build_run(experiment, [helpful], rows([False, True]), name="v2", dataset=dataset)
    return {"experiment": experiment, "job": job, "endpoint": endpoint, "dataset": dataset, "runs": (base, new)}


def queued_align_run(experiment_id: int) -> str:
    import uuid

    from judges.models import AlignRun, Judge

    judge = Judge.objects.get(experiment_id=experiment_id, name="helpful")
    return str(AlignRun.objects.create(id=uuid.uuid4(), judge=judge, judge_version=judge.version, min_labels=50).pk)


def test_every_json_read_answers_as_documented(api, openapi, judged):
    experiment_id, job, endpoint = judged["experiment"].pk, judged["job"], judged["endpoint"]
    base, new = judged["runs"]
    datasets = f"/api/v1/experiments/{experiment_id}/datasets"
    helpful = judged["experiment"].judges.get(name="helpful")
    running = shadow.start_shadow(helpful, instructions="Is {{ outputs }} a polite answer to {{ inputs }}?")
    for trace in judged["experiment"].traces.filter(trace_id__in=["t1", "t2"]):  # t2: a disagreement a person labelled
        record_result(acting_judge(running, helpful), Outcome(CallResult(value=trace.trace_id == "t1", rationale="shadow says")), trace=trace, shadow=running)
    dataset, record = judged["dataset"], judged["dataset"].records.get(source_trace_id="t1")
    reads = {
        "/api/v1/experiments/{experiment_id}/evaluation-runs": f"/api/v1/experiments/{experiment_id}/evaluation-runs",
        "/api/v1/experiments/{experiment_id}/datasets": datasets,
        "/api/v1/experiments/{experiment_id}/datasets/{dataset_id}": f"{datasets}/{dataset.pk}",
        "/api/v1/experiments/{experiment_id}/datasets/{dataset_id}/records": f"{datasets}/{dataset.pk}/records?page_size=1",
        "/api/v1/experiments/{experiment_id}/datasets/{dataset_id}/records/{record_id}": f"{datasets}/{dataset.pk}/records/{record.pk}",
        "/api/v1/experiments": "/api/v1/experiments",
        "/api/v1/experiments/{experiment_id}": f"/api/v1/experiments/{experiment_id}",
        "/api/v1/experiments/{experiment_id}/traces": f"/api/v1/experiments/{experiment_id}/traces?page_size=2",
        "/api/v1/traces/{trace_id}": "/api/v1/traces/t1",
        "/api/v1/traces/{trace_id}/judges": "/api/v1/traces/t3/judges",
        "/api/v1/experiments/{experiment_id}/sessions": f"/api/v1/experiments/{experiment_id}/sessions",
        "/api/v1/experiments/{experiment_id}/sessions/{session_id}": f"/api/v1/experiments/{experiment_id}/sessions/s1",
        "/api/v1/experiments/{experiment_id}/sessions/{session_id}/judges": f"/api/v1/experiments/{experiment_id}/sessions/s1/judges",
        "/api/v1/experiments/{experiment_id}/assessments": f"/api/v1/experiments/{experiment_id}/assessments",
        "/api/v1/experiments/{experiment_id}/judges": f"/api/v1/experiments/{experiment_id}/judges",
        "/api/v1/experiments/{experiment_id}/judges/{name}": f"/api/v1/experiments/{experiment_id}/judges/frustration",
        "/api/v1/experiments/{experiment_id}/judges/{name}/versions": f"/api/v1/experiments/{experiment_id}/judges/helpful/versions",
        "/api/v1/experiments/{experiment_id}/judges/{name}/agreement": f"/api/v1/experiments/{experiment_id}/judges/helpful/agreement",
        "/api/v1/experiments/{experiment_id}/judges/{name}/align": f"/api/v1/experiments/{experiment_id}/judges/helpful/align",
        # A queued run; tests/judges/test_align_api.py checks a finished one's shape.
        "/api/v1/experiments/{experiment_id}/judges/{name}/align/{run_id}": f"/api/v1/experiments/{experiment_id}/judges/helpful/align/{queued_align_run(experiment_id)}",
        "/api/v1/experiments/{experiment_id}/judges/{name}/shadow": f"/api/v1/experiments/{experiment_id}/judges/helpful/shadow",
        "/api/v1/experiments/{experiment_id}/judges/{name}/shadow/diff": f"/api/v1/experiments/{experiment_id}/judges/helpful/shadow/diff",
        "/api/v1/experiments/{experiment_id}/overview": f"/api/v1/experiments/{experiment_id}/overview?range=30d",
        "/api/v1/endpoints": "/api/v1/endpoints",
        "/api/v1/endpoints/{endpoint_id}": f"/api/v1/endpoints/{endpoint.pk}",
        "/api/v1/jobs/{job_id}": f"/api/v1/jobs/{job}",
        "/api/v1/evaluation-runs/{run_id}": f"/api/v1/evaluation-runs/{base.pk}",
        "/api/v1/evaluation-runs/{run_id}/rows": f"/api/v1/evaluation-runs/{new.pk}/rows?page_size=1",
        "/api/v1/evaluation-runs/{run_id}/compare/{other_id}": f"/api/v1/evaluation-runs/{base.pk}/compare/{new.pk}",
    }
    documented_reads = {
        path for path, item in openapi["paths"].items() if "application/json" in item.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
    }
    assert documented_reads == set(reads), "a JSON read was added or removed: check its response here too"
    bodies = {path: check(openapi, path, "get", api.get(url)) for path, url in reads.items()}

    # The data reached the parts of the shapes that are optional or nullable.
    assert bodies["/api/v1/experiments/{experiment_id}/traces"]["next_cursor"]
    assert {a["source_type"] for a in bodies["/api/v1/traces/{trace_id}"]["assessments"]} == {"LLM_JUDGE", "HUMAN"}
    assert bodies["/api/v1/traces/{trace_id}/judges"]["judges"]["helpful"]["state"] == "error"
    assert bodies["/api/v1/jobs/{job_id}"]["results"][0]["trace_id"] == "t1"
    assert bodies["/api/v1/experiments/{experiment_id}/judges/{name}"]["session_idle_seconds"] is not None
    assert Session.objects.filter(session_id="s1").exists()
    assert bodies["/api/v1/experiments/{experiment_id}/datasets/{dataset_id}/records"]["next_cursor"]
    assert bodies["/api/v1/experiments/{experiment_id}/datasets/{dataset_id}"]["created_by"] == "pat"
    assert bodies["/api/v1/evaluation-runs/{run_id}"]["summary"]["gates"][0]["passed"] is True
    assert bodies["/api/v1/evaluation-runs/{run_id}/rows"]["next_offset"] == 1
    assert len(bodies["/api/v1/evaluation-runs/{run_id}/compare/{other_id}"]["regressions"]) == 1
    assert bodies["/api/v1/experiments/{experiment_id}/judges/{name}/shadow/diff"]["results"][0]["human"]["labelled_by"] == "pat"


def test_writes_answer_as_documented(api, openapi, judged):
    experiment_id = judged["experiment"].pk
    created = api.post(f"/api/v1/experiments/{experiment_id}/judges", {"name": "tone", "instructions": "Tone of {{ outputs }}?", "output_type": "categorical", "categories": ["calm", "rude"], "endpoint": judged["endpoint"].name}, format="json")
    check(openapi, "/api/v1/experiments/{experiment_id}/judges", "post", created, 201)
    started = api.post(f"/api/v1/experiments/{experiment_id}/judges/tone/start", {"sample_rate": 0.5}, format="json")
    check(openapi, "/api/v1/experiments/{experiment_id}/judges/{name}/start", "post", started)
    run = api.post(f"/api/v1/experiments/{experiment_id}/judges/tone/run", {"trace_ids": ["t2"]}, format="json")
    check(openapi, "/api/v1/experiments/{experiment_id}/judges/{name}/run", "post", run, 202)
    logged = api.post(f"/api/v1/experiments/{experiment_id}/traces", {"traces": [make_trace("t9", minutes=9)]}, format="json")
    check(openapi, "/api/v1/experiments/{experiment_id}/traces", "post", logged)
    feedback = api.post(f"/api/v1/experiments/{experiment_id}/assessments", {"trace_id": "t9", "name": "thumbs", "value": True}, format="json")
    check(openapi, "/api/v1/experiments/{experiment_id}/assessments", "post", feedback, 201)
    endpoint = api.patch(f"/api/v1/endpoints/{judged['endpoint'].pk}", {"max_concurrency": 3}, format="json")
    check(openapi, "/api/v1/endpoints/{endpoint_id}", "patch", endpoint)


def test_dataset_writes_answer_as_documented(api, openapi, judged):
    experiment_id, dataset = judged["experiment"].pk, judged["dataset"]
    base = "/api/v1/experiments/{experiment_id}/datasets"
    created = api.post(f"/api/v1/experiments/{experiment_id}/datasets", {"name": "new"}, format="json")
    check(openapi, base, "post", created, 201)
    records = f"/api/v1/experiments/{experiment_id}/datasets/{dataset.pk}/records"
    merged = api.post(records, [{"inputs": {"q": "y"}}], format="json")
    check(openapi, base + "/{dataset_id}/records", "post", merged)
    uploaded = api.post(f"{records}/upload", data=b"inputs.q\nz\n", content_type="text/csv")
    check(openapi, base + "/{dataset_id}/records/upload", "post", uploaded)
    added = api.post(f"{records}/from-traces", {"filter_string": ""}, format="json")
    check(openapi, base + "/{dataset_id}/records/from-traces", "post", added)
    patched = api.patch(f"{records}/{merged.json()['record_ids'][0]}", {"outputs": {"a": 1}}, format="json")
    check(openapi, base + "/{dataset_id}/records/{record_id}", "patch", patched)


def test_evaluation_run_writes_answer_as_documented(api, openapi, judged):
    base = "/api/v1/experiments/{experiment_id}/evaluation-runs"
    runs = f"/api/v1/experiments/{judged['experiment'].pk}/evaluation-runs"
    body = {"name": "v2", "dataset": judged["dataset"].name, "judges": ["helpful"], "gates": ["helpful>=0.5"], "predict": True}
    created = check(openapi, base, "post", api.post(runs, body, format="json"), 201)
    predictions = {"predictions": [{"position": 0, "outputs": "Within 30 days.", "latency_ms": 40}]}
    check(openapi, base + "/{run_id}/predictions", "post", api.post(f"{runs}/{created['id']}/predictions", predictions, format="json"))
    cancelled = check(openapi, base + "/{run_id}/cancel", "post", api.post(f"{runs}/{created['id']}/cancel"))
    assert cancelled["status"] == "cancelled"
