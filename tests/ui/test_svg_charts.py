"""The Overview's charts drawn on the server (evalapp/ui/svg_charts.py): values land where plotly would put them,
gaps stay gaps, an empty chart says so, and every text is escaped."""

from __future__ import annotations

import re

from evalapp.ui.svg_charts import NO_DATA, render_chart, with_empty_state

HOUR_MS = 3_600_000


def figure(traces: list[dict], **layout: object) -> dict:
    """Four hourly buckets, 240 px high, margins as overview.py's: the plot is y 8…204 (196 px)."""
    return {"data": traces, "layout": {
        "height": 240, "margin": {"l": 52, "r": 16, "t": 8, "b": 36},
        "xaxis": {"type": "date", "range": ["2026-12-07 00:00:00", "2026-12-07 04:00:00"], "gridcolor": "var(--line)"},
        "yaxis": {"range": [0, 1], "gridcolor": "var(--line)"}, **layout}}


def line(ys: list, **extra: object) -> dict:
    return {"type": "scatter", "mode": "lines+markers", "x": [f"2026-12-07 0{hour}:00:00" for hour in range(4)], "y": ys,
            "xperiod": HOUR_MS, "xperiodalignment": "middle", "line": {"color": "var(--ok)", "width": 2}, "marker": {"color": "var(--ok)", "size": 5}, **extra}


def test_a_line_lands_at_bucket_middles_and_its_values():
    svg = render_chart(figure([line([0.0, 0.5, 1.0, 0.25])]), "pass rate")
    # x: bucket middles, 1/8, 3/8 … of the width (1000 units across); y: 204 px at 0, 8 px at 1.
    assert '<polyline points="125.00,204.00 375.00,106.00 625.00,8.00 875.00,155.00"' in svg
    assert 'stroke="var(--ok)"' in svg and 'vector-effect="non-scaling-stroke"' in svg
    centres = re.findall(r'<circle cx="([\d.]+)%" cy="([\d.]+)"', svg)
    assert centres == [("12.500", "204.00"), ("37.500", "106.00"), ("62.500", "8.00"), ("87.500", "155.00")]


def test_a_missing_value_breaks_the_line_and_has_no_marker():
    svg = render_chart(figure([line([0.5, None, 0.5, 0.5])]), "pass rate")
    assert re.findall(r'<polyline points="([^"]+)"', svg) == ["625.00,106.00 875.00,106.00"]  # a lone point is no line
    assert len(re.findall(r"<circle ", svg)) == 3


def test_the_interval_band_fills_between_its_bounds_and_stops_at_gaps():
    band = {"type": "scatter", "mode": "lines", "x": line([])["x"], "xperiod": HOUR_MS, "line": {"width": 0, "color": "var(--ok)"}}
    upper = {**band, "y": [1.0, 0.5, None, None]}
    lower = {**band, "y": [0.5, 0.0, None, None], "fill": "tonexty", "fillcolor": "rgba(29, 127, 78, 0.12)"}
    svg = render_chart(figure([upper, lower, line([0.75, 0.25, None, None])]), "pass rate")
    assert re.findall(r'<polygon points="([^"]+)" fill="([^"]+)"', svg) == [
        ("125.00,8.00 375.00,106.00 375.00,204.00 125.00,106.00", "rgba(29, 127, 78, 0.12)")]


def test_stacked_bars_sit_on_each_other_in_the_middle_of_their_bucket():
    bars = [{"type": "bar", "name": name, "x": line([])["x"], "y": ys, "xperiod": HOUR_MS, "marker": {"color": colour}}
            for name, ys, colour in (("OK", [2, 0, 0, 0], "var(--accent)"), ("Error", [2, 0, 0, 1], "var(--bad)"))]
    svg = render_chart(figure(bars, yaxis={}, barmode="stack", bargap=0.2, showlegend=True), "traces")
    rects = re.findall(r'<rect x="([\d.]+)%" width="([\d.]+)%" y="([\d.]+)" height="([\d.]+)" fill="([^"]+)"', svg)
    # autorange as plotly's: the tallest stack (4) at 95% of the height, which the legend lowers by 16 px (plot
    # y 24…204); bars 80% of a bucket (20% of the width) wide.
    px = 180 / (4 / 0.95)
    assert rects == [
        ("2.500", "20.000", f"{204 - 2 * px:.2f}", f"{2 * px:.2f}", "var(--accent)"),
        ("2.500", "20.000", f"{204 - 4 * px:.2f}", f"{2 * px:.2f}", "var(--bad)"),
        ("77.500", "20.000", f"{204 - 1 * px:.2f}", f"{px:.2f}", "var(--bad)"),
    ]
    assert ">OK</text>" in svg and ">Error</text>" in svg  # the legend


def test_axis_labels_follow_the_tick_format():
    svg = render_chart(figure([line([0.2, 0.4, 0.6, 0.8])], yaxis={"range": [0, 1.05], "tickformat": ".0%"}), "pass rate")
    assert re.findall(r'text-anchor="end">([^<]+)<', svg) == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert ">00:00<" in svg and ">Dec 7, 2026</tspan>" in svg  # hours, with the day under the first


def test_version_marks_are_dotted_lines_with_their_label():
    marks = {"shapes": [{"type": "line", "x0": "2026-12-07 02:00:00", "line": {"color": "var(--muted)", "width": 1}}],
             "annotations": [{"x": "2026-12-07 02:00:00", "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom", "text": "v2"}]}
    svg = render_chart(figure([line([0.5] * 4)], **marks), "pass rate")
    assert '<line x1="50.000%" x2="50.000%" y1="8" y2="204" stroke="var(--muted)" stroke-width="1" stroke-dasharray="3,3"/>' in svg
    assert re.search(r'<text x="50.000%" y="4.0"[^>]*>v2</text>', svg)


def test_an_empty_series_shows_the_empty_state():
    empty = with_empty_state(figure([line([None] * 4)], yaxis={}))
    svg = render_chart(empty, "pass rate: no verdicts")
    assert f">{NO_DATA}</text>" in svg and "<polyline" not in svg and "<circle" not in svg
    assert empty["layout"]["annotations"][-1]["text"] == NO_DATA  # plotly, taking over, shows the same words
    assert with_empty_state(figure([line([0.5] * 4)]))["layout"].get("annotations") is None


def test_every_text_is_escaped():
    hostile = "<script>alert(1)</script>"
    bars = [{"type": "bar", "name": "&lt;b&gt;calm&lt;/b&gt;", "x": line([])["x"], "y": [1, 1, 1, 1], "xperiod": HOUR_MS, "marker": {"color": "#0e7c86"}}]
    svg = render_chart(figure(bars, showlegend=True), f'{hostile} "quoted"')
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot;" in svg
    # A legend name comes as plotly reads it (entities): the SVG shows the text once escaped, not twice.
    assert ">&lt;b&gt;calm&lt;/b&gt;</text>" in svg and "&amp;lt;" not in svg and "<b>" not in svg
