"""A judge's Agreement page (how it agrees with people, per version, and the disagreements) and its labelling queue
(one trace or session at a time, as the judge sees it, answered from the keyboard: static/evalapp/js/labelling.js).

The numbers come from judges.labels / judges.agreement, the queue's order and claims from judges.labelling; labels
are stored by traces.feedback.add_feedback like the trace page's feedback."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from evalapp.ui.common import get_experiment, render_tab
from judges.agreement import MIN_PAIRS, Estimate
from judges.labelling import claim, judge_view, next_item, progress, release
from judges.labels import load_pairs, report
from judges.models import Judge, OutputType, Scope
from traces.feedback import FeedbackError, add_feedback, read_value
from traces.models import Assessment, AssessmentSource, Experiment, Session, Trace
from traces.payload import whole_number

MAX_SKIPPED = 500


def _judge(experiment: Experiment, judge_id: int) -> Judge:
    return get_object_or_404(Judge.objects.select_related("endpoint"), pk=judge_id, experiment=experiment)


def figure(estimate: dict[str, Any] | Estimate | None, digits: int = 2) -> str:
    """"0.78 (0.66–0.89)" — a figure with its 95% interval; "—" when undefined."""
    if estimate is None:
        return "—"
    value, low, high = (estimate["value"], estimate["low"], estimate["high"]) if isinstance(estimate, dict) else (estimate.value, estimate.low, estimate.high)
    if value is None:
        return "undefined"
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def attach_agreement(judges: list[Judge]) -> None:
    """Sets `judge.agreement_text` for the Judges tab's cards: κ (or MAE for decimals) of the current version with
    its interval and n, or "insufficient (n of 20)". Two queries whatever the number of judges."""
    found = load_pairs(judges)
    for judge in judges:
        if judge.output_type == OutputType.STRING:
            judge.agreement_text = "not measured for text answers"
            continue
        agreement = found[judge.pk].agreement(judge.version)
        if not agreement.sufficient:
            judge.agreement_text = f"insufficient ({agreement.n} of {MIN_PAIRS})"
        elif judge.output_type == OutputType.FLOAT:
            judge.agreement_text = f"MAE {figure(agreement.mae)}, n = {agreement.n}"
        else:
            judge.agreement_text = f"κ {figure(agreement.kappa)}, n = {agreement.n}"


# --- the Agreement page -----------------------------------------------------------------------------------


def _rows(judge: Judge, agreement: dict[str, Any]) -> dict[str, Any]:
    """An agreement's JSON (judges.agreement.Agreement.as_json) with the texts the page shows."""
    confusion = agreement.get("confusion")
    return {
        **agreement,
        "figures": [
            (name, figure(agreement[key]))
            for key, name in (("accuracy", "Accuracy"), ("kappa", "Cohen's κ" + (" (quadratic weights)" if agreement["kappa_weights"] else "")), ("mae", "MAE"), ("spearman", "Spearman's ρ"))
            if agreement[key] is not None
        ],
        "matrix": None if not confusion or not confusion["rows"] else {
            "labels": [judge.describe_value(label) for label in confusion["labels"]],
            "rows": list(zip([judge.describe_value(label) for label in confusion["labels"]], confusion["rows"], strict=True)),
        },
    }


