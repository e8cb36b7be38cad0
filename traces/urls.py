from __future__ import annotations

from django.urls import path

from traces import api

api_urlpatterns = [
    path("experiments", api.ExperimentListView.as_view(), name="api-experiments"),
    path("experiments/<int:experiment_id>", api.ExperimentDetailView.as_view(), name="api-experiment"),
    path("experiments/<int:experiment_id>/traces", api.TraceListView.as_view(), name="api-traces"),
    path("experiments/<int:experiment_id>/sessions", api.SessionListView.as_view(), name="api-sessions"),
    path(
        "experiments/<int:experiment_id>/sessions/<str:session_id>",
        api.SessionDetailView.as_view(),
        name="api-session",
    ),
    path("experiments/<int:experiment_id>/assessments", api.AssessmentListView.as_view(), name="api-assessments"),
    path("traces/<str:trace_id>", api.TraceDetailView.as_view(), name="api-trace"),
]
