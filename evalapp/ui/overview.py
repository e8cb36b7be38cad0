"""The Overview tab: summary cards, charts and the judge quality table.

The numbers come from evalapp.overview.compute, the same ones GET /api/v1/experiments/<id>/overview returns. Each chart
is a plotly figure: drawn here as inline SVG for the first paint (evalapp/ui/svg_charts.py), and embedded as JSON for
plotly.js to take the chart over (hover, zoom; design note 50). Colours in the figures are CSS variables (`var(--ok)`)
that SVG reads as they are and the page's script resolves for plotly, so charts match app.css."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import BUCKET_STEPS, PRESETS, RangeError, TimeRange, parse_range
from evalapp.ui.agreement import figure
from evalapp.ui.common import get_experiment, render_tab
from evalapp.ui.formatting import format_cost
from evalapp.ui.svg_charts import render_chart, with_empty_state
from traces.models import Trace

# Categories get these in their declared order, so a judge's categories keep their colours from chart to chart.
CATEGORY_COLOURS = ["var(--info)", "var(--accent)", "var(--wait)", "var(--ok)", "var(--bad)", "#0e7c86", "#a4508b", "var(--none)"]
BUCKET_WORDS = {"minute": "per minute", "hour": "per hour", "day": "per day"}


def _when(iso: str) -> str:
    """Plotly reads date strings as wall-clock time and ignores offsets: give it UTC without one."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%" if value in (0, 1) else f"{value * 100:.1f}%"


def _duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


def _layout(time_range: TimeRange, *, y: dict[str, Any] | None = None, legend: bool = False, **extra: Any) -> dict[str, Any]:
    # Whole buckets on the x axis, so the first and the current (partial) bucket's bars aren't cut in half.
    buckets = time_range.buckets()
    x_range = [_when(buckets[0].isoformat()), _when((buckets[-1] + BUCKET_STEPS[time_range.bucket]).isoformat())]
    return {
        "height": 240,
        "margin": {"l": 52, "r": 16, "t": 28 if legend or extra.get("annotations") else 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "var(--muted)"},
        "xaxis": {"type": "date", "range": x_range, "gridcolor": "var(--line)", "ticklabelmode": "period"},
        "yaxis": {"rangemode": "tozero", "gridcolor": "var(--line)", "zeroline": False, **(y or {})},
        "showlegend": legend,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "traceorder": "normal"},
        "hovermode": "x unified" if legend else "closest",
        "bargap": 0.15,
        **extra,
    }


def plot_text(text: str) -> str:
    """Text for a plotly label (legend, hover): plotly reads <a>, <b>, <br>… in labels as markup, so a category a
    model or a user wrote must reach it as entities, shown as typed, never as a link."""
    return html.escape(str(text), quote=False)


def _series(xs: list[str], ys: list[Any], name: str, colour: str, *, kind: str, period_ms: int, **extra: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {"x": xs, "y": ys, "name": name, "xperiod": period_ms, "xperiodalignment": "middle", **extra}
    if kind == "bar":
        trace |= {"type": "bar", "marker": {"color": colour}}
    else:
        trace |= {"type": "scatter", "mode": "lines+markers", "line": {"color": colour, "width": 2}, "marker": {"color": colour, "size": 5}}
    return trace


def _version_marks(versions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    shapes, annotations = [], []
    for version in versions:
        at = _when(version["created_at"])
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1, "line": {"color": "var(--muted)", "width": 1, "dash": "dot"}})
        annotations.append({"x": at, "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom", "text": f"v{version['version']}", "showarrow": False, "font": {"size": 11, "color": "var(--muted)"}})
    return {"shapes": shapes, "annotations": annotations}


# A bucket with fewer yes/no verdicts than this is drawn hollow: 1 of 2 "no" is no 50-point crash.
FEW_VERDICTS = 10


def _pass_rate_words(point: dict[str, Any]) -> str:
    when = f"{_when(point['bucket'])[:16]} UTC"
    if point["pass_rate"] is None:
        return f"{when}: no yes/no verdicts"
    interval = f" (95% CI {_percent(point.get('pass_rate_low'))}–{_percent(point.get('pass_rate_high'))})"
    return f"{when}: {_percent(point['pass_rate'])} pass{interval}, n = {point['n']:,} · {point['errors']:,} errors"


