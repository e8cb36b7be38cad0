from __future__ import annotations

from datetime import UTC, datetime

import pytest

from traces.payload import PayloadError, parse_timestamp, parse_trace_batch
from traces.records import UNSET


def errors_of(data, max_traces: int = 100) -> dict[str, str]:
    with pytest.raises(PayloadError) as raised:
        parse_trace_batch(data, max_traces=max_traces)
    return dict(raised.value.errors)


def test_minimal_trace_without_spans_needs_a_start_time():
    assert errors_of([{"trace_id": "t1"}]) == {"traces[0].start_time": "is required when a trace has no spans"}


def test_accepts_bare_list_and_wrapped_object():
    item = {"trace_id": "t1", "start_time": "2026-11-20T10:00:00Z"}
    assert parse_trace_batch([item], max_traces=10)[0].trace_id == "t1"
    assert parse_trace_batch({"traces": [item]}, max_traces=10)[0].trace_id == "t1"


def test_unknown_field_suggests_the_nearest_one():
    errors = errors_of([{"trace_id": "t1", "start_time": 1763632800000, "sesion_id": "s"}])
    assert errors == {"traces[0].sesion_id": "unknown field; did you mean 'session_id'?"}


def test_errors_name_the_item_and_nested_field():
    errors = errors_of(
        {
            "traces": [
                {"trace_id": "ok", "start_time": "2026-11-20T10:00:00Z"},
                {"trace_id": "bad", "spans": [{"span_id": "s1", "start_time": "2026-11-20T10:00:00"}]},
            ]
        }
    )
    assert list(errors) == ["traces[1].spans[0].start_time"]
    assert "has no timezone" in errors["traces[1].spans[0].start_time"]


def test_epoch_seconds_are_caught_as_a_likely_mistake():
    with pytest.raises(ValueError, match="did you send seconds"):
        parse_timestamp(1763632800)
    assert parse_timestamp(1763632800000) == datetime(2025, 11, 20, 10, 0, tzinfo=UTC)


def test_duplicate_ids_in_one_batch_are_refused():
    item = {"trace_id": "t1", "start_time": "2026-11-20T10:00:00Z"}
    assert "also the id of traces[0]" in errors_of([item, item])["traces[1].trace_id"]
    span = {"span_id": "a", "start_time": "2026-11-20T10:00:00Z"}
    assert "also the id of spans[0]" in errors_of([{"trace_id": "t2", "spans": [span, span]}])["traces[0].spans[1].span_id"]


def test_end_before_start_and_bad_enums_are_reported_together():
    errors = errors_of(
        [
            {
                "trace_id": "t1",
                "status": "FINE",
                "start_time": "2026-11-20T10:00:01Z",
                "end_time": "2026-11-20T10:00:00Z",
                "spans": [{"span_id": "a", "span_type": "WIZARD", "start_time": "2026-11-20T10:00:00Z"}],
            }
        ]
    )
    assert errors["traces[0].status"].startswith("'FINE' is not one of OK, ERROR")
    assert errors["traces[0].end_time"] == "is before start_time"
    assert errors["traces[0].spans[0].span_type"].startswith("'WIZARD' is not one of AGENT")


def test_too_many_traces_says_the_limit():
    assert errors_of([{"trace_id": f"t{i}"} for i in range(3)], max_traces=2) == {
        "traces": "has 3 traces; the limit per request is 2, split the batch"
    }


def test_ids_with_unsafe_characters_are_refused():
    errors = errors_of([{"trace_id": "a b/c", "start_time": "2026-11-20T10:00:00Z"}])
    assert "may only contain" in errors["traces[0].trace_id"]


def test_metadata_values_become_strings_and_nested_values_are_refused():
    trace = parse_trace_batch(
        [{"trace_id": "t1", "start_time": "2026-11-20T10:00:00Z", "metadata": {"n": 3, "flag": True}}], max_traces=5
    )[0]
    assert trace.metadata == {"n": "3", "flag": "true"}
    errors = errors_of([{"trace_id": "t1", "start_time": "2026-11-20T10:00:00Z", "metadata": {"x": {"y": 1}}}])
    assert errors == {"traces[0].metadata.x": "must be a string, number or boolean"}


def test_request_null_is_kept_apart_from_missing():
    sent_null, missing = parse_trace_batch(
        [
            {"trace_id": "a", "start_time": "2026-11-20T10:00:00Z", "request": None},
            {"trace_id": "b", "start_time": "2026-11-20T10:00:00Z"},
        ],
        max_traces=5,
    )
    assert sent_null.request is None
    assert missing.request is UNSET
