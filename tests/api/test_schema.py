"""The OpenAPI schema (/api/schema/) and its Swagger UI (/api/docs/): complete, valid, warning-free, documented
with examples, behind a login or a token, and served without any CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
TAGS = {"Experiments", "Traces", "Sessions", "Judges", "Model endpoints", "Jobs", "Assessments", "Overview", "OTLP", "Datasets", "Evaluations"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _routes(patterns: list, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _api_operations() -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every method of every API view routed under /api/v1/ (and OTLP's /v1/traces)."""
    operations = set()
    for route, callback in _routes(get_resolver().url_patterns):
        if not route.startswith(("api/v1/", "v1/")):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        assert view_class is not None, f"{path} is not a class-based API view"
        operations |= {(path, method) for method in HTTP_METHODS if hasattr(view_class, method)}
    return operations


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_the_schema_generates_and_validates_without_warnings_or_errors():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert problems == [], "\n".join(problems)
    validate_schema(generated)


def test_every_api_route_and_method_is_in_the_schema(schema):
    documented = {(path, method) for path, method, _ in _operations(schema)}
    expected = _api_operations()
    assert len(expected) > 25  # the route walk found the API
    assert expected - documented == set()


def test_every_operation_is_described_tagged_and_has_an_example(schema):
    for path, method, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("summary") and operation.get("description"), where
        assert operation.get("tags") and set(operation["tags"]) <= TAGS, where
        bodies = [*operation.get("requestBody", {}).get("content", {}).values()]
        bodies += [content for response in operation["responses"].values() for content in response.get("content", {}).values()]
        assert any(body.get("examples") for body in bodies), f"{where} has no example"


def test_every_operation_documents_its_errors_with_the_shared_error_body(schema):
    for path, method, operation in _operations(schema):
        unauthorized = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert unauthorized == {"$ref": "#/components/schemas/ApiError"}, f"{method.upper()} {path}"
    error = schema["components"]["schemas"]["ApiError"]
    assert set(error["properties"]) == {"detail", "errors"}
    assert error["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_login_or_a_token(url, token, user):
    anonymous = APIClient().get(url)
    assert anonymous.status_code == 401 or (anonymous.status_code == 302 and "/login/" in anonymous["Location"])

    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert with_token.get(url).status_code == 200

    logged_in = APIClient()
    logged_in.force_login(user)
    assert logged_in.get(url).status_code == 200


@pytest.mark.django_db
def test_the_served_schema_is_the_documented_api(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    served = response.json()
    assert served["info"]["title"] == "evalapp API"
    assert "/api/v1/experiments/{experiment_id}/judges/{name}/run" in served["paths"]


@pytest.mark.django_db
def test_the_docs_page_loads_only_local_static_assets(client, user):
    client.force_login(user)
    html = client.get("/api/docs/").content.decode()
    assert not re.search(r"https?://", html), "the docs page refers to another host"
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), f"static asset {asset} is not installed"


@pytest.mark.django_db
def test_a_serializer_validation_error_has_the_documented_error_shape(api):
    response = api.post("/api/v1/experiments", {"name": " "}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [{"field": "name", "message": "This field may not be blank."}]
    assert body["detail"].startswith("name: ")


def test_documented_request_bodies_list_exactly_the_keys_the_views_accept():
    from datasets import api as datasets_api
    from datasets import api_schema as datasets_schema
    from datasets.records import RECORD_KEYS
    from judges import api as judges_api
    from judges import api_schema as judges_schema
    from judges.actions import JUDGE_FIELDS
    from traces import api as traces_api
    from traces import api_schema as traces_schema
    from traces import payload

    pairs = [
        (traces_schema.TraceInSerializer, payload.TRACE_KEYS),
        (traces_schema.SpanInSerializer, payload.SPAN_KEYS),
        (traces_schema.SpanEventInSerializer, payload.EVENT_KEYS),
        (traces_schema.TokenUsageSerializer, payload.TOKEN_KEYS),
        (traces_schema.FeedbackSerializer, traces_api.ASSESSMENT_FIELDS),
        (judges_schema.JudgeCreateSerializer, JUDGE_FIELDS),
        (judges_schema.SamplingSerializer, judges_api.SAMPLING_FIELDS),
        (datasets_schema.DatasetCreateSerializer, datasets_api.DATASET_FIELDS),
        (datasets_schema.RecordInSerializer, RECORD_KEYS),
        (datasets_schema.RecordPatchSerializer, RECORD_KEYS),
        (datasets_schema.FromTracesSerializer, datasets_api.FROM_TRACES_FIELDS),
    ]
    for documented, accepted in pairs:
        assert set(documented().fields) == set(accepted), documented.__name__
