"""A judge's shadow version on the pages: the diff page (where the shadow and the live version disagree, with both
rationales, the human label and each one's agreement with people), Promote and Discard (from the card or the diff
page), and "Save as shadow" on the judge's form (`start_from_form`, called by evalapp.ui.judges). judges.shadow
does the work."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.roles import editor_required
from evalapp.ui.agreement import _rows
from evalapp.ui.common import get_experiment, render_tab
from evalapp.ui.formatting import format_cost
from judges import shadow as shadows
from judges.acting import acting_judge
from judges.actions import JUDGE_FIELDS, clean_judge
from judges.agreement import MIN_PAIRS
from judges.errors import ConfigError
from judges.models import Judge, Scope
from traces.models import Experiment
from traces.payload import whole_number

# Form fields a shadow can't change (it judges the live version's items) — refused if "Save as shadow" sends
# them changed, rather than silently dropped.
_FIXED = [name for name in JUDGE_FIELDS if name not in (*shadows.SHADOW_FIELDS, "name", "scope", "builtin_key")]


def _judge(experiment: Experiment, judge_id: int) -> Judge:
    return get_object_or_404(Judge.objects.select_related("endpoint", "experiment"), pk=judge_id, experiment=experiment)


def start_from_form(judge: Judge, data: dict[str, Any], user: Any) -> Any:
    """"Save as shadow": the form's instructions, model and output settings as a shadow version. The form's other
    settings must be the judge's own (a shadow judges the live version's items). Raises ConfigError."""
    clean = clean_judge(judge.experiment, data, instance=judge)
    changed = {name: "a shadow judges the live version's items: save this with Save, or undo it to save a shadow" for name in _FIXED if clean[name] != getattr(judge, name)}
    if changed:
        raise ConfigError(changed)
    return shadows.start_shadow(judge, by=user, **{name: data[name] for name in shadows.SHADOW_FIELDS if name in data})


def shadow_card_line(stats: shadows.ShadowStats) -> str:
    """"shadow v3: 120 judged, $0.04" — the card's line, the shadow's cost apart from the live version's."""
    text = f"shadow v{stats.version.version}: {stats.judged:,} judged, {format_cost(stats.cost_usd)}"
    if stats.errors:
        text += f", {stats.errors:,} error{'s' if stats.errors != 1 else ''}"
    if stats.queued:
        text += f" · {stats.queued:,} queued"
    return text


def _back(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@editor_required
@require_POST
def shadow_promote(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    running = shadows.current_shadow(judge)
    try:
        live = shadows.promote_shadow(judge, by=request.user)
    except ConfigError as error:
        messages.error(request, f"Couldn't promote: {error}")
    else:
        messages.success(request, f"Promoted shadow v{running.version} of {judge.name}: it is live now, as version {live.version}.")
    return _back(request, reverse("experiment-judges", args=[experiment.pk]))


@editor_required
@require_POST
def shadow_discard(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    try:
        discarded = shadows.discard_shadow(judge, by=request.user)
    except ConfigError as error:
        messages.error(request, f"Couldn't discard: {error}")
    else:
        messages.success(request, f"Discarded shadow v{discarded.version} of {judge.name}. Its verdicts stay on the traces, marked shadow.")
    return _back(request, reverse("experiment-judges", args=[experiment.pk]))


@login_required
@require_GET
def shadow_diff_page(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    found = shadows.shadow_for_diff(judge, whole_number(request.GET.get("version", "")))
    page = max(1, min(whole_number(request.GET.get("page", "")) or 1, 100_000))
    context: dict[str, Any] = {"judge": judge, "shadow": found, "noun": "conversation" if judge.scope == Scope.SESSION else "trace", "min_pairs": MIN_PAIRS}
    if found is not None:
        diff = shadows.shadow_diff(judge, found, page=page)
        detail = "session-detail" if judge.scope == Scope.SESSION else "trace-detail"
        shadow_judge = acting_judge(found, judge, endpoint=judge.endpoint)
        stats = shadows.stats_of([found])[judge.pk]
        context.update(
            diff=diff,
            stats=stats,
            rows=[
                {
                    "row": row,
                    "url": reverse(detail, args=[experiment.pk, row.target_id]),
                    "live_text": judge.describe_value(row.live_value),
                    "shadow_text": shadow_judge.describe_value(row.shadow_value),
                    "human_text": judge.describe_value(row.human_value) if row.labelled else "",
                }
                for row in diff.rows
            ],
            live_agreement=_rows(judge, diff.live_agreement.as_json()),
            shadow_agreement=_rows(shadow_judge, diff.shadow_agreement.as_json()),
            cost_text=format_cost(stats.cost_usd),
            live_title=f"Live v{judge.version}",
            shadow_title=f"Shadow v{found.version}",
        )
        base = reverse("judge-shadow", args=[experiment.pk, judge.pk]) + f"?version={found.version}"
        context["previous_url"] = f"{base}&page={diff.page - 1}" if diff.page > 1 else ""
        context["next_url"] = f"{base}&page={diff.page + 1}" if diff.page < diff.pages else ""
    return render_tab(request, experiment, "judges", "evalapp/judges/shadow.html", context)


urlpatterns = [
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/shadow", shadow_diff_page, name="judge-shadow"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/shadow/promote", shadow_promote, name="judge-shadow-promote"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/shadow/discard", shadow_discard, name="judge-shadow-discard"),
]
