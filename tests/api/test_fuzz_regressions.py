"""Server errors the API fuzzer (test_fuzz.py) found, pinned as plain requests — and, at the end, the ones found
by hand-probing the same validation code with inputs the fuzzer rarely generates (Unicode digits, the ends of the
calendar, numbers too big for a float, lone UTF-16 surrogates)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from judges.actions import create_judge
from tests.conftest import make_trace
from traces.actions import ingest_traces
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db

TOO_BIG_FOR_SQLITE = 2**64  # a valid-looking id no database row can have


@pytest.fixture
def client(token) -> APIClient:
    """Answers 500 instead of re-raising the view's exception, as a real client would see it."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def judged_experiment(experiment, endpoint):
    ingest_traces(experiment, parse_trace_batch([make_trace("t1", session_id="s1")], max_traces=5))
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    return experiment


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "judges/helpful"),
        ("patch", "judges/helpful"),
        ("delete", "judges/helpful"),
        ("post", "judges/helpful/start"),
        ("post", "judges/helpful/stop"),
        ("get", "judges/helpful/versions"),
        ("post", "judges/helpful/run"),
        ("get", "sessions/s1"),
        ("get", "sessions/s1/judges"),
    ],
)
def test_an_experiment_id_too_big_for_the_database_is_a_404(client, judged_experiment, method, path):
    response = getattr(client, method)(f"/api/v1/experiments/{TOO_BIG_FOR_SQLITE}/{path}", {}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("field", ["input_cost_per_million", "output_cost_per_million"])
def test_an_endpoint_price_too_big_to_store_is_refused_and_the_endpoint_stays_readable(client, endpoint, field):
    response = client.patch(f"/api/v1/endpoints/{endpoint.pk}", {field: 1e308}, format="json")
    assert client.get(f"/api/v1/endpoints/{endpoint.pk}").status_code == 200
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_a_judge_spend_cap_too_big_to_store_is_refused_and_the_judge_stays_readable(client, judged_experiment):
    url = f"/api/v1/experiments/{judged_experiment.pk}/judges/helpful"
    response = client.patch(url, {"daily_cost_cap_usd": "1e20"}, format="json")
    assert client.get(url).status_code == 200
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "daily_cost_cap_usd"


# --- found by hand-probing the code paths the fuzzer exercises ------------------------------------------------


def raw_json(client: APIClient, method: str, url: str, body: str, **headers: str):
    """Send `body` byte for byte: the test client would re-encode what json.loads can't round-trip."""
    return client.generic(method, url, body.encode(), content_type="application/json", **headers)


@pytest.mark.parametrize(
    "query",
    ["traces?page_size=²", "sessions?page_size=²", "assessments?page_size=²", "traces?since=²", "sessions?until=²"],
)
def test_unicode_digits_in_a_number_parameter_are_a_400(client, experiment, query):
    # "²".isdigit() is True, but int("²") raises ValueError.
    assert client.get(f"/api/v1/experiments/{experiment.pk}/{query}").status_code == 400


@pytest.mark.parametrize(
    "query",
    ["from=9999-12-30&to=9999-12-31", "from=0001-01-01T00:00:00%2B01:00", "from=9999-12-31T23:00:00-05:00"],
)
def test_an_overview_range_at_the_ends_of_the_calendar_is_a_400(client, experiment, query):
    response = client.get(f"/api/v1/experiments/{experiment.pk}/overview?{query}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] in ("from", "to")


def test_a_cursor_at_the_start_of_the_calendar_is_a_400(client, experiment):
    cursor = base64.urlsafe_b64encode(b"0001-01-01T00:00:00+05:00|1").decode()
    response = client.get(f"/api/v1/experiments/{experiment.pk}/traces", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"


def test_a_sample_rate_too_big_for_a_float_is_a_400(client, judged_experiment):
    url = f"/api/v1/experiments/{judged_experiment.pk}/judges/helpful/start"
    response = raw_json(client, "POST", url, '{"sample_rate": 1%s}' % ("0" * 400))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "sample_rate"


def test_an_endpoint_limit_that_parses_as_infinity_is_a_400(client):
    response = raw_json(client, "POST", "/api/v1/endpoints", '{"name": "x", "model": "openai/x", "max_concurrency": 1e400}')
    assert response.status_code == 400


def test_a_judge_endpoint_given_as_unicode_digits_is_a_400(client, experiment, endpoint):
    body = '{"name": "ok", "instructions": "Is {{ outputs }} ok?", "endpoint": "²"}'
    response = raw_json(client, "POST", f"/api/v1/experiments/{experiment.pk}/judges", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "endpoint"


def test_a_lone_utf16_surrogate_in_a_json_string_is_a_400(client, experiment, endpoint):
    # JSON allows the escape "\ud800" on its own; the str it decodes to can't be encoded as UTF-8 for the database.
    # (Logged traces keep such text with U+FFFD instead: see the NUL tests below.)
    body = '{"name": "ok", "instructions": "\\ud800 {{ outputs }}", "endpoint": "ENDPOINT"}'
    response = raw_json(client, "POST", f"/api/v1/experiments/{experiment.pk}/judges", body.replace("ENDPOINT", endpoint.name))
    assert response.status_code == 400
    assert "lone UTF-16 surrogate" in response.json()["detail"]


@pytest.mark.parametrize("nanos", ["99999999999999999999999", "1e400"])
def test_an_otlp_json_span_time_out_of_range_is_a_400(client, experiment, nanos):
    body = (
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", '
        '"spanId": "eee19b7ec3c1b174", "name": "agent", "startTimeUnixNano": %s}]}]}]}' % nanos
    )
    response = raw_json(client, "POST", "/v1/traces", body, HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk))
    assert response.status_code == 400


def ingest(client: APIClient, experiment, trace_json: str):
    return raw_json(client, "POST", f"/api/v1/experiments/{experiment.pk}/traces", '{"traces": [%s]}' % trace_json)


SPAN_WITH_TOKENS = '{"trace_id": "t9", "spans": [{"span_id": "root", "start_time": "2026-11-20T12:00:00Z", "attributes": {"gen_ai.usage.input_tokens": %s}}]}'


def test_a_span_token_count_in_unicode_digits_is_ignored(client, experiment):
    assert ingest(client, experiment, SPAN_WITH_TOKENS % '"²"').status_code == 200
    assert client.get("/api/v1/traces/t9").json()["input_tokens"] is None


@pytest.mark.parametrize("count", ["NaN", "Infinity", "1e400"])
def test_a_number_json_can_parse_but_no_database_can_store_is_a_400(client, experiment, count):
    response = ingest(client, experiment, SPAN_WITH_TOKENS % count)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Body is not valid JSON")


@pytest.mark.parametrize("zeros", [30, 10])  # beyond 64 bits; beyond a billion, which would let sums overflow
def test_a_token_count_too_big_to_store_is_a_400(client, experiment, zeros):
    trace = '{"trace_id": "t9", "start_time": "2026-11-20T12:00:00Z", "token_usage": {"input_tokens": 1%s}}' % ("0" * zeros)
    response = ingest(client, experiment, trace)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"field": "traces[0].token_usage.input_tokens", "message": "must be a whole number from 0 to 1,000,000,000"}
    ok = '{"trace_id": "t9", "start_time": "2026-11-20T12:00:00Z", "token_usage": {"input_tokens": 1000000000}}'
    assert ingest(client, experiment, ok).status_code == 200


@pytest.mark.parametrize(
    ("times", "field"),
    [
        ('"start_time": "0001-01-01T00:00:00+05:00"', "traces[0].start_time"),
        ('"start_time": "2026-11-20T12:00:00Z", "end_time": "9999-12-31T23:59:59-01:00"', "traces[0].end_time"),
    ],
)
def test_a_trace_time_at_the_ends_of_the_calendar_is_a_400(client, experiment, times, field):
    response = ingest(client, experiment, '{"trace_id": "t9", %s}' % times)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_an_otlp_experiment_header_in_unicode_digits_is_a_404(client, experiment):
    response = raw_json(client, "POST", "/v1/traces", "{}", HTTP_X_EVALAPP_EXPERIMENT_ID="²")
    assert response.status_code == 404


OTLP_SPAN = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "agent", "startTimeUnixNano": "1763806500000000000"}


def otlp_json(*, resource: Any = None, scope: Any = None, **span: Any) -> str:
    scope_spans = scope if scope is not None else {"spans": [{**OTLP_SPAN, **span}]}
    resource_spans: dict[str, Any] = {"scopeSpans": [scope_spans]}
    if resource is not None:
        resource_spans["resource"] = resource
    return json.dumps({"resourceSpans": [resource_spans]})


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(otlp_json(status={"code": {}}), id="status.code an object (found by the fuzzer)"),
        pytest.param(otlp_json(status=[1]), id="status a list"),
        pytest.param(otlp_json(resource=[1]), id="resource a list"),
        pytest.param(otlp_json(scope=[1]), id="scopeSpans item a list"),
        pytest.param(json.dumps({"resourceSpans": [{"scopeSpans": "abc"}]}), id="scopeSpans a string"),
    ],
)
def test_an_otlp_json_body_of_the_wrong_shape_is_a_400(client, experiment, body):
    response = raw_json(client, "POST", "/v1/traces", body, HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "attribute",
    [
        pytest.param({"key": [1], "value": {"stringValue": "x"}}, id="key a list"),
        pytest.param({"key": "k", "value": {"kvlistValue": {"values": [{"key": [1], "value": {"intValue": 1}}]}}}, id="kvlist key a list"),
        pytest.param({"key": "k", "value": {"arrayValue": [1]}}, id="arrayValue a list"),
        pytest.param({"key": "input.value", "value": {"stringValue": "[NaN]"}}, id="input.value holding NaN"),
    ],
)
def test_an_odd_otlp_json_attribute_is_stored_or_skipped_like_other_odd_attributes(client, experiment, attribute):
    response = raw_json(client, "POST", "/v1/traces", otlp_json(attributes=[attribute]), HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk))
    assert response.status_code == 200
    assert experiment.traces.filter(trace_id="5b8efff798038103d269b633813fc60c").exists()


