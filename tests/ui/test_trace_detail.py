"""The trace page: span tree, readable inputs and outputs, metadata, every assessment, why a judge did not judge,
"Judge again" (editors) and people's feedback."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from judges import engine
from judges.actions import create_judge, pause_judge, run_judge_on_trace
from judges.models import Evaluation, Judge
from tests.conftest import BASE_TIME, make_trace
from traces.actions import create_experiment, ingest_traces
from traces.models import Assessment, Trace
from traces.payload import parse_trace_batch

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
HX_TAB = {"HX-Request": "true", "HX-Target": "experiment-page"}
HX_JUDGES = {"HX-Request": "true", "HX-Target": "trace-judges"}


def ingest(experiment, *traces) -> list[Trace]:
    ingest_traces(experiment, parse_trace_batch(list(traces), max_traces=1000))
    return list(Trace.objects.filter(trace_id__in=[t["trace_id"] for t in traces]).order_by("started_at"))


def page_url(trace: Trace) -> str:
    return reverse("trace-detail", args=[trace.experiment_id, trace.trace_id])


def judge(experiment, endpoint, name: str, **fields) -> Judge:
    defaults = {"instructions": "Is {{ outputs }} a good answer to {{ inputs }}?", "output_type": "boolean", "active": False}
    return create_judge(experiment, name=name, endpoint=endpoint, **{**defaults, **fields})


def judges_section(html: str) -> str:
    start = html.index('<section id="trace-judges"')
    return html[start : html.index("</section>", start)]


def run_pending() -> None:
    engine.judge_pending(list(Evaluation.objects.filter(status="pending").values_list("pk", flat=True)))


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def viewer_browser(client, viewer):
    client.force_login(viewer)
    return client


def test_full_page_tab_fragment_and_judges_partial(browser, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "helpful")
    full = browser.get(page_url(trace))
    html = full.content.decode()
    assert full.status_code == 200 and "<html" in html and "traces.css" in html and 'class="tabs"' in html
    assert '<a href="/experiments/%d/traces" hx-get="/experiments/%d/traces"' % (experiment.pk, experiment.pk) in html
    fragment = browser.get(page_url(trace), headers=HX_TAB).content.decode()
    assert "<html" not in fragment and 'class="tabs"' in fragment and 'id="trace-judges"' in fragment
    partial = browser.get(page_url(trace), headers=HX_JUDGES).content.decode()
    assert partial.lstrip().startswith('<section id="trace-judges"') and "helpful" in partial and "Spans" not in partial


def test_a_trace_of_another_experiment_or_unknown_is_not_found(browser, experiment):
    (trace,) = ingest(experiment, make_trace("t1"))
    other = create_experiment("other")
    assert browser.get(reverse("trace-detail", args=[other.pk, "t1"])).status_code == 404
    assert browser.get(reverse("trace-detail", args=[experiment.pk, "nope"])).status_code == 404


def test_the_span_tree_shows_nesting_types_and_timings(browser, experiment):
    tool_start = BASE_TIME + timedelta(milliseconds=300)
    tool = {
        "span_id": "t1-tool",
        "parent_span_id": "t1-llm",
        "name": "lookup_order",
        "span_type": "TOOL",
        "start_time": tool_start.isoformat(),
        "end_time": (tool_start + timedelta(milliseconds=60)).isoformat(),
        "status": "ERROR",
        "status_message": "order service returned 503",
    }
    trace_in = make_trace("t1")
    trace_in["spans"].append(tool)
    (trace,) = ingest(experiment, trace_in)
    html = browser.get(page_url(trace)).content.decode()
    rows = re.findall(r'<li class="span-row span-\w+" style="--depth: (\d+)">\s*<details>\s*<summary>\s*<span class="span-label">\s*<span class="span-type type-(\w+)">[^<]+</span>\s*<span class="span-name">([^<]+)</span>', html)
    assert rows == [("0", "agent", "agent"), ("1", "retriever", "search_docs"), ("1", "chat_model", "chat"), ("2", "tool", "lookup_order")]
    assert '<span class="span-time">1,200 ms</span>' in html and '<span class="span-time">60 ms</span>' in html
    # The waterfall: the agent spans the whole trace, the chat model starts at 220 of 1,200 ms.
    assert 'style="margin-left: 0.00%; width: 100.00%"' in html
    assert 'style="margin-left: 18.33%; width: 75.00%"' in html
    assert "order service returned 503" in html


def test_chat_messages_read_as_a_conversation_and_json_is_pretty_and_collapsible(browser, experiment):
    request = {
        "messages": [
            {"role": "system", "content": "You are the checkout assistant."},
            {"role": "user", "content": [{"type": "text", "text": "Where is my order?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"order\": 42}"}}]},
        ],
        "temperature": 0.2,
    }
    (trace,) = ingest(experiment, make_trace("t1", request=request, response={"order": {"id": 42, "status": "shipped"}}))
    html = browser.get(page_url(trace)).content.decode()
    assert re.search(r'<li class="message role-system">\s*<div class="message-role">system</div>\s*<div class="message-text">You are the checkout assistant.</div>', html)
    assert re.search(r'<li class="message role-user">\s*<div class="message-role">user</div>\s*<div class="message-text">Where is my order\?\n\[image_url\]</div>', html)
    assert "calls <code>lookup_order</code>" in html and "<pre>{\n  &quot;order&quot;: 42\n}</pre>" in html
    assert '<details class="json"><summary>Other fields</summary><pre>{\n  &quot;temperature&quot;: 0.2\n}</pre></details>' in html
    # The response is not a chat: pretty-printed JSON in a <details>, open while it is short.
    assert re.search(r'<details class="json" open><summary>JSON · \d+ characters</summary><pre>\{\n  &quot;order&quot;: \{\n    &quot;id&quot;: 42,', html)


def test_an_objects_main_text_reads_as_text_with_the_other_fields_below(browser, experiment):
    (trace,) = ingest(experiment, make_trace("t1", request={"query": "Where is <b>my</b> order?"}, response={"content": "It ships today.", "finish_reason": "stop"}))
    html = browser.get(page_url(trace)).content.decode()
    assert '<div class="value-key muted small">query</div><div class="text-value">Where is &lt;b&gt;my&lt;/b&gt; order?</div>' in html
    assert '<div class="value-key muted small">content</div><div class="text-value">It ships today.</div>' in html
    assert '<details class="json"><summary>Other fields</summary><pre>{\n  &quot;finish_reason&quot;: &quot;stop&quot;\n}</pre></details>' in html
    assert "&quot;content&quot;" not in html  # not shown as JSON


def test_metadata_and_tags_are_tables(browser, experiment):
    (trace,) = ingest(experiment, make_trace("t1", metadata={"environment": "production", "release": "2026.11"}, tags={"team": "checkout"}))
    html = browser.get(page_url(trace)).content.decode()
    assert '<tr><th class="mono">environment</th><td class="mono">production</td></tr>' in html
    assert '<tr><th class="mono">release</th><td class="mono">2026.11</td></tr>' in html
    assert '<tr><th class="mono">team</th><td class="mono">checkout</td></tr>' in html


def test_every_assessment_shows_value_rationale_source_version_model_cost_tokens_and_latency(browser, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    helpful = judge(experiment, endpoint, "helpful")
    first = run_judge_on_trace(helpful, trace)
    second = run_judge_on_trace(helpful, trace)
    html = judges_section(browser.get(page_url(trace)).content.decode())
    articles = re.findall(r'<article class="assessment( superseded)?">(.*?)</article>', html, re.S)
    assert [bool(superseded) for superseded, _ in articles] == [False, True]  # newest first; the older one replaced
    latest = articles[0][1]
    assert re.search(r'class="chip chip-(pass|fail)"', latest) and "[stand-in model]" in latest
    assert "<dd>judge helpful</dd>" in latest and "<dd>v1</dd>" in latest and "openai/evalapp-standin" in latest
    assert f"<dd>${second.cost_usd:.6f}</dd>" in latest and f"{second.input_tokens} in / {second.output_tokens} out" in latest
    assert re.search(r"<dt>Latency</dt><dd>[\d,]+ ms</dd>", latest)
    assert 'class="superseded-badge"' in articles[1][1] and first.rationale[:30] in articles[1][1]


def test_an_error_is_said_in_plain_words(browser, experiment, endpoint, standin, fast_retries):
    (trace,) = ingest(experiment, make_trace("t1"))
    helpful = judge(experiment, endpoint, "helpful")
    standin.config.script = ["500", "500", "500"]
    assessment = run_judge_on_trace(helpful, trace)
    assert assessment.error_code == "provider_error"
    html = judges_section(browser.get(page_url(trace)).content.decode())
    assert "<p class=\"error\"><strong>Provider error</strong>: " in html
    assert 'class="chip chip-error" title="Provider error: ' in html


def test_judges_without_an_assessment_say_why(browser, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "off")
    judge(experiment, endpoint, "staging-only", active=True, filter_string="metadata.environment = 'staging'")
    pause_judge(judge(experiment, endpoint, "paused", active=True), "Authentication failed at Stand-in")
    html = judges_section(browser.get(page_url(trace)).content.decode())
    assert "Not judged: automatic evaluation is off for this judge" in html
    assert "Not judged: does not match the filter metadata.environment = &#x27;staging&#x27;" in html
    assert "Not judged: judge paused: Authentication failed at Stand-in" in html
    assert "every 2s" not in html


@pytest.mark.django_db(transaction=True)  # the workers' heartbeat thread writes too
def test_judge_again_queues_a_job_and_the_chips_poll_until_they_fill_in(browser, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    helpful = judge(experiment, endpoint, "helpful")
    tone = judge(experiment, endpoint, "tone", output_type="categorical", categories=["friendly", "rude"])
    url = reverse("trace-judge-again", args=[experiment.pk, "t1"])

    response = browser.post(url, {"judge": str(helpful.pk)}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "assessments-changed" in json.loads(response["HX-Trigger"])
    assert html.lstrip().startswith('<form id="judge-again"') and "Queued helpful" in html
    assert list(Evaluation.objects.values_list("judge__name", "manual", "status")) == [("helpful", True, "pending")]
    assert Evaluation.objects.get().job is not None

    section = browser.get(page_url(trace), headers=HX_JUDGES).content.decode()
    assert 'hx-trigger="every 2s, assessments-changed from:body"' in section  # polls while pending
    assert "chip-pending" in section and "Queued for judging." in section

    run_pending()
    section = browser.get(page_url(trace), headers=HX_JUDGES).content.decode()
    assert 'hx-trigger="assessments-changed from:body"' in section and "every 2s" not in section  # stops when done
    assert re.search(r'<strong>helpful</strong>\s*<span class="chip chip-(pass|fail)"', section)

    browser.post(url, {"judge": "all"}, headers=HX)
    assert Evaluation.objects.filter(status="pending").count() == 2 and {e.judge_id for e in Evaluation.objects.filter(status="pending")} == {helpful.pk, tone.pk}


def test_judge_again_without_htmx_redirects_back_to_the_trace(browser, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "helpful")
    response = browser.post(reverse("trace-judge-again", args=[experiment.pk, "t1"]), {"judge": "all"})
    assert response.status_code == 302 and response["Location"] == reverse("trace-detail", args=[experiment.pk, "t1"])
    assert Evaluation.objects.count() == 1


def test_judge_again_refuses_a_paused_judge_inline(browser, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    paused = judge(experiment, endpoint, "helpful")
    pause_judge(paused, "Authentication failed at Stand-in")
    response = browser.post(reverse("trace-judge-again", args=[experiment.pk, "t1"]), {"judge": str(paused.pk)}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert '<ul class="errorlist"><li>helpful: helpful is paused: Authentication failed at Stand-in</li></ul>' in html
    assert not Evaluation.objects.exists()


def test_viewers_cannot_judge_again_and_do_not_see_the_button(viewer_browser, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "helpful")
    response = viewer_browser.post(reverse("trace-judge-again", args=[experiment.pk, "t1"]), {"judge": "all"}, headers=HX)
    assert response.status_code == 403 and not Evaluation.objects.exists()
    html = viewer_browser.get(page_url(trace)).content.decode()
    assert 'id="judge-again"' not in html and 'id="trace-feedback"' in html  # feedback is for everyone


def test_thumbs_up_is_saved_as_a_persons_feedback(viewer_browser, experiment):
    (trace,) = ingest(experiment, make_trace("t1"))
    response = viewer_browser.post(reverse("trace-feedback", args=[experiment.pk, "t1"]), {"thumb": "up"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "assessments-changed" in json.loads(response["HX-Trigger"])
    assert html.lstrip().startswith('<div id="trace-feedback"') and "Saved your feedback: thumbs = yes." in html
    saved = Assessment.objects.get()
    assert (saved.name, saved.value, saved.source_type, saved.source_id, saved.trace_id) == ("thumbs", True, "HUMAN", "vic", trace.pk)

    viewer_browser.post(reverse("trace-feedback", args=[experiment.pk, "t1"]), {"thumb": "down"}, headers=HX)
    section = judges_section(viewer_browser.get(page_url(trace)).content.decode())
    articles = re.findall(r'<article class="assessment( superseded)?">(.*?)</article>', section, re.S)
    assert [(bool(s), "chip-fail" in a, "<dd>person vic</dd>" in a) for s, a in articles] == [(False, True, True), (True, False, True)]


def test_a_value_and_comment_about_a_judge_is_checked_against_its_output_type(browser, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "score", output_type="integer", min_value=1, max_value=5)
    url = reverse("trace-feedback", args=[experiment.pk, "t1"])

    response = browser.post(url, {"name": "score", "value": "great", "rationale": "clear & kind"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert '<ul class="errorlist"><li>score answers with a number; type a number.</li></ul>' in html
    assert 'value="great"' in html and "clear &amp; kind</textarea>" in html and "<details open>" in html  # typed text kept
    assert not Assessment.objects.exists()

    response = browser.post(url, {"name": "score", "value": "4", "rationale": "clear & kind"}, headers=HX)
    assert "Saved your feedback: score = 4." in response.content.decode()
    saved = Assessment.objects.get()
    assert (saved.name, saved.value, saved.rationale, saved.source_id) == ("score", 4, "clear & kind", "pat")


def test_feedback_errors_from_the_action_are_shown_inline(browser, experiment):
    ingest(experiment, make_trace("t1"))
    url = reverse("trace-feedback", args=[experiment.pk, "t1"])
    html = browser.post(url, {"name": "thumbs", "value": "yes", "rationale": "x" * 10_001}, headers=HX).content.decode()
    assert "at most 10,000 characters" in html and not Assessment.objects.exists()
    html = browser.post(url, {"name": "made-up", "value": "yes"}, headers=HX).content.decode()
    assert "Choose what the feedback is about" in html
    html = browser.post(url, {"name": "thumbs", "value": "  "}, headers=HX).content.decode()
    assert "Give a value" in html and not Assessment.objects.exists()


def test_feedback_without_htmx_redirects_or_shows_the_page_with_errors(browser, experiment):
    ingest(experiment, make_trace("t1"))
    url = reverse("trace-feedback", args=[experiment.pk, "t1"])
    response = browser.post(url, {"name": "thumbs", "value": ""})
    assert response.status_code == 200 and "<html" in response.content.decode() and "Give a value" in response.content.decode()
    response = browser.post(url, {"thumb": "down"})
    assert response.status_code == 302 and Assessment.objects.get().value is False


def test_trace_content_is_shown_as_text_never_as_html(browser, experiment, endpoint):
    attack = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
    trace_in = make_trace(
        "xss",
        name=attack,
        request={"messages": [{"role": "user", "content": attack}]},
        response=attack,
        metadata={"note": attack},
        tags={"label": attack},
    )
    trace_in["spans"][1]["name"] = attack
    trace_in["spans"][1]["outputs"] = {"html": attack}
    (trace,) = ingest(experiment, trace_in)
    browser.post(reverse("trace-feedback", args=[experiment.pk, "xss"]), {"name": "thumbs", "value": attack, "rationale": attack}, headers=HX)
    assert Assessment.objects.get().rationale == attack
    html = browser.get(page_url(trace)).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;") >= 7  # name, title, chat, response, metadata, tags, span, feedback
