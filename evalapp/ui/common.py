"""What every experiment tab shares: the tab bar, full-page vs htmx-fragment rendering, and small helpers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from traces.models import Experiment

TABS = (
    ("overview", "Overview", "experiment-overview"),
    ("traces", "Traces", "experiment-traces"),
    ("sessions", "Sessions", "experiment-sessions"),
    ("judges", "Judges", "experiment-judges"),
    ("datasets", "Datasets", "experiment-datasets"),
    ("evaluations", "Evaluations", "experiment-evaluations"),
    ("alerts", "Alerts", "experiment-alerts"),
)
TAB_LABELS = {key: label for key, label, _ in TABS}


def get_experiment(experiment_id: int) -> Experiment:
    return get_object_or_404(Experiment, pk=experiment_id)


def is_tab_swap(request: HttpRequest) -> bool:
    """True when htmx asks for a whole tab (a tab click, or a link inside a tab that targets the page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == "experiment-page"


def is_partial_request(request: HttpRequest, target: str) -> bool:
    """True when htmx asks to refresh only the element with this id (search results, polling, "load more")."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


def render_tab(request: HttpRequest, experiment: Experiment, tab: str, template: str, context: dict[str, Any], **kwargs) -> HttpResponse:
    """Render a tab template (which must `{% extends tab_base %}` and fill `{% block tab %}`) as a full page, or as
    the #experiment-page fragment when htmx swapped the tab, so reloads and the back button land on the same view."""
    context = {
        **context,
        "experiment": experiment,
        "tab": tab,
        "tab_label": TAB_LABELS.get(tab, tab.title()),
        "tab_links": [(key, label, reverse(name, args=[experiment.pk])) for key, label, name in TABS],
        "tab_base": "evalapp/experiment_fragment.html" if is_tab_swap(request) else "evalapp/experiment_page.html",
    }
    response = render(request, template, context, **kwargs)
    response["Vary"] = "HX-Request, HX-Target"
    return response
