"""Exports: the traces a filter selects with each trace judge's latest verdict, as CSV or JSONL, streamed."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import timedelta

import pytest
from django.urls import reverse

from judges.actions import create_judge
from judges.llm import CallResult
from judges.results import Outcome, record_result
from tests.conftest import BASE_TIME, make_trace
from traces.actions import ingest_traces
from traces.models import Trace
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(experiment, endpoint):
    ingest_traces(experiment, parse_trace_batch([make_trace("t1"), make_trace("t2", minutes=1), make_trace("staging", minutes=2, metadata={"environment": "staging"})], max_traces=10))
    helpful = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", endpoint=endpoint)
    tone = create_judge(experiment, name="tone", instructions="Tone of {{ outputs }}?", output_type="categorical", categories=["calm", "rude"], endpoint=endpoint)
    t1, t2 = Trace.objects.get(trace_id="t1"), Trace.objects.get(trace_id="t2")
    record_result(helpful, Outcome(CallResult(value=False, rationale="first try")), trace=t1)
    record_result(helpful, Outcome(CallResult(value=True, rationale='=HYPERLINK("http://evil")')), trace=t1)  # supersedes
    record_result(tone, Outcome(CallResult(value="calm", rationale="polite")), trace=t1)
    record_result(helpful, Outcome(CallResult(error_code="invalid_answer", error_message="no result")), trace=t2)
    return helpful


def test_the_tab_exports_what_its_filters_select_with_the_latest_verdicts(client, user, experiment, judged):
    client.force_login(user)
    response = client.get(reverse("traces-export", args=[experiment.pk]), {"format": "csv", "q": "metadata.environment = 'production'"})
    assert response.status_code == 200 and response.streaming and "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["trace_id"] for row in table] == ["t2", "t1"]  # newest first; staging filtered out
    t2, t1 = table
    assert (t1["helpful.value"], t1["helpful.version"], t1["tone.value"]) == ("true", "1", "calm")  # the latest, not the superseded
    assert t1["helpful.rationale"].startswith("'=HYPERLINK")  # a formula is defused for spreadsheets
    assert t2["helpful.value"] == "" and t2["helpful.error"] == "invalid_answer: no result"


def test_the_api_streams_jsonl_and_refuses_bad_input(api, experiment, judged):
    url = f"/api/v1/experiments/{experiment.pk}/traces/export"
    response = api.get(url, {"format": "jsonl", "filter_string": "trace.name = 'agent'"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["trace_id"] for line in lines] == ["staging", "t2", "t1"]
    assert lines[2]["judges"]["helpful"] == {"value": True, "rationale": '=HYPERLINK("http://evil")', "version": 1, "error": None}
    assert api.get(url, {"format": "xlsx"}).json()["errors"][0]["field"] == "format"
    assert api.get(url, {"filter_string": "trace.sttus = 'OK'"}).status_code == 400


def test_a_large_export_streams_in_bounded_memory(experiment):
    """100,000 traces: the export holds one chunk at a time, not the whole result."""
    Trace.objects.bulk_create(
        [Trace(trace_id=f"bulk-{n:06}", experiment=experiment, name="agent", started_at=BASE_TIME + timedelta(seconds=n),
               request_preview="Where is my order? " * 3, response_preview="It ships tomorrow. " * 3) for n in range(100_000)],
        batch_size=5000,
    )
    from evalapp import exports

    tracemalloc.start()
    written = 0
    for piece in exports.stream(Trace.objects.filter(experiment=experiment), ["helpful"], "csv"):
        written += len(piece)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert written > 15_000_000  # ~16 MB of CSV went through
    assert peak < 8_000_000, peak  # while never more than a few MB were held
