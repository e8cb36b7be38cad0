"""OTLP/HTTP ingestion, with the real OpenTelemetry SDK exporter against a live server."""

from __future__ import annotations

import json

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from rest_framework.test import APIClient

from traces.models import Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)


def record_agent_run(session_id: str, *, fail_tool: bool = False) -> tuple[InMemorySpanExporter, str]:
    """Runs an instrumented 'agent' with the real SDK; returns the finished spans and the trace id (hex)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "staging"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    question = {"messages": [{"role": "user", "content": "Where is my order 1234?"}]}
    with tracer.start_as_current_span(
        "support_agent",
        attributes={
            "openinference.span.kind": "AGENT",
            "input.value": json.dumps(question),
            "input.mime_type": "application/json",
            "session.id": session_id,
            "user.id": "user-42",
            "metadata": json.dumps({"app_version": "1.5.0"}),
        },
    ) as root:
        with tracer.start_as_current_span(
            "search_help_center",
            attributes={
                "mlflow.spanType": json.dumps("RETRIEVER"),
                "mlflow.spanInputs": json.dumps({"query": "order status"}),
                "mlflow.spanOutputs": json.dumps([{"page_content": "Orders ship in 2 days."}]),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat gpt-4.1-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4.1-mini",
                "gen_ai.usage.input_tokens": 321,
                "gen_ai.usage.output_tokens": 54,
                "gen_ai.input.messages": json.dumps(question["messages"]),
            },
        ):
            with tracer.start_as_current_span("lookup_order", attributes={"openinference.span.kind": "TOOL"}) as tool:
                if fail_tool:
                    tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
        root.set_attribute("output.value", "Your order 1234 ships tomorrow.")
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return memory, trace_id


def exporter_for(live_server, token: str, experiment_id: int, **kwargs) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {token}", "x-evalapp-experiment-id": str(experiment_id)},
        timeout=10,
        **kwargs,
    )


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_export_comes_back_intact_through_the_json_api(live_server, token, api, experiment, compression):
    memory, trace_id = record_agent_run("conv-7")
    exporter = exporter_for(live_server, token, experiment.pk, compression=compression)
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS

    trace = api.get(f"/api/v1/traces/{trace_id}").json()
    assert trace["name"] == "support_agent"
    assert trace["status"] == "OK"
    assert trace["request"] == {"messages": [{"role": "user", "content": "Where is my order 1234?"}]}
    assert trace["response"] == "Your order 1234 ships tomorrow."
    assert (trace["session_id"], trace["user_id"]) == ("conv-7", "user-42")
    assert trace["metadata"] == {"environment": "staging", "service.name": "checkout", "app_version": "1.5.0"}
    assert (trace["input_tokens"], trace["output_tokens"], trace["total_tokens"]) == (321, 54, 375)

    spans = {span["name"]: span for span in trace["spans"]}
    assert set(spans) == {"support_agent", "search_help_center", "chat gpt-4.1-mini", "lookup_order"}
    root_id = spans["support_agent"]["span_id"]
    assert spans["support_agent"]["parent_span_id"] == ""
    assert spans["search_help_center"]["parent_span_id"] == root_id
    assert spans["lookup_order"]["parent_span_id"] == spans["chat gpt-4.1-mini"]["span_id"]
    assert {name: span["span_type"] for name, span in spans.items()} == {
        "support_agent": "AGENT",
        "search_help_center": "RETRIEVER",
        "chat gpt-4.1-mini": "CHAT_MODEL",
        "lookup_order": "TOOL",
    }
    assert spans["search_help_center"]["inputs"] == {"query": "order status"}
    assert spans["search_help_center"]["outputs"] == [{"page_content": "Orders ship in 2 days."}]
    assert spans["chat gpt-4.1-mini"]["attributes"]["gen_ai.request.model"] == "gpt-4.1-mini"
    sdk_span = next(s for s in memory.get_finished_spans() if s.name == "lookup_order")
    assert spans["lookup_order"]["span_id"] == format(sdk_span.context.span_id, "016x")
    assert Session.objects.get(session_id="conv-7").trace_count == 1


def test_spans_exported_one_by_one_complete_the_trace_when_the_root_arrives(live_server, token, api, experiment):
    memory, trace_id = record_agent_run("conv-8", fail_tool=True)
    exporter = exporter_for(live_server, token, experiment.pk)
    finished = memory.get_finished_spans()  # children end (and are exported) before their parents
    for span in finished[:-1]:
        assert exporter.export([span]) == SpanExportResult.SUCCESS
    assert api.get(f"/api/v1/traces/{trace_id}").json()["status"] == "IN_PROGRESS"

    assert exporter.export([finished[-1]]) == SpanExportResult.SUCCESS
    assert exporter.export([finished[0]]) == SpanExportResult.SUCCESS  # a retry of an already-stored span
    trace = api.get(f"/api/v1/traces/{trace_id}").json()
    assert trace["status"] == "OK"
    assert trace["span_count"] == 4
    assert Span.objects.filter(trace__trace_id=trace_id).count() == 4
    tool = next(span for span in trace["spans"] if span["name"] == "lookup_order")
    assert (tool["status"], tool["status_message"]) == ("ERROR", "order service timed out")


def test_otlp_json_with_hex_ids(live_server, token, experiment):
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "evalapp.experiment.id", "value": {"stringValue": str(experiment.pk)}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "rag",
                                "startTimeUnixNano": "1763640000000000000",
                                "endTimeUnixNano": "1763640001500000000",
                                "status": {"code": 2, "message": "boom"},
                                "attributes": [
                                    {"key": "mlflow.spanType", "value": {"stringValue": "\"CHAIN\""}},
                                    {"key": "mlflow.trace.session", "value": {"stringValue": "s-json"}},
                                    {"key": "llm.token_count.prompt", "value": {"intValue": "12"}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = requests.post(
        f"{live_server.url}/v1/traces", json=body, headers={"Authorization": f"Token {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    trace = Trace.objects.get(trace_id="5b8efff798038103d269b633813fc60c")
    assert (trace.status, trace.duration_ms, trace.session_id, trace.input_tokens) == ("ERROR", 1500, "s-json", 12)
    assert trace.spans.get().span_type == "CHAIN"


def otlp_post(client: APIClient, body: bytes, *, content_type: str = "application/x-protobuf", **headers):
    return client.generic("POST", "/v1/traces", body, content_type=content_type, **headers)


def test_otlp_errors(api, experiment, settings):
    memory, _ = record_agent_run("conv-9")
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = encode_spans(memory.get_finished_spans()).SerializePartialToString()

    no_experiment = otlp_post(api, body)
    assert no_experiment.status_code == 400
    from google.rpc.status_pb2 import Status

    assert "x-evalapp-experiment-id" in Status.FromString(no_experiment.content).message

    assert otlp_post(api, body, HTTP_X_EVALAPP_EXPERIMENT_ID="4242").status_code == 404
    assert otlp_post(api, body, HTTP_X_EVALAPP_EXPERIMENT_ID=experiment.name).status_code == 200
    assert otlp_post(APIClient(), body, HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk)).status_code == 401
    assert otlp_post(api, b"\xff\x00garbage", HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk)).status_code == 400
    assert otlp_post(api, body, content_type="text/plain", HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk)).status_code == 415

    bad_ids = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "AAAA", "spanId": "eee19b7ec3c1b174", "startTimeUnixNano": "1"}]}]}]}
    response = otlp_post(
        api, json.dumps(bad_ids).encode(), content_type="application/json", HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk)
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "resourceSpans[0].scopeSpans[0].spans[0].traceId"

    settings.EVALAPP_MAX_BODY_BYTES = 1024
    too_big = otlp_post(api, body + b"\x00" * 2048, HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk))
    assert too_big.status_code == 413
    assert Trace.objects.count() == 1  # only the request that named the experiment by name
