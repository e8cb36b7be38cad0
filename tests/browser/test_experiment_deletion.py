"""Deleting an experiment in the browser: the editor types the name (a wrong one is refused on the page), the
experiment leaves the list at once, and the list's progress notice polls until the deletion is done, then goes."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_trace
from traces import deletion
from traces.actions import create_experiment, ingest_traces
from traces.models import Experiment, Trace
from traces.payload import parse_trace_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_editor_deletes_an_experiment_and_watches_it_go(logged_in: Page, live_server, experiment, monkeypatch):
    from judges import tasks

    monkeypatch.setattr(tasks, "enqueue_experiment_deletion", lambda experiment_id: None)  # deleted below, by hand
    ingest_traces(experiment, parse_trace_batch([make_trace(f"t{n}", minutes=n) for n in range(12)], max_traces=12))
    create_experiment("other-agent")
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    page.get_by_role("link", name="Delete…").click()
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/delete")
    expect(page.locator(".confirm-delete")).to_contain_text("12 traces")

    page.fill("#id_confirm_name", "checkout")
    page.get_by_role("button", name="Delete checkout-agent").click()
    expect(page.get_by_role("alert")).to_contain_text("exactly to confirm; nothing was deleted")
    assert Experiment.objects.filter(pk=experiment.pk).exists()

    page.fill("#id_confirm_name", "checkout-agent")
    page.get_by_role("button", name="Delete checkout-agent").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("link", name="checkout-agent")).to_have_count(0)
    expect(page.get_by_role("link", name="other-agent")).to_be_visible()
    notice = page.locator(".deleting-experiment")
    expect(notice).to_contain_text("Deleting checkout-agent: 0 of 12 traces deleted")

    deletion.delete_marked(experiment.pk, batch=5)  # what the worker's task does
    expect(notice).to_have_count(0, timeout=10_000)  # the next poll (every 3 s) finds it gone, and polling stops
    expect(page.locator("#experiments-deleting[hx-trigger]")).to_have_count(0)
    assert not Trace.objects.exists() and page.js_errors == []