def test_otlp_protobuf_attributes_holding_nan_or_infinity_are_stored(client, experiment):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(OTLP_SPAN["traceId"]), bytes.fromhex(OTLP_SPAN["spanId"]), "agent"
    span.start_time_unix_nano, span.end_time_unix_nano = 1763806500000000000, 1763806501000000000
    for key, number in (("score", float("nan")), ("gen_ai.usage.input_tokens", float("inf"))):
        attribute = span.attributes.add()
        attribute.key, attribute.value.double_value = key, number
    response = client.generic(
        "POST", "/v1/traces", request.SerializeToString(), content_type="application/x-protobuf", HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk)
    )
    assert response.status_code == 200
    assert experiment.traces.get().input_tokens is None


# --- NUL characters: valid JSON and valid URLs, but PostgreSQL refuses them in text and jsonb ------------------


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("judges", '{"name": "ok", "instructions": "Is {{ outputs }} ok?\\u0000", "endpoint": "ENDPOINT"}', "instructions"),
        ("assessments", '{"trace_id": "t1", "name": "thumbs", "value": true, "rationale": "\\u0000"}', "rationale"),
    ],
)
def test_a_nul_character_in_a_json_string_is_a_400_naming_where(client, judged_experiment, endpoint, path, body, where):
    url = f"/api/v1/experiments/{judged_experiment.pk}/{path}"
    response = raw_json(client, "POST", url, body.replace("ENDPOINT", endpoint.name))
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"Body can't be stored: {where}")


