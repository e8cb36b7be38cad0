"""The Judges tab: a card per judge with its settings and last day's numbers, the on/off switch, the empty state."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from judges.actions import create_judge
from judges.endpoint_actions import create_endpoint
from judges.models import Evaluation, EvaluationStatus, Judge
from judges.results import pause_judge
from tests.conftest import BASE_TIME, ingest, judge_now, links_static, make_trace, window_plan_queries
from traces.models import Trace

pytestmark = pytest.mark.django_db

SOON_AFTER = BASE_TIME + timedelta(hours=1)  # make_trace's traces start at BASE_TIME
HX_TAB = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "experiment-page"}
HX = {"HTTP_HX_REQUEST": "true"}


def tab_url(experiment) -> str:
    return reverse("experiment-judges", args=[experiment.pk])


def toggle_url(judge) -> str:
    return reverse("judge-toggle", args=[judge.experiment_id, judge.pk])


def card_html(html: str, judge) -> str:
    start = html.index(f'id="judge-card-{judge.pk}"')
    return html[start : html.index("</article>", start)]


@pytest.fixture
def quiet_endpoint(db):
    """An endpoint no test calls: for judges that only need to exist."""
    return create_endpoint(name="gpt-mini", model="openai/gpt-4.1-mini", api_key="sk-never-called-0000")


def test_empty_tab_tells_an_editor_to_add_an_endpoint_first(editor_client, experiment):
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "No LLM judges in this experiment yet" in html
    assert reverse("endpoint-new") in html and "add a model endpoint" in html


def test_empty_tab_with_an_endpoint_offers_a_new_judge(editor_client, experiment, quiet_endpoint):
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "No LLM judges in this experiment yet" in html
    assert html.count(reverse("judge-new", args=[experiment.pk])) >= 2  # header button and empty state
    assert "+ New LLM judge" in html


def test_viewers_see_the_judges_but_no_buttons_to_change_them(viewer_client, experiment, quiet_endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=quiet_endpoint)
    html = viewer_client.get(tab_url(experiment)).content.decode()
    assert "polite" in html and reverse("judge-edit", args=[experiment.pk, judge.pk]) in html
    assert "+ New LLM judge" not in html
    assert toggle_url(judge) not in html and "Switch on" not in html


def test_full_page_and_htmx_tab_swap(editor_client, experiment, quiet_endpoint):
    create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=quiet_endpoint)
    full = editor_client.get(tab_url(experiment))
    fragment = editor_client.get(tab_url(experiment), **HX_TAB)
    assert full.status_code == fragment.status_code == 200
    assert "<html" in full.content.decode() and 'id="experiment-page"' in full.content.decode()
    assert "<html" not in fragment.content.decode() and "judge-card" in fragment.content.decode()
    # Every area's CSS is in the page's head, so a swapped-in tab is styled at once (no link in the fragment).
    assert links_static(full.content.decode(), "evalapp/judges.css") and not links_static(fragment.content.decode(), "evalapp/judges.css")
    assert "HX-Request" in full["Vary"]


def test_a_card_shows_settings_version_pause_and_the_last_day(editor_client, experiment, endpoint):
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    judge = create_judge(
        experiment,
        name="safety",
        builtin_key="Safety",
        endpoint=endpoint,
        active=True,
        sample_rate=0.25,
        filter_string="metadata.environment = 'production'",
    )
    judge = Judge.objects.select_related("endpoint").get(pk=judge.pk)
    for trace in Trace.objects.all():
        judge_now(judge, trace)  # real calls to the stand-in: judged, with a cost
    custom = create_judge(experiment, name="needs_question", instructions="Is {{ inputs.question }} answered?", endpoint=endpoint)
    custom = Judge.objects.select_related("endpoint").get(pk=custom.pk)
    judge_now(custom, Trace.objects.get(trace_id="t1"))  # no such input: not applicable, not an error
    pause_judge(judge, "Authentication failed at Stand-in (test): bad key")

    with time_machine.travel(SOON_AFTER):  # the card counts what was traced in the last 24 hours
        html = editor_client.get(tab_url(experiment)).content.decode()
    card = card_html(html, judge)
    assert "Built-in: Safety" in card and "Traces" in card
    assert "Stand-in (test)" in card and "openai/evalapp-standin" in card and "stand-in, not a real LLM" in card
    assert re.search(r'chip-ok">on<', card) and "Switch off" in card
    assert "25%" in card and "metadata.environment = &#x27;production&#x27;" in card
    assert "v1" in card
    assert "<strong>2</strong> judged" in card and "<strong>0</strong> errors" in card
    assert re.search(r"<strong>\$0\.0\d+</strong> cost", card)
    assert "Paused:</strong> Authentication failed at Stand-in (test): bad key" in card

    other = card_html(html, custom)
    assert "Custom judge" in other and re.search(r'chip-none">off<', other) and "Switch on" in other
    assert "<strong>0</strong> judged" in other and "1 not applicable" in other and "<strong>0</strong> errors" in other


def test_failed_calls_count_as_errors(editor_client, experiment, endpoint, standin, fast_retries):
    ingest(experiment, make_trace("t1"))
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    judge = Judge.objects.select_related("endpoint").get(pk=judge.pk)
    standin.config.script = ["malformed"]  # an answer that can't be read: an error (a provider outage is retried instead)
    judge_now(judge, Trace.objects.get())
    assert Evaluation.objects.get().status == EvaluationStatus.ERROR
    with time_machine.travel(SOON_AFTER):
        card = card_html(editor_client.get(tab_url(experiment)).content.decode(), judge)
    assert "<strong>0</strong> judged" in card and "<strong>1</strong> error<" in card


def test_the_card_counts_what_was_traced_in_the_last_24_hours_as_the_overview_does(editor_client, experiment, endpoint):
    from evalapp.overview.compute import compute_overview
    from evalapp.overview.ranges import parse_range

    ingest(experiment, make_trace("day-before", minutes=-25 * 60), make_trace("t2", minutes=1), make_trace("t3", minutes=2))
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=endpoint)
    judge = Judge.objects.select_related("endpoint").get(pk=judge.pk)
    for trace in Trace.objects.all():
        judge_now(judge, trace)  # all three judged now; one of them was traced 25 hours before the others
    queued = Evaluation.objects.get(trace__trace_id="t3")
    Evaluation.objects.filter(pk=queued.pk).update(status=EvaluationStatus.PENDING, finished_at=None)  # judged again soon
    with time_machine.travel(SOON_AFTER):
        card = card_html(editor_client.get(tab_url(experiment)).content.decode(), judge)
        overview = compute_overview(experiment, parse_range({"range": "24h"}))
    assert "<strong>2</strong> judged" in card and "1 queued now" in card
    assert overview["judges"][0]["judged"] == 2  # the same judge, the same "last 24 hours", the same number
    assert "Traced in the last 24 h" in card
    with time_machine.travel(SOON_AFTER + timedelta(days=2)):  # nothing traced lately: only the queued work shows
        card = card_html(editor_client.get(tab_url(experiment)).content.decode(), judge)
    assert "<strong>0</strong> judged" in card and "1 queued now" in card and "<strong>$0</strong> cost" in card


def test_switch_on_and_off_from_the_card(editor_client, experiment, quiet_endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=quiet_endpoint)
    on = editor_client.post(toggle_url(judge), {"active": "on"}, **HX)
    assert on.status_code == 200
    judge.refresh_from_db()
    assert judge.active and judge.enabled_at is not None
    assert f'id="judge-card-{judge.pk}"' in on.content.decode() and "Switch off" in on.content.decode()
    assert "<html" not in on.content.decode()

    again = editor_client.post(toggle_url(judge), {"active": "on"}, **HX)  # a double click changes nothing more
    assert "Switch off" in again.content.decode()

    off = editor_client.post(toggle_url(judge), {"active": "off"})  # without htmx: back to the tab
    assert off.status_code == 302 and off["Location"] == tab_url(experiment)
    judge.refresh_from_db()
    assert not judge.active
    assert judge.version == 1  # on/off is not a new version


def test_viewers_cannot_switch_a_judge(viewer_client, experiment, quiet_endpoint):
    judge = create_judge(experiment, name="polite", instructions="Is {{ outputs }} polite?", endpoint=quiet_endpoint)
    assert viewer_client.post(toggle_url(judge), {"active": "on"}, **HX).status_code == 403
    judge.refresh_from_db()
    assert not judge.active


def test_a_judge_of_another_experiment_is_not_found(editor_client, experiment, quiet_endpoint):
    from traces.actions import create_experiment

    other = create_experiment("other")
    judge = create_judge(other, name="polite", instructions="Is {{ outputs }} polite?", endpoint=quiet_endpoint)
    assert editor_client.post(reverse("judge-toggle", args=[experiment.pk, judge.pk]), {"active": "on"}).status_code == 404


def test_the_tab_takes_the_same_few_queries_however_many_judges(editor_client, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    trace = Trace.objects.get()

    def add_judges(count: int, start: int) -> None:
        for number in range(start, start + count):
            judge = create_judge(experiment, name=f"judge_{number}", instructions="Is {{ outputs }} ok?", endpoint=endpoint, active=True)
            judge_now(Judge.objects.select_related("endpoint").get(pk=judge.pk), trace)

    add_judges(2, 0)
    with CaptureQueriesContext(connection) as two:
        editor_client.get(tab_url(experiment))
    add_judges(6, 2)
    with CaptureQueriesContext(connection) as eight:
        html = editor_client.get(tab_url(experiment)).content.decode()
    assert html.count('class="card judge-card') == 8
    assert len(eight.captured_queries) == len(two.captured_queries)


def test_query_count_is_pinned(editor_client, experiment, endpoint, django_assert_max_num_queries):
    ingest(experiment, make_trace("t1"))
    for number in range(5):
        judge = create_judge(experiment, name=f"judge_{number}", instructions="Is {{ outputs }} ok?", endpoint=endpoint)
        judge_now(Judge.objects.select_related("endpoint").get(pk=judge.pk), Trace.objects.get())
    # session, user, editor group, experiment, judges with their endpoints, the last 24 h (the experiment's judges'
    # categories, the stored hours, trace and session verdicts and traces of the hours not stored yet, and storing
    # them: savepoint, insert, release; on PostgreSQL with its planner settings), what is queued, and whether the
    # sweep runs (its last run; its schedule: it hasn't run in a test), and agreement with people (the labels, the
    # verdicts on them)
    with django_assert_max_num_queries(17 + window_plan_queries()):
        response = editor_client.get(tab_url(experiment))
    assert response.status_code == 200
