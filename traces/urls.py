from __future__ import annotations

from django.urls import path, re_path

from traces import api, mlflow_api

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

# The MLflow drop-in (traces/mlflow_api.py), at the paths MLflow's client calls relative to its tracking URI.
mlflow_urlpatterns = [
    path("api/2.0/mlflow/experiments/get-by-name", mlflow_api.ExperimentByNameView.as_view(), name="mlflow-experiment-by-name"),
    path("api/2.0/mlflow/experiments/get", mlflow_api.ExperimentGetView.as_view(), name="mlflow-experiment"),
    path("api/2.0/mlflow/experiments/create", mlflow_api.ExperimentCreateView.as_view(), name="mlflow-experiment-create"),
    path("api/3.0/mlflow/traces", mlflow_api.StartTraceView.as_view(), name="mlflow-start-trace"),
    path("api/3.0/mlflow/traces/search", mlflow_api.SearchTracesView.as_view(), name="mlflow-search-traces"),
    path("api/3.0/mlflow/traces/<str:trace_id>", mlflow_api.TraceInfoView.as_view(), name="mlflow-trace-info"),
    path("api/3.0/mlflow/traces/<str:trace_id>/assessments", mlflow_api.AssessmentsView.as_view(), name="mlflow-assessments"),
    path(
        "api/3.0/mlflow/traces/<str:trace_id>/assessments/<str:assessment_id>",
        mlflow_api.AssessmentDetailView.as_view(),
        name="mlflow-assessment",
    ),
    path("api/2.0/mlflow/traces/<str:trace_id>/tags", mlflow_api.TraceTagsView.as_view(), name="mlflow-trace-tags"),
    path(
        "api/2.0/mlflow-artifacts/artifacts/traces/<str:trace_id>/traces.json",
        mlflow_api.TraceDataView.as_view(),
        name="mlflow-trace-data",
    ),
    re_path(r"^api/[0-9.]+/mlflow(-artifacts)?/", mlflow_api.UnknownCallView.as_view(), name="mlflow-unknown"),
    path("version", mlflow_api.UnknownCallView.as_view(), name="mlflow-version"),  # asked by the client; see mlflow_api
]
