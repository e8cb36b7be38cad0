"""The Overview's charts as inline SVG, drawn on the server from the same plotly figures the page's script later hands
to plotly.js (design note 50): the first screen is complete on the first paint, with no script, and plotly takes each
chart over for hover and zoom without the chart moving.

Only what evalapp/ui/overview.py builds is understood: date x axes over whole buckets, scatter lines (with markers,
gaps where a value is None, a band between two traces filled "tonexty"), bars (stacked or not) centred in their
bucket, version marks (dotted shapes and their "vN" annotations), a horizontal legend on top, paper annotations.

Geometry: the figure is 240 px high with fixed margins (layout.margin). The x axis is drawn in percentages of the plot
width, which the server doesn't know: the <svg> (class "chart-svg", overview.css) is the plot's width, offset by the
left margin, and lets its axis labels overflow into the margins. Lines and bands sit in a nested <svg> scaled to that
width (preserveAspectRatio="none") with non-scaling strokes; markers, bars and text use percentages, so none are
stretched. Colours are the figures' CSS variables (var(--ok)), which presentation attributes accept."""

from __future__ import annotations

import html
import math
from datetime import datetime, timedelta
from typing import Any

PLOT_LEFT, PLOT_RIGHT = 52, 16  # px; overview.css positions .chart-svg with the same numbers
NO_DATA = "No data in this range"
# Step sizes plotly picks among for a date axis (seconds), and for a linear one (mantissas).
DATE_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400]
LINEAR_STEPS = [1, 2, 5, 10]
LEGEND_ROOM = 16
VIEW_WIDTH = 1000  # user units across the nested, stretched <svg>


def _attr(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def _label_text(plotly_text: str) -> str:
    """Figures carry labels as plotly reads them (markup as entities: overview.plot_text); SVG gets the text itself,
    escaped once by whoever writes it out."""
    return html.unescape(str(plotly_text))


def _values(trace: dict[str, Any]) -> list[float]:
    return [value for value in trace.get("y", []) if value is not None]


def has_data(figure: dict[str, Any]) -> bool:
    return any(_values(trace) for trace in figure["data"])


def with_empty_state(figure: dict[str, Any]) -> dict[str, Any]:
    """A figure with nothing to plot says so in its middle (for plotly too), and gets a y range of its own: plotly's
    autorange of no data would not be the SVG's."""
    if has_data(figure):
        return figure
    layout = figure["layout"]
    note = {"text": NO_DATA, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False, "font": {"size": 12, "color": "var(--muted)"}}
    yaxis = {"range": [0, 1], **layout["yaxis"]}
    return {**figure, "layout": {**layout, "yaxis": yaxis, "annotations": [*layout.get("annotations", []), note]}}


class Frame:
    """Where a figure's values land: x as a fraction of the plot's width, y in px from the top of the <svg>."""

    def __init__(self, layout: dict[str, Any], y_range: tuple[float, float], *, legend: bool = False):
        self.height = layout["height"]
        # plotly makes room for a legend with entries by lowering the plot's top by 16 px (measured: t 28 → 44).
        self.top = layout["margin"]["t"] + (LEGEND_ROOM if legend else 0)
        self.legend_y = layout["margin"]["t"] - 2
        self.bottom = self.height - layout["margin"]["b"]
        start, end = (_when(value) for value in layout["xaxis"]["range"])
        self.x_start, self.x_span = start, (end - start).total_seconds()
        self.y_low, self.y_high = y_range

    def x(self, moment: datetime) -> float:
        return (moment - self.x_start).total_seconds() / self.x_span

    def y(self, value: float) -> float:
        share = (value - self.y_low) / ((self.y_high - self.y_low) or 1)
        return self.bottom - share * (self.bottom - self.top)

    def bucket_middle(self, trace: dict[str, Any], start: str) -> float:
        return self.x(_when(start) + timedelta(milliseconds=trace.get("xperiod", 0) / 2))


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3f}%"


def _nice_step(rough: float, mantissas: list[float]) -> float:
    magnitude = 10 ** math.floor(math.log10(rough))
    return next(m * magnitude for m in mantissas if m * magnitude >= rough * 0.999)


