"""Routes of the API that starts and feeds evaluation runs (reads: evaluations.urls_read), under /api/v1/."""

from __future__ import annotations

from django.urls import path

from evaluations import api

PREFIX = "experiments/<int:experiment_id>/evaluation-runs"

api_urlpatterns = [
    path(PREFIX, api.RunListView.as_view(), name="api-runs"),
    path(f"{PREFIX}/<uuid:run_id>/predictions", api.RunPredictionsView.as_view(), name="api-run-predictions"),
    path(f"{PREFIX}/<uuid:run_id>/cancel", api.RunCancelView.as_view(), name="api-run-cancel"),
]
