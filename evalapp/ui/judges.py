"""The Judges tab."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from evalapp.ui.common import get_experiment, render_tab


@login_required
def judges_tab(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    return render_tab(request, experiment, "judges", "evalapp/judges/tab.html", {})


urlpatterns = [
    path("experiments/<int:experiment_id>/judges", judges_tab, name="experiment-judges"),
]
