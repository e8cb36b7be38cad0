"""The Sessions tab: one row per conversation, its state and the session judges' verdicts, search and pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from judges import selection
from judges.actions import create_judge
from judges.models import Evaluation, EvaluationStatus, Judge
from judges.results import pause_judge
from judges.states import session_state, session_states
from tests.conftest import BASE_TIME, ingest, judge_pending, links_static, make_trace
from traces.models import Session

pytestmark = pytest.mark.django_db

T0 = BASE_TIME + timedelta(days=1)  # wall clock while the tests ingest; trace timestamps are BASE_TIME-based
HX_RESULTS = {"HX-Request": "true", "HX-Target": "sessions-results"}
HX_TAB = {"HX-Request": "true", "HX-Target": "experiment-page"}
# Tests that run the engine commit for real, as tests/judges do: its worker threads need to see the data.
runs_judges = pytest.mark.django_db(transaction=True)


def tab_url(experiment) -> str:
    return reverse("experiment-sessions", args=[experiment.pk])


def session_ids_shown(html: str) -> list[str]:
    return re.findall(r'<td class="mono"><a href="/experiments/\d+/sessions/([^"]+)"', html)


def frustration(experiment, endpoint, **fields) -> Judge:
    defaults = {"name": "frustration", "scope": "session", "builtin_key": "UserFrustration", "active": True, "session_idle_seconds": 300}
    return create_judge(experiment, endpoint=endpoint, **{**defaults, **fields})


def test_an_empty_experiment_says_how_to_make_sessions(editor_client, experiment):
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "No conversations in this experiment yet" in html
    assert '"session_id": "conversation-123"' in html and "session.id" in html  # how to set it, per ingest route
    assert "every 5s" not in html


def test_sessions_are_listed_most_recent_activity_first(editor_client, experiment):
    ingest(experiment,
        make_trace("a1", minutes=0, session_id="older", user_id="ana"),
        make_trace("a2", minutes=1, session_id="older", user_id="ana"),
        make_trace("b1", minutes=5, session_id="newer", user_id="ben"),
        make_trace("lonely", minutes=9),  # no session id: not a conversation
    )
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert session_ids_shown(html) == ["newer", "older"]
    older_row = html[html.index("/sessions/older") :].split("</tr>")[0]
    assert ">ana</a>" in older_row and '<td class="num">2</td>' in older_row
    assert "<html" in html and 'aria-label="Experiment sections"' in html


def test_htmx_gets_the_tab_fragment_or_only_the_results(editor_client, experiment):
    ingest(experiment, make_trace("a1", session_id="s1"))
    tab = editor_client.get(tab_url(experiment), headers=HX_TAB).content.decode()
    assert "<html" not in tab and 'aria-label="Experiment sections"' in tab and 'name="q"' in tab
    assert session_ids_shown(tab) == ["s1"]

    results = editor_client.get(tab_url(experiment), headers=HX_RESULTS).content.decode()
    assert results.lstrip().startswith('<div id="sessions-results"')
    assert "Experiment sections" not in results and 'name="q"' not in results
    assert session_ids_shown(results) == ["s1"]
    # a history restore must get the whole page, not the partial it last asked for
    restored = editor_client.get(tab_url(experiment), headers={**HX_RESULTS, "HX-History-Restore-Request": "true"})
    assert "<html" in restored.content.decode()


def test_pages_follow_the_cursor_without_overlap(editor_client, experiment):
    ingest(experiment, *[make_trace(f"t{n}", minutes=n, session_id=f"s{n:02d}") for n in range(55)])
    first = editor_client.get(tab_url(experiment)).content.decode()
    shown = session_ids_shown(first)
    assert shown == [f"s{n:02d}" for n in range(54, 4, -1)]
    older = re.search(r'<a href="(\?cursor=[^"]+)" hx-get="\?cursor=[^"]+" hx-target="#sessions-results"[^>]*hx-push-url="true">Older', first)
    assert older, "the next page is a real link that htmx also follows, pushing the URL"

    second = editor_client.get(tab_url(experiment) + older.group(1).replace("&amp;", "&"), headers=HX_RESULTS).content.decode()
    assert session_ids_shown(second) == ["s04", "s03", "s02", "s01", "s00"]
    assert "Older sessions" not in second and "Most recent" in second

    stale = editor_client.get(tab_url(experiment) + "?cursor=not-a-cursor").content.decode()
    assert "no longer valid" in stale and session_ids_shown(stale)[0] == "s54"


def test_search_by_session_id_user_and_period_keeps_the_filters_in_the_url(editor_client, experiment):
    with time_machine.travel(BASE_TIME + timedelta(hours=3), tick=False):
        ingest(experiment,
            make_trace("a1", minutes=0, session_id="checkout-17", user_id="ana"),
            make_trace("b1", minutes=170, session_id="refund-3", user_id="ben"),
            make_trace("c1", minutes=175, session_id="refund-4", user_id="ana.b"),
        )
        by_id = editor_client.get(tab_url(experiment) + "?q=REFUND", headers=HX_RESULTS).content.decode()
        assert session_ids_shown(by_id) == ["refund-4", "refund-3"]
        by_user_text = editor_client.get(tab_url(experiment) + "?q=ana").content.decode()
        assert session_ids_shown(by_user_text) == ["refund-4", "checkout-17"]
        assert 'value="ana"' in by_user_text  # the search box shows what was searched
        exact_user = editor_client.get(tab_url(experiment) + "?user=ana").content.decode()
        assert session_ids_shown(exact_user) == ["checkout-17"]
        recent = editor_client.get(tab_url(experiment) + "?period=1h").content.decode()
        assert session_ids_shown(recent) == ["refund-4", "refund-3"]
        assert '<option value="1h" selected>' in recent
        # The Overview's presets (evalapp.overview.ranges), after "Any time".
        choices = re.findall(r'<option value="([^"]*)"[^>]*>([^<]+)</option>', recent.split('name="period"')[1].split("</select>")[0])
        assert choices == [("", "Any time"), ("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")]
        nothing = editor_client.get(tab_url(experiment) + "?q=nope", headers=HX_RESULTS).content.decode()
        assert "No sessions match" in nothing and "clear the search" in nothing
        assert "No conversations in this experiment yet" not in nothing

    form = editor_client.get(tab_url(experiment)).content.decode()
    start = form.index('<form class="searchbar')
    search_form = form[start : form.index("</form>", start)]
    assert 'hx-push-url="true"' in search_form and 'hx-target="#sessions-results"' in search_form
    assert f'action="{tab_url(experiment)}"' in search_form and 'method="get"' in search_form


def test_a_conversation_waiting_to_go_idle_shows_a_countdown_and_the_page_polls(editor_client, experiment, endpoint):
    with time_machine.travel(T0, tick=False):
        frustration(experiment, endpoint, session_idle_seconds=300)
        ingest(experiment, make_trace("t1", session_id="s1"), make_trace("t2", minutes=1, session_id="s1"))
    with time_machine.travel(T0 + timedelta(seconds=139), tick=False):
        html = editor_client.get(tab_url(experiment)).content.decode()
    assert 'data-seconds-left="161"' in html and "judged in 2:41" in html
    assert 'hx-trigger="every 5s"' in html  # counts down by polling while it waits
    assert links_static(html, "evalapp/js/countdown.js")  # and ticks every second between polls (every page loads it)
    row = html[html.index("/sessions/s1") :].split("</tr>")[0]
    assert 'class="chip chip-waiting" title="waiting for the conversation to go idle (161 s left)"' in row


def test_a_conversation_the_filter_excludes_promises_no_verdict(editor_client, experiment, endpoint):
    with time_machine.travel(T0, tick=False):
        frustration(experiment, endpoint, filter_string="metadata.environment = 'staging'")  # production traffic only below
        ingest(experiment, make_trace("t1", session_id="s1"))
    with time_machine.travel(T0 + timedelta(seconds=10), tick=False):
        html = editor_client.get(tab_url(experiment)).content.decode()
    row = html[html.index("/sessions/s1") :].split("</tr>")[0]
    assert "judged in" not in row and "data-seconds-left" not in row  # no countdown to a verdict that won't come
    assert "does not match the filter metadata.environment = &#x27;staging&#x27;" in row


@runs_judges
def test_polling_stops_once_every_conversation_is_judged(editor_client, experiment, endpoint):
    with time_machine.travel(T0, tick=False):
        frustration(experiment, endpoint, session_idle_seconds=60)
        ingest(experiment, make_trace("t1", session_id="s1", response="This is useless!!!"))
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        queued = editor_client.get(tab_url(experiment), headers=HX_RESULTS).content.decode()
        assert "queued" in queued and 'hx-trigger="every 5s"' in queued  # idle, about to be judged
    with time_machine.travel(T0 + timedelta(seconds=62)):
        judge_pending(selection.select_sessions())
        judged = editor_client.get(tab_url(experiment), headers=HX_RESULTS).content.decode()
    assert "every 5s" not in judged
    row = judged[judged.index("/sessions/s1") :].split("</tr>")[0]
    assert "state-judged" in row
    value = Session.objects.get().assessments.get().value
    assert re.search(rf'class="chip chip-category"[^>]*>{value}</span>', row)


def test_a_conversation_without_judges_does_not_poll(editor_client, experiment):
    ingest(experiment, make_trace("t1", session_id="s1"))
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "state-active" in html and "every 5s" not in html
    assert "No session judges yet" in html


def test_each_session_judge_has_a_column_whose_chip_says_why_it_did_not_judge(editor_client, experiment, endpoint):
    with time_machine.travel(T0, tick=False):
        frustration(experiment, endpoint, session_idle_seconds=60, filter_string="metadata.environment = 'staging'")
        frustration(experiment, endpoint, name="completeness", builtin_key="ConversationCompleteness", active=False)
        ingest(experiment, make_trace("t1", session_id="s1"))
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        html = editor_client.get(tab_url(experiment)).content.decode()
    headers = re.findall(r"<th title=\"[^\"]*\">([a-z]+)", html)
    assert headers == ["completeness", "frustration"]
    row = html[html.index("/sessions/s1") :].split("</tr>")[0]
    assert 'title="automatic evaluation is off for this judge">not judged<' in row
    assert "does not match the filter metadata.environment = &#x27;staging&#x27;\">not judged<" in row
    assert "state-not_judged" in row and "every 5s" not in html


def judge_all_pending() -> None:
    while ids := list(Evaluation.objects.filter(status=EvaluationStatus.PENDING).values_list("pk", flat=True)):
        judge_pending(ids)


def mixed_sessions(experiment, endpoint) -> list[Judge]:
    """60 judged, 5 idle but not yet judged, 10 still active; five session judges in different situations."""
    with time_machine.travel(T0):
        judges = [
            frustration(experiment, endpoint, session_idle_seconds=60),
            frustration(experiment, endpoint, name="complete", builtin_key="ConversationCompleteness", session_idle_seconds=60,
                        filter_string="metadata.environment = 'production'"),
            frustration(experiment, endpoint, name="staging-only", builtin_key="ConversationalSafety", session_idle_seconds=60,
                        filter_string="metadata.environment = 'staging'"),
            frustration(experiment, endpoint, name="sampled", builtin_key="KnowledgeRetention", session_idle_seconds=60, sample_rate=0.5),
            frustration(experiment, endpoint, name="switched-off", builtin_key="ConversationalRoleAdherence", active=False),
        ]
        ingest(experiment, *[make_trace(f"j{n}", minutes=n, session_id=f"judged-{n}", user_id=f"u{n % 7}") for n in range(60)])
    with time_machine.travel(T0 + timedelta(seconds=61)):
        selection.select_sessions()
        judge_all_pending()
        ingest(experiment, *[make_trace(f"p{n}", minutes=100 + n, session_id=f"idle-{n}") for n in range(5)])
        ingest(experiment, make_trace("j0-again", minutes=104, session_id="judged-0"))  # new turn: re-judged later
    with time_machine.travel(T0 + timedelta(seconds=200)):
        ingest(experiment, *[make_trace(f"w{n}", minutes=200 + n, session_id=f"active-{n}") for n in range(10)])
    pause_judge(judges[3], "Daily spend cap reached")
    return judges


@runs_judges
def test_a_page_of_states_says_what_each_session_alone_would(experiment, endpoint):
    """The page's states don't depend on which other sessions share the page, and cover every rung."""
    mixed_sessions(experiment, endpoint)
    judges = list(Judge.objects.filter(experiment=experiment).order_by("name"))
    sessions = list(Session.objects.filter(experiment=experiment))
    with time_machine.travel(T0 + timedelta(seconds=230), tick=False):
        batch = session_states(judges, sessions)
        seen = set()
        for session in sessions:
            for judge in judges:
                one = session_state(judge, session)
                assert batch[(session.pk, judge.pk)] == one, (judge.name, session.session_id)
                seen.add(one.state)
    assert seen >= {"judged", "pending", "waiting_for_idle", "filtered_out", "judge_off", "paused"}


@runs_judges
def test_the_table_uses_a_fixed_number_of_queries(editor_client, experiment, endpoint, django_assert_max_num_queries):
    mixed_sessions(experiment, endpoint)
    with time_machine.travel(T0 + timedelta(seconds=230), tick=False):
        # login session + user, experiment, sessions, judges, assessments, evaluations, first traces + their spans
        # (only because a judge with a filter has idle sessions to decide on), and the editor check of the top bar
        with django_assert_max_num_queries(10):
            html = editor_client.get(tab_url(experiment)).content.decode()
    assert len(session_ids_shown(html)) == 50
    assert {"state-waiting", "state-pending", "state-judged"} <= set(re.findall(r"state-[a-z_]+", html))
    assert html.count('class="chip ') >= 50 * 5


def test_session_ids_and_users_render_as_text(editor_client, experiment):
    ingest(experiment, make_trace("t1", session_id="<script>alert(1)</script>", user_id="<img src=x onerror=alert(2)>"))
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html


def test_viewers_see_the_tab_and_anonymous_users_are_sent_to_log_in(client, viewer, experiment):
    ingest(experiment, make_trace("t1", session_id="s1"))
    assert client.get(tab_url(experiment)).status_code == 302
    client.force_login(viewer)
    assert session_ids_shown(client.get(tab_url(experiment)).content.decode()) == ["s1"]
