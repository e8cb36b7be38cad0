"""GET /api/v1/experiments/<id>/overview — the aggregates the Overview tab draws, as JSON (see evalapp.overview.compute)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalapp.overview import api_schema
from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import RangeError, parse_range
from traces.models import Experiment


@api_schema.overview
class OverviewView(APIView):
    def get(self, request: Request, experiment_id: int) -> Response:
        """Judge quality and performance over a time range, in time buckets.

        Query: `range=1h|24h|7d|30d` (default 7d), or `from` and optionally `to` (ISO dates — `to` includes
        that whole day — or ISO date-times; UTC when no offset; `to` defaults to now; at most 366 days; they win
        over `range`).
        Buckets: minutes up to 2 h, hours up to 48 h, days beyond; UTC, labelled by their start, every bucket
        of the range present (empty ones with zero counts and null rates).

            {"range": {"from": "2026-11-13T12:00:00Z", "to": "2026-11-20T12:00:00Z", "bucket": "day", "preset": "7d"},
             "judges": [{"name": "safety", "scope": "trace", "output_type": "boolean", "active": true, "version": 2,
                         "judged": 120, "errors": 3, "not_applicable": 0,
                         "pass_rate": 0.95, "mean": null, "categories": null, "cost_usd": 0.0132,
                         "human": {"count": 4, "pass_rate": 0.75},
                         "series": [{"bucket": "2026-11-13T00:00:00Z", "judged": 15, "errors": 0, "pass_rate": 0.93}, ...],
                         "versions": [{"version": 2, "created_at": "2026-11-16T09:12:00Z"}]}, ...],
             "performance": {"traces": 130, "errors": 4, "error_rate": 0.0308, "p50_ms": 1210.0, "p95_ms": 3900.5,
                             "percentiles_approximate": true, "tokens": 41200, "judge_cost_usd": 0.0411,
                             "series": [{"bucket": "2026-11-13T00:00:00Z", "traces": 17, "errors": 1, "error_rate": 0.0588,
                                         "p50_ms": 1190.0, "p95_ms": 3100.0, "tokens": 5400, "judge_cost_usd": 0.0051}, ...]}}

        Per judge: `judged` = valid judge verdicts, `errors` = failed judge calls ("not applicable" is neither);
        `pass_rate` for yes/no judges (and `corrected`: that rate corrected with the current version's sensitivity
        and specificity against people's labels — Rogan–Gladen, with a 95% interval — or why not), `mean` for
        integer/float judges, `categories` (share of each category)
        for categorical judges — the others are null, and each series point carries only its type's key
        (`pass_rate`, `mean` or `shares`). `cost_usd` includes re-runs. `human` counts people's feedback under the
        judge's name. `versions` are the judge's changes inside the range (its versions after the first, to mark on a chart).
        Percentiles (`p50_ms`, `p95_ms`) are over finished traces' durations. Up to 48 h (minute and hour
        buckets) they are exact (percentile_cont); beyond (day buckets) they come from hourly latency histograms
        with 5%-wide bins and are within 5% of the exact figure — `percentiles_approximate` says which. Every
        other number is exact either way. Trace verdicts and performance are placed at the trace's start, session
        verdicts at the conversation's last turn.

        400 `{"detail": ..., "errors": [{"field": "range"|"from"|"to", "message": ...}]}` for a bad range;
        404 for an unknown experiment.
        """
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        try:
            time_range = parse_range(request.query_params)
        except RangeError as error:
            return Response(error.as_json(), status=400)
        return Response(compute_overview(experiment, time_range))
