"""The Traces tab in the browser: verdicts filled in by polling that stops when nothing is pending, the filter
language in the search box (errors inline, the query in the URL, reload and back), opening a trace by its row,
and thumbs feedback on the trace page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from judges.actions import create_judge
from judges.models import Evaluation, EvaluationStatus
from tests.conftest import judge_pending, make_trace
from traces.actions import ingest_traces
from traces.models import Assessment, Trace
from traces.payload import parse_trace_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def traces(experiment, endpoint):
    """Four traces, one of them from staging, all pending for an active judge (nothing judges them until a test does)."""
    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    batch = [make_trace(f"t{n}", minutes=n) for n in range(3)] + [make_trace("s1", minutes=5, metadata={"environment": "staging"})]
    ingest_traces(experiment, parse_trace_batch(batch, max_traces=100))
    assert Evaluation.objects.filter(status=EvaluationStatus.PENDING).count() == 4
    return batch


def test_verdicts_fill_in_by_polling_and_the_polling_stops_when_nothing_is_pending(logged_in, live_server, experiment, traces):
    page = logged_in
    poll_requests: list[str] = []
    page.on("request", lambda request: poll_requests.append(request.url) if "/trace-verdicts" in request.url else None)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    rows = page.locator("#trace-rows tr.clickable")
    expect(rows).to_have_count(4)
    expect(page.locator("#trace-rows .chip-pending")).to_have_count(4)
    expect(page.locator("tr.poller")).to_have_count(1)
    with page.expect_request(lambda request: "/trace-verdicts" in request.url):
        pass  # the poller asks every 2 s while verdicts are pending

    judge_pending()
    expect(page.locator("#trace-rows .chip-pass, #trace-rows .chip-fail")).to_have_count(4, timeout=10_000)
    expect(page.locator("tr.poller")).to_have_count(0)  # the answer with nothing pending removed the poller
    asked = len(poll_requests)
    page.wait_for_timeout(2_500)  # more than one polling interval
    assert len(poll_requests) == asked, "no more polling once every verdict is in"
    assert page.js_errors == []


def test_search_shows_filter_errors_inline_keeps_the_query_in_the_url_and_survives_reload_and_back(logged_in, live_server, experiment, traces):
    page = logged_in
    judge_pending()
    base = f"{live_server.url}/experiments/{experiment.pk}/traces"
    page.goto(base)
    rows = page.locator("#trace-rows tr.clickable")
    search = page.get_by_role("textbox", name="Filter traces")
    expect(rows).to_have_count(4)

    # A good filter narrows the rows, and the URL says so.
    search.fill("metadata.environment = 'staging'")
    search.press("Enter")
    page.wait_for_url(re.compile(r"\?q=metadata\.environment"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("question s1")

    # Reload: the same view from the URL alone.
    page.reload()
    expect(search).to_have_value("metadata.environment = 'staging'")
    expect(rows).to_have_count(1)

    # Back: the unfiltered view again.
    page.go_back()
    page.wait_for_url(base)
    expect(rows).to_have_count(4)
    expect(search).to_have_value("")

    # A typo: the error shows under the box, which keeps the text to fix.
    search.fill("trace.sttus = 'OK'")
    search.press("Enter")
    error = page.locator("#trace-filter-error")
    expect(error).to_contain_text("did you mean 'trace.status'")
    expect(search).to_have_value("trace.sttus = 'OK'")
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(rows).to_have_count(0)

    # Fixing it shows the rows again.
    search.fill("trace.status = 'OK' AND metadata.environment = 'production'")
    search.press("Enter")
    expect(error).to_have_count(0)
    expect(rows).to_have_count(3)
    assert page.js_errors == []


def test_a_row_click_opens_the_trace_and_thumbs_up_is_recorded(logged_in, live_server, experiment, traces):
    page = logged_in
    judge_pending()
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    page.locator("#trace-rows tr.clickable", has_text="question t1").locator("td.trace-name").click()  # the row, not its link
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/traces/t1")
    expect(page.locator(".span-tree .span-row")).to_have_count(3)
    expect(page.locator(".tabs a.active")).to_have_text("Traces")
    expect(page.locator("#trace-judges .judge-state", has_text="helpful").locator(".rationale")).to_contain_text("[stand-in model]")

    page.get_by_role("button", name="Good", exact=True).click()
    expect(page.locator("#trace-feedback .notice")).to_have_text("Saved your feedback: thumbs = yes.")
    # The judges section refreshes itself and lists the feedback.
    expect(page.locator("#trace-judges")).to_contain_text("person pat")
    feedback = Assessment.objects.get(trace=Trace.objects.get(trace_id="t1"), name="thumbs")
    assert (feedback.value, feedback.source_type, feedback.source_id) == (True, "HUMAN", "pat")
    assert page.js_errors == []