def test_logged_traces_keep_text_no_database_stores_with_a_replacement_character(client, experiment):
    # Refusing the batch would lose it: a NUL or a lone surrogate in a trace becomes U+FFFD, the rest is kept.
    body = (
        '{"traces": [{"trace_id": "t9", "start_time": "2026-11-20T12:00:00Z", "name": "a\\u0000b",'
        ' "request": {"q\\u0000": "x\\ud800y"}, "response": {"content": "fine"}}]}'
    )
    response = raw_json(client, "POST", f"/api/v1/experiments/{experiment.pk}/traces", body)
    assert response.status_code == 200, response.content
    trace = experiment.traces.get(trace_id="t9")
    assert trace.name == "a\ufffdb" and trace.request == {"q\ufffd": "x\ufffdy"} and trace.response == {"content": "fine"}


@pytest.mark.parametrize(
    "url",
    ["/api/v1/traces/a%00b", "/api/v1/experiments/EXPERIMENT/judges/a%00b", "/api/v1/experiments/EXPERIMENT/traces?session_id=%00"],
)
def test_a_nul_character_in_the_url_is_a_400(client, judged_experiment, url):
    response = client.get(url.replace("EXPERIMENT", str(judged_experiment.pk)))
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_an_otlp_protobuf_attribute_holding_a_nul_is_kept_with_a_replacement_character(client, experiment):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(OTLP_SPAN["traceId"]), bytes.fromhex(OTLP_SPAN["spanId"]), "agent"
    span.start_time_unix_nano = 1763806500000000000
    attribute = span.attributes.add()
    attribute.key, attribute.value.string_value = "output.value", "a\x00b"
    response = client.generic(
        "POST", "/v1/traces", request.SerializeToString(), content_type="application/x-protobuf", HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk)
    )
    assert response.status_code == 200, response.content
    assert experiment.traces.get().response == "a\ufffdb"