def _pass_rate_traces(series: list[dict[str, Any]], xs: list[str], period_ms: int) -> list[dict[str, Any]]:
    """The pass-rate line with its 95% Wilson band, every point's n on hover, and sparse buckets hollow."""
    rates = [point["pass_rate"] for point in series]
    low = [point.get("pass_rate_low") for point in series]
    high = [point.get("pass_rate_high") for point in series]
    details = [[point["n"], point.get("pass_rate_low"), point.get("pass_rate_high"), point["errors"]] for point in series]
    band = {"x": xs, "type": "scatter", "mode": "lines", "line": {"width": 0, "color": "var(--ok)"}, "xperiod": period_ms,
            "xperiodalignment": "middle", "hoverinfo": "skip", "showlegend": False, "connectgaps": False}
    line = _series(
        xs, rates, "pass rate", "var(--ok)", kind="line", period_ms=period_ms, customdata=details,
        hovertemplate="%{y:.0%} pass (95% CI %{customdata[1]:.0%}–%{customdata[2]:.0%})<br>n = %{customdata[0]} · %{customdata[3]} errors<extra></extra>",
    )
    line["text"] = [_pass_rate_words(point) for point in series]  # the server-drawn chart's tooltips
    line["marker"]["symbol"] = ["circle-open" if point["n"] < FEW_VERDICTS else "circle" for point in series]
    line["marker"]["size"] = [7 if point["n"] < FEW_VERDICTS else 5 for point in series]
    return [
        {**band, "y": high, "name": "95% interval (upper)"},
        {**band, "y": low, "name": "95% interval", "fill": "tonexty", "fillcolor": "rgba(29, 127, 78, 0.12)"},
        line,
    ]


def _judge_figure(judge: dict[str, Any], time_range: TimeRange, period_ms: int) -> dict[str, Any]:
    series = judge["series"]
    xs = [_when(point["bucket"]) for point in series]
    counts = [[point["judged"], point["errors"]] for point in series]
    hover_counts = "%{customdata[0]} judged · %{customdata[1]} errors<extra></extra>"
    marks = _version_marks(judge["versions"])
    kind = judge["output_type"]
    if kind == "boolean":
        data = _pass_rate_traces(series, xs, period_ms)
        layout = _layout(time_range, y={"range": [0, 1.05], "tickformat": ".0%"}, **marks)
    elif kind in ("integer", "float"):
        data = [_series(xs, [point["mean"] for point in series], "mean", "var(--info)", kind="line", period_ms=period_ms,
                        customdata=counts, hovertemplate=f"mean %{{y:.3g}}<br>{hover_counts}")]
        layout = _layout(time_range, **marks)
    elif kind == "categorical":
        categories = list(judge["categories"] or {})
        data = [
            _series(xs, [point["shares"].get(category) for point in series], plot_text(category), CATEGORY_COLOURS[index % len(CATEGORY_COLOURS)],
                    kind="bar", period_ms=period_ms, hovertemplate="%{fullData.name}: %{y:.0%}<extra></extra>")
            for index, category in enumerate(categories)
        ]
        layout = _layout(time_range, y={"range": [0, 1], "tickformat": ".0%"}, legend=True, barmode="stack", **marks)
    else:  # free text: how much was judged is all a chart can say
        data = [_series(xs, [point["judged"] for point in series], "judged", "var(--info)", kind="bar", period_ms=period_ms,
                        customdata=counts, hovertemplate=hover_counts)]
        layout = _layout(time_range, **marks)
    return {"data": data, "layout": layout}


