"""The labelling queue in the browser, with the keyboard only: answer (y/n), see the judge's verdict only after
answering, write a comment (c … Esc), move on (→), go back (←) and skip (s)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from judges.actions import create_judge
from tests.browser.conftest import screenshot
from tests.conftest import ingest, make_trace, record_verdict
from traces.models import Assessment, AssessmentSource

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_labelling_with_the_keyboard_only(logged_in, live_server, experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)
    traces = ingest(experiment, *(make_trace(f"t{n}", minutes=n) for n in range(3)))
    for index, trace in enumerate(traces):
        record_verdict(judge, trace, index != 1, rationale=f"judge's reason {index}")

    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/judges/{judge.pk}/label")
    question = page.locator(".labelling-question")
    expect(question).to_contain_text("a helpful answer to")
    expect(page.locator("#label-reveal")).to_have_count(0)  # no verdict before answering
    first = page.locator(".labelling-question pre").first.inner_text()

    page.keyboard.press("y")
    expect(page.locator("#label-reveal")).to_contain_text("You said Yes")
    expect(page.locator(".labelling-verdict")).to_be_visible()
    expect(page.locator(".labelling-progress")).to_contain_text("1 labelled")
    screenshot(page, "labelling")

    page.keyboard.press("ArrowRight")
    expect(page.locator("#label-reveal")).to_have_count(0)
    second = page.locator(".labelling-question pre").first.inner_text()
    assert second != first
    page.keyboard.press("c")
    page.keyboard.type("too vague")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    expect(page.locator("#label-reveal")).to_contain_text("You said No")

    page.keyboard.press("ArrowLeft")
    expect(page.locator("#label-reveal")).to_contain_text("You said Yes")
    assert page.locator(".labelling-question pre").first.inner_text() == first

    page.keyboard.press("ArrowRight")  # back to the second…
    expect(page.locator("#label-reveal")).to_contain_text("You said No")
    page.keyboard.press("ArrowRight")  # …then the third, new
    expect(page.locator("#label-reveal")).to_have_count(0)
    page.keyboard.press("s")
    expect(page.locator(".labelling-done")).to_be_visible()

    labels = Assessment.objects.filter(source_type=AssessmentSource.HUMAN).order_by("created_at")
    assert [(label.value, label.rationale) for label in labels] == [(True, ""), (False, "too vague")]
    assert page.js_errors == []