def _y_range(figure: dict[str, Any]) -> tuple[float, float]:
    """The layout's y range, or plotly's autorange from zero: the largest bar (stacks summed) at 95% of the height,
    the largest point of a line at 93.5% (plotly pads for the markers; both measured against plotly 2's charts)."""
    yaxis = figure["layout"]["yaxis"]
    if "range" in yaxis:
        return tuple(yaxis["range"])
    bars = [trace for trace in figure["data"] if trace["type"] == "bar"]
    peaks = [max(_values(trace), default=0) / 0.935 for trace in figure["data"] if trace["type"] != "bar"]
    if bars and figure["layout"].get("barmode") == "stack":
        peaks.append(max((sum(trace["y"][index] or 0 for trace in bars) for index in range(len(bars[0]["y"]))), default=0) / 0.95)
    else:
        peaks += [max(_values(trace), default=0) / 0.95 for trace in bars]
    return 0.0, max(peaks, default=0) or 1.0


def _y_tick_label(value: float, step: float, yaxis: dict[str, Any]) -> str:
    if yaxis.get("tickformat") == ".0%":
        return f"{value * 100:.0f}%"
    digits = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    if abs(value) >= 1_000_000 and step >= 100_000:
        text = f"{value / 1_000_000:g}M"
    elif abs(value) >= 1000 and step >= 100:
        text = f"{value / 1000:g}k"
    else:  # plotly leaves off trailing zeros: 0, 0.2 … 1
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return f"{yaxis.get('tickprefix', '')}{text}{yaxis.get('ticksuffix', '')}"


def _y_axis(frame: Frame, yaxis: dict[str, Any]) -> list[str]:
    """Grid lines and labels; as plotly counts them, about one every 40 px of plot height."""
    count = min(max((frame.bottom - frame.top) / 40, 4), 9) + 1
    step = _nice_step((frame.y_high - frame.y_low) / count, LINEAR_STEPS)
    parts = []
    for index in range(math.ceil(frame.y_low / step - 1e-9), math.floor(frame.y_high / step + 1e-9) + 1):
        value = round(index * step, 12)
        y = f"{frame.y(value):.1f}"
        parts.append(f'<line x1="0" x2="100%" y1="{y}" y2="{y}" stroke="{_attr(yaxis.get("gridcolor", "var(--line)"))}"/>')
        parts.append(f'<text x="-2" y="{y}" dy="0.35em" text-anchor="end">{_attr(_y_tick_label(value, step, yaxis))}</text>')
    return parts


def _date_ticks(frame: Frame) -> tuple[int, list[datetime]]:
    """A step among plotly's date steps, about five labels across the card's width; ticks on whole steps (UTC)."""
    step = next((seconds for seconds in DATE_STEPS if seconds >= frame.x_span / 5), DATE_STEPS[-1])
    epoch = datetime(2000, 1, 2)  # a Sunday: weekly ticks fall on Sundays, as plotly's do
    first = epoch + timedelta(seconds=math.ceil((frame.x_start - epoch).total_seconds() / step) * step)
    ticks = []
    while (first - frame.x_start).total_seconds() <= frame.x_span:
        ticks.append(first)
        first += timedelta(seconds=step)
    return step, ticks


def _x_axis(frame: Frame, gridcolor: str) -> list[str]:
    """Grid lines on the ticks; labels as plotly's ticklabelmode "period" puts them: a day's label in the middle of
    that day, a time's on its tick; the date (or the year) under the first and wherever the day changes."""
    step, ticks = _date_ticks(frame)
    shift = timedelta(hours=12) if step >= 86400 else timedelta(0)
    parts, last_day = [], None
    for tick in ticks:
        at = frame.x(tick)
        parts.append(f'<line x1="{_percent(at)}" x2="{_percent(at)}" y1="{frame.top}" y2="{frame.bottom}" stroke="{_attr(gridcolor)}"/>')
        middle = frame.x(tick + shift)
        if not 0 <= middle <= 1:
            continue
        if step < 86400:
            text = f"{tick:%H:%M}"
            day = f"{tick:%b} {tick.day}, {tick.year}" if tick.date() != last_day else ""
            last_day = tick.date()
        else:
            text = f"{tick:%b} {tick.day}"
            day = f"{tick.year}" if last_day is None else ""
            last_day = tick.date()
        second = f'<tspan x="{_percent(middle)}" dy="1.2em">{_attr(day)}</tspan>' if day else ""
        parts.append(f'<text x="{_percent(middle)}" y="{frame.bottom + 13}" text-anchor="middle">{_attr(text)}{second}</text>')
    return parts


