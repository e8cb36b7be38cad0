from __future__ import annotations

from django.urls import path

from judges import api, shadow_api

api_urlpatterns = [
    path("endpoints", api.EndpointListView.as_view(), name="api-endpoints"),
    path("endpoints/<int:endpoint_id>", api.EndpointDetailView.as_view(), name="api-endpoint"),
    path("endpoints/<int:endpoint_id>/test", api.EndpointTestView.as_view(), name="api-endpoint-test"),
    path("experiments/<int:experiment_id>/judges", api.JudgeListView.as_view(), name="api-judges"),
    path("experiments/<int:experiment_id>/judges/<str:name>", api.JudgeDetailView.as_view(), name="api-judge"),
    path("experiments/<int:experiment_id>/judges/<str:name>/start", api.JudgeStartView.as_view(), name="api-judge-start"),
    path("experiments/<int:experiment_id>/judges/<str:name>/stop", api.JudgeStopView.as_view(), name="api-judge-stop"),
    path("experiments/<int:experiment_id>/judges/<str:name>/versions", api.JudgeVersionsView.as_view(), name="api-judge-versions"),
    path("experiments/<int:experiment_id>/judges/<str:name>/run", api.JudgeRunView.as_view(), name="api-judge-run"),
    path("experiments/<int:experiment_id>/judges/<str:name>/agreement", api.JudgeAgreementView.as_view(), name="api-judge-agreement"),
    path("experiments/<int:experiment_id>/judges/<str:name>/shadow", shadow_api.ShadowView.as_view(), name="api-judge-shadow"),
    path("experiments/<int:experiment_id>/judges/<str:name>/shadow/promote", shadow_api.ShadowPromoteView.as_view(), name="api-judge-shadow-promote"),
    path("experiments/<int:experiment_id>/judges/<str:name>/shadow/discard", shadow_api.ShadowDiscardView.as_view(), name="api-judge-shadow-discard"),
    path("experiments/<int:experiment_id>/judges/<str:name>/shadow/diff", shadow_api.ShadowDiffView.as_view(), name="api-judge-shadow-diff"),
    path("jobs/<uuid:job_id>", api.JobView.as_view(), name="api-job"),
    path("traces/<str:trace_id>/judges", api.TraceJudgeStatesView.as_view(), name="api-trace-judges"),
    path(
        "experiments/<int:experiment_id>/sessions/<str:session_id>/judges",
        api.SessionJudgeStatesView.as_view(),
        name="api-session-judges",
    ),
]
