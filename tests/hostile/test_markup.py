"""Text a model or a user wrote is shown as typed everywhere, never as markup: plotly reads <a>, <b>, <br> in its
labels, so categories reach it as entities."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from judges.actions import create_judge
from judges.llm import CallResult
from judges.results import Outcome, record_result
from tests.conftest import make_trace
from traces.actions import ingest_traces
from traces.models import Trace
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db

LINK = '<a href="https://evil.example/">click me</a>'


def test_a_category_with_markup_reaches_plotly_as_text(client, user, experiment, endpoint):
    from django.utils import timezone

    judge = create_judge(experiment, name="tone", instructions="Tone of {{ outputs }}?", output_type="categorical",
                         categories=[LINK, "<b>calm</b>"], endpoint=endpoint)
    now = timezone.now()
    ingest_traces(experiment, parse_trace_batch([make_trace("t1", start_time=now.isoformat(), spans=[])], max_traces=10))
    record_result(judge, Outcome(CallResult(value=LINK, rationale="scripted")), trace=Trace.objects.get())
    client.force_login(user)
    page = client.get(reverse("experiment-overview", args=[experiment.pk]), {"range": "24h"}).content.decode()
    data = json.loads(re.search(r'<script id="overview-chart-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    quality = [figure for figure in data if figure["id"].startswith("chart-judge-")]
    names = [trace["name"] for figure in quality for trace in figure["data"]]
    assert "&lt;a href=\"https://evil.example/\"&gt;click me&lt;/a&gt;" in names and "&lt;b&gt;calm&lt;/b&gt;" in names
    assert not any("<a" in name or "<b>" in name for name in names)
    assert not any(LINK in trace.get("hovertemplate", "") for figure in quality for trace in figure["data"])


def test_categories_with_markup_reach_the_server_drawn_chart_as_text(client, user, experiment, endpoint):
    """The SVG drawn for the first paint (design note 50) names categories in its legend, its <title> and the chart's
    aria-label. (A judge's own name can't carry markup: create_judge allows letters, digits, ' ', '_', '-', '.'.)"""
    from django.utils import timezone

    judge = create_judge(experiment, name="tone", instructions="Tone of {{ outputs }}?", output_type="categorical",
                         categories=[LINK, "<script>alert(1)</script>"], endpoint=endpoint)
    ingest_traces(experiment, parse_trace_batch([make_trace("t1", start_time=timezone.now().isoformat(), spans=[])], max_traces=10))
    record_result(judge, Outcome(CallResult(value=LINK, rationale="scripted")), trace=Trace.objects.get())
    client.force_login(user)
    page = client.get(reverse("experiment-overview", args=[experiment.pk]), {"range": "24h"}).content.decode()

    chart = page[page.index('id="chart-judge-0"'):]
    chart = chart[: chart.index("</svg>")]
    assert "<script>alert" not in page and "<a href=\"https://evil" not in page
    shown = "tone: share of each category per hour, last 24 hours; overall &lt;a href=&quot;https://evil.example/&quot;&gt;click me&lt;/a&gt; 100%"
    assert chart.startswith(f'id="chart-judge-0" role="img" aria-label="{shown}')
    assert f"<title>{shown}" in chart
    # The legend shows the categories as typed: escaped once (not as entities on screen), never as markup.
    assert ">&lt;a href=&quot;https://evil.example/&quot;&gt;click me&lt;/a&gt;</text>" in chart
    assert ">&lt;script&gt;alert(1)&lt;/script&gt;</text>" in chart and "&amp;lt;" not in chart
