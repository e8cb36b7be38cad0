"""Numbers in filters: every number the parser accepts can be compared in memory and in the database (no
OverflowError at the ends of the range), and a number out of range is a 400 that names the range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.hostile.conftest import ingest_named
from traces import filters
from traces.filter_memory import FilterRecord, matches
from traces.filter_sql import filter_traces
from traces.filters import MAX_TIMESTAMP_MS, FilterError, FilterLimits, parse, validate
from traces.models import Trace

pytestmark = pytest.mark.hostile

OPERATORS = ["=", "!=", "<", "<=", ">", ">="]


@pytest.mark.django_db
@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("value", [0, 1, MAX_TIMESTAMP_MS - 1, MAX_TIMESTAMP_MS])
def test_timestamps_at_the_ends_of_the_range_compare_the_same_everywhere(experiment, op, value):
    ingest_named(experiment, t1="checkout")
    trace = Trace.objects.get()
    text = f"trace.timestamp_ms {op} {value}"
    in_memory = matches(parse(text), FilterRecord(status=trace.status, name=trace.name, duration_ms=trace.duration_ms, started_at=trace.started_at))
    in_database = filter_traces(Trace.objects.all(), text).exists()
    assert in_database is in_memory


@pytest.mark.django_db
@pytest.mark.parametrize("op", OPERATORS)
def test_the_api_answers_timestamp_comparisons_at_the_end_of_time(api, experiment, op):
    ingest_named(experiment, t1="checkout")
    response = api.get(f"/api/v1/experiments/{experiment.pk}/traces", {"filter_string": f"trace.timestamp_ms {op} {MAX_TIMESTAMP_MS}"})
    assert response.status_code == 200
    expected = {"=": [], "!=": ["t1"], "<": ["t1"], "<=": ["t1"], ">": [], ">=": []}[op]
    assert [trace["trace_id"] for trace in response.json()["traces"]] == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "started_at",
    [datetime(2026, 11, 20, 12, 0, 0, 999_999, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)],
    ids=["today", "end-of-time"],
)
def test_the_last_microsecond_of_a_millisecond_is_in_that_millisecond_everywhere(experiment, started_at):
    # Through a float, 253402300799999.999 ms (the last microsecond of 9999) rounds up to a millisecond past the range.
    from traces.actions import ingest_traces
    from traces.records import TraceIn

    ingest_traces(experiment, [TraceIn(trace_id="t1", started_at=started_at, ended_at=started_at)])
    millisecond = (started_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    text = f"trace.timestamp_ms = {millisecond}"
    assert matches(parse(text), FilterRecord(status="OK", name="", duration_ms=0, started_at=started_at))
    assert filter_traces(Trace.objects.all(), text).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"trace.timestamp_ms > {MAX_TIMESTAMP_MS + 1}", "between 0 and 253402300799999"),
        ("trace.timestamp_ms >= -1", "between 0 and 253402300799999"),
        ("trace.execution_time_ms > 1e16", "at most 1e+15 either way"),
        ("trace.execution_time_ms < -1e300", "at most 1e+15 either way"),
        ("trace.execution_time_ms > 1e999", "at most 1e+15 either way"),
    ],
)
def test_the_api_refuses_numbers_out_of_range_naming_the_range(api, experiment, text, message):
    response = api.get(f"/api/v1/experiments/{experiment.pk}/traces", {"filter_string": text})
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_number_with_thousands_of_digits_is_out_of_range_not_a_crash(monkeypatch):
    # Python refuses to read an integer of more than 4,300 digits (ValueError); such a filter needs raised limits.
    monkeypatch.setattr(filters, "LIMITS", FilterLimits(max_length=100_000))
    for text in ("trace.execution_time_ms > " + "9" * 5000, "trace.execution_time_ms > " + "9" * 5000 + ".5", "trace.timestamp_ms = " + "1" * 5000):
        with pytest.raises(FilterError, match="out of range"):
            parse(text)
    assert validate("trace.execution_time_ms > 0." + "0" * 5000 + "1") is None  # tiny, not huge: it is 0
