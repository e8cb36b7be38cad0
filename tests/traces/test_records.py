from __future__ import annotations

from datetime import UTC, datetime, timedelta

from traces.models import Span, Trace
from traces.records import STORED_SPAN_FIELDS, STORED_TRACE_FIELDS, SpanIn, TraceIn, build_trace_fields, preview

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def span(span_id: str, parent: str = "", *, start: int = 0, end: int | None = 100, **fields) -> SpanIn:
    return SpanIn(
        span_id=span_id,
        parent_span_id=parent,
        started_at=T0 + timedelta(milliseconds=start),
        ended_at=None if end is None else T0 + timedelta(milliseconds=end),
        **fields,
    )


def test_trace_fields_come_from_the_root_span():
    spans = [
        span("child", "root", start=10, end=50, name="llm"),
        span("root", start=0, end=400, name="agent", status="OK", inputs={"question": "hi"}, outputs="hello"),
    ]
    fields = build_trace_fields(TraceIn(trace_id="t"), spans)
    assert (fields.name, fields.status, fields.duration_ms) == ("agent", "OK", 400)
    assert fields.request == {"question": "hi"}
    assert fields.response_preview == "hello"
    assert fields.span_count == 2


def test_trace_without_its_root_span_is_in_progress():
    fields = build_trace_fields(TraceIn(trace_id="t"), [span("child", "root", start=10, end=50)])
    assert fields.status == "IN_PROGRESS"
    assert fields.started_at == T0 + timedelta(milliseconds=10)
    assert fields.ended_at is None


def test_error_root_makes_an_error_trace():
    fields = build_trace_fields(TraceIn(trace_id="t"), [span("root", status="ERROR")])
    assert fields.status == "ERROR"


def test_tokens_are_summed_over_the_deepest_reporting_spans_only():
    usage = lambda i, o: {"gen_ai.usage.input_tokens": i, "gen_ai.usage.output_tokens": o}  # noqa: E731
    spans = [
        span("root", attributes=usage(300, 30)),  # repeats the children's totals
        span("a", "root", attributes=usage(100, 10)),
        span("b", "root", attributes={"mlflow.chat.tokenUsage": '{"input_tokens": 200, "output_tokens": 20}'}),
    ]
    fields = build_trace_fields(TraceIn(trace_id="t"), spans)
    assert (fields.input_tokens, fields.output_tokens, fields.total_tokens) == (300, 30, 330)


def test_session_user_and_metadata_from_conventions():
    spans = [
        span(
            "root",
            attributes={
                "session.id": "conv-1",
                "mlflow.trace.user": "u-9",
                "metadata": '{"environment": "staging"}',
                "evalapp.tag.team": "search",
            },
        )
    ]
    fields = build_trace_fields(TraceIn(trace_id="t", metadata={"region": "eu"}), spans)
    assert (fields.session_id, fields.user_id) == ("conv-1", "u-9")
    assert fields.metadata == {"environment": "staging", "region": "eu"}
    assert fields.tags == {"team": "search"}


def test_explicit_fields_win_over_spans():
    fields = build_trace_fields(
        TraceIn(trace_id="t", name="checkout", status="ERROR", session_id="s", request={"x": 1}),
        [span("root", name="agent", attributes={"session.id": "other"}, inputs={"y": 2})],
    )
    assert (fields.name, fields.status, fields.session_id, fields.request) == ("checkout", "ERROR", "s", {"x": 1})


def test_preview_picks_the_last_user_message():
    request = {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "where is\nmy order?"}]}
    assert preview(request, role="user") == "where is my order?"
    assert preview({"choices": [{"message": {"role": "assistant", "content": "On its way."}}]}, role="assistant") == "On its way."
    assert len(preview("x" * 1000, role="user")) == 300


def test_the_stored_field_lists_are_what_the_span_and_trace_tables_hold():
    def columns(model, leave_out: set[str]) -> set[str]:
        return {field.name for field in model._meta.concrete_fields} - leave_out

    assert set(STORED_SPAN_FIELDS) == columns(Span, {"id", "trace"})
    # An evaluation run marks its traces and their expectations after ingesting them (evaluations.actions); a re-sent
    # trace keeps both, since ingest never writes them.
    run_fields = {"evaluation_run", "expectations"}
    assert set(STORED_TRACE_FIELDS) == columns(Trace, {"id", "trace_id", "experiment", "created_at", "updated_at", *run_fields})
