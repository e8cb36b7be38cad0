from __future__ import annotations

from django.urls import path

from evaluations import api

PREFIX = "experiments/<int:experiment_id>/evaluation-runs"

api_urlpatterns = [
    path(PREFIX, api.RunListView.as_view(), name="api-runs"),
    path(f"{PREFIX}/<uuid:run_id>", api.RunDetailView.as_view(), name="api-run"),
    path(f"{PREFIX}/<uuid:run_id>/rows", api.RunRowsView.as_view(), name="api-run-rows"),
    path(f"{PREFIX}/<uuid:run_id>/predictions", api.RunPredictionsView.as_view(), name="api-run-predictions"),
    path(f"{PREFIX}/<uuid:run_id>/cancel", api.RunCancelView.as_view(), name="api-run-cancel"),
]
