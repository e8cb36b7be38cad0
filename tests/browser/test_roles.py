"""Viewers in the browser: they see judges, traces and endpoints without the controls that change them, and the
server refuses those changes (403) even when a viewer posts the forms by hand with a valid CSRF token."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from judges.actions import create_judge
from judges.models import Judge, ModelEndpoint
from tests.browser.conftest import log_in
from tests.conftest import make_trace
from traces.actions import ingest_traces
from traces.models import Assessment
from traces.payload import parse_trace_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def as_viewer(page: Page, live_server, viewer) -> Page:
    return log_in(page, live_server, "vic", "vic-password-123")


@pytest.fixture
def judged(experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=True)
    ingest_traces(experiment, parse_trace_batch([make_trace("t1")], max_traces=1))
    return judge


def post_as_page(page: Page, url: str, form: dict[str, str]) -> int:
    """POST like a hand-made form would, with the session's CSRF cookie as the token; returns the status."""
    token = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    response = page.request.post(url, form=form, headers={"X-CSRFToken": token}, max_redirects=0)
    return response.status


def test_a_viewer_sees_no_controls_that_change_judges_or_endpoints(as_viewer, live_server, experiment, judged, endpoint):
    page = as_viewer
    base = f"{live_server.url}/experiments/{experiment.pk}"
    page.goto(f"{base}/judges")
    expect(page.locator(".topbar .role")).to_have_text("viewer")
    card = page.locator(f"#judge-card-{judged.pk}")
    expect(card).to_contain_text("helpful")
    expect(page.get_by_role("link", name="+ New LLM judge")).to_have_count(0)
    expect(card.get_by_role("button")).to_have_count(0)  # no "Switch off"

    # The judge's settings can be read, not changed.
    card.get_by_role("link", name="helpful").click()
    page.wait_for_url(f"{base}/judges/{judged.pk}")
    expect(page.get_by_text("Your account is a viewer")).to_be_visible()
    expect(page.locator("#id_instructions")).to_be_disabled()
    form = page.locator("#judge-form")
    expect(form.get_by_role("button", name=re.compile("Save|Try it"))).to_have_count(0)
    expect(form.get_by_role("link", name="Delete…")).to_have_count(0)
    for button in form.get_by_role("button").all():  # what is left: the variable-insert buttons, disabled
        expect(button).to_be_disabled()

    # The trace page: feedback yes, "Judge again" no.
    page.goto(f"{base}/traces/t1")
    expect(page.get_by_role("button", name="Good", exact=True)).to_be_visible()
    expect(page.locator("#judge-again")).to_have_count(0)

    page.goto(f"{live_server.url}/settings/endpoints")
    expect(page.locator(f"#endpoint-{endpoint.pk}")).to_contain_text("Stand-in (test)")
    expect(page.get_by_role("link", name="+ Add endpoint")).to_have_count(0)
    expect(page.get_by_role("button", name="Test connection")).to_have_count(0)

    # Asking for the editors' pages directly is refused.
    assert page.goto(f"{base}/judges/new").status == 403
    assert page.goto(f"{live_server.url}/settings/endpoints/new").status == 403
    assert page.js_errors == []


def test_a_viewer_posting_the_forms_by_hand_gets_403_and_nothing_changes(as_viewer, live_server, experiment, judged, endpoint):
    page = as_viewer
    base = f"{live_server.url}/experiments/{experiment.pk}"
    page.goto(f"{base}/traces/t1")

    # The same kind of request works where viewers may act (their own feedback), so the 403s below are about roles.
    assert post_as_page(page, f"{base}/traces/t1/feedback", {"thumb": "up"}) == 302
    assert Assessment.objects.get(name="thumbs").source_id == "vic"

    assert post_as_page(page, f"{base}/judges/{judged.pk}/toggle", {"active": "off"}) == 403
    assert post_as_page(page, f"{base}/judges/{judged.pk}", {"scope": "trace", "instructions": "Is {{ outputs }} short?", "endpoint": str(endpoint.pk)}) == 403
    assert post_as_page(page, f"{base}/judges/{judged.pk}/delete", {}) == 403
    new_judge = {"scope": "trace", "name": "sneaky", "instructions": "Is {{ outputs }} short?", "output_type": "boolean", "endpoint": str(endpoint.pk)}
    assert post_as_page(page, f"{base}/judges/new", new_judge) == 403
    assert post_as_page(page, f"{base}/judges/new/try", new_judge) == 403
    assert post_as_page(page, f"{base}/traces/t1/judge-again", {"judge": "all"}) == 403
    assert post_as_page(page, f"{live_server.url}/settings/endpoints/{endpoint.pk}", {"name": "renamed", "model": "openai/x"}) == 403
    assert post_as_page(page, f"{live_server.url}/settings/endpoints/new", {"name": "mine", "model": "openai/x"}) == 403

    judge = Judge.objects.get(pk=judged.pk)
    assert (judge.active, judge.version, judge.instructions) == (True, 1, judged.instructions)
    assert list(Judge.objects.values_list("name", flat=True)) == ["helpful"]
    assert list(ModelEndpoint.objects.values_list("name", flat=True)) == ["Stand-in (test)"]
    assert page.js_errors == []
