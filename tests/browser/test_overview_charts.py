"""The Overview in the browser as its first load shapes it (issue 17, design notes 46 and 50): the page fetches one
stylesheet and one script of ours (and plotly.js, after the page has loaded), every chart comes drawn as SVG by the
server and shows without plotly, plotly takes over the charts of the first screen in place and those below the fold
only once they are scrolled to, and a tab htmx swaps in afterwards is styled by the one stylesheet already there."""

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
    """plotly's chart (the server's SVG is svg.chart-svg)."""
    return page.locator(f"#{chart_id} svg.main-svg")


def test_the_charts_show_without_plotly_which_then_takes_them_over_in_place(logged_in, live_server, judged):
    page = logged_in
    page.set_viewport_size({"width": 1400, "height": VIEWPORT_HEIGHT})
    held = []  # plotly.js's request, answered only when this test says so
    page.route("**/vendor/plotly/**", lambda route: held.append(route))
    page.goto(f"{live_server.url}/experiments/{judged.pk}/overview?range=30d")

    # Without plotly, every chart is there: drawn, with its words and sample sizes for a screen reader.
    expect(page.locator("#chart-judge-0 svg.chart-svg circle").first).to_be_visible()
    expect(page.locator("#chart-traces svg.chart-svg rect").first).to_be_attached()
    expect(page.locator("#chart-error-rate svg.chart-svg circle").first).to_be_attached()  # one day: a point
    assert page.locator(".chart").count() == page.locator(".chart > svg.chart-svg").count() == 6
    label = page.locator("#chart-judge-0").get_attribute("aria-label")
    assert label.startswith("helpful: pass rate per day, last 30 days, with its 95% interval; overall 66.7% pass") and "n = 6" in label
    for _ in range(100):  # plotly.js is asked for once the page has loaded and the browser is idle (within 2 s)
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1 and page.locator(".main-svg").count() == 0
    boxes = page.evaluate("() => [...document.querySelectorAll('.chart-card')].map(card => JSON.stringify(card.getBoundingClientRect()))")

    held[0].continue_()
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    expect(page.locator("#chart-judge-0 svg.chart-svg")).to_have_count(0)  # taken over, not doubled
    expect(page.locator("#chart-judge-0 .scatterlayer .point").first).to_be_attached()
    # In place: no card moved or changed size, and the label stays on the chart.
    assert page.evaluate("() => [...document.querySelectorAll('.chart-card')].map(card => JSON.stringify(card.getBoundingClientRect()))") == boxes
    assert page.locator("#chart-judge-0").get_attribute("aria-label") == label
    # It was asked for after the page's load event: it never competed with the first paint.
    assert page.evaluate("""() => performance.getEntriesByType("resource").find(entry => entry.name.includes("/plotly")).startTime
                                  >= performance.getEntriesByType("navigation")[0].loadEventEnd""")
    assert page.js_errors == []


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
    # The last chart, well below the fold (and the 200px taken over ahead of it): the server's SVG while nobody
    # scrolls there.
    assert page.locator("#chart-judge-cost").bounding_box()["y"] > VIEWPORT_HEIGHT + 200
    expect(drawn(page, "chart-judge-cost")).to_have_count(0)
    expect(page.locator("#chart-judge-cost > svg.chart-svg")).to_have_count(1)

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
    # The Overview htmx keeps for the back button holds the server's SVGs, put back in place of plotly's charts.
    snapshot = page.evaluate("() => sessionStorage.getItem('htmx-history-cache')")
    assert "chart-svg" in snapshot and "main-svg" not in snapshot
    assert page.evaluate("() => getComputedStyle(document.querySelector('.quick-filters')).display") == "flex"  # traces.css

    page.get_by_role("link", name="Overview", exact=True).click()  # plotly is there already: the charts draw again
    page.wait_for_url(f"{base}/overview")
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    page.get_by_role("link", name="Last 30 days", exact=True).click()  # another range, swapped in by htmx
    page.wait_for_url(f"{base}/overview?range=30d")
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    expect(page.locator(".chart .js-plotly-plot")).not_to_have_count(0)
    assert page.js_errors == []


def test_pointing_at_a_chart_brings_plotly_before_the_browser_is_idle(logged_in, live_server, judged):
    page = logged_in
    page.add_init_script("window.requestIdleCallback = function () { return 0; };")  # a browser that is never idle
    page.goto(f"{live_server.url}/experiments/{judged.pk}/overview?range=30d")
    expect(page.locator("#chart-judge-0 > svg.chart-svg")).to_be_visible()
    page.wait_for_timeout(500)
    expect(drawn(page, "chart-judge-0")).to_have_count(0)  # nothing has asked for plotly yet

    page.locator("#chart-judge-0").hover()
    expect(drawn(page, "chart-judge-0").first).to_be_visible(timeout=20_000)
    assert page.js_errors == []