def _judge_words(judge: dict[str, Any], when: str) -> str:
    """What a judge's chart shows, in words, with the sample sizes (the chart's label for screen readers, its tooltip)."""
    name, judged = judge["name"], f"{judge['judged']:,} judged, {judge['errors']:,} errors"
    if judge["output_type"] == "boolean":
        if judge["pass_rate"] is None:
            return f"{name}: pass rate {when}; no yes/no verdicts ({judged})"
        interval = f"95% CI {_percent(judge['pass_rate_low'])}–{_percent(judge['pass_rate_high'])}"
        return f"{name}: pass rate {when}, with its 95% interval; overall {_percent(judge['pass_rate'])} pass ({interval}), n = {judge['n']:,} ({judged})"
    if judge["output_type"] in ("integer", "float"):
        overall = "no scores" if judge["mean"] is None else f"overall mean {judge['mean']:.3g}, n = {judge['n']:,}"
        return f"{name}: mean score {when}; {overall} ({judged})"
    if judge["output_type"] == "categorical":
        shares = ", ".join(f"{category} {_percent(share)}" for category, share in (judge["categories"] or {}).items() if share)
        return f"{name}: share of each category {when}; overall {shares or 'none'} ({judged})"
    return f"{name}: verdicts {when} ({judged})"


def _performance_words(performance: dict[str, Any], when: str) -> dict[str, str]:
    traces = f"{performance['traces']:,} traces"
    about = "≈ " if performance["percentiles_approximate"] else ""
    return {
        "chart-traces": f"Traces {when}, OK and with errors: {traces}, {performance['errors']:,} with errors",
        "chart-error-rate": f"Error rate {when}: {_percent(performance['error_rate'])} of {traces}",
        "chart-latency": f"Latency p50 and p95 {when}: {about}{_duration(performance['p50_ms'])} and {about}{_duration(performance['p95_ms'])} over {traces}",
        "chart-tokens": f"Tokens {when}: {performance['tokens']:,} over {traces}",
        "chart-judge-cost": f"Judge cost {when}: {format_cost(performance['judge_cost_usd'])} in all",
    }


def _drawn(chart: dict[str, Any]) -> dict[str, Any]:
    """The chart with its empty state, and its SVG for the first paint."""
    chart = with_empty_state(chart)
    return {**chart, "svg": mark_safe(render_chart(chart, chart["description"]))}  # noqa: S308 — render_chart escapes every text


def _performance_figures(performance: dict[str, Any], time_range: TimeRange, period_ms: int) -> list[dict[str, Any]]:
    series = performance["series"]
    xs = [_when(point["bucket"]) for point in series]
    about = "≈ " if performance["percentiles_approximate"] else ""

    def column(key: str) -> list[Any]:
        return [point[key] for point in series]

    ok = [point["traces"] - point["errors"] for point in series]
    return [
        {"id": "chart-traces", "title": "Traces", "data": [
            _series(xs, ok, "OK", "var(--accent)", kind="bar", period_ms=period_ms, hovertemplate="%{y} OK<extra></extra>"),
            _series(xs, column("errors"), "Error", "var(--bad)", kind="bar", period_ms=period_ms, hovertemplate="%{y} errors<extra></extra>"),
        ], "layout": _layout(time_range, legend=True, barmode="stack")},
        {"id": "chart-error-rate", "title": "Error rate", "data": [
            _series(xs, column("error_rate"), "error rate", "var(--bad)", kind="line", period_ms=period_ms, customdata=column("traces"),
                    hovertemplate="%{y:.1%} of %{customdata} traces<extra></extra>",
                    text=[f"{_when(point['bucket'])[:16]} UTC: {_percent(point['error_rate'])} of {point['traces']:,} traces" for point in series]),
        ], "layout": _layout(time_range, y={"tickformat": ".0%"})},
        {"id": "chart-latency", "title": "Latency", "data": [
            _series(xs, column("p50_ms"), "p50", "var(--accent)", kind="line", period_ms=period_ms, hovertemplate=f"p50 {about}%{{y:,.0f}} ms<extra></extra>"),
            _series(xs, column("p95_ms"), "p95", "var(--wait)", kind="line", period_ms=period_ms, hovertemplate=f"p95 {about}%{{y:,.0f}} ms<extra></extra>"),
        ], "layout": _layout(time_range, y={"ticksuffix": " ms"}, legend=True)},
        {"id": "chart-tokens", "title": "Tokens", "data": [
            _series(xs, column("tokens"), "tokens", "var(--info)", kind="bar", period_ms=period_ms, hovertemplate="%{y:,} tokens<extra></extra>"),
        ], "layout": _layout(time_range)},
        {"id": "chart-judge-cost", "title": "Judge cost", "data": [
            _series(xs, column("judge_cost_usd"), "judge cost", "var(--none)", kind="bar", period_ms=period_ms, hovertemplate="$%{y:.4f}<extra></extra>"),
        ], "layout": _layout(time_range, y={"tickprefix": "$"})},
    ]


