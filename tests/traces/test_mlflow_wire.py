"""MLflow's trace JSON ↔ our records (traces/mlflow_wire.py): plain functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from traces import mlflow_wire as wire
from traces.payload import PayloadError
from traces.records import SpanIn

HEX = "5b8efff798038103d269b633813fc60c"


def test_mlflow_trace_ids_are_stored_as_the_otlp_hex_and_given_back_with_their_prefix():
    assert wire.our_trace_id(f"tr-{HEX.upper()}") == HEX
    assert wire.mlflow_trace_id(HEX) == f"tr-{HEX}"
    # Ids of other shapes (an old client's UUID, a JSON-API trace) pass through both ways unchanged.
    for other in ("tr-123", "7b1c4f52-0f4e-4bd5-9d4e-0ad3f2c6a8e1", "order-42"):
        assert wire.mlflow_trace_id(wire.our_trace_id(other)) == other


def test_protobuf_times_and_durations():
    assert wire.parse_proto_time("2026-12-06T15:40:45.607123456Z", "t") == datetime(2026, 12, 6, 15, 40, 45, 607123, tzinfo=UTC)
    assert wire.proto_time(datetime(2026, 12, 6, 15, 40, 45, 607123, tzinfo=UTC)) == "2026-12-06T15:40:45.607Z"
    assert wire.parse_proto_duration("1.250s", "d") == timedelta(milliseconds=1250)
    assert wire.proto_duration(1250) == "1.250s"
    with pytest.raises(PayloadError, match="1970–2099"):
        wire.parse_proto_time("1900-01-01T00:00:00Z", "request_time")
    with pytest.raises(PayloadError, match="duration"):
        wire.parse_proto_duration("-1s", "execution_duration")


@pytest.mark.parametrize("span_id, parent", [("eee19b7ec3c1b174", "a1b2c3d4e5f60718"), ("eee19b7ec3c1b174", "")])
def test_a_stored_span_written_as_mlflow_writes_it_reads_back_the_same(span_id, parent):
    start = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    stored = SpanIn(
        span_id=span_id,
        parent_span_id=parent,
        name="call_model",
        span_type="CHAT_MODEL",
        started_at=start,
        ended_at=start + timedelta(milliseconds=800),
        status="ERROR",
        status_message="rate limited",
        inputs={"messages": [{"role": "user", "content": "hi"}]},
        outputs="[not JSON, a string]",
        attributes={"model": "gpt-4.1-mini", "retries": 2, "tools": ["search"]},
        events=[{"name": "exception", "time": (start + timedelta(milliseconds=5)).isoformat(), "attributes": {"message": "429"}}],
    )
    trace = wire.parse_trace_data({"spans": [wire.span_dict(stored, HEX)]}, HEX)
    [span] = trace.spans
    assert trace.trace_id == HEX
    assert span.attributes.pop("mlflow.traceRequestId") == f"tr-{HEX}"
    assert span == stored


def test_span_data_with_a_wrong_id_is_refused_with_the_spans_path():
    data = {"spans": [{"trace_id": "W47/95gDgQPSabYzgT/GDA==", "span_id": "AAAA", "start_time_unix_nano": 1, "status": {}}]}
    with pytest.raises(PayloadError) as refused:
        wire.parse_trace_data(data, HEX)
    assert refused.value.errors[0][0] == "spans[0].spanId"


def test_an_expectation_that_is_not_a_plain_value_comes_as_json_text_and_goes_back_the_same_way():
    sent = {
        "assessment_name": "expected_facts",
        "source": {"source_type": "HUMAN", "source_id": "kim"},
        "expectation": {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": '["2 days", "UPS"]'}},
    }
    parsed = wire.parse_assessment(sent, "assessment")
    assert (parsed.value, parsed.expectation, parsed.source_type) == (["2 days", "UPS"], True, "HUMAN")
