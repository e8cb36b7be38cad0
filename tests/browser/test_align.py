"""The align page in the browser: from the Agreement page, the estimate, start, the polled progress, the results
with the actual cost, and "use this candidate" — under the Content-Security-Policy (the fixture fails on any
violation)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from judges import align_work
from judges.models import AlignRun
from judges.shadow import current_shadow
from tests.browser.conftest import screenshot
from tests.judges.test_align import label_politeness

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_align_from_the_agreement_page_to_a_shadow_version(logged_in, live_server, experiment, endpoint, user):
    judge = label_politeness(experiment, endpoint, user)
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/judges/{judge.pk}/agreement")
    page.click("text=Align…")
    expect(page.locator("#align-plan")).to_contain_text("Estimated cost")
    expect(page.locator("#align-plan .align-estimate")).to_contain_text("$")

    page.fill("input[name=min_labels]", "500")  # more than there are: the page says how many more
    page.click("text=Preview")
    expect(page.locator(".align-too-few")).to_contain_text("Label 400 more")
    expect(page.locator("#align-start")).to_have_count(0)
    page.fill("input[name=min_labels]", "50")
    page.click("text=Preview")

    page.click("#align-start")
    expect(page.locator(".align-status")).to_contain_text("queued")
    expect(page.locator("#align-run progress")).to_be_visible()
    align_work.run(str(AlignRun.objects.get().pk))  # the worker; the page picks the result up by polling
    expect(page.locator(".align-results")).to_be_visible(timeout=10_000)
    expect(page.locator("#align-run progress")).to_have_count(0)
    expect(page.locator(".align-cost")).to_contain_text("$")
    expect(page.locator("#candidate-rewritten .align-figure")).to_contain_text("(")  # κ with its interval
    screenshot(page, "align")

    page.locator("#candidate-rewritten button").click()
    expect(page.locator("body")).to_contain_text("is now the shadow version")
    expect(page.locator("#candidate-rewritten")).to_contain_text("shadow: v2")
    assert current_shadow(judge).version == 2
    assert page.js_errors == []
