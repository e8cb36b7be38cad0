"""The Overview in the browser as its first load shapes it (issue 17, design note 46): the page fetches one stylesheet
and one script of ours (and plotly.js), the charts of the first screen are drawn and those below the fold only once
they are scrolled to, and a tab htmx swaps in afterwards is styled by the one stylesheet already there."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from judges.actions import create_judge
from tests.conftest import ingest, make_trace, record_verdict

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORT_HEIGHT = 700


@pytest.fixture
def judged(experiment, endpoint):
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint, active=False)
    for n, trace in enumerate(ingest(experiment, *[make_trace(f"t{n}", minutes=n) for n in range(6)])):
        record_verdict(judge, trace, n % 3 != 0)
    return experiment


def drawn(page, chart_id: str):
    return page.locator(f"#{chart_id} svg.main-svg")


def test_charts_below_the_fold_are_drawn_when_scrolled_into_view(logged_in, live_server, judged):
    page = logged_in
    page.set_viewport_size({"width": 1400, "height": VIEWPORT_HEIGHT})
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(urlparse(request.url).path))
    page.goto(f"{live_server.url}/experiments/{judged.pk}/overview?range=30d")  # the traces are 16 days old

    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    on_screen = page.evaluate("() => [...document.querySelectorAll('.chart')]"
                              ".filter(chart => chart.getBoundingClientRect().top < innerHeight).map(chart => chart.id)")
    assert "chart-judge-0" in on_screen and "chart-judge-cost" not in on_screen
    for chart_id in on_screen:
        expect(drawn(page, chart_id).first).to_be_attached()
    # The last chart, well below the fold (and the 200px drawn ahead of it): not drawn while nobody scrolls there.
    assert page.locator("#chart-judge-cost").bounding_box()["y"] > VIEWPORT_HEIGHT + 200
    expect(drawn(page, "chart-judge-cost")).to_have_count(0)

    page.locator("#chart-judge-cost").scroll_into_view_if_needed()
    expect(drawn(page, "chart-judge-cost").first).to_be_visible()
    expect(page.locator("#chart-tokens .barlayer .point").first).to_be_attached()  # its row's bars, not just axes

    ours = [path for path in fetched if path.startswith("/static/") and path.endswith((".css", ".js"))]
    assert sorted(ours) == ["/static/evalapp/bundle.css", "/static/evalapp/js/bundle.js", "/static/vendor/plotly/plotly-basic.min.js"]
    assert page.js_errors == []


def test_a_tab_swapped_in_after_the_overview_is_styled_and_a_new_range_draws_again(logged_in, live_server, judged):
    page = logged_in
    base = f"{live_server.url}/experiments/{judged.pk}"
    page.goto(f"{base}/overview")
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)

    page.get_by_role("link", name="Traces", exact=True).click()  # an htmx swap: no new stylesheet comes with it
    page.wait_for_url(f"{base}/traces")
    assert page.evaluate("() => getComputedStyle(document.querySelector('.quick-filters')).display") == "flex"  # traces.css

    page.get_by_role("link", name="Overview", exact=True).click()  # plotly is there already: the charts draw again
    page.wait_for_url(f"{base}/overview")
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    page.get_by_role("link", name="Last 30 days", exact=True).click()  # another range, swapped in by htmx
    page.wait_for_url(f"{base}/overview?range=30d")
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    expect(page.locator(".chart .js-plotly-plot")).not_to_have_count(0)
    assert page.js_errors == []
