from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from evalapp import api_docs, views  # noqa: F401 (api_docs documents the API views on import)
from evalapp.overview_api import OverviewView
from judges.urls import api_urlpatterns as judges_api
from traces.api import OtlpTracesView
from traces.urls import api_urlpatterns as traces_api

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("experiments/new", views.experiment_create, name="experiment-create"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment-detail"),
    path("", include("evalapp.ui.overview")),
    path("", include("evalapp.ui.traces")),
    path("", include("evalapp.ui.sessions")),
    path("", include("evalapp.ui.judges")),
    path("", include("evalapp.ui.endpoints")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(traces_api)),
    path("api/v1/", include(judges_api)),
    path("api/v1/experiments/<int:experiment_id>/overview", OverviewView.as_view(), name="api-overview"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
]
