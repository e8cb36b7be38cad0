"""The browser set-up itself: log in, see the experiments, switch tabs with htmx and come back with the back button."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_open_an_experiment_switch_tabs_and_go_back(logged_in, live_server, experiment):
    page = logged_in
    page.goto(f"{live_server.url}/")  # the experiment was made after the log-in page loaded
    page.get_by_role("link", name="checkout-agent").click()
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/traces")
    page.get_by_role("link", name="Judges", exact=True).click()
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/judges")
    assert page.locator(".tabs a.active").inner_text() == "Judges"
    page.go_back()
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/traces")
    assert page.locator(".tabs a.active").inner_text() == "Traces"
    page.reload()
    assert page.locator(".tabs a.active").inner_text() == "Traces"
    assert page.js_errors == []


def test_pages_need_a_login(page, live_server, db):
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
