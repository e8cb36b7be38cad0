"""Logged data is text, never markup: HTML in a trace's request, response, metadata, tags, span names, inputs,
outputs and attributes, in a user id and in feedback comments shows as literal text on the Traces tab, the trace
page, the Sessions tab, the conversation page and in a "Try it" result — whether the page was loaded whole or
swapped in by htmx (which would also run a swapped-in <script>)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from judges import try_runs
from judges.models import TryRun
from tests.browser.conftest import post_traces
from traces.feedback import add_feedback
from traces.models import Session, Trace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
SVG = '<svg onload="window.__pwned=3"></svg>'
LINK = '<a href="javascript:window.__pwned=4">click me</a>'
BREAKOUT = '"><b onmouseover="window.__pwned=5">bold</b>'
HTMX = '<div hx-get="/logout/" hx-trigger="load">htmx</div>'
HOSTILE_SESSION = 'conv "><img src=x onerror="window.__pwned=6">'
# Elements any of the payloads would create if it were parsed as HTML.
INJECTED = "img[src=x], svg[onload], a[href^=javascript], b[onmouseover], [hx-trigger=load]"


def hostile_traces() -> list[dict]:
    now = timezone.now()
    at = lambda seconds: (now - timedelta(seconds=seconds)).isoformat()  # noqa: E731
    first = {
        "trace_id": "xss-1",
        "name": f"agent {BREAKOUT}",
        "session_id": "conv-xss",
        "user_id": f"mallory {IMG}",
        "request": {"messages": [{"role": "user", "content": f"{SCRIPT} where is my order? {IMG}"}]},
        "response": {"answer": f"{SVG} it shipped {LINK}", "html": HTMX},
        "metadata": {"environment": "production", "note": IMG, f"key {SCRIPT}": BREAKOUT},
        "tags": {"team": HTMX},
        "spans": [
            {
                "span_id": "root", "name": f"agent {SCRIPT}", "span_type": "AGENT", "start_time": at(120), "end_time": at(119),
                "status": "OK", "inputs": {"messages": [{"role": "user", "content": f"{SCRIPT} where is my order? {IMG}"}]},
                "outputs": {"answer": f"{SVG} it shipped {LINK}"},
            },
            {
                "span_id": "search", "parent_span_id": "root", "name": f"search {IMG}", "span_type": "RETRIEVER",
                "start_time": at(120), "end_time": at(119.5), "status": "ERROR", "status_message": f"failed: {SCRIPT}",
                "inputs": {"query": SCRIPT}, "outputs": [{"page_content": IMG}], "attributes": {"raw": f"{SVG} {HTMX}"},
            },
        ],
    }
    second = {
        "trace_id": "xss-2",
        "session_id": "conv-xss",
        "user_id": f"mallory {IMG}",
        "start_time": at(60),
        "request": f"and now? {SCRIPT}",
        "response": f"{IMG} here you go",
    }
    # A session id is free text, and it goes into URLs and htmx attributes too.
    third = {"trace_id": "xss-3", "session_id": HOSTILE_SESSION, "start_time": at(30), "request": "hi", "response": "hello"}
    return [first, second, third]


@pytest.fixture
def hostile(experiment, endpoint, token, live_server, user):
    from judges.actions import create_judge

    create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)
    post_traces(live_server, experiment, token, hostile_traces())
    trace = Trace.objects.get(trace_id="xss-1")
    add_feedback(user=user, name="thumbs", value=False, rationale=f"rude: {SCRIPT} {IMG}", trace=trace)
    add_feedback(user=user, name="thumbs", value=False, rationale=f"whole chat: {SCRIPT}", session=Session.objects.get(session_id="conv-xss"))
    return trace


def assert_inert(page: Page, *, shown: tuple[str, ...] = (SCRIPT,)) -> None:
    """Nothing ran, nothing was parsed into elements, and the payloads are on the page as text."""
    for text in shown:
        expect(page.get_by_text(text).first).to_be_visible()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("[...document.scripts].filter(script => script.text.includes('__pwned')).length") == 0
    expect(page.locator(INJECTED)).to_have_count(0)


def test_html_in_logged_data_is_shown_as_text_everywhere(logged_in, live_server, experiment, hostile):
    page = logged_in
    base = f"{live_server.url}/experiments/{experiment.pk}"

    # The Traces tab (a whole page).
    page.goto(f"{base}/traces")
    expect(page.locator("#trace-rows tr.clickable")).to_have_count(3)
    assert_inert(page, shown=(SCRIPT, BREAKOUT.strip('">'), HOSTILE_SESSION))

    # The trace page, swapped in by htmx, then loaded whole; every span opened.
    page.locator("#trace-rows tr.clickable", has_text="where is my order").locator("td.trace-name").click()
    page.wait_for_url(f"{base}/traces/xss-1")
    for load in ("htmx swap", "full load"):
        if load == "full load":
            page.reload()
        for summary in page.locator(".span-row > details > summary").all():
            summary.click()
        page.evaluate("document.querySelectorAll('details').forEach(details => { details.open = true; })")  # "Other fields" too
        # (JSON shows the payloads' quotes escaped, so look for their openings there.)
        assert_inert(page, shown=(SCRIPT, IMG, "<svg onload=", "<a href=", "<div hx-get=", f"failed: {SCRIPT}", f"rude: {SCRIPT} {IMG}", f"mallory {IMG}"))

    # The Sessions tab and the conversation page.
    page.get_by_role("link", name="Sessions", exact=True).click()
    page.wait_for_url(f"{base}/sessions")
    assert_inert(page, shown=(f"mallory {IMG}", HOSTILE_SESSION))
    page.get_by_role("link", name=HOSTILE_SESSION).click()
    page.wait_for_url(f"{base}/sessions/**")
    expect(page.locator(".session-head h2")).to_have_text(f"Conversation {HOSTILE_SESSION}")
    assert_inert(page, shown=(HOSTILE_SESSION,))
    page.reload()
    expect(page.locator(".turn")).to_have_count(1)
    assert_inert(page, shown=(HOSTILE_SESSION,))
    page.go_back()
    page.wait_for_url(f"{base}/sessions")
    page.get_by_role("link", name="conv-xss").click()
    page.wait_for_url(f"{base}/sessions/conv-xss")
    for load in ("htmx swap", "full load"):
        if load == "full load":
            page.reload()
        expect(page.locator(".turn")).to_have_count(2)
        expect(page.locator(".bubble-user .text").first).to_have_text(f"{SCRIPT} where is my order? {IMG}")
        assert_inert(page, shown=(SCRIPT, f"and now? {SCRIPT}", f"{IMG} here you go", f"whole chat: {SCRIPT}"))

    # Try it on that trace: the request preview in the result.
    page.goto(f"{base}/judges/new")
    page.fill("#id_name", "polite")
    page.fill("#id_instructions", "Is {{ outputs }} polite?")
    page.get_by_role("textbox", name="Trace id to try it on").fill("xss-1")
    page.get_by_role("button", name="Try it").click()
    # A worker makes the call (judges.try_runs); this process plays the worker while the page polls.
    expect(page.locator("#try-result")).not_to_be_empty()
    queued = TryRun.objects.get(status=TryRun.Status.QUEUED)
    assert try_runs.run(queued.pk)
    result = page.locator("#try-result .try-verdict")
    expect(result.locator(".rationale")).to_contain_text("[stand-in model]")
    expect(result).to_contain_text(f"Request: {SCRIPT} where is my order?")
    assert_inert(page, shown=(f"{SCRIPT} where is my order?",))

    assert page.js_errors == []
