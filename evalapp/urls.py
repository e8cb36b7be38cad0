from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.forms import LoginView
from datasets.urls import api_urlpatterns as datasets_api
from evalapp import views
from evalapp.export_api import TraceExportView
from evalapp.overview.api import OverviewView
from evaluations.urls import api_urlpatterns as evaluations_api
from evaluations.urls_read import read_api_urlpatterns as evaluations_read_api
from judges.urls import api_urlpatterns as judges_api
from traces.api import OtlpTracesView
from traces.urls import api_urlpatterns as traces_api
from traces.urls import mlflow_urlpatterns

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("experiments/new", views.experiment_create, name="experiment-create"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment-detail"),
    path("", include("evalapp.ui.overview")),
    path("", include("evalapp.ui.traces")),
    # Before the trace page, whose traces/<trace_id> would take "add-to-dataset" for a trace id.
    path("", include("evalapp.ui.dataset_traces")),
    path("", include("evalapp.ui.trace_page")),
    path("", include("evalapp.ui.trace_actions")),
    path("", include("evalapp.ui.sessions")),
    path("", include("evalapp.ui.try_it")),
    path("", include("evalapp.ui.judges")),
    path("", include("evalapp.ui.agreement")),
    path("", include("evalapp.ui.align")),
    path("", include("evalapp.ui.shadow")),
    path("", include("evalapp.ui.backfill")),
    path("", include("evalapp.ui.endpoints")),
    path("", include("evalapp.ui.alerts")),
    path("", include("evalapp.ui.datasets")),
    path("", include("evalapp.ui.evaluations")),
    path("", include("evalapp.ui.retention")),
    path("", include("evalapp.ui.deletion")),
    path("login/", LoginView.as_view(), name="login"),  # failures counted: accounts.throttle
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=static("evalapp/favicon.ico"), permanent=True)),  # browsers ask here
    path("admin/", admin.site.urls),
    # Before the traces API, whose traces/<trace_id> would take "export" for a trace id.
    path("api/v1/experiments/<int:experiment_id>/traces/export", TraceExportView.as_view(), name="api-traces-export"),
    path("api/v1/", include(traces_api)),
    path("api/v1/", include(judges_api)),
    path("api/v1/", include(datasets_api)),
    path("api/v1/", include(evaluations_api)),
    path("api/v1/", include(evaluations_read_api)),
    path("api/v1/experiments/<int:experiment_id>/overview", OverviewView.as_view(), name="api-overview"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script from its own address (?script), not inline: the Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="evalapp/swagger_ui.html"), name="api-docs"),
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    path("", include(mlflow_urlpatterns)),  # MLflow's tracking-URI drop-in
]
