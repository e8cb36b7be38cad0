"""The Alerts tab's badge: loaded after the page, it counts what is firing and changes nothing else on the page
(it sits inside a tab link, whose htmx target and pushed URL it must not inherit)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from evalapp.models import AlertEvent, AlertKind, AlertRule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_badge_counts_open_alerts_and_leaves_the_page_alone(logged_in, live_server, experiment):
    rule = AlertRule.objects.create(experiment=experiment, kind=AlertKind.TRACE_ERROR_RATE_ABOVE, threshold=0.1)
    now = timezone.now()
    AlertEvent.objects.create(rule=rule, summary="Trace error rate 25.0% (n = 60)", window_start=now - timedelta(hours=1), window_end=now)
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    alerts_tab = page.get_by_role("navigation", name="Experiment sections").get_by_role("link", name="Alerts")
    expect(alerts_tab.locator(".badge")).to_have_text("1")
    assert page.url == f"{live_server.url}/experiments/{experiment.pk}/traces"
    expect(page.get_by_role("textbox", name="Filter traces")).to_be_visible()
    alerts_tab.click()
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/alerts")
    expect(page.locator("#alerts-active")).to_contain_text("Trace error rate 25.0% (n = 60)")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alerts-active")).to_contain_text("Acknowledged by pat")