def _latency_card(performance: dict[str, Any]) -> dict[str, Any]:
    value = f"{_duration(performance['p50_ms'])} / {_duration(performance['p95_ms'])}"
    if performance["percentiles_approximate"] and performance["p50_ms"] is not None:
        return {"label": "Latency p50 / p95", "value": f"≈ {value}", "note": "within 5%, from hourly histograms"}
    return {"label": "Latency p50 / p95", "value": value}


def _agreement_text(agreement: dict[str, Any] | None) -> str:
    """The current version's agreement with people, as the judge's card says it."""
    if agreement is None:
        return "—"
    if agreement["status"] == "insufficient":
        return f"insufficient ({agreement['n']} of {agreement['min_pairs']} labels)"
    estimate = agreement["value"]
    shown = "—" if estimate is None or estimate["value"] is None else figure(estimate)
    return f"{'MAE' if agreement['figure'] == 'mae' else 'κ'} {shown}, n = {agreement['n']} (v{agreement['version']})"


def _corrected_text(corrected: dict[str, Any] | None) -> str:
    """The yes/no judge's corrected pass rate, beside the raw one: its interval and the labels behind it."""
    if corrected is None:
        return ""
    labels = f"{corrected['pairs']:,} labelled pair{'s' if corrected['pairs'] != 1 else ''} of v{corrected['version']}"
    if corrected["status"] == "not_enough_labels":
        need = f"{corrected['min_pairs']} with both answers" if corrected["pairs"] >= corrected["min_pairs"] else f"{corrected['min_pairs']}"
        return f"corrected: not enough labels ({labels}; needs {need})"
    if corrected["status"] == "not_correctable":
        return f"corrected: none — the judge is no better than chance on the labels ({labels})"
    interval = f", 95% CI {_percent(corrected['low'])}–{_percent(corrected['high'])}" if corrected["low"] is not None else ""
    rates = f"sensitivity {_percent(corrected['sensitivity'])}, specificity {_percent(corrected['specificity'])}"
    return f"corrected {_percent(corrected['pass_rate'])}{interval} (Rogan–Gladen; {rates}; {labels})"


def _judge_result(judge: dict[str, Any]) -> dict[str, Any]:
    """What the quality table shows in its "result" column."""
    if judge["pass_rate"] is not None:
        interval = f"{_percent(judge['pass_rate_low'])}–{_percent(judge['pass_rate_high'])}"
        return {
            "text": f"{_percent(judge['pass_rate'])} pass",
            "pass_rate": judge["pass_rate"],
            "detail": f"95% CI {interval}, n = {judge['n']:,}",
            "corrected": _corrected_text(judge.get("corrected")),
        }
    if judge["mean"] is not None:
        return {"text": f"mean {judge['mean']:.3g}", "detail": f"n = {judge['n']:,}"}
    if judge["categories"]:
        shares = sorted(judge["categories"].items(), key=lambda item: -(item[1] or 0))
        return {"text": " · ".join(f"{name} {_percent(share)}" for name, share in shares if share)}
    return {"text": "—"}


def _range_links(experiment_id: int, time_range: TimeRange | None) -> list[dict[str, Any]]:
    base = reverse("experiment-overview", args=[experiment_id])
    return [
        {"key": key, "label": preset.label, "url": f"{base}?{urlencode({'range': key})}", "active": time_range is not None and time_range.preset == key}
        for key, preset in PRESETS.items()
    ]


