"""The Content-Security-Policy in the browser: every page carries it, a page that breaks it fails its test (the
`page` fixture collects violations), and the pages that run the most script — the Overview's plotly charts, the
Traces tab's clickable rows and polling, htmx swaps — work under it with none reported."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from judges.actions import create_judge
from tests.browser.conftest import log_in
from tests.conftest import ingest, make_trace, record_verdict

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pages_carry_the_policy_and_a_violation_is_caught(logged_in, live_server, experiment):
    page = logged_in
    response = page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    assert "unsafe-inline" not in re.search(r"script-src[^;]*", policy).group(0)

    # What the fixture guards against: an inline script is refused, and reported.
    with page.expect_console_message(lambda message: message.text.startswith("CSP violation")):
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.head.appendChild(s); }")
    assert page.evaluate("() => window.injected") is None
    assert any("script-src" in violation for violation in page.csp_violations)
    page.csp_violations.clear()  # seen; the rest of this test must add none


def test_charts_rows_and_swaps_work_under_the_policy(logged_in, live_server, experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=False)
    for n, trace in enumerate(ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(6)])):
        record_verdict(judge, trace, n % 3 != 0)
    page = logged_in
    base = f"{live_server.url}/experiments/{experiment.pk}"

    page.goto(f"{base}/overview")
    expect(page.locator(".chart .js-plotly-plot svg.main-svg").first).to_be_visible(timeout=20_000)

    page.get_by_role("link", name="Traces", exact=True).click()  # an htmx swap of the tab
    page.wait_for_url(f"{base}/traces")
    page.locator("#trace-rows tr.clickable").first.locator("td.trace-name").click()  # the row, not its link
    page.wait_for_url(re.compile(rf"{base}/traces/t\d"))

    page.go_back()
    page.go_back()  # back to the Overview, restored from htmx's history: the charts are drawn again
    page.wait_for_url(f"{base}/overview")
    expect(page.locator(".chart .js-plotly-plot svg.main-svg").first).to_be_visible(timeout=20_000)
    assert page.js_errors == []
    assert page.csp_violations == []


def test_the_api_docs_and_the_admin_work_under_the_policy(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    log_in(page, live_server, "admin", "admin-pass-123")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)  # the script ran and read the schema
    page.goto(f"{live_server.url}/admin/traces/trace/")
    expect(page.locator("#changelist")).to_be_visible()
    page.goto(f"{live_server.url}/admin/traces/experiment/add/")
    expect(page.locator("input[name=name]")).to_be_visible()
    assert page.js_errors == []
    assert page.csp_violations == []