@login_required
@require_GET
def agreement_page(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    version = whole_number(request.GET.get("version", "")) or judge.version
    version = version if 1 <= version <= judge.version else judge.version
    page = max(1, min(whole_number(request.GET.get("page", "")) or 1, 100_000))
    data = report(judge, version, page)
    for item in data["disagreements"]["results"]:
        item["target_id"] = item.get("trace_id") or item.get("session_id")
        item["judge_text"], item["human_text"] = judge.describe_value(item["judge_value"]), judge.describe_value(item["human_value"])
        if item["second_label"]:
            item["second_text"] = judge.describe_value(item["second_label"]["value"])
    base = reverse("judge-agreement", args=[experiment.pk, judge.pk])
    pages = data["disagreements"]["pages"]
    context = {
        "judge": judge,
        "report": data,
        "versions": [_rows(judge, row) for row in data["versions"]],
        "inter_annotator": _rows(judge, data["inter_annotator"]),
        "min_pairs": MIN_PAIRS,
        "noun": "conversation" if judge.scope == Scope.SESSION else "trace",
        "previous_url": f"{base}?version={version}&page={page - 1}" if page > 1 else "",
        "next_url": f"{base}?version={version}&page={page + 1}" if page < pages else "",
        "label_url": reverse("judge-label", args=[experiment.pk, judge.pk]),
        "align_url": reverse("judge-align", args=[experiment.pk, judge.pk]),
    }
    return render_tab(request, experiment, "judges", "evalapp/judges/agreement.html", context)


# --- the labelling queue ----------------------------------------------------------------------------------


def _skip_key(judge: Judge) -> str:
    return f"label-skipped-{judge.pk}"


def _target(judge: Judge, target_pk: int) -> Trace | Session:
    model = Session if judge.scope == Scope.SESSION else Trace
    return get_object_or_404(model, pk=target_pk, experiment_id=judge.experiment_id)


def _mine(judge: Judge, user: Any):
    """This person's labels for the judge, oldest first (a newer label of the same item replaces the older)."""
    field = "session" if judge.scope == Scope.SESSION else "trace"
    return Assessment.objects.filter(
        **{f"{field}__experiment_id": judge.experiment_id}, name=judge.name, source_type=AssessmentSource.HUMAN, source_id=user.get_username(), valid=True,
    ).order_by("created_at", "pk")


def choices(judge: Judge) -> list[dict[str, str]]:
    """The answers with a key each: y/n, a digit per category (up to 9), the digits of a small whole-number scale."""
    if judge.output_type == OutputType.BOOLEAN:
        return [{"key": "y", "value": "yes", "text": "Yes"}, {"key": "n", "value": "no", "text": "No"}]
    if judge.output_type == OutputType.CATEGORICAL:
        return [{"key": str(number), "value": category, "text": category} for number, category in enumerate(judge.categories[:9], start=1)]
    low, high = judge.min_value, judge.max_value
    if judge.output_type == OutputType.INTEGER and low is not None and high is not None and 0 <= low and high <= 9:
        return [{"key": str(number), "value": str(number), "text": str(number)} for number in range(int(low), int(high) + 1)]
    return []


@login_required
@require_GET
def label_next(request: HttpRequest, experiment_id: int, judge_id: int) -> HttpResponse:
    """Hand this person the next item of the queue (claimed for them) — or say the queue is done for them."""
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    passed = whole_number(request.GET.get("skip", ""))
    if passed:  # → on an item not answered: pass it over, like s
        request.session[_skip_key(judge)] = [*request.session.get(_skip_key(judge), [])[-MAX_SKIPPED + 1 :], passed]
    found = next_item(judge, request.user, set(request.session.get(_skip_key(judge), [])))
    if found is not None:
        return redirect("judge-label-item", experiment.pk, judge.pk, found)
    context = {"judge": judge, "progress": progress(judge, request.user), "done": True, **_nav(judge, request.user, None)}
    return render_tab(request, experiment, "judges", "evalapp/judges/label.html", context)


def _nav(judge: Judge, user: Any, target_pk: int | None) -> dict[str, str]:
    """← the item labelled before this one (or the latest, from a new item); → the one after it, or the queue."""
    field = "session_id" if judge.scope == Scope.SESSION else "trace_id"
    history = list(_mine(judge, user).values_list(field, flat=True))
    position = history.index(target_pk) if target_pk in history else len(history)
    item = lambda pk: reverse("judge-label-item", args=[judge.experiment_id, judge.pk, pk])  # noqa: E731
    queue = reverse("judge-label", args=[judge.experiment_id, judge.pk])
    return {
        "previous_url": item(history[position - 1]) if position > 0 else "",
        "next_url": item(history[position + 1]) if position + 1 < len(history) else queue + (f"?skip={target_pk}" if target_pk and target_pk not in history else ""),
    }


@login_required
@require_http_methods(["GET", "POST"])
def label_item(request: HttpRequest, experiment_id: int, judge_id: int, target_pk: int) -> HttpResponse:
    experiment = get_experiment(experiment_id)
    judge = _judge(experiment, judge_id)
    target = _target(judge, target_pk)
    error = ""
    if request.method == "POST" and request.POST.get("action") == "skip":
        skipped = [pk for pk in request.session.get(_skip_key(judge), []) if pk != target.pk][-MAX_SKIPPED + 1 :]
        request.session[_skip_key(judge)] = [*skipped, target.pk]
        release(judge, request.user)
        return redirect("judge-label", experiment.pk, judge.pk)
    if request.method == "POST":
        where = {"session": target} if judge.scope == Scope.SESSION else {"trace": target}
        try:
            value = read_value(request.POST.get("value", ""), judge.value_rule)
            add_feedback(user=request.user, name=judge.name, value=value, rationale=request.POST.get("comment", ""), **where)
        except FeedbackError as problem:
            error = "; ".join(problem.errors.values())
        else:
            return redirect("judge-label-item", experiment.pk, judge.pk, target.pk)
    field = "session" if judge.scope == Scope.SESSION else "trace"
    mine = _mine(judge, request.user).filter(**{field: target}).last()
    held = not claim(judge, target.pk, request.user) and mine is None
    verdict = None
    if mine is not None:  # shown only once the person has answered: no anchoring
        verdict = Assessment.objects.filter(**{field: target}, source_id=f"judge:{judge.pk}", source_type=AssessmentSource.LLM_JUDGE, valid=True).first()
    context = {
        "judge": judge,
        "target": target,
        "target_id": target.session_id if judge.scope == Scope.SESSION else target.trace_id,
        "target_url": reverse("session-detail" if judge.scope == Scope.SESSION else "trace-detail", args=[experiment.pk, target.session_id if judge.scope == Scope.SESSION else target.trace_id]),
        "view": judge_view(judge, target),
        "choices": choices(judge),
        "mine": mine,
        "mine_text": judge.describe_value(mine.value) if mine is not None else "",
        "verdict": verdict,
        "verdict_text": judge.describe_value(verdict.value) if verdict is not None and not verdict.error_code else "",
        "agrees": verdict is not None and mine is not None and verdict.value == mine.value,
        "held": held,
        "error": error,
        "typed": request.POST.get("value", "") if error else "",
        "progress": progress(judge, request.user),
        "item_url": reverse("judge-label-item", args=[experiment.pk, judge.pk, target.pk]),
        **_nav(judge, request.user, target.pk),
    }
    return render_tab(request, experiment, "judges", "evalapp/judges/label.html", context)


urlpatterns = [
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/agreement", agreement_page, name="judge-agreement"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/label", label_next, name="judge-label"),
    path("experiments/<int:experiment_id>/judges/<int:judge_id>/label/<int:target_pk>", label_item, name="judge-label-item"),
]