def _range_showing(experiment_id: int, moment: datetime, now: datetime) -> dict[str, str]:
    """The shortest preset that reaches back to `moment`, or a custom range starting on its day."""
    base = reverse("experiment-overview", args=[experiment_id])
    for key, preset in PRESETS.items():
        if moment >= now - preset.span:
            return {"label": preset.label.lower(), "url": f"{base}?{urlencode({'range': key})}"}
    day = f"{moment.astimezone(UTC):%Y-%m-%d}"
    return {"label": f"everything since {day}", "url": f"{base}?{urlencode({'from': day})}"}


@login_required
def overview_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    context: dict[str, Any] = {
        "custom_from": request.GET.get("from", ""),
        "custom_to": request.GET.get("to", ""),
        "overview_url": reverse("experiment-overview", args=[experiment.pk]),
        "judges_url": reverse("experiment-judges", args=[experiment.pk]),
    }
    try:
        time_range = parse_range(request.GET)
    except RangeError as error:
        # 200, so htmx swaps it in: the error shows beside the picker that caused it.
        return render_tab(request, experiment, "overview", "evalapp/overview/tab.html", {**context, "range_error": error, "ranges": _range_links(experiment.pk, None)})

    overview = compute_overview(experiment, time_range)
    performance, judges = overview["performance"], overview["judges"]
    period_ms = int(BUCKET_STEPS[time_range.bucket].total_seconds() * 1000)
    latest_trace = wider_range = None
    if not performance["traces"]:
        latest_trace = Trace.objects.filter(experiment=experiment).order_by("-started_at").values_list("started_at", flat=True).first()
        if latest_trace is not None:
            wider_range = _range_showing(experiment.pk, latest_trace, timezone.now())
    when = f"{BUCKET_WORDS[time_range.bucket]}, {time_range.label.lower() if time_range.preset else time_range.label}"
    performance_words = _performance_words(performance, when)
    charts = {
        "quality": [_drawn({"id": f"chart-judge-{index}", "title": judge["name"], "judge": judge, "description": _judge_words(judge, when),
                            **_judge_figure(judge, time_range, period_ms)}) for index, judge in enumerate(judges)],
        "performance": [_drawn({**chart, "description": performance_words[chart["id"]]})
                        for chart in _performance_figures(performance, time_range, period_ms)],
    }
    cards = [
        {"label": "Traces", "value": f"{performance['traces']:,}", "note": f"{performance['errors']:,} with errors"},
        {"label": "Error rate", "value": _percent(performance["error_rate"]), "bad": bool(performance["errors"])},
        _latency_card(performance),
        {"label": "Tokens", "value": f"{performance['tokens']:,}"},
        {"label": "Judge cost", "value": format_cost(performance["judge_cost_usd"]),
         "note": f"{sum(judge['judged'] for judge in judges):,} verdicts · {sum(judge['errors'] for judge in judges):,} errors"},
    ]
    rows = [
        {**judge, "result": _judge_result(judge), "cost": format_cost(judge["cost_usd"]), "human_rate": _percent(judge["human"]["pass_rate"]),
         "agreement_text": _agreement_text(judge.get("agreement"))}
        for judge in judges
    ]
    context |= {
        "time_range": time_range,
        "ranges": _range_links(experiment.pk, time_range),
        "bucket_words": BUCKET_WORDS[time_range.bucket],
        "overview": overview,
        "cards": cards,
        "rows": rows,
        "charts": charts,
        "chart_data": [{key: chart[key] for key in ("id", "data", "layout")} for group in charts.values() for chart in group],
        "has_traces": bool(performance["traces"]) or latest_trace is not None,
        "latest_trace": latest_trace,
        "wider_range": wider_range,
        "api_url": f"{reverse('api-overview', args=[experiment.pk])}?{request.GET.urlencode()}".rstrip("?"),
    }
    return render_tab(request, experiment, "overview", "evalapp/overview/tab.html", context)


urlpatterns = [
    path("experiments/<int:experiment_id>/overview", overview_tab, name="experiment-overview"),
]