def _runs(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Consecutive points with a value: plotly leaves a gap where one is None (connectgaps off)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _stretched(frame: Frame, shapes: list[str]) -> str:
    """The nested <svg> whose user units span the plot's width (x in 0…VIEW_WIDTH) and the whole height in px."""
    if not shapes:
        return ""
    return (f'<svg x="0" y="0" width="100%" height="{frame.height}" viewBox="0 0 {VIEW_WIDTH} {frame.height}" '
            f'preserveAspectRatio="none" overflow="visible">{"".join(shapes)}</svg>')


def _points_attr(frame: Frame, run: list[tuple[float, float]]) -> str:
    return " ".join(f"{x * VIEW_WIDTH:.2f},{frame.y(y):.2f}" for x, y in run)


def _band(frame: Frame, upper: dict[str, Any], lower: dict[str, Any]) -> str:
    """The filled interval between an upper trace and the lower one that fills "tonexty" to it."""
    xs = [frame.bucket_middle(lower, start) for start in lower["x"]]
    pairs = [(x, None if high is None or low is None else (high, low)) for x, high, low in zip(xs, upper["y"], lower["y"], strict=True)]
    polygons = []
    for run in _runs(pairs):
        if len(run) < 2:  # one bucket alone has no area
            continue
        outline = [(x, high) for x, (high, _) in run] + [(x, low) for x, (_, low) in reversed(run)]
        polygons.append(f'<polygon points="{_points_attr(frame, outline)}" fill="{_attr(lower.get("fillcolor", "none"))}" stroke="none"/>')
    return "".join(polygons)


def _markers(frame: Frame, trace: dict[str, Any], points: list[tuple[float, float | None]]) -> list[str]:
    marker = trace.get("marker", {})
    colour = _attr(marker.get("color", "currentColor"))
    sizes, symbols = marker.get("size", 6), marker.get("symbol", "circle")
    texts = trace.get("text") if isinstance(trace.get("text"), list) else None
    circles = []
    for index, (x, y) in enumerate(points):
        if y is None:
            continue
        size = sizes[index] if isinstance(sizes, list) else sizes
        symbol = symbols[index] if isinstance(symbols, list) else symbols
        paint = f'fill="none" stroke="{colour}" stroke-width="1"' if symbol.endswith("-open") else f'fill="{colour}"'
        # A point's own words (its rate and n), as a tooltip until plotly's hover takes over.
        words = f"<title>{_attr(_label_text(texts[index]))}</title>" if texts else ""
        circles.append(f'<circle cx="{_percent(x)}" cy="{frame.y(y):.2f}" r="{size / 2}" {paint}>{words}</circle>')
    return circles


def _line(frame: Frame, trace: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A scatter trace: its line (stretched) and its markers (not stretched)."""
    points = [(frame.bucket_middle(trace, start), y) for start, y in zip(trace["x"], trace["y"], strict=True)]
    line = trace.get("line", {})
    lines = [
        f'<polyline points="{_points_attr(frame, run)}" fill="none" stroke="{_attr(line.get("color", "currentColor"))}" '
        f'stroke-width="{line.get("width", 2)}" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>'
        for run in _runs(points) if line.get("width", 2) and len(run) > 1
    ]
    markers = _markers(frame, trace, points) if "markers" in trace.get("mode", "") else []
    return lines, markers


def _bars(frame: Frame, traces: list[dict[str, Any]], stacked: bool, bargap: float) -> list[str]:
    """Bars centred in their bucket, (1 - bargap) of its width; stacked ones on the sum of those before them."""
    rects, base = [], {}
    for trace in traces:
        colour = _attr(trace.get("marker", {}).get("color", "currentColor"))
        width = trace.get("xperiod", 0) / 1000 * (1 - bargap) / frame.x_span
        for start, value in zip(trace["x"], trace["y"], strict=True):
            if not value:
                continue
            floor = base.get(start, 0) if stacked else 0
            top, bottom = frame.y(floor + value), frame.y(floor)
            middle = frame.bucket_middle(trace, start)
            rects.append(f'<rect x="{_percent(middle - width / 2)}" width="{_percent(width)}" y="{top:.2f}" '
                         f'height="{bottom - top:.2f}" fill="{colour}"/>')
            if stacked:
                base[start] = floor + value
    return rects


def _version_marks(frame: Frame, layout: dict[str, Any]) -> list[str]:
    parts = []
    for shape in layout.get("shapes", []):
        at = _percent(frame.x(_when(shape["x0"])))
        stroke = shape.get("line", {})
        parts.append(f'<line x1="{at}" x2="{at}" y1="{frame.top}" y2="{frame.bottom}" stroke="{_attr(stroke.get("color", "currentColor"))}" '
                     f'stroke-width="{stroke.get("width", 1)}" stroke-dasharray="3,3"/>')
    return parts


def _annotations(frame: Frame, layout: dict[str, Any]) -> list[str]:
    """Version labels above the plot at their date, and paper-placed notes (the empty state)."""
    parts = []
    for note in layout.get("annotations", []):
        x = note["x"] if note.get("xref") == "paper" else frame.x(_when(note["x"]))
        y = frame.y(frame.y_low + note["y"] * (frame.y_high - frame.y_low)) if note.get("yref") == "paper" else frame.y(note["y"])
        lift = -4 if note.get("yanchor") == "bottom" else 4
        font = note.get("font", {})
        parts.append(f'<text x="{_percent(x)}" y="{y + lift:.1f}" text-anchor="middle" font-size="{font.get("size", 12)}" '
                     f'fill="{_attr(font.get("color", "var(--muted)"))}">{_attr(_label_text(note["text"]))}</text>')
    return parts


def _legend_entries(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [trace for trace in traces if trace.get("showlegend") is not False and trace.get("name")]


def _legend(frame: Frame, traces: list[dict[str, Any]]) -> list[str]:
    """plotly's horizontal legend above the plot, from its left edge: each entry a 40 px swatch and its name (the
    names' widths estimated, ~7 px a character at 12 px)."""
    parts, x, y = [], 0.0, frame.legend_y
    for trace in _legend_entries(traces):
        name = _label_text(trace["name"])
        if trace["type"] == "bar":
            swatch = f'<rect x="{x + 15}" y="{y - 6}" width="12" height="12" fill="{_attr(trace["marker"]["color"])}"/>'
        else:
            colour = _attr(trace["line"]["color"])
            swatch = (f'<line x1="{x + 5}" x2="{x + 35}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
                      f'<circle cx="{x + 20}" cy="{y}" r="3" fill="{colour}"/>')
        parts.append(f'{swatch}<text x="{x + 40}" y="{y}" dy="0.35em">{_attr(name)}</text>')
        x += 40 + 7 * len(name) + 7
    return parts


def render_chart(figure: dict[str, Any], description: str) -> str:
    """The figure as an <svg> (markup, escaped throughout); `description` is its <title>: what it shows, with the
    sample sizes behind it."""
    layout, traces = figure["layout"], figure["data"]
    legend = bool(layout.get("showlegend") and _legend_entries(traces))
    frame = Frame(layout, _y_range(figure), legend=legend)
    stretched, on_top = [], []
    for index, trace in enumerate(traces):
        if trace["type"] == "scatter" and trace.get("fill") == "tonexty" and index:
            stretched.append(_band(frame, traces[index - 1], trace))
        elif trace["type"] == "scatter":
            lines, markers = _line(frame, trace)
            stretched += lines
            on_top += markers
    bars = [trace for trace in traces if trace["type"] == "bar"]
    body = [
        *_y_axis(frame, layout["yaxis"]),
        *_x_axis(frame, layout["xaxis"].get("gridcolor", "var(--line)")),
        *_bars(frame, bars, layout.get("barmode") == "stack", layout.get("bargap", 0.2)),
        _stretched(frame, stretched),
        *on_top,
        *_version_marks(frame, layout),
        *_annotations(frame, layout),
        *(_legend(frame, traces) if legend else []),
    ]
    return (f'<svg class="chart-svg" width="100%" height="{frame.height}" overflow="visible" aria-hidden="true" '
            f'focusable="false"><title>{_attr(description)}</title>{"".join(body)}</svg>')
