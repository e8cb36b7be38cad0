"""A judge's shadow version on the pages: "Save as shadow" on the form, the card's line (its cost apart),
Promote and Discard, the diff page, and shadow verdicts marked on the trace and session pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from judges import selection, shadow, tasks
from judges.actions import create_judge
from judges.models import JudgeVersion, VersionRole
from tests.conftest import ingest, make_trace
from tests.ui.test_judge_form import form_data

pytestmark = pytest.mark.django_db(transaction=True)

HX_FORM = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "judge-form"}
TONE = "Is the tone of {{ outputs }} polite?"


@pytest.fixture
def judge(experiment, endpoint):
    return create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint, active=True)


def edit_url(judge) -> str:
    return reverse("judge-edit", args=[judge.experiment_id, judge.pk])


def judged_with_shadow(judge, count: int = 3):
    shadow.start_shadow(judge, instructions=TONE)
    traces = ingest(judge.experiment, *(make_trace(f"t{n}", minutes=n) for n in range(count)))
    tasks.judge_evaluations(selection.select_traces(judge.experiment_id, [trace.pk for trace in traces]))
    return traces


def test_save_as_shadow_starts_one_and_leaves_the_live_judge_as_it_was(editor_client, judge, endpoint):
    assert 'name="_as_shadow"' in editor_client.get(edit_url(judge)).content.decode()
    typed = form_data(endpoint, name="polite", instructions=TONE, active="on", _as_shadow="1")
    response = editor_client.post(edit_url(judge), typed, **HX_FORM)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("experiment-judges", args=[judge.experiment_id])
    judge.refresh_from_db()
    assert judge.instructions == "Is {{ outputs }} polite?" and judge.version == 1
    started = JudgeVersion.all_objects.get(role=VersionRole.SHADOW)
    assert started.config["instructions"] == TONE
    form = editor_client.get(edit_url(judge)).content.decode()
    assert 'name="_as_shadow"' not in form and "compare, promote or discard" in form


def test_save_as_shadow_refuses_a_changed_sample_rate_inline(editor_client, judge, endpoint):
    typed = form_data(endpoint, name="polite", instructions=TONE, active="on", sample_rate_percent="50", _as_shadow="1")
    html = editor_client.post(edit_url(judge), typed, **HX_FORM).content.decode()
    assert "a shadow judges the live version&#x27;s items" in html
    assert not JudgeVersion.all_objects.filter(role=VersionRole.SHADOW).exists()


def test_the_card_shows_the_shadow_and_its_cost_apart(editor_client, judge, standin):
    judged_with_shadow(judge)
    html = editor_client.get(reverse("experiment-judges", args=[judge.experiment_id])).content.decode()
    line = html[html.index('class="judge-shadow"') :]
    assert "shadow v2: 3 judged, $0.0" in line
    assert reverse("judge-shadow", args=[judge.experiment_id, judge.pk]) in line
    assert reverse("judge-shadow-promote", args=[judge.experiment_id, judge.pk]) in line


def test_the_diff_page_and_the_trace_page_mark_the_shadow(editor_client, judge, standin):
    traces = judged_with_shadow(judge)
    page = editor_client.get(reverse("judge-shadow", args=[judge.experiment_id, judge.pk])).content.decode()
    assert "live v1 vs" in page and "shadow v2" in page and "3 traces judged by both" in page
    assert "insufficient" in page and 'id="shadow-promote"' in page
    trace_page = editor_client.get(reverse("trace-detail", args=[judge.experiment_id, traces[0].trace_id])).content.decode()
    assert trace_page.count('class="shadow-badge"') == 1 and "Shadow versions of polite" in trace_page
    assert "shadow version v2" in trace_page


def test_a_session_page_marks_shadow_verdicts(editor_client, experiment, endpoint, standin):
    from django.utils import timezone

    judge = create_judge(
        experiment, name="calm", scope="session", instructions="Was the user frustrated in {{ conversation }}?", endpoint=endpoint, active=True,
    )
    shadow.start_shadow(judge, instructions="Was the user angry in {{ conversation }}?")
    ingest(experiment, make_trace("c1", session_id="s1"))
    from datetime import timedelta

    tasks.judge_evaluations(selection.select_sessions(timezone.now() + timedelta(minutes=10)))
    html = editor_client.get(reverse("session-detail", args=[experiment.pk, "s1"])).content.decode()
    assert html.count('class="shadow-badge"') == 1 and "shadow version, counted nowhere" in html


def test_promote_and_discard_from_the_pages(editor_client, judge):
    shadow.start_shadow(judge, instructions=TONE)
    response = editor_client.post(reverse("judge-shadow-promote", args=[judge.experiment_id, judge.pk]))
    assert response.status_code == 302
    judge.refresh_from_db()
    assert judge.version == 3 and judge.instructions == TONE
    shadow.start_shadow(judge, instructions=TONE + " Strictly.")
    editor_client.post(reverse("judge-shadow-discard", args=[judge.experiment_id, judge.pk]))
    assert JudgeVersion.all_objects.get(version=4).role == VersionRole.DISCARDED


def test_viewers_see_the_diff_but_cannot_start_promote_or_discard(viewer_client, judge, endpoint):
    shadow.start_shadow(judge, instructions=TONE)
    assert viewer_client.get(reverse("judge-shadow", args=[judge.experiment_id, judge.pk])).status_code == 200
    assert viewer_client.post(reverse("judge-shadow-promote", args=[judge.experiment_id, judge.pk])).status_code == 403
    assert viewer_client.post(reverse("judge-shadow-discard", args=[judge.experiment_id, judge.pk])).status_code == 403
    typed = form_data(endpoint, name="polite", instructions=TONE + " Again.", active="on", _as_shadow="1")
    assert viewer_client.post(edit_url(judge), typed).status_code == 403
    assert JudgeVersion.all_objects.get(role=VersionRole.SHADOW).version == 2
