"""Settings → Model endpoints: list, add, edit, test connection.

The API key is write-only: no page ever renders it, not even masked. The edit form says whether one is set and
offers "leave blank to keep" and "tick to clear"; judges.actions.update_endpoint applies exactly that."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import editor_required
from evalapp.ui.common import is_partial_request
from evalapp.ui.judge_forms import EndpointForm
from judges.endpoint_actions import check_connection, create_endpoint, update_endpoint
from judges.errors import ConfigError
from judges.models import ModelEndpoint, OutputMode

VARY = "HX-Request, HX-Target"


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    response = render(request, template, context)
    response["Vary"] = VARY
    return response


@login_required
@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return _render(request, "evalapp/endpoints/list.html", {"endpoints": ModelEndpoint.objects.order_by("name")})


def _render_form(request: HttpRequest, form: EndpointForm, endpoint: ModelEndpoint | None) -> HttpResponse:
    context = {
        "form": form,
        "endpoint": endpoint,
        "output_modes": OutputMode.choices,
        "form_url": reverse("endpoint-edit", args=[endpoint.pk]) if endpoint else reverse("endpoint-new"),
        # Typed a key, but something else was wrong: the key is not sent back, so say it must be typed again.
        "key_not_kept": form.is_bound and bool(form.data.get("api_key")),
    }
    if is_partial_request(request, "endpoint-form"):
        return _render(request, "evalapp/endpoints/form.html#endpoint-form", context)
    return _render(request, "evalapp/endpoints/form.html", context)


def _saved(request: HttpRequest, text: str) -> HttpResponse:
    messages.success(request, text)
    url = reverse("endpoint-list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@editor_required
@require_http_methods(["GET", "POST"])
def endpoint_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render_form(request, EndpointForm.blank(), None)
    form = EndpointForm(request.POST)
    form.is_valid()  # every field is optional text: this only fills cleaned_data
    try:
        endpoint = create_endpoint(allow_server_key=request.user.is_staff, user=request.user, **form.action_data(endpoint=None, staff=request.user.is_staff))
    except ConfigError as error:
        form.add_config_errors(error)
        return _render_form(request, form, None)
    return _saved(request, f"Added the model endpoint {endpoint.name}. Test its connection below.")


@editor_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(ModelEndpoint, pk=endpoint_id)
    if request.method == "GET":
        return _render_form(request, EndpointForm.of(endpoint), endpoint)
    form = EndpointForm(request.POST)
    form.is_valid()
    try:
        endpoint = update_endpoint(endpoint, allow_server_key=request.user.is_staff, user=request.user, **form.action_data(endpoint=endpoint, staff=request.user.is_staff))
    except ConfigError as error:
        form.add_config_errors(error)
        return _render_form(request, form, endpoint)
    if endpoint.key_dropped:
        messages.warning(request, f"The stored API key of {endpoint.name} was removed because its address or provider changed: enter the key for the new one.")
    return _saved(request, f"Saved the model endpoint {endpoint.name}.")


@editor_required
@require_POST
def endpoint_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """One tiny call to the model; the answer (or the provider's error in plain words) shows next to the button."""
    endpoint = get_object_or_404(ModelEndpoint, pk=endpoint_id)
    ok, message = check_connection(endpoint)
    if request.htmx:
        return _render(request, "evalapp/endpoints/_test_result.html", {"ok": ok, "message": message})
    (messages.success if ok else messages.error)(request, f"{endpoint.name}: {message}")
    return redirect("endpoint-list")


urlpatterns = [
    path("settings/endpoints", endpoint_list, name="endpoint-list"),
    path("settings/endpoints/new", endpoint_new, name="endpoint-new"),
    path("settings/endpoints/<int:endpoint_id>", endpoint_edit, name="endpoint-edit"),
    path("settings/endpoints/<int:endpoint_id>/test", endpoint_test, name="endpoint-test"),
]
