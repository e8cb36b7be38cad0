"""Settings → Model endpoints: list, add, edit, test connection (the key is write-only)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from judges.models import ModelEndpoint


@login_required
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evalapp/endpoints/list.html", {"endpoints": ModelEndpoint.objects.order_by("name")})


urlpatterns = [
    path("settings/endpoints", endpoint_list, name="endpoint-list"),
]
