"""The conversation page: the turns as a chat, the session judges' states and verdicts, feedback and "judge again"."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils.html import escape

from judges import selection
from judges.actions import create_judge
from judges.models import Evaluation, EvaluationStatus, Judge
from judges.results import pause_judge
from tests.conftest import BASE_TIME, ingest, judge_pending, make_trace
from traces.models import Assessment, AssessmentSource, Session

pytestmark = pytest.mark.django_db

T0 = BASE_TIME + timedelta(days=1)
HX_TAB = {"HX-Request": "true", "HX-Target": "experiment-page"}
HX_JUDGING = {"HX-Request": "true", "HX-Target": "session-judging"}
HX_FEEDBACK = {"HX-Request": "true", "HX-Target": "session-feedback"}
runs_judges = pytest.mark.django_db(transaction=True)  # the engine's worker threads must see committed data


def url(experiment, session_id: str, name: str = "session-detail") -> str:
    return reverse(name, args=[experiment.pk, session_id])


def chat_turn(trace_id: str, minutes: int, question: str, answer: str | None, **fields) -> dict:
    trace = make_trace(trace_id, minutes=minutes, session_id="s1", user_id="ana", **fields)
    trace["spans"][0]["inputs"] = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]}
    trace["spans"][0]["outputs"] = {"choices": [{"message": {"role": "assistant", "content": answer}}]} if answer is not None else None
    return trace


def frustration(experiment, endpoint, **fields) -> Judge:
    defaults = {"name": "frustration", "scope": "session", "builtin_key": "UserFrustration", "active": True, "session_idle_seconds": 60}
    return create_judge(experiment, endpoint=endpoint, **{**defaults, **fields})


def judge_all_pending() -> None:
    while ids := list(Evaluation.objects.filter(status=EvaluationStatus.PENDING).values_list("pk", flat=True)):
        judge_pending(ids)


@pytest.fixture
def conversation(experiment):
    ingest(experiment,
        chat_turn("t2", 1, "It still says the card was declined.", "Try another card, or call your bank."),
        chat_turn("t1", 0, "My card was declined at checkout.", "Sorry about that! Which card did you use?"),
        chat_turn("t3", 2, "This is useless!!!", None, status="ERROR"),
    )
    return Session.objects.get(session_id="s1")


def test_the_conversation_reads_as_a_chat_in_turn_order(editor_client, experiment, conversation):
    html = editor_client.get(url(experiment, "s1")).content.decode()
    assert "<html" in html and 'aria-label="Experiment sections"' in html
    messages = re.findall(r'<div class="bubble bubble-(user|assistant)[^"]*">\s*<div class="who">\w+</div>\s*<div class="text">([^<]*)</div>', html)
    assert messages == [
        ("user", "My card was declined at checkout."),
        ("assistant", "Sorry about that! Which card did you use?"),
        ("user", "It still says the card was declined."),
        ("assistant", "Try another card, or call your bank."),
        ("user", "This is useless!!!"),
        ("assistant", "(the application failed on this turn and sent no answer)"),
    ]
    trace_links = re.findall(r'<a href="([^"]+)" class="mono">trace (\w+)</a>', html)
    assert [trace_id for _, trace_id in trace_links] == ["t1", "t2", "t3"]
    assert all(link.endswith(f"/experiments/{experiment.pk}/traces/{trace_id}") for link, trace_id in trace_links)
    assert "user <span class=\"mono\">ana</span>" in html and "3 turns" in html


def test_a_request_that_is_not_a_chat_is_shown_as_json(editor_client, experiment):
    trace = make_trace("t1", session_id="s9")
    trace["spans"][0]["inputs"] = {"query": ["refunds", "returns"], "top_k": 3}
    ingest(experiment, trace)
    html = editor_client.get(url(experiment, "s9")).content.decode()
    assert '<pre>{\n  &quot;query&quot;: [\n    &quot;refunds&quot;,' in html
    assert "answer t1" in html


def test_a_message_with_an_image_reads_as_its_text_as_on_the_trace_page(editor_client, experiment):
    trace = chat_turn("t1", 0, "unused", "It is.")
    trace["spans"][0]["inputs"]["messages"][1]["content"] = [{"type": "text", "text": "Is this my parcel?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    ingest(experiment, trace)
    html = editor_client.get(url(experiment, "s1")).content.decode()
    assert "Is this my parcel?\n[image_url]" in html and "base64" not in html


def test_htmx_gets_the_tab_fragment_or_only_the_judging_section(editor_client, experiment, conversation):
    tab = editor_client.get(url(experiment, "s1"), headers=HX_TAB).content.decode()
    assert "<html" not in tab and 'aria-label="Experiment sections"' in tab and "My card was declined" in tab
    part = editor_client.get(url(experiment, "s1"), headers=HX_JUDGING).content.decode()
    assert part.lstrip().startswith('<section id="session-judging"')
    assert "My card was declined" not in part and "Your feedback" not in part


def test_unknown_sessions_are_404_and_ids_with_slashes_work(editor_client, experiment):
    assert editor_client.get(url(experiment, "nope")).status_code == 404
    ingest(experiment, make_trace("t1", session_id="team/a#1"))
    assert "answer t1" in editor_client.get(url(experiment, "team/a#1")).content.decode()


def test_messages_are_user_data_and_render_as_text(editor_client, experiment):
    evil = chat_turn("t1", 0, "<script>alert('pwned')</script>", "<img src=x onerror=alert(1)>")
    evil["session_id"] = "<b>s</b>"
    ingest(experiment, evil)
    html = editor_client.get(url(experiment, "<b>s</b>")).content.decode()
    assert "<script>alert(" not in html and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>s</b>" not in html and "&lt;b&gt;s&lt;/b&gt;" in html


def test_each_session_judge_says_where_the_conversation_stands(editor_client, experiment, endpoint):
    with time_machine.travel(T0, tick=False):
        frustration(experiment, endpoint, session_idle_seconds=300)
        create_judge(experiment, name="complete", scope="session", builtin_key="ConversationCompleteness", endpoint=endpoint, active=False)
        ingest(experiment, chat_turn("t1", 0, "Hi", "Hello"))
    with time_machine.travel(T0 + timedelta(seconds=100), tick=False):
        html = editor_client.get(url(experiment, "s1")).content.decode()
    assert "automatic evaluation is off for this judge" in html
    assert "waiting for the conversation to go idle (200 s left)" in html
    assert 'data-seconds-left="200"' in html and "judged in 3:20" in html
    judging = html[html.index('<section id="session-judging"') :]
    assert judging.startswith('<section id="session-judging" class="card" hx-get="') and "every 5s" in judging.split(">")[0]


@runs_judges
def test_assessments_show_verdict_cost_and_the_earlier_one_superseded_after_new_turns(editor_client, experiment, endpoint):
    with time_machine.travel(T0):
        frustration(experiment, endpoint)
        ingest(experiment, chat_turn("t1", 0, "Where is my order?", "It ships tomorrow."))
    with time_machine.travel(T0 + timedelta(seconds=61)):
        selection.select_sessions()
        judge_all_pending()
        ingest(experiment, chat_turn("t2", 1, "This is useless!!! Talk to a human.", "Connecting you now."))
    with time_machine.travel(T0 + timedelta(seconds=130)):
        selection.select_sessions()
        judge_all_pending()
        html = editor_client.get(url(experiment, "s1")).content.decode()
    first, second = Assessment.objects.filter(session__session_id="s1").order_by("created_at", "pk")
    assert (first.valid, second.valid, second.overrides_id) == (False, True, first.pk)

    items = re.findall(r'<li class="assessment( superseded)?">(.*?)</li>', html, re.S)
    assert [bool(superseded) for superseded, _ in items] == [False, True]  # newest first, the earlier one marked
    current, earlier = items[0][1], items[1][1]
    assert "superseded after new turns (judged at 1 turns, re-judged at 2)" in earlier
    assert "superseded" not in current
    assert f">{second.value}</span>" in current and "judge frustration v1 · openai/evalapp-standin" in current
    assert second.rationale[:40].replace("'", "&#x27;") in current
    assert f"{second.input_tokens:,} in / {second.output_tokens:,} out tokens" in current and f"{second.latency_ms:,} ms" in current
    assert "$0.0" in current  # priced by the endpoint's per-million costs
    assert "every 5s" not in html.split('<section id="session-judging"')[1].split(">")[0]  # judged: nothing to poll for
    judging = html.split('<section id="session-judging"')[1].split("</section>")[0]
    assert f"judged: {second.value}" in judging and "&#x27;" not in judging and "judged: &#x27;" not in html  # no Python repr


def test_values_read_as_the_judges_output_type():
    from judges.models import Judge

    assert [Judge(output_type="boolean").describe_value(v) for v in (True, False, None)] == ["Yes", "No", "no value"]
    assert Judge(output_type="integer", min_value=1, max_value=5).describe_value(4) == "4 (on 1–5)"
    assert Judge(output_type="float").describe_value(0.25) == "0.25"
    assert Judge(output_type="categorical").describe_value("unresolved") == "unresolved"
    assert Judge(output_type="string").describe_value("x" * 80) == "“" + "x" * 57 + "…”"


@runs_judges
def test_a_failed_judgement_is_explained_in_plain_words(editor_client, experiment, endpoint, standin, fast_retries):
    with time_machine.travel(T0):
        frustration(experiment, endpoint)
        ingest(experiment, chat_turn("t1", 0, "Hi", "Hello"))
    standin.config.script = ["malformed"]  # an answer that can't be read: an error (a provider outage is retried instead)
    with time_machine.travel(T0 + timedelta(seconds=61)):
        selection.select_sessions()
        judge_all_pending()
        html = editor_client.get(url(experiment, "s1")).content.decode()
    assessment = Assessment.objects.get()
    assert assessment.error_code == "invalid_answer"
    assert f'<p class="error">Invalid answer: {escape(assessment.error_message[:30])}' in html  # ("the model's answer…")


def test_anyone_may_leave_feedback_and_it_is_listed(viewer_client, experiment, conversation):
    response = viewer_client.post(
        url(experiment, "s1", "session-feedback"), {"name": "thumbs", "value": "false", "comment": "Never escalated."}, headers=HX_FEEDBACK
    )
    assert response.status_code == 200 and "feedback-saved" in json.loads(response["HX-Trigger"])
    assert "Saved" in response.content.decode()
    feedback = Assessment.objects.get(session=conversation)
    assert (feedback.source_type, feedback.source_id, feedback.value, feedback.rationale) == (AssessmentSource.HUMAN, "vic", False, "Never escalated.")

    judging = viewer_client.get(url(experiment, "s1"), headers=HX_JUDGING).content.decode()
    assert 'class="chip chip-fail" title="Never escalated.">no</span>' in judging and "feedback from vic" in judging
    assert 'hx-trigger="feedback-saved from:body"' in judging  # the list refreshes itself when feedback is saved

    again = viewer_client.post(url(experiment, "s1", "session-feedback"), {"name": "thumbs", "value": "other", "other_value": "4"})
    assert again.status_code == 302 and again["Location"] == url(experiment, "s1")  # without htmx: back to the page
    assert Assessment.objects.get(session=conversation, valid=True).value == 4
    assert "replaced by newer feedback" in viewer_client.get(url(experiment, "s1")).content.decode()


def test_feedback_errors_are_shown_in_the_form_and_nothing_is_saved(viewer_client, experiment, conversation):
    response = viewer_client.post(url(experiment, "s1", "session-feedback"), {"name": "thumbs", "comment": "Hmm"}, headers=HX_FEEDBACK)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert html.lstrip().startswith('<section id="session-feedback"')
    assert '<p class="error">Give a value: yes or no, a number, or a category.</p>' in html
    assert ">Hmm</textarea>" in html  # what was typed is kept
    assert not Assessment.objects.exists()

    full = viewer_client.post(url(experiment, "s1", "session-feedback"), {"name": " ", "value": "true"})
    html = full.content.decode()
    assert full.status_code == 200 and "<html" in html
    assert "Choose what the feedback is about: thumbs or one of this experiment&#x27;s session judges." in html
    assert not Assessment.objects.exists()


def test_feedback_is_read_like_on_the_trace_page_and_must_fit_the_judge_it_is_about(viewer_client, experiment, endpoint, conversation):
    frustration(experiment, endpoint)  # answers one of none, resolved, unresolved
    create_judge(experiment, name="escalated", scope="session", endpoint=endpoint, instructions="Did {{ conversation }} escalate?", output_type="boolean")
    post = lambda **form: viewer_client.post(url(experiment, "s1", "session-feedback"), form, headers=HX_FEEDBACK).content.decode()  # noqa: E731

    assert "frustration answers one of: none, resolved, unresolved." in post(name="frustration", value="other", other_value="a bit")
    assert "escalated answers yes or no." in post(name="escalated", value="other", other_value="maybe")
    assert not Assessment.objects.exists()
    assert "Saved" in post(name="escalated", value="other", other_value="Yes")  # yes/no words are yes and no
    assert "Saved" in post(name="frustration", value="other", other_value="resolved")
    assert "Saved" in post(name="thumbs", value="other", other_value="1")  # as on the trace page: 1 is yes
    assert "Choose what the feedback is about" in post(name="made-up", value="true")
    current = dict(Assessment.objects.filter(valid=True).values_list("name", "value"))
    assert current == {"escalated": True, "frustration": "resolved", "thumbs": True}


def test_editors_can_judge_the_conversation_again(editor_client, experiment, endpoint, conversation):
    judge = frustration(experiment, endpoint, active=False)
    page = editor_client.get(url(experiment, "s1")).content.decode()
    assert "Judge again" in page
    response = editor_client.post(url(experiment, "s1", "session-judge"), {"judge": judge.pk}, headers=HX_JUDGING)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="session-judging"')
    assert "Queued frustration on this conversation" in html
    evaluation = Evaluation.objects.get()
    assert (evaluation.manual, evaluation.status, evaluation.session_generation, evaluation.job is not None) == (True, "pending", 3, True)
    assert "queued for judging" in html and "every 5s" in html.split(">")[0]  # polls until the verdict is in


def test_judge_again_explains_why_it_cannot_run(editor_client, experiment, endpoint, conversation):
    judge = frustration(experiment, endpoint)
    pause_judge(judge, "Authentication failed at the endpoint.")
    html = editor_client.post(url(experiment, "s1", "session-judge"), {"judge": judge.pk}, headers=HX_JUDGING).content.decode()
    assert "frustration is paused: Authentication failed at the endpoint." in html
    unknown = editor_client.post(url(experiment, "s1", "session-judge"), {"judge": "999"}, headers=HX_JUDGING).content.decode()
    assert "Choose one of this experiment&#x27;s session judges." in unknown
    assert not Evaluation.objects.filter(manual=True).exists()


def test_viewers_cannot_judge_again(viewer_client, experiment, endpoint, conversation):
    judge = frustration(experiment, endpoint, active=False)
    assert "Judge again" not in viewer_client.get(url(experiment, "s1")).content.decode()
    response = viewer_client.post(url(experiment, "s1", "session-judge"), {"judge": judge.pk}, headers=HX_JUDGING)
    assert response.status_code == 403
    assert not Evaluation.objects.exists()
