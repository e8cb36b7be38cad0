"""Routes of the evaluation runs' read API, included under /api/v1/ by evalapp/urls.py."""

from __future__ import annotations

from django.urls import path

from evaluations import api_read

read_api_urlpatterns = [
    path("evaluation-runs/<uuid:run_id>", api_read.RunDetailView.as_view(), name="api-evaluation-run"),
    path("evaluation-runs/<uuid:run_id>/rows", api_read.RunRowsView.as_view(), name="api-evaluation-run-rows"),
    path("evaluation-runs/<uuid:run_id>/compare/<uuid:other_id>", api_read.RunCompareView.as_view(), name="api-evaluation-run-compare"),
]
