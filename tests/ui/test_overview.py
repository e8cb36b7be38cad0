"""The Overview tab (cards, charts drawn from embedded JSON, the judge table, the range picker, empty states)
and the experiment list (its columns and the "New experiment" form)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from judges.actions import create_judge, update_judge
from tests.conftest import BASE_TIME, ingest, links_static, make_trace, record_verdict, window_plan_queries
from traces.actions import create_experiment
from traces.models import Experiment

pytestmark = pytest.mark.django_db

NOW = BASE_TIME + timedelta(hours=1)
HX_TAB = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "experiment-page"}


def judge(experiment, endpoint, name: str, **fields: Any):
    return create_judge(experiment, name=name, endpoint=endpoint, **{"instructions": "Is {{ outputs }} right?", **fields})


def overview(client, experiment, *, headers: dict[str, str] | None = None, **params: str) -> str:
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("experiment-overview", args=[experiment.pk]), params, **(headers or {}))
    assert response.status_code == 200
    return response.content.decode()


def chart_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="overview-chart-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no chart data on the page"
    return {figure["id"]: figure for figure in json.loads(match.group(1))}


@pytest.fixture
def judged(experiment, endpoint):
    """Three traces in the last hour, one an ERROR; "helpful" says yes, yes, no and was changed (v2) at 12:30."""
    traces = ingest(experiment, make_trace("t1", minutes=5), make_trace("t2", minutes=10), make_trace("t3", minutes=20, status="ERROR"))
    with time_machine.travel(BASE_TIME - timedelta(days=3), tick=False):
        helpful = judge(experiment, endpoint, "helpful")
    with time_machine.travel(BASE_TIME + timedelta(minutes=30), tick=False):
        helpful = update_judge(helpful, instructions="Is {{ outputs }} right and kind?")
    for trace, value in zip(traces, [True, True, False]):
        record_verdict(helpful, trace, value, cost="0.0025")
    return experiment


def test_the_tab_shows_cards_charts_and_the_judge_table(editor_client, judged):
    html = overview(editor_client, judged, range="24h")

    assert "<html" in html and 'id="experiment-page"' in html
    cards = re.findall(r'<div class="stat-label">([^<]+)</div>\s*<div class="stat-value">([^<]+)</div>', html)
    assert dict(cards) == {
        "Traces": "3", "Error rate": "33.3%", "Latency p50 / p95": "1.20 s / 1.20 s", "Tokens": "450", "Judge cost": "$0.007500",
    }
    row = html[html.index("<strong>helpful</strong>"):]
    row = row[: row.index("</tr>")]
    assert "v2" in row and "66.7% pass" in row and "$0.0075" in row
    assert html.index('class="overview-cards"') < html.index("<h2>Quality</h2>") < html.index("<h2>Judges</h2>")


def test_charts_are_plotly_figures_from_embedded_json_with_version_marks(editor_client, judged):
    html = overview(editor_client, judged, range="24h")
    figures = chart_data(html)

    quality = figures["chart-judge-0"]
    upper, lower, line = quality["data"]  # the 95% Wilson band, then the pass-rate line
    assert line["line"]["color"] == "var(--ok)"  # pass green, from app.css
    assert line["y"][-1] == pytest.approx(0.6667) and len(line["x"]) == 24
    assert lower["fill"] == "tonexty" and lower["y"][-1] < line["y"][-1] < upper["y"][-1]
    assert line["customdata"][-1][0] == 3 and "n = %{customdata[0]}" in line["hovertemplate"]  # n on hover
    assert line["marker"]["symbol"][-1] == "circle-open"  # 3 verdicts: too few to draw as a solid point
    assert [annotation["text"] for annotation in quality["layout"]["annotations"]] == ["v2"]
    assert quality["layout"]["shapes"][0]["x0"] == "2026-11-20 12:30:00"
    traces_chart = figures["chart-traces"]
    assert [series["name"] for series in traces_chart["data"]] == ["OK", "Error"]
    assert traces_chart["data"][1]["marker"]["color"] == "var(--bad)" and traces_chart["data"][1]["y"][-1] == 1
    assert {"chart-error-rate", "chart-latency", "chart-tokens", "chart-judge-cost"} <= set(figures)
    # Served by us: no script from anywhere else ("cdn" alone also matched a random CSRF token once).
    assert '/static/vendor/plotly/plotly-basic.min.js' in html
    assert not re.search(r'src="(https?:)?//', html) and "cdn." not in html.lower()
    for figure_id in figures:
        assert f'id="{figure_id}"' in html
    assert html.count("the judge was changed here") == 1  # a legend line for the one chart with a mark


def test_every_chart_comes_drawn_as_svg_labelled_with_its_sample_sizes(editor_client, judged):
    html = overview(editor_client, judged, range="24h")

    for figure_id in chart_data(html):  # each holder holds its server-drawn SVG, for the first paint without script
        holder = re.search(rf'<div class="chart" id="{figure_id}" role="img" aria-label="([^"]+)"><svg class="chart-svg"', html)
        assert holder, f"{figure_id} has no SVG"
    quality = html[html.index('id="chart-judge-0"'):]
    quality = quality[: quality.index("</section>")]
    label = re.search(r'aria-label="([^"]+)"', quality).group(1)
    assert label == "helpful: pass rate per hour, last 24 hours, with its 95% interval; overall 66.7% pass (95% CI 20.8%–93.8%), n = 3 (3 judged, 0 errors)"
    assert f"<title>{label}</title>" in quality
    assert 'stroke-dasharray="3,3"' in quality and ">v2</text>" in quality  # the version mark
    # All three verdicts are in the last hour: one point, so no line and no band (as plotly draws it).
    assert quality.count("<circle ") == 1 and "<polyline" not in quality and "<polygon" not in quality
    # The last bucket's point is hollow (3 verdicts) and says its rate and n.
    assert re.search(r'<circle [^>]*fill="none" stroke="var\(--ok\)"[^>]*><title>2026-11-20 12:00 UTC: 66.7% pass \(95% CI [^)]+\), n = 3 · 0 errors</title>', quality)
    error_rate = re.search(r'id="chart-error-rate" role="img" aria-label="([^"]+)"', html).group(1)
    assert error_rate == "Error rate per hour, last 24 hours: 33.3% of 3 traces"
    # plotly.js is fetched by the script after the first paint, not preloaded against it.
    assert 'rel="preload"' not in html


def test_a_judge_that_never_changed_draws_no_version_mark(editor_client, judged):
    from judges.models import JudgeVersion

    JudgeVersion.objects.filter(version__gt=1).delete()  # as if the judge had never been edited
    html = overview(editor_client, judged, range="24h")
    assert chart_data(html)["chart-judge-0"]["layout"]["annotations"] == []
    assert "the judge was changed here" not in html


def test_day_buckets_mark_latency_as_approximate(editor_client, judged):
    week = overview(editor_client, judged, range="7d")
    day = overview(editor_client, judged, range="24h")

    def latency(html: str) -> str:
        return re.search(r'Latency p50 / p95</div>\s*<div class="stat-value">([^<]+)</div>', html).group(1)

    assert latency(week) == "≈ 1.20 s / 1.20 s" and "within 5%, from hourly histograms" in week
    assert latency(day) == "1.20 s / 1.20 s" and "within 5%" not in day  # hour buckets: exact
    assert chart_data(week)["chart-latency"]["data"][0]["hovertemplate"].startswith("p50 ≈ ")
    assert chart_data(day)["chart-latency"]["data"][0]["hovertemplate"].startswith("p50 %{y")


def test_an_htmx_tab_swap_gets_the_fragment(editor_client, judged):
    html = overview(editor_client, judged, headers=HX_TAB, range="24h")

    assert "<html" not in html
    assert 'class="tabs"' in html and "chart-judge-0" in html and not links_static(html, "evalapp/overview.css")  # the CSS is in the head
    # The chart data travels with the fragment; the script that draws it is already on the page (base.html loads
    # overview_charts.js, which draws on htmx:load: no inline script under the Content-Security-Policy).
    assert '<script id="overview-chart-data" type="application/json">' in html and "<script>" not in html


def test_the_range_picker_links_push_the_url(editor_client, judged):
    html = overview(editor_client, judged, range="30d")
    url = reverse("experiment-overview", args=[judged.pk])

    for key in ("1h", "24h", "7d", "30d"):
        assert f'<a href="{url}?range={key}" hx-get="{url}?range={key}" hx-target="#experiment-page" hx-push-url="true"' in html
    assert re.search(rf'href="{url}\?range=30d"[^>]*class="active" aria-current="true">Last 30 days<', html)
    form = re.search(r'<form class="range-custom row"[^>]*>', html).group(0)
    assert f'action="{url}"' in form and f'hx-get="{url}"' in form and 'hx-push-url="true"' in form
    assert "Last 30 days · per day (UTC)" in html


def test_presets_and_custom_dates_pick_the_buckets(editor_client, judged):
    assert len(chart_data(overview(editor_client, judged, range="7d"))["chart-traces"]["data"][0]["x"]) == 8  # days
    assert len(chart_data(overview(editor_client, judged, range="1h"))["chart-traces"]["data"][0]["x"]) == 60  # minutes
    html = overview(editor_client, judged, **{"from": "2026-11-18", "to": "2026-11-20"})
    assert len(chart_data(html)["chart-traces"]["data"][0]["x"]) == 3
    assert 'name="from" value="2026-11-18"' in html and 'name="to" value="2026-11-20"' in html  # the form keeps them


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "fortnight"}, "&#x27;fortnight&#x27; is not a range; use one of 1h, 24h, 7d, 30d"),
        ({"from": "2026-11-20", "to": "2026-11-01"}, "must be after &#x27;from&#x27;"),
        ({"from": "yesterday"}, "&#x27;yesterday&#x27; is not a date"),
    ],
)
def test_a_bad_range_is_explained_on_the_page(editor_client, judged, params, message):
    for headers in (None, HX_TAB):
        html = overview(editor_client, judged, headers=headers, **params)
        error = html[html.index('id="range-error"'):]
        assert message in error[: error.index("</div>")]
        assert "overview-chart-data" not in html and 'class="range-presets"' in html


def test_no_traces_yet_says_how_to_send_them(editor_client, experiment):
    html = overview(editor_client, experiment)

    assert "No traces yet" in html and f"x-evalapp-experiment-id: {experiment.pk}" in html
    assert "overview-chart-data" not in html


def test_no_judges_links_to_the_judges_tab(editor_client, experiment):
    ingest(experiment, make_trace("t1"))
    html = overview(editor_client, experiment)

    assert "No judges yet" in html
    assert f'href="{reverse("experiment-judges", args=[experiment.pk])}"' in html
    assert chart_data(html)["chart-traces"]  # performance still shows


def test_traces_outside_the_range_point_to_a_wider_one(editor_client, experiment):
    ingest(experiment, make_trace("t1", minutes=-3 * 24 * 60))
    html = overview(editor_client, experiment, range="24h")

    notice = html[html.index("No traces in this range"):]
    notice = notice[: notice.index("</div>")]
    assert 'title="2026-11-17T12:00:00+00:00"' in notice  # when the latest trace started…
    assert f'href="{reverse("experiment-overview", args=[experiment.pk])}?range=7d"' in notice  # …and the range that shows it
    assert "last 7 days" in notice


def test_traces_older_than_the_presets_point_to_a_custom_range(editor_client, experiment):
    ingest(experiment, make_trace("t1", minutes=-90 * 24 * 60))
    html = overview(editor_client, experiment, range="30d")

    assert f'href="{reverse("experiment-overview", args=[experiment.pk])}?from=2026-08-22"' in html


def test_viewers_see_the_overview(client, viewer, judged):
    client.force_login(viewer)
    assert "66.7% pass" in overview(client, judged, range="24h")


def test_anonymous_visitors_are_sent_to_log_in(client, experiment):
    response = client.get(reverse("experiment-overview", args=[experiment.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def _page_queries(client, experiment) -> int:
    with CaptureQueriesContext(connection) as queries:
        overview(client, experiment, range="7d")
    return len(queries)


def test_query_count_does_not_grow_with_judges_or_traces(editor_client, endpoint, django_assert_max_num_queries):
    small = create_experiment("small")
    ingest(small, make_trace("s1"))
    judge(small, endpoint, "only")
    judge(small, endpoint, "conversation", scope="session", instructions="{{ conversation }}")

    large = create_experiment("large")
    traces = ingest(large, *[make_trace(f"l{index}", minutes=-index * 60, session_id=f"c{index % 5}") for index in range(80)])
    for index, output_type in enumerate(["boolean", "integer", "float", "categorical", "string"]):
        created = judge(large, endpoint, f"judge-{index}", output_type=output_type, **({"categories": ["a", "b"]} if output_type == "categorical" else {}))
        for trace in traces:
            record_verdict(created, trace, {"boolean": True, "integer": 3, "float": 0.5, "categorical": "a", "string": "fine"}[output_type], cost="0.0025")
    judge(large, endpoint, "conversation", scope="session", instructions="{{ conversation }}")

    small_first = _page_queries(editor_client, small)
    plans = window_plan_queries()  # PostgreSQL's planner options
    # session, user, role, experiment + 9, storing the hours it summed, + 1 for people's labels (corrected pass rates)
    with django_assert_max_num_queries(14 + plans):
        overview(editor_client, large, range="7d")
    with django_assert_max_num_queries(11 + plans):  # + 7 once the hours are stored
        overview(editor_client, large, range="7d")
    assert _page_queries(editor_client, small) == _page_queries(editor_client, large) < small_first


# --- the experiment list -------------------------------------------------------------------------------------------


def test_the_list_shows_traffic_active_judges_and_pass_rate(editor_client, judged, endpoint):
    judge(judged, endpoint, "safety", active=True)
    quiet = create_experiment("quiet")
    ingest(quiet, make_trace("q1", minutes=-3 * 24 * 60))

    with time_machine.travel(NOW, tick=False):
        html = editor_client.get(reverse("experiment-list")).content.decode()

    rows = re.findall(r'<tr>\s*<td><a href="/experiments/\d+/">([^<]+)</a>.*?<td class="num">([^<]*)</td>\s*'
                      r'<td class="num">([^<]*)</td>\s*<td class="num">(.*?)</td>', html, re.S)
    assert [(name, traces, judges, re.sub(r"<[^>]+>", "", rate)) for name, traces, judges, rate in rows] == [
        ("checkout-agent", "3", "1", "67%"),
        ("quiet", "0", "0", "—"),
    ]


def test_the_list_makes_the_same_queries_for_many_experiments(editor_client, endpoint, django_assert_max_num_queries):
    for index in range(12):
        experiment = create_experiment(f"e{index}")
        [trace] = ingest(experiment, make_trace(f"e{index}-t"))
        record_verdict(judge(experiment, endpoint, "ok", active=index % 2 == 0), trace, True, cost="0.0025")

    with django_assert_max_num_queries(8 + window_plan_queries()), time_machine.travel(NOW, tick=False):
        html = editor_client.get(reverse("experiment-list")).content.decode()
    assert html.count("100%") == 12


def test_new_experiment_button_opens_the_form(editor_client, db):
    html = editor_client.get(reverse("experiment-list")).content.decode()
    assert f'href="{reverse("experiment-create")}" hx-get="{reverse("experiment-create")}"' in html

    partial = editor_client.get(reverse("experiment-create"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="new-experiment").content.decode()
    assert "<html" not in partial and 'name="name"' in partial and 'maxlength="200"' in partial
    full = editor_client.get(reverse("experiment-create")).content.decode()
    assert "<html" in full and 'name="name"' in full


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 201, "Ensure this value has at most 200 characters (it has 201)."),
        ("checkout-agent", "An experiment named &#x27;checkout-agent&#x27; already exists; pick another name."),
    ],
)
def test_the_form_explains_what_is_wrong(editor_client, experiment, name, error):
    response = editor_client.post(reverse("experiment-create"), {"name": name}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="new-experiment")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and error in html and "field has-error" in html
    assert Experiment.objects.count() == 1


def test_creating_an_experiment_opens_its_overview(editor_client, db):
    response = editor_client.post(reverse("experiment-create"), {"name": "  support-bot ", "description": "tier 1"}, HTTP_HX_REQUEST="true")

    created = Experiment.objects.get()
    assert (created.name, created.description) == ("support-bot", "tier 1")
    assert response["HX-Redirect"] == reverse("experiment-overview", args=[created.pk])
    plain = editor_client.post(reverse("experiment-create"), {"name": "another"})
    assert plain.status_code == 302 and plain["Location"] == reverse("experiment-overview", args=[Experiment.objects.get(name="another").pk])


def test_viewers_cannot_create_experiments(client, viewer):
    client.force_login(viewer)

    assert "New experiment" not in client.get(reverse("experiment-list")).content.decode()
    assert client.post(reverse("experiment-create"), {"name": "mine"}).status_code == 403
    assert not Experiment.objects.exists()
