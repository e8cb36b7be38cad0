"""The Sessions tab in the browser: a conversation's idle countdown ticks, the session judge's verdict appears once
the conversation has gone quiet and been judged (and the polling stops), and the conversation page shows the turns."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from judges import sweep as sweeping
from judges.actions import create_judge
from tests.browser.conftest import post_traces
from tests.conftest import judge_pending, make_trace
from traces.models import Assessment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IDLE_SECONDS = 10  # the shortest idle time a judge may have


def conversations() -> list[dict]:
    first = make_trace("turn-1", session_id="conv-1", user_id="ana")
    first["spans"][0]["inputs"] = {"messages": [{"role": "user", "content": "Where is my order #10417?"}]}
    first["spans"][0]["outputs"] = {"content": "It shipped yesterday with UPS."}
    second = make_trace("turn-2", minutes=1, session_id="conv-1", user_id="ana")
    second["spans"][0]["inputs"] = {"messages": [{"role": "user", "content": "This is useless!!! I want to talk to a human."}]}
    second["spans"][0]["outputs"] = {"content": "I'm sorry. A colleague will email you within 24 hours."}
    other = make_trace("other-1", minutes=2, session_id="conv-2", user_id="ben")
    return [first, second, other]


def test_countdown_ticks_then_the_verdict_appears_and_the_conversation_shows_its_turns(logged_in, live_server, experiment, endpoint, token):
    create_judge(
        experiment, name="frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint, active=True, session_idle_seconds=IDLE_SECONDS
    )
    post_traces(live_server, experiment, token, conversations())
    logged_at = time.monotonic()

    page = logged_in
    base = f"{live_server.url}/experiments/{experiment.pk}"
    page.goto(f"{base}/sessions")
    row = page.locator("#sessions-results tbody tr", has_text="conv-1")
    state = row.locator(".session-state")
    expect(state).to_have_text(re.compile(r"^judged in 0:(0\d|10)$"))
    expect(row.locator(".chip-waiting")).to_have_text("waiting")
    # It counts down in the page, second by second, between the polls.
    before = int(state.inner_text().rsplit(":", 1)[1])
    expect(state).not_to_have_text(f"judged in 0:{before:02d}", timeout=2_500)
    assert int(state.inner_text().rsplit(":", 1)[1]) < before
    expect(page.locator("#sessions-results")).to_have_attribute("hx-trigger", "every 5s")

    # Quiet long enough: the sweep queues it and a worker judges it (both done here, in this process).
    expect(state).to_have_text(re.compile("judging soon|queued"), timeout=(IDLE_SECONDS + 5) * 1000)
    pending: list[int] = []
    while not pending:
        assert time.monotonic() - logged_at < IDLE_SECONDS + 10, "the sweep never found the idle conversation"
        pending = sweeping.sweep().pending_ids
    judge_pending(pending)
    verdict = Assessment.objects.get(session__session_id="conv-1", name="frustration")
    assert verdict.value == "unresolved"

    # The next poll shows it, and then the polling stops.
    expect(state).to_have_text("judged", timeout=8_000)
    expect(row.locator(".chip-category")).to_have_text("unresolved")
    expect(page.locator("#sessions-results")).not_to_have_attribute("hx-trigger", re.compile("."))

    # The conversation page: both turns in order, and the verdict with its rationale.
    row.locator("td").nth(2).click()  # the row, not its links
    page.wait_for_url(f"{base}/sessions/conv-1")
    expect(page.locator(".tabs a.active")).to_have_text("Sessions")
    turns = page.locator(".turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0).locator(".bubble-user .text")).to_have_text("Where is my order #10417?")
    expect(turns.nth(0).locator(".bubble-assistant .text")).to_have_text("It shipped yesterday with UPS.")
    expect(turns.nth(1).locator(".bubble-user .text")).to_have_text("This is useless!!! I want to talk to a human.")
    judged = page.locator("#session-judging .assessment", has_text="frustration")
    expect(judged.locator(".chip-category")).to_have_text("unresolved")
    expect(judged.locator(".rationale")).to_have_text(verdict.rationale)
    assert page.js_errors == []
