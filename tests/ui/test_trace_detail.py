"""The trace page: span tree, readable inputs and outputs, metadata, every assessment, why a judge did not judge,
"Judge again" (editors) and people's feedback."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from judges.actions import create_judge
from judges.models import Evaluation, Judge
from judges.results import pause_judge
from tests.conftest import BASE_TIME, STANDIN_KEY, ingest, judge_now, judge_pending, links_static, make_trace
from traces.actions import create_experiment
from traces.models import Assessment, Trace

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
HX_TAB = {"HX-Request": "true", "HX-Target": "experiment-page"}
HX_JUDGES = {"HX-Request": "true", "HX-Target": "trace-judges"}


def page_url(trace: Trace) -> str:
    return reverse("trace-detail", args=[trace.experiment_id, trace.trace_id])


def judge(experiment, endpoint, name: str, **fields) -> Judge:
    defaults = {"instructions": "Is {{ outputs }} a good answer to {{ inputs }}?", "output_type": "boolean", "active": False}
    return create_judge(experiment, name=name, endpoint=endpoint, **{**defaults, **fields})


def judges_section(html: str) -> str:
    start = html.index('<section id="trace-judges"')
    return html[start : html.index("</section>", start)]


def run_pending() -> None:
    judge_pending(list(Evaluation.objects.filter(status="pending").values_list("pk", flat=True)))


def test_full_page_tab_fragment_and_judges_partial(editor_client, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "helpful")
    full = editor_client.get(page_url(trace))
    html = full.content.decode()
    assert full.status_code == 200 and "<html" in html and links_static(html, "evalapp/traces.css") and 'class="tabs"' in html
    assert '<a href="/experiments/%d/traces" hx-get="/experiments/%d/traces"' % (experiment.pk, experiment.pk) in html
    fragment = editor_client.get(page_url(trace), headers=HX_TAB).content.decode()
    assert "<html" not in fragment and 'class="tabs"' in fragment and 'id="trace-judges"' in fragment
    partial = editor_client.get(page_url(trace), headers=HX_JUDGES).content.decode()
    assert partial.lstrip().startswith('<section id="trace-judges"') and "helpful" in partial and "Spans" not in partial


def test_a_trace_of_another_experiment_or_unknown_is_not_found(editor_client, experiment):
    (trace,) = ingest(experiment, make_trace("t1"))
    other = create_experiment("other")
    assert editor_client.get(reverse("trace-detail", args=[other.pk, "t1"])).status_code == 404
    assert editor_client.get(reverse("trace-detail", args=[experiment.pk, "nope"])).status_code == 404


def test_the_span_tree_shows_nesting_types_and_timings(editor_client, experiment):
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
    html = editor_client.get(page_url(trace)).content.decode()
    rows = re.findall(r'<li class="span-row span-\w+" style="--depth: (\d+)">\s*<details>\s*<summary>\s*<span class="span-label">\s*<span class="span-type type-(\w+)">[^<]+</span>\s*<span class="span-name">([^<]+)</span>', html)
    assert rows == [("0", "agent", "agent"), ("1", "retriever", "search_docs"), ("1", "chat_model", "chat"), ("2", "tool", "lookup_order")]
    assert '<span class="span-time">1,200 ms</span>' in html and '<span class="span-time">60 ms</span>' in html
    # The waterfall: the agent spans the whole trace, the chat model starts at 220 of 1,200 ms.
    assert 'style="margin-left: 0.00%; width: 100.00%"' in html
    assert 'style="margin-left: 18.33%; width: 75.00%"' in html
    assert "order service returned 503" in html


def test_chat_messages_read_as_a_conversation_and_json_is_pretty_and_collapsible(editor_client, experiment):
    request = {
        "messages": [
            {"role": "system", "content": "You are the checkout assistant."},
            {"role": "user", "content": [{"type": "text", "text": "Where is my order?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"order\": 42}"}}]},
        ],
        "temperature": 0.2,
    }
    (trace,) = ingest(experiment, make_trace("t1", request=request, response={"order": {"id": 42, "status": "shipped"}}))
    html = editor_client.get(page_url(trace)).content.decode()
    assert re.search(r'<li class="message role-system">\s*<div class="message-role">system</div>\s*<div class="message-text">You are the checkout assistant.</div>', html)
    assert re.search(r'<li class="message role-user">\s*<div class="message-role">user</div>\s*<div class="message-text">Where is my order\?\n\[image_url\]</div>', html)
    assert "calls <code>lookup_order</code>" in html and "<pre>{\n  &quot;order&quot;: 42\n}</pre>" in html
    assert '<details class="json"><summary>Other fields</summary><pre>{\n  &quot;temperature&quot;: 0.2\n}</pre></details>' in html
    # The response is not a chat: pretty-printed JSON in a <details>, open while it is short.
    assert re.search(r'<details class="json" open><summary>JSON · \d+ characters</summary><pre>\{\n  &quot;order&quot;: \{\n    &quot;id&quot;: 42,', html)


def test_an_objects_main_text_reads_as_text_with_the_other_fields_below(editor_client, experiment):
    (trace,) = ingest(experiment, make_trace("t1", request={"query": "Where is <b>my</b> order?"}, response={"content": "It ships today.", "finish_reason": "stop"}))
    html = editor_client.get(page_url(trace)).content.decode()
    assert '<div class="value-key muted small">query</div><div class="text-value">Where is &lt;b&gt;my&lt;/b&gt; order?</div>' in html
    assert '<div class="value-key muted small">content</div><div class="text-value">It ships today.</div>' in html
    assert '<details class="json"><summary>Other fields</summary><pre>{\n  &quot;finish_reason&quot;: &quot;stop&quot;\n}</pre></details>' in html
    assert "&quot;content&quot;" not in html  # not shown as JSON


def test_metadata_and_tags_are_tables(editor_client, experiment):
    (trace,) = ingest(experiment, make_trace("t1", metadata={"environment": "production", "release": "2026.11"}, tags={"team": "checkout"}))
    html = editor_client.get(page_url(trace)).content.decode()
    assert '<tr><th class="mono">environment</th><td class="mono">production</td></tr>' in html
    assert '<tr><th class="mono">release</th><td class="mono">2026.11</td></tr>' in html
    assert '<tr><th class="mono">team</th><td class="mono">checkout</td></tr>' in html


def test_every_assessment_shows_value_rationale_source_version_model_cost_tokens_and_latency(editor_client, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    helpful = judge(experiment, endpoint, "helpful")
    first = judge_now(helpful, trace)
    second = judge_now(helpful, trace)
    html = judges_section(editor_client.get(page_url(trace)).content.decode())
    articles = re.findall(r'<article class="assessment( superseded)?">(.*?)</article>', html, re.S)
    assert [bool(superseded) for superseded, _ in articles] == [False, True]  # newest first; the older one replaced
    latest = articles[0][1]
    assert re.search(r'class="chip chip-(pass|fail)"', latest) and "[stand-in model]" in latest
    assert "<dd>judge helpful</dd>" in latest and "<dd>v1</dd>" in latest and "openai/evalapp-standin" in latest
    assert f"<dd>${second.cost_usd:.6f}</dd>" in latest and f"{second.input_tokens} in / {second.output_tokens} out" in latest
    assert re.search(r"<dt>Latency</dt><dd>[\d,]+ ms</dd>", latest)
    assert 'class="superseded-badge"' in articles[1][1] and first.rationale[:30] in articles[1][1]


def test_an_error_is_said_in_plain_words(editor_client, experiment, endpoint, standin, fast_retries):
    (trace,) = ingest(experiment, make_trace("t1"))
    helpful = judge(experiment, endpoint, "helpful")
    standin.config.script = ["malformed"]  # an answer that can't be read: an error (a provider outage is retried instead)
    assessment = judge_now(helpful, trace)
    assert assessment.error_code == "invalid_answer"
    html = judges_section(editor_client.get(page_url(trace)).content.decode())
    assert "<p class=\"error\"><strong>Invalid answer</strong>: " in html
    assert 'class="chip chip-error" title="Invalid answer: ' in html


def test_judges_without_an_assessment_say_why(editor_client, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "off")
    judge(experiment, endpoint, "staging-only", active=True, filter_string="metadata.environment = 'staging'")
    pause_judge(judge(experiment, endpoint, "paused", active=True), "Authentication failed at Stand-in")
    html = judges_section(editor_client.get(page_url(trace)).content.decode())
    assert "Not judged: automatic evaluation is off for this judge" in html
    assert "Not judged: does not match the filter metadata.environment = &#x27;staging&#x27;" in html
    assert "Not judged: judge paused: Authentication failed at Stand-in" in html
    assert "every 2s" not in html


@pytest.mark.django_db(transaction=True)  # the workers' heartbeat thread writes too
def test_judge_again_queues_a_job_and_the_chips_poll_until_they_fill_in(editor_client, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    helpful = judge(experiment, endpoint, "helpful")
    tone = judge(experiment, endpoint, "tone", output_type="categorical", categories=["friendly", "rude"])
    url = reverse("trace-judge-again", args=[experiment.pk, "t1"])

    response = editor_client.post(url, {"judge": str(helpful.pk)}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "assessments-changed" in json.loads(response["HX-Trigger"])
    assert html.lstrip().startswith('<form id="judge-again"') and "Queued helpful" in html
    assert list(Evaluation.objects.values_list("judge__name", "manual", "status")) == [("helpful", True, "pending")]
    assert Evaluation.objects.get().job is not None

    section = editor_client.get(page_url(trace), headers=HX_JUDGES).content.decode()
    assert 'hx-trigger="every 2s, assessments-changed from:body"' in section  # polls while pending
    assert "chip-pending" in section and "Queued for judging." in section

    run_pending()
    section = editor_client.get(page_url(trace), headers=HX_JUDGES).content.decode()
    assert 'hx-trigger="assessments-changed from:body"' in section and "every 2s" not in section  # stops when done
    assert re.search(r'<strong>helpful</strong>\s*<span class="chip chip-(pass|fail)"', section)

    editor_client.post(url, {"judge": "all"}, headers=HX)
    assert Evaluation.objects.filter(status="pending").count() == 2 and {e.judge_id for e in Evaluation.objects.filter(status="pending")} == {helpful.pk, tone.pk}


def test_judge_again_without_htmx_redirects_back_to_the_trace(editor_client, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "helpful")
    response = editor_client.post(reverse("trace-judge-again", args=[experiment.pk, "t1"]), {"judge": "all"})
    assert response.status_code == 302 and response["Location"] == reverse("trace-detail", args=[experiment.pk, "t1"])
    assert Evaluation.objects.count() == 1


def test_judge_again_refuses_a_paused_judge_inline(editor_client, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    paused = judge(experiment, endpoint, "helpful")
    pause_judge(paused, "Authentication failed at Stand-in")
    response = editor_client.post(reverse("trace-judge-again", args=[experiment.pk, "t1"]), {"judge": str(paused.pk)}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert '<ul class="errorlist"><li>helpful: helpful is paused: Authentication failed at Stand-in</li></ul>' in html
    assert not Evaluation.objects.exists()


def test_viewers_cannot_judge_again_and_do_not_see_the_button(viewer_client, experiment, endpoint):
    (trace,) = ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "helpful")
    response = viewer_client.post(reverse("trace-judge-again", args=[experiment.pk, "t1"]), {"judge": "all"}, headers=HX)
    assert response.status_code == 403 and not Evaluation.objects.exists()
    html = viewer_client.get(page_url(trace)).content.decode()
    assert 'id="judge-again"' not in html and 'id="trace-feedback"' in html  # feedback is for everyone


def test_thumbs_up_is_saved_as_a_persons_feedback(viewer_client, experiment):
    (trace,) = ingest(experiment, make_trace("t1"))
    response = viewer_client.post(reverse("trace-feedback", args=[experiment.pk, "t1"]), {"thumb": "up"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "assessments-changed" in json.loads(response["HX-Trigger"])
    assert html.lstrip().startswith('<div id="trace-feedback"') and "Saved your feedback: thumbs = yes." in html
    saved = Assessment.objects.get()
    assert (saved.name, saved.value, saved.source_type, saved.source_id, saved.trace_id) == ("thumbs", True, "HUMAN", "vic", trace.pk)

    viewer_client.post(reverse("trace-feedback", args=[experiment.pk, "t1"]), {"thumb": "down"}, headers=HX)
    section = judges_section(viewer_client.get(page_url(trace)).content.decode())
    articles = re.findall(r'<article class="assessment( superseded)?">(.*?)</article>', section, re.S)
    assert [(bool(s), "chip-fail" in a, "<dd>person vic</dd>" in a) for s, a in articles] == [(False, True, True), (True, False, True)]


def test_a_value_and_comment_about_a_judge_is_checked_against_its_output_type(editor_client, experiment, endpoint):
    ingest(experiment, make_trace("t1"))
    judge(experiment, endpoint, "score", output_type="integer", min_value=1, max_value=5)
    url = reverse("trace-feedback", args=[experiment.pk, "t1"])

    response = editor_client.post(url, {"name": "score", "value": "great", "rationale": "clear & kind"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert '<ul class="errorlist"><li>score answers with a number.</li></ul>' in html
    assert 'value="great"' in html and "clear &amp; kind</textarea>" in html and "<details open>" in html  # typed text kept
    assert not Assessment.objects.exists()

    response = editor_client.post(url, {"name": "score", "value": "4", "rationale": "clear & kind"}, headers=HX)
    assert "Saved your feedback: score = 4." in response.content.decode()
    saved = Assessment.objects.get()
    assert (saved.name, saved.value, saved.rationale, saved.source_id) == ("score", 4, "clear & kind", "pat")


def test_feedback_errors_from_the_action_are_shown_inline(editor_client, experiment):
    ingest(experiment, make_trace("t1"))
    url = reverse("trace-feedback", args=[experiment.pk, "t1"])
    html = editor_client.post(url, {"name": "thumbs", "value": "yes", "rationale": "x" * 10_001}, headers=HX).content.decode()
    assert "at most 10,000 characters" in html and not Assessment.objects.exists()
    html = editor_client.post(url, {"name": "made-up", "value": "yes"}, headers=HX).content.decode()
    assert "Choose what the feedback is about" in html
    html = editor_client.post(url, {"name": "thumbs", "value": "  "}, headers=HX).content.decode()
    assert "Give a value" in html and not Assessment.objects.exists()


def test_feedback_without_htmx_redirects_or_shows_the_page_with_errors(editor_client, experiment):
    ingest(experiment, make_trace("t1"))
    url = reverse("trace-feedback", args=[experiment.pk, "t1"])
    response = editor_client.post(url, {"name": "thumbs", "value": ""})
    assert response.status_code == 200 and "<html" in response.content.decode() and "Give a value" in response.content.decode()
    response = editor_client.post(url, {"thumb": "down"})
    assert response.status_code == 302 and Assessment.objects.get().value is False


def test_trace_content_is_shown_as_text_never_as_html(editor_client, experiment, endpoint):
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
    editor_client.post(reverse("trace-feedback", args=[experiment.pk, "xss"]), {"name": "thumbs", "value": attack, "rationale": attack}, headers=HX)
    assert Assessment.objects.get().rationale == attack
    html = editor_client.get(page_url(trace)).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;") >= 7  # name, title, chat, response, metadata, tags, span, feedback


def test_feedback_buttons_draw_icons_not_emoji_and_the_favicon_is_served(editor_client, experiment):
    (trace,) = ingest(experiment, make_trace("t1"))
    html = editor_client.get(page_url(trace)).content.decode()
    assert "👍" not in html and "👎" not in html  # no emoji font on many servers: they showed as empty boxes
    assert html.count("<svg class=\"icon\"") >= 2 and " Good</button>" in html
    favicon = editor_client.get("/favicon.ico")
    assert favicon.status_code == 301 and favicon["Location"].endswith("evalapp/favicon.ico")
    assert 'rel="icon"' in html


def test_the_prompt_sent_is_exactly_what_the_model_received(editor_client, experiment, endpoint, standin):
    from judges.models import JudgeExchange

    (trace,) = ingest(experiment, make_trace("t1", response={"content": "It ships <b>tomorrow</b>."}))
    helpful = judge(experiment, endpoint, "helpful")
    assessment = judge_now(helpful, trace)
    received = standin.requests[-1]["body"]["messages"]
    exchange = JudgeExchange.objects.get(assessment=assessment)
    assert exchange.messages == received  # what was stored is what the stand-in got, message for message
    assert '"result"' in exchange.answer and assessment.rationale in exchange.answer  # the raw JSON the verdict came from
    page = editor_client.get(page_url(trace)).content.decode()
    url = f"/experiments/{experiment.pk}/assessments/{assessment.pk}/words"
    assert f'hx-get="{url}"' in page and "Prompt sent · raw answer" in page
    words = editor_client.get(url).content.decode()
    for message in received:
        assert escape(message["content"]) in words  # shown as text: markup in the trace stays inert
    assert STANDIN_KEY not in words and STANDIN_KEY not in str(received)


def test_the_judges_words_are_dropped_after_the_retention(experiment, endpoint, standin, settings):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from judges.models import JudgeExchange
    from judges.sweep import drop_old_exchanges

    (trace,) = ingest(experiment, make_trace("t1"))
    assessment = judge_now(judge(experiment, endpoint, "helpful"), trace)
    settings.EVALAPP_PROMPT_RETENTION_DAYS = 30
    assert drop_old_exchanges() == 0
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert drop_old_exchanges() == 1
    assert not JudgeExchange.objects.exists() and type(assessment).objects.filter(pk=assessment.pk).exists()  # the verdict stays
