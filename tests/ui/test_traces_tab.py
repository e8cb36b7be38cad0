"""The Traces tab: newest first, a verdict chip per trace judge, the filter language, quick filters, pages, and
pending chips that poll until they fill in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from judges.actions import create_judge
from judges.manual import start_job
from judges.models import Evaluation, EvaluationStatus, Judge
from judges.results import pause_judge
from tests.conftest import BASE_TIME, ingest, judge_now, judge_pending, links_static, make_trace, window_plan_queries
from traces.models import Trace

pytestmark = pytest.mark.django_db

HX_RESULTS = {"HX-Request": "true", "HX-Target": "trace-results"}
HX_TAB = {"HX-Request": "true", "HX-Target": "experiment-page"}
HX_MORE = {"HX-Request": "true", "HX-Target": "more-row"}


def tab_url(experiment) -> str:
    return reverse("experiment-traces", args=[experiment.pk])


def trace_ids_shown(html: str) -> list[str]:
    return re.findall(r'<tr class="clickable" id="trace-row-\d+" hx-get="/experiments/\d+/traces/([^"]+)"', html)


def cell(html: str, trace: Trace, judge: Judge) -> str:
    """The chip in one verdict cell."""
    match = re.search(rf'<span id="verdict-{trace.pk}-{judge.pk}"[^>]*>\s*(<span class="chip[^"]*"[^>]*>[^<]*</span>)', html)
    assert match, f"no verdict cell for {trace.trace_id} / {judge.name}"
    return match.group(1)


def judge(experiment, endpoint, name: str, **fields) -> Judge:
    defaults = {"instructions": "Is {{ outputs }} a good answer to {{ inputs }}?", "output_type": "boolean", "active": False}
    return create_judge(experiment, name=name, endpoint=endpoint, **{**defaults, **fields})


def test_an_empty_experiment_says_how_to_send_traces(editor_client, experiment):
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "No traces in this experiment yet" in html and "x-evalapp-experiment-id" in html
    assert "every 2s" not in html


def test_traces_are_listed_newest_first_with_their_facts(editor_client, experiment):
    ingest(experiment, make_trace("t-old"), make_trace("t-new", minutes=5, session_id="conv-1"), make_trace("t-mid", minutes=2))
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert trace_ids_shown(html) == ["t-new", "t-mid", "t-old"]
    row = html[html.index('id="trace-row-') :]
    assert "1,200 ms" in row and "150" in row and "conv-1" in row and "question t-new" in row  # duration, tokens, session, preview
    assert '<a href="/experiments/%d/traces/t-new"' % experiment.pk in html  # a real link opens the trace…
    assert 'hx-target="#experiment-page" hx-push-url="true"' in html  # …and the row opens it with htmx


def test_one_column_per_trace_judge_with_a_chip_per_output_type(editor_client, experiment, endpoint):
    t1, t2 = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    helpful = judge(experiment, endpoint, "helpful")
    tone = judge(experiment, endpoint, "tone", output_type="categorical", categories=["friendly", "neutral", "rude"])
    score = judge(experiment, endpoint, "score", output_type="integer", min_value=1, max_value=5)
    judge(experiment, endpoint, "frustration", scope="session", builtin_key="UserFrustration")
    results = {j.name: judge_now(j, t1) for j in (helpful, tone, score)}

    html = editor_client.get(tab_url(experiment)).content.decode()
    header = html[html.index("<thead>") : html.index("</thead>")]
    assert [name for name in ("helpful", "frustration", "score", "tone") if name in header] == ["helpful", "score", "tone"]
    assert "chip-pass" in cell(html, t1, helpful) or "chip-fail" in cell(html, t1, helpful)
    assert ">yes<" in cell(html, t1, helpful) or ">no<" in cell(html, t1, helpful)
    assert "chip-category" in cell(html, t1, tone) and f">{results['tone'].value}<" in cell(html, t1, tone)
    assert "chip-number" in cell(html, t1, score) and f">{results['score'].value}<" in cell(html, t1, score)
    assert "[stand-in model]" in cell(html, t1, helpful)  # the rationale on hover
    # Not judged: a grey chip saying why on hover.
    assert 'class="chip chip-none" title="automatic evaluation is off for this judge">not judged<' in cell(html, t2, helpful)


def test_judge_states_without_a_verdict_say_why(editor_client, experiment, endpoint):
    (t1,) = ingest(experiment, make_trace("t1", metadata={"environment": "production"}))
    staging = judge(experiment, endpoint, "staging-only", active=True, filter_string="metadata.environment = 'staging'")
    paused = judge(experiment, endpoint, "paused", active=True)
    pause_judge(paused, "Authentication failed at the endpoint")
    broken = judge(experiment, endpoint, "broken")
    Evaluation.objects.create(judge=broken, judge_version=1, trace=t1, manual=True, status=EvaluationStatus.ERROR, error_code="timeout", error_message="no answer in 60 s")
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "does not match the filter metadata.environment = &#x27;staging&#x27;" in cell(html, t1, staging)
    assert "chip-error" in cell(html, t1, paused) and "judge paused: Authentication failed" in cell(html, t1, paused)
    assert "chip-error" in cell(html, t1, broken) and "Timed out: no answer in 60 s" in cell(html, t1, broken)


def test_full_page_tab_fragment_and_results_partial(editor_client, experiment):
    ingest(experiment, make_trace("t1"))
    full = editor_client.get(tab_url(experiment))
    assert full.status_code == 200 and "<html" in full.content.decode() and links_static(full.content.decode(), "evalapp/traces.css")
    fragment = editor_client.get(tab_url(experiment), headers=HX_TAB).content.decode()
    assert "<html" not in fragment and 'class="tabs"' in fragment and "t1" in fragment
    results = editor_client.get(tab_url(experiment) + "?q=trace.status+%3D+%27OK%27", headers=HX_RESULTS).content.decode()
    assert results.lstrip().startswith('<div id="trace-results">') and 'class="tabs"' not in results and "t1" in results
    # A history restore (cache miss after back) gets the whole page, not the fragment it asked for last time.
    restore = editor_client.get(tab_url(experiment), headers={**HX_RESULTS, "HX-History-Restore-Request": "true"}).content.decode()
    assert "<html" in restore
    assert "HX-Target" in full["Vary"]


def test_search_uses_the_filter_language_and_keeps_the_text(editor_client, experiment):
    ingest(experiment, make_trace("prod"), make_trace("staging", minutes=1, metadata={"environment": "staging"}))
    response = editor_client.get(tab_url(experiment), {"q": "metadata.environment = 'staging'"}, headers=HX_RESULTS)
    html = response.content.decode()
    assert trace_ids_shown(html) == ["staging"]
    assert 'value="metadata.environment = &#x27;staging&#x27;"' in html
    # Each quick filter keeps the search.
    assert "?q=metadata.environment+%3D+%27staging%27&amp;status=ERROR" in html


def test_a_bad_filter_is_explained_inline_and_the_text_kept(editor_client, experiment):
    ingest(experiment, make_trace("t1"))
    response = editor_client.get(tab_url(experiment), {"q": "trace.sttus = 'OK'"}, headers=HX_RESULTS)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="errorlist filter-error"' in html and "did you mean &#x27;trace.status&#x27;?" in html and "column 1" in html
    assert 'value="trace.sttus = &#x27;OK&#x27;"' in html and 'aria-invalid="true"' in html
    assert trace_ids_shown(html) == []


def test_quick_filters_for_status_and_time_range(editor_client, experiment):
    ingest(
        experiment,
        make_trace("ok-ancient", minutes=-60 * 24 * 10),
        make_trace("ok-old", minutes=-600),
        make_trace("ok-recent", minutes=-20),
        make_trace("failed", minutes=-10, spans=[{"span_id": "r", "name": "agent", "start_time": (BASE_TIME - timedelta(minutes=10)).isoformat(), "end_time": (BASE_TIME - timedelta(minutes=9)).isoformat(), "status": "ERROR"}]),
    )
    assert Trace.objects.get(trace_id="failed").status == "ERROR"
    with time_machine.travel(BASE_TIME, tick=False):
        assert trace_ids_shown(editor_client.get(tab_url(experiment), {"status": "ERROR"}).content.decode()) == ["failed"]
        assert trace_ids_shown(editor_client.get(tab_url(experiment), {"range": "1h"}).content.decode()) == ["failed", "ok-recent"]
        assert trace_ids_shown(editor_client.get(tab_url(experiment), {"range": "1h", "status": "OK"}).content.decode()) == ["ok-recent"]
        assert trace_ids_shown(editor_client.get(tab_url(experiment), {"range": "24h"}).content.decode()) == ["failed", "ok-recent", "ok-old"]
        assert trace_ids_shown(editor_client.get(tab_url(experiment), {"range": "7d"}).content.decode()) == ["failed", "ok-recent", "ok-old"]
        assert trace_ids_shown(editor_client.get(tab_url(experiment), {"range": "30d"}).content.decode()) == ["failed", "ok-recent", "ok-old", "ok-ancient"]
        html = editor_client.get(tab_url(experiment), {"range": "1h"}, headers=HX_RESULTS).content.decode()
    assert 'class="quick active" aria-current="true">Last hour<' in html
    # The Overview's presets (evalapp.overview.ranges), then no limit.
    time_links = re.findall(r'class="quick[^"]*"[^>]*>([^<]+)</a>', html.split('<span class="quick-label">Time</span>')[1].split('<span class="quick-label">Export</span>')[0])
    assert time_links == ["Last hour", "Last 24 hours", "Last 7 days", "Last 30 days", "All time"]
    # The links are real URLs with the filters in the query string, swapped in by htmx and pushed to history.
    assert f'href="{tab_url(experiment)}?status=ERROR&amp;range=1h" hx-get="{tab_url(experiment)}?status=ERROR&amp;range=1h" hx-target="#trace-results"' in html
    assert 'hx-push-url="true"' in html
    # Unknown values are ignored rather than failing.
    assert trace_ids_shown(editor_client.get(tab_url(experiment), {"status": "BOGUS", "range": "3y"}).content.decode()) == ["failed", "ok-recent", "ok-old", "ok-ancient"]


def test_load_more_continues_from_the_cursor_without_gaps_or_repeats(editor_client, experiment):
    ingest(experiment, *[make_trace(f"t{n:02d}", minutes=n) for n in range(55)])
    html = editor_client.get(tab_url(experiment), {"status": "OK"}).content.decode()
    first = trace_ids_shown(html)
    assert first == [f"t{n:02d}" for n in range(54, 4, -1)]
    more = re.search(r'<tr id="more-row" class="more-row">.*?<a href="([^"]+)" hx-get="\1" hx-target="#more-row"', html, re.S)
    assert more and "status=OK" in more.group(1)
    rest = editor_client.get(more.group(1).replace("&amp;", "&"), headers=HX_MORE).content.decode()
    assert "<table" not in rest and 'id="more-row"' not in rest
    assert trace_ids_shown(rest) == ["t04", "t03", "t02", "t01", "t00"]
    # Without htmx, the same link is a page of its own with a way back to the newest.
    page_two = editor_client.get(more.group(1).replace("&amp;", "&")).content.decode()
    assert trace_ids_shown(page_two) == ["t04", "t03", "t02", "t01", "t00"] and "Back to the newest traces" in page_two
    # A hand-edited cursor starts from the newest instead of failing.
    assert trace_ids_shown(editor_client.get(tab_url(experiment), {"cursor": "not-a-cursor"}).content.decode())[0] == "t54"


def test_a_search_stops_after_its_depth_and_offers_to_search_older_traces(editor_client, experiment, monkeypatch):
    monkeypatch.setattr("evalapp.ui.traces.SEARCH_DEPTH", 4)
    traces = [make_trace(f"t{n:02d}", minutes=n) for n in range(10)]
    for trace in traces:  # t01 and t02 are the only staging traces: old ones
        trace["metadata"] = {"environment": "staging" if trace["trace_id"] in ("t01", "t02") else "production"}
    ingest(experiment, *traces)
    search = {"q": "metadata.environment = 'staging'"}

    # The newest 4 (t09–t06) hold no match: said so, with the way on, instead of reading every trace.
    html = editor_client.get(tab_url(experiment), search).content.decode()
    assert trace_ids_shown(html) == [] and "No matches among 4 traces, back to" in html
    older = re.search(r'<a href="([^"]+)" hx-get="\1" hx-target="#trace-results"[^>]*>Search older traces</a>', html)
    assert older and "staging" in older.group(1)
    # The next 4 (t05–t02) hold one; it is shown with the way on again ...
    html = editor_client.get(older.group(1).replace("&amp;", "&")).content.decode()
    assert trace_ids_shown(html) == ["t02"] and "Searched 4 traces, back to" in html
    more = re.search(r'<a href="([^"]+)" hx-get="\1" hx-target="#more-row"[^>]*>Search older traces</a>', html)
    assert more
    # ... and the rest (t01, t00: fewer than 4 left) ends the search: no repeats, no gaps, no further link.
    rest = editor_client.get(more.group(1).replace("&amp;", "&"), headers=HX_MORE).content.decode()
    assert trace_ids_shown(rest) == ["t01"] and "Search older" not in rest and "more-row" not in rest
    # Without a filter the table is not bounded: the status quick filter lists every page as before.
    assert len(trace_ids_shown(editor_client.get(tab_url(experiment), {"status": "OK"}).content.decode())) == 10


def news_url(html: str) -> str:
    match = re.search(r'<div id="new-traces" class="new-traces" hx-get="([^"]+)" hx-trigger="every 5s" data-poll-when-visible hx-swap="outerHTML" hidden', html)
    assert match, "no hidden new-traces notice polling on the first page"
    return match.group(1).replace("&amp;", "&")


def test_traces_logged_while_the_page_is_open_are_announced_not_inserted(editor_client, experiment):
    with time_machine.travel(BASE_TIME, tick=False):
        ingest(experiment, make_trace("before"))
    with time_machine.travel(BASE_TIME + timedelta(minutes=1), tick=False):
        watch = news_url(editor_client.get(tab_url(experiment), {"q": "trace.status = 'OK'"}).content.decode())
        assert "q=trace.status" in watch  # the notice counts what the page's filters select
        quiet = editor_client.get(watch).content.decode()
    assert "new trace" not in quiet and "hidden" in quiet and f'hx-get="{watch.replace("&", "&amp;")}"' in quiet  # polls on
    with time_machine.travel(BASE_TIME + timedelta(minutes=2), tick=False):
        failed = make_trace("failed", minutes=2)
        failed["spans"] = [{**failed["spans"][0], "status": "ERROR"}]
        ingest(experiment, make_trace("new-1", minutes=1), make_trace("new-2", minutes=2), failed)
    news = editor_client.get(watch).content.decode()
    assert "2 new traces — show" in news and "hidden" not in news
    shown = f"{tab_url(experiment)}?q=trace.status+%3D+%27OK%27"
    assert f'<a href="{shown}" hx-get="{shown}" hx-target="#trace-results" hx-swap="outerHTML" hx-push-url="true">' in news
    assert trace_ids_shown(editor_client.get(shown, headers=HX_RESULTS).content.decode()) == ["new-2", "new-1", "before"]


def test_only_the_first_page_of_a_valid_filter_watches_for_new_traces(editor_client, experiment):
    ingest(experiment, *[make_trace(f"t{n:02d}", minutes=n) for n in range(55)])
    html = editor_client.get(tab_url(experiment)).content.decode()
    news_url(html)
    more = re.search(r'<tr id="more-row" class="more-row">.*?<a href="([^"]+)"', html, re.S).group(1).replace("&amp;", "&")
    assert 'id="new-traces"' not in editor_client.get(more).content.decode()
    assert 'id="new-traces"' not in editor_client.get(tab_url(experiment), {"q": "trace.bogus = 1"}).content.decode()
    bad = reverse("trace-news", args=[experiment.pk])
    for since in ("", "yesterday", "１２３", "9" * 40):
        response = editor_client.get(bad, {"since": since})
        assert response.status_code == 400 and b"since" in response.content
    for seen in ("-1", "²", "5000"):
        response = editor_client.get(bad, {"since": "1", "seen": seen})
        assert response.status_code == 400 and b"seen" in response.content


def test_a_trace_still_being_written_while_the_page_was_drawn_is_announced_too(editor_client, experiment):
    with time_machine.travel(BASE_TIME, tick=False):
        ingest(experiment, make_trace("old"))
    with time_machine.travel(BASE_TIME + timedelta(minutes=5), tick=False):
        ingest(experiment, make_trace("seen", minutes=5))  # logged just before the page: on it, not "new"
        html = editor_client.get(tab_url(experiment)).content.decode()
        assert trace_ids_shown(html) == ["seen", "old"]
        watch = news_url(html)
        assert "seen=1" in watch
    # An ingest that began before the page was drawn (its created_at) but committed after it.
    with time_machine.travel(BASE_TIME + timedelta(minutes=5) - timedelta(seconds=10), tick=False):
        ingest(experiment, make_trace("late-commit", minutes=5))
    with time_machine.travel(BASE_TIME + timedelta(minutes=5, seconds=5), tick=False):
        assert "1 new trace — show" in editor_client.get(watch).content.decode()


def test_the_new_traces_notice_needs_a_login(client, experiment):
    response = client.get(reverse("trace-news", args=[experiment.pk]), {"since": "1"})
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)  # the workers' heartbeat thread writes too
def test_pending_chips_poll_until_they_fill_in(editor_client, experiment, endpoint):
    t1, t2 = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    helpful = judge(experiment, endpoint, "helpful")
    judge_now(helpful, t2)
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "every 2s" not in html  # nothing pending: no polling

    start_job(helpful, trace_ids=["t1", "t2"])  # "Judge again" on both: the chips turn pending
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "chip-pending" in cell(html, t1, helpful) and "chip-pending" in cell(html, t2, helpful)
    assert "(was " in cell(html, t2, helpful)  # the verdict it will replace, on hover
    poller = re.search(r'<tr class="poller" hidden aria-hidden="true" hx-get="([^"]+)" hx-trigger="every 2s" hx-swap="outerHTML">', html)
    assert poller, "a pending page polls"
    poll_url = poller.group(1).replace("&amp;", "&")
    assert poll_url == reverse("trace-verdicts", args=[experiment.pk]) + f"?t={t2.pk}&t={t1.pk}"

    still_pending = editor_client.get(poll_url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 2s"' in still_pending  # the poller renews itself…
    assert f'<span id="verdict-{t1.pk}-{helpful.pk}" class="verdict" hx-swap-oob="true">' in still_pending

    judge_pending(list(Evaluation.objects.filter(status="pending").values_list("pk", flat=True)))
    done = editor_client.get(poll_url, headers={"HX-Request": "true"}).content.decode()
    assert "every 2s" not in done  # …until nothing is pending: the empty main swap removes it
    assert "<template>" in done and "chip-pending" not in done
    assert re.search(rf'<span id="verdict-{t1.pk}-{helpful.pk}" class="verdict" hx-swap-oob="true"><span class="chip chip-(pass|fail)"', done)
    assert "every 2s" not in editor_client.get(tab_url(experiment)).content.decode()


def test_the_poller_only_answers_for_its_own_experiment(editor_client, experiment, endpoint):
    from traces.actions import create_experiment

    (t1,) = ingest(experiment, make_trace("t1"))
    other = create_experiment("other")
    html = editor_client.get(reverse("trace-verdicts", args=[other.pk]), {"t": [t1.pk, "x"]}).content.decode()
    assert f"verdict-{t1.pk}-" not in html
    # Ids that aren't ASCII digits, or are too big for the database, are skipped.
    response = editor_client.get(reverse("trace-verdicts", args=[experiment.pk]), {"t": ["²", "9" * 30, t1.pk]})
    assert response.status_code == 200


def test_trace_content_is_shown_as_text_never_as_html(editor_client, experiment, endpoint):
    attack = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
    ingest(experiment, make_trace("xss", name=attack, session_id="s-1", request={"messages": [{"role": "user", "content": attack}]}))
    helpful = judge(experiment, endpoint, "helpful")
    Evaluation.objects.create(judge=helpful, judge_version=1, trace=Trace.objects.get(), manual=True, status="error", error_code="provider_error", error_message=attack)
    html = editor_client.get(tab_url(experiment)).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in html  # the name, and the error on hover
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 2


def test_the_tab_needs_a_login(client, experiment):
    response = client.get(tab_url(experiment))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_fifty_rows_and_ten_judges_take_a_fixed_number_of_queries(editor_client, experiment, endpoint, django_assert_max_num_queries):
    """No N+1: traces, judges, their latest verdicts, evaluations and (for span filters) spans are each one query,
    plus the count of recently logged traces the new-traces notice starts from, and (for editors) the datasets the
    "Add to dataset" panel offers."""
    traces = ingest(experiment, *[make_trace(f"t{n:02d}", minutes=n, metadata={"environment": "production" if n % 3 else "staging"}) for n in range(60)])
    judges = [judge(experiment, endpoint, f"judge-{n}") for n in range(4)]
    judges.append(judge(experiment, endpoint, "tone", output_type="categorical", categories=["friendly", "rude"]))
    judges.append(judge(experiment, endpoint, "staging", active=True, filter_string="metadata.environment = 'staging'"))
    judges.append(judge(experiment, endpoint, "tools", active=True, filter_string="span.type = 'TOOL'"))
    judges.append(judge(experiment, endpoint, "sampled", active=True, sample_rate=0.3))
    judges.append(judge(experiment, endpoint, "paused", active=True))
    pause_judge(judges[-1], "Authentication failed")
    judges.append(judge(experiment, endpoint, "score", output_type="float", min_value=0, max_value=1))
    newest = [trace.trace_id for trace in traces[-50:]]
    by_id = {trace.trace_id: trace for trace in traces}
    for j in judges[:5]:
        for trace_id in newest[::5]:
            judge_now(j, by_id[trace_id])
    start_job(judges[-1], trace_ids=newest[:10])  # some still pending
    assert Evaluation.objects.filter(status="done").count() == 50

    with django_assert_max_num_queries(11 + window_plan_queries()):  # the page's planner settings on PostgreSQL
        html = editor_client.get(tab_url(experiment)).content.decode()
    assert len(trace_ids_shown(html)) == 50
    assert html.count('class="verdict"') == 500
    # The jobs' ten, and the active judges' traces that ingest would have queued (no commit in this test).
    assert html.count("chip-pending") >= 10 and "every 2s" in html
    for chip in ("chip-pass", "chip-category", "chip-none"):
        assert chip in html
    with django_assert_max_num_queries(12 + window_plan_queries()):  # and a search's bound: the time of the SEARCH_DEPTH-th newest trace
        editor_client.get(tab_url(experiment), {"q": "span.type = 'RETRIEVER' AND metadata.environment = 'production'"}, headers=HX_RESULTS)


def test_a_page_of_states_says_what_each_trace_alone_would(experiment, endpoint, django_assert_max_num_queries):
    from django.utils import timezone

    from judges.states import trace_state, trace_states

    ingest(experiment, make_trace("logged-long-ago"))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        open_trace = {"trace_id": "open", "spans": [{"span_id": "child", "parent_span_id": "root", "start_time": BASE_TIME.isoformat()}]}
        ingest(experiment, make_trace("prod", minutes=1), make_trace("staging", minutes=2, metadata={"environment": "staging"}), open_trace)
        judges = [
            judge(experiment, endpoint, "all", active=True),
            judge(experiment, endpoint, "staging-only", active=True, filter_string="metadata.environment = 'staging' AND span.type = 'RETRIEVER'"),
            judge(experiment, endpoint, "sampled", active=True, sample_rate=0.01),
            judge(experiment, endpoint, "off"),
            judge(experiment, endpoint, "paused", active=True),
        ]
        pause_judge(judges[4], "Authentication failed")
        traces = list(Trace.objects.all())
        judge_now(judges[3], Trace.objects.get(trace_id="prod"))
        Evaluation.objects.create(judge=judges[3], judge_version=1, trace=Trace.objects.get(trace_id="staging"), manual=True, status="error", error_code="timeout", error_message="slow")
        Evaluation.objects.create(judge=judges[0], judge_version=1, trace=Trace.objects.get(trace_id="prod"), status="running")

        with django_assert_max_num_queries(3):
            batch = trace_states(judges, traces)
        one_by_one = {(t.pk, j.pk): trace_state(j, t) for t in traces for j in judges}
    assert {key: state.state for key, state in batch.items()} == {key: state.state for key, state in one_by_one.items()}
    assert {key: state.text for key, state in batch.items()} == {key: state.text for key, state in one_by_one.items()}
    seen = {state.state for state in batch.values()}
    assert seen >= {"judged", "error", "running", "pending", "filtered_out", "sampled_out", "too_old", "in_progress", "judge_off", "paused"}


def test_the_tab_finds_traces_by_a_judges_verdict(editor_client, experiment, endpoint):
    from judges.llm import CallResult
    from judges.results import Outcome, record_result

    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("t3", minutes=2))
    helpful = judge(experiment, endpoint, "helpful")
    score = create_judge(experiment, name="score", instructions="Rate {{ outputs }} 1-5", output_type="integer", min_value=1, max_value=5, endpoint=endpoint)
    record_result(helpful, Outcome(CallResult(value=True)), trace=Trace.objects.get(trace_id="t1"))
    record_result(helpful, Outcome(CallResult(value=False)), trace=Trace.objects.get(trace_id="t2"))
    record_result(score, Outcome(CallResult(value=2)), trace=Trace.objects.get(trace_id="t2"))
    record_result(score, Outcome(CallResult(value=5)), trace=Trace.objects.get(trace_id="t3"))

    def shown(query: str) -> set[str]:
        html = editor_client.get(tab_url(experiment), {"q": query}).content.decode()
        return set(re.findall(r"question (t\d)", html))

    assert shown("assessment.helpful = 'no'") == {"t2"}
    assert shown("assessment.score < 3") == {"t2"}
    assert shown("assessment.helpful IS NULL") == {"t3"}  # not judged yet
    assert shown("assessment.helpful = 'yes' OR assessment.score >= 5") == {"t1", "t3"}
