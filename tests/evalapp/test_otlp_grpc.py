"""OTLP over gRPC (`manage.py otlp_grpc`), with the OpenTelemetry SDK's own gRPC exporter and the raw service stub."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import Compression, OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace.export import SpanExportResult

from evalapp.otlp_grpc import build_server
from tests.traces.test_otlp import record_agent_run
from traces.models import Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)  # the server's threads read what the test committed


@pytest.fixture
def receiver():
    server, port = build_server("127.0.0.1:0", workers=2)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_sdks_grpc_exporter_delivers_whole_traces(receiver, token, experiment, compression):
    memory, trace_id = record_agent_run("conv-grpc")
    exporter = OTLPSpanExporter(
        endpoint=receiver,
        insecure=True,
        headers=(("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", experiment.name)),
        compression=compression,
        timeout=10,
    )
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    exporter.shutdown()

    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.experiment, trace.name, trace.status, trace.session_id) == (experiment, "support_agent", "OK", "conv-grpc")
    assert (trace.input_tokens, trace.output_tokens, trace.metadata["app_version"]) == (321, 54, "1.5.0")
    assert {span.name: span.span_type for span in Span.objects.filter(trace=trace)} == {
        "support_agent": "AGENT",
        "search_help_center": "RETRIEVER",
        "chat gpt-4.1-mini": "CHAT_MODEL",
        "lookup_order": "TOOL",
    }
    assert Session.objects.get(session_id="conv-grpc").trace_count == 1


def export_raw(receiver: str, metadata: tuple, request: ExportTraceServiceRequest | None = None) -> grpc.RpcError:
    if request is None:
        memory, _ = record_agent_run("conv-refused")
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        request = encode_spans(memory.get_finished_spans())
    with grpc.insecure_channel(receiver) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            TraceServiceStub(channel).Export(request, metadata=metadata, timeout=10)
    return refused.value


def test_refusals_carry_the_grpc_code_and_store_nothing(receiver, token, experiment):
    bad_token = export_raw(receiver, (("authorization", "Bearer ea_not-a-token"), ("x-evalapp-experiment-id", str(experiment.pk))))
    assert bad_token.code() == grpc.StatusCode.UNAUTHENTICATED and "authorization" in bad_token.details()
    no_token = export_raw(receiver, (("x-evalapp-experiment-id", str(experiment.pk)),))
    assert no_token.code() == grpc.StatusCode.UNAUTHENTICATED

    missing = export_raw(receiver, (("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", "no-such-experiment")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND and "'no-such-experiment' does not exist" in missing.details()
    unnamed = export_raw(receiver, (("authorization", f"Bearer {token}"),))
    assert unnamed.code() == grpc.StatusCode.INVALID_ARGUMENT and "x-evalapp-experiment-id" in unnamed.details()

    broken = ExportTraceServiceRequest()
    broken.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 4, name="x", start_time_unix_nano=1)
    invalid = export_raw(receiver, (("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", str(experiment.pk))), broken)
    assert invalid.code() == grpc.StatusCode.INVALID_ARGUMENT and "spanId" in invalid.details()
    assert not Trace.objects.exists()


def test_a_request_over_the_body_limit_is_refused_before_and_after_gzip(settings, token, experiment):
    settings.EVALAPP_MAX_BODY_BYTES = 8192
    server, port = build_server("127.0.0.1:0", workers=1)
    server.start()
    try:
        request = ExportTraceServiceRequest()
        span = (
            request.resource_spans.add()
            .scope_spans.add()
            .spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="big", start_time_unix_nano=1_763_640_000_000_000_000)
        )
        span.attributes.add(key="input.value").value.string_value = "x" * 50_000  # a few hundred bytes once gzipped
        metadata = (("authorization", f"Bearer {token}"), ("x-evalapp-experiment-id", str(experiment.pk)))
        for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
            with grpc.insecure_channel(f"127.0.0.1:{port}", compression=compression) as channel:
                with pytest.raises(grpc.RpcError) as refused:
                    TraceServiceStub(channel).Export(request, metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, compression
    finally:
        server.stop(grace=None)
    assert not Trace.objects.exists()
