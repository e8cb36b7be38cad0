"""Datasets in the browser: from the Traces tab, every trace matching the filter is counted, confirmed and added to
a dataset; ticked traces go to a new one; on the dataset's page a record's expectations are edited in place, bad
JSON refused with its reason."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from datasets.actions import create_dataset
from datasets.models import Dataset, DatasetRecord
from tests.conftest import ingest, make_trace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def traces(experiment):
    ingest(
        experiment,
        *[make_trace(f"p{n}", minutes=n) for n in range(3)],
        make_trace("s1", minutes=5, metadata={"environment": "staging"}),
    )


def test_add_the_traces_matching_the_filter_to_a_dataset(logged_in, live_server, experiment, traces, user):
    create_dataset(experiment, "refunds", user=user)
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    rows = page.locator("#trace-rows tr.clickable")
    expect(rows).to_have_count(4)

    search = page.get_by_role("textbox", name="Filter traces")
    search.fill("metadata.environment = 'production'")
    search.press("Enter")
    page.wait_for_url(re.compile(r"\?q=metadata\.environment"))
    expect(rows).to_have_count(3)

    panel = page.locator("#add-to-dataset")
    expect(panel.get_by_label("Name of the new dataset")).to_be_hidden()  # an existing dataset is chosen
    panel.get_by_role("button", name="Add all traces matching the filter…").click()
    confirm = page.locator("#add-confirm")
    expect(confirm).to_contain_text("3 traces matching the filter metadata.environment = 'production' will be added to refunds")
    assert not DatasetRecord.objects.exists()  # nothing before confirming

    confirm.get_by_role("button", name="Add 3 traces").click()
    expect(page.locator("#add-result")).to_contain_text("Added 3 traces to refunds: 3 new records")
    assert sorted(DatasetRecord.objects.values_list("source_trace_id", flat=True)) == ["p0", "p1", "p2"]

    # The dataset's page lists them; a record's expectations are edited in place.
    page.locator("#add-result").get_by_role("link", name="Open the dataset").click()
    records = page.locator("#record-rows tr[id^=record-]")
    expect(records).to_have_count(3)
    first = records.first
    first.get_by_role("link", name="Edit expectations").click()
    box = page.locator("textarea[name=expectations]")
    box.fill('{"expected_response": "It ships tomorrow.",')
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".record-editing .errorlist")).to_contain_text("Not valid JSON")
    assert DatasetRecord.objects.filter(expectations={}).count() == 3
    box.fill('{"expected_response": "It ships tomorrow."}')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr.record-saved")).to_contain_text("It ships tomorrow.")
    assert DatasetRecord.objects.filter(expectations={"expected_response": "It ships tomorrow."}).count() == 1
    assert page.js_errors == []


def test_ticked_traces_go_to_a_new_dataset(logged_in, live_server, experiment, traces):
    page = logged_in
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    panel = page.locator("#add-to-dataset")
    add_selected = panel.get_by_role("button", name=re.compile(r"Add selected traces"))
    expect(add_selected).to_be_disabled()
    page.get_by_label("Select trace p0").check()
    page.get_by_label("Select trace s1").check()
    expect(add_selected).to_have_text("Add selected traces (2)")
    expect(add_selected).to_be_enabled()
    assert page.url.endswith("/traces")  # ticking a box does not open the trace

    panel.get_by_label("Name of the new dataset").fill("picked by hand")
    add_selected.click()
    expect(page.locator("#add-result")).to_contain_text("Added 2 traces to picked by hand")
    dataset = Dataset.objects.get(name="picked by hand")
    assert sorted(dataset.records.values_list("source_trace_id", flat=True)) == ["p0", "s1"]

    page.get_by_label("Select every trace on this page").check()
    expect(add_selected).to_have_text("Add selected traces (4)")
    assert page.js_errors == []
