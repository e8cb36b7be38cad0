"""A shadow version in the browser: "Save as shadow" on the judge's form, the card's shadow line, the diff page,
then Promote — under the Content-Security-Policy (the `page` fixture fails the test on any violation)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from judges import selection, tasks
from judges.actions import create_judge
from judges.models import JudgeVersion, VersionRole
from tests.browser.conftest import screenshot
from tests.conftest import ingest, make_trace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TONE = "Is the tone of {{ outputs }} polite, given {{ inputs }}?"


def test_start_a_shadow_from_the_form_compare_and_promote_it(logged_in, live_server, experiment, endpoint, standin):
    judge = create_judge(experiment, name="relevance", instructions="Is {{ outputs }} relevant to {{ inputs }}?", endpoint=endpoint, active=True)
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/judges/{judge.pk}")
    page.fill("#id_instructions", TONE)
    page.click("#save-as-shadow")
    card = page.locator(f"#judge-card-{judge.pk}")
    expect(card.locator(".judge-shadow")).to_contain_text("shadow v2: 0 judged")
    expect(page.get_by_text("Started shadow v2 of relevance")).to_be_visible()
    assert JudgeVersion.all_objects.get(role=VersionRole.SHADOW).config["instructions"] == TONE

    traces = ingest(experiment, *(make_trace(f"t{n}", minutes=n) for n in range(3)))
    tasks.judge_evaluations(selection.select_traces(experiment.pk, [trace.pk for trace in traces]))
    page.reload()
    expect(card.locator(".judge-shadow")).to_contain_text(re.compile(r"shadow v2: 3 judged, \$0\.\d+"))

    card.get_by_role("link", name="Diff").click()
    expect(page.locator("h2")).to_contain_text("live v1 vs shadow v2")
    expect(page.locator(".shadow-summary")).to_contain_text("3 traces judged by both")
    screenshot(page, "shadow-diff")
    page.click("#shadow-promote")
    expect(page.get_by_text("Promoted shadow v2 of relevance: it is live now, as version 3.")).to_be_visible()
    expect(card.locator(".chip").first).to_have_text("v3")
    expect(card.locator(".judge-shadow")).to_have_count(0)
    judge.refresh_from_db()
    assert judge.version == 3 and judge.instructions == TONE
    assert page.js_errors == []
