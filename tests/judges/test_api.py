"""The judges API (first part): endpoints and judges from code, errors with the field they concern."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from judges.models import Evaluation, Judge, ModelEndpoint
from tests.conftest import STANDIN_KEY, make_trace
from traces.actions import ingest_traces
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db


def test_endpoints_are_created_listed_tested_and_the_key_is_write_only(api, standin):
    created = api.post(
        "/api/v1/endpoints",
        {"name": "stand-in", "model": "openai/evalapp-standin", "api_base": standin.api_base, "api_key": STANDIN_KEY, "max_concurrency": 4},
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert body["has_api_key"] is True and "api_key" not in body
    assert STANDIN_KEY.encode() not in created.content
    listing = api.get("/api/v1/endpoints")
    assert [e["name"] for e in listing.json()["endpoints"]] == ["stand-in"] and STANDIN_KEY.encode() not in listing.content
    assert api.post(f"/api/v1/endpoints/{body['id']}/test").json()["ok"] is True

    changed = api.patch(f"/api/v1/endpoints/{body['id']}", {"api_key": "sk-wrong-wrong-wrong"}, format="json")
    assert changed.status_code == 200
    test = api.post(f"/api/v1/endpoints/{body['id']}/test").json()
    assert test["ok"] is False and test["message"].startswith("Authentication failed")
    assert "sk-wrong" not in test["message"]


def test_bad_endpoint_settings_get_a_precise_400_and_nothing_is_written(api):
    response = api.post("/api/v1/endpoints", {"name": "", "model": "a b", "api_base": "ftp://x", "max_concurrency": 0}, format="json")
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"name", "model", "api_base", "max_concurrency"}
    assert not ModelEndpoint.objects.exists()


def test_judges_lifecycle_register_start_update_stop(api, experiment, endpoint, standin):
    url = f"/api/v1/experiments/{experiment.pk}/judges"
    created = api.post(url, {"name": "user_frustration", "scope": "session", "builtin_key": "UserFrustration", "endpoint": endpoint.name}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["active"] is False and created.json()["output_type"] == "categorical"

    started = api.post(f"{url}/user_frustration/start", {"sample_rate": 1.0, "filter_string": "metadata.environment = 'production'"}, format="json")
    assert started.status_code == 200
    assert (started.json()["active"], started.json()["version"]) == (True, 2)
    updated = api.post(f"{url}/user_frustration/start", {"sample_rate": 0.3}, format="json")
    assert (updated.json()["sample_rate"], updated.json()["version"]) == (0.3, 3)
    stopped = api.post(f"{url}/user_frustration/stop")
    assert stopped.json()["active"] is False
    versions = api.get(f"{url}/user_frustration/versions").json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["config"]["sample_rate"] == 0.3
    assert [j["name"] for j in api.get(url).json()["judges"]] == ["user_frustration"]
    assert api.delete(f"{url}/user_frustration").status_code == 204
    assert not Judge.objects.exists()


def test_judge_errors_name_the_field(api, experiment, endpoint):
    url = f"/api/v1/experiments/{experiment.pk}/judges"
    response = api.post(url, {"name": "x", "instructions": "Is {{ output }} ok?", "endpoint": endpoint.name, "filter_string": "trace.sttus = 'OK'"}, format="json")
    assert response.status_code == 400
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert errors["instructions"].startswith("unknown variable {{ output }}")
    assert errors["filter_string"].startswith("unknown field 'trace.sttus'; did you mean 'trace.status'?")
    api.post(url, {"name": "ok", "instructions": "Is {{ outputs }} ok?", "endpoint": endpoint.name}, format="json")
    bad_start = api.post(f"{url}/ok/start", {"sample_rate": 2, "colour": "red"}, format="json")
    assert bad_start.status_code == 400
    assert {e["field"] for e in bad_start.json()["errors"]} == {"colour"}
    assert api.post(f"{url}/ok/start", {"sample_rate": 2}, format="json").json()["errors"][0]["field"] == "sample_rate"
    assert api.get(f"{url}/missing").status_code == 404


def test_why_not_judged_per_trace(api, experiment, endpoint):
    url = f"/api/v1/experiments/{experiment.pk}/judges"
    api.post(url, {"name": "prod_only", "instructions": "Is {{ outputs }} ok?", "endpoint": endpoint.name, "active": True, "filter_string": "metadata.environment = 'staging'"}, format="json")
    ingest_traces(experiment, parse_trace_batch([make_trace("t1")], max_traces=5))
    states = api.get("/api/v1/traces/t1/judges").json()["judges"]
    assert states["prod_only"]["state"] == "filtered_out"
    assert "metadata.environment = 'staging'" in states["prod_only"]["text"]
    assert not Evaluation.objects.exists()


def test_the_judges_api_needs_a_token(experiment):
    client = APIClient()
    assert client.get(f"/api/v1/experiments/{experiment.pk}/judges").status_code == 401
    assert client.post("/api/v1/endpoints", {"name": "x", "model": "y"}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "instructions": "{{ outputs }}", "user": "root"}, "user"),
        ({"name": "a", "instructions": "{{ outputs }}", "builtin_key": ["Safety"]}, "builtin_key"),
        ({"name": "a", "instructions": "{{ outputs }}", "active": "false"}, "active"),
        ({"name": "a", "instructions": "{{ outputs }}", "categories": "yes,no", "output_type": "categorical"}, "categories"),
        ({"name": "a", "instructions": "{{ outputs }}", "min_value": [1], "output_type": "integer"}, "min_value"),
    ],
)
def test_odd_judge_bodies_get_a_400_not_a_500(api, experiment, endpoint, body, field):
    response = api.post(f"/api/v1/experiments/{experiment.pk}/judges", {**body, "endpoint": endpoint.name}, format="json")
    assert response.status_code == 400
    assert field in {error["field"] for error in response.json()["errors"]}
    assert not Judge.objects.exists()


def test_a_form_encoded_body_is_refused(api, experiment):
    response = api.post(f"/api/v1/experiments/{experiment.pk}/judges", {"name": "x"})
    assert response.status_code == 415
