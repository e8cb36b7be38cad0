"""The Traces table at 1280 px with many judges: the header and the first column stay in view, and the judge
columns scroll sideways inside the table instead of being cut off by the page."""

from __future__ import annotations

import pytest

from judges.actions import create_judge
from tests.browser.conftest import screenshot
from tests.conftest import make_trace
from traces.actions import ingest_traces
from traces.payload import parse_trace_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JUDGES = 12


def test_many_judge_columns_scroll_inside_the_table_at_1280px(browser, live_server, user, experiment, endpoint):
    from tests.browser.conftest import log_in

    for number in range(JUDGES):
        create_judge(experiment, name=f"judge_with_a_long_name_{number:02}", instructions="Is {{ outputs }} ok?", endpoint=endpoint)
    ingest_traces(experiment, parse_trace_batch([make_trace(f"t{n}", minutes=n) for n in range(5)], max_traces=10))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = log_in(context.new_page(), live_server, "pat", "pat-password-123")
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/traces")
    page.wait_for_selector("#trace-rows tr.clickable")
    layout = page.evaluate(
        """() => {
            const box = document.querySelector('.table-scroll');
            const rect = box.getBoundingClientRect();
            return {pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth,
                    boxRight: rect.right, scrollWidth: box.scrollWidth, clientWidth: box.clientWidth};
        }"""
    )
    assert layout["pageWidth"] <= layout["viewport"], layout  # the page itself doesn't scroll sideways
    assert layout["boxRight"] <= layout["viewport"], layout
    assert layout["scrollWidth"] > layout["clientWidth"], layout  # the judge columns are there, scrolled to
    first_cell = page.locator("#trace-rows tr.clickable").first.locator("td").first
    last_header = page.locator(".traces-table thead th").last
    left_before = first_cell.bounding_box()["x"]
    page.eval_on_selector(".table-scroll", "box => box.scrollLeft = box.scrollWidth")
    assert last_header.bounding_box()["x"] + last_header.bounding_box()["width"] <= layout["viewport"] + 1  # reachable
    assert abs(first_cell.bounding_box()["x"] - left_before) <= 1.5  # the first column stays where it was
    screenshot(page, "traces-1280")
    context.close()
