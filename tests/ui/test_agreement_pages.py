"""The Agreement page, the card's agreement line, and the labelling queue's pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from judges.actions import create_judge
from judges.models import Judge, LabelClaim
from tests.conftest import ingest, make_trace, record_verdict
from traces.feedback import add_feedback
from traces.models import Assessment, AssessmentSource

pytestmark = pytest.mark.django_db


def make_judge(experiment, endpoint, name="helpful"):
    judge = create_judge(experiment, name=name, instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)
    return Judge.objects.select_related("endpoint").get(pk=judge.pk)


def labelled(experiment, judge, user, count, *, prefix="t"):
    traces = ingest(experiment, *(make_trace(f"{prefix}{n:03d}", minutes=n) for n in range(count)))
    for index, trace in enumerate(traces):
        record_verdict(judge, trace, index >= 3, rationale=f"because {index}")
        add_feedback(user=user, name=judge.name, value=index >= 6, trace=trace, rationale=f"person {index}")
    return traces


def test_the_card_shows_kappa_with_its_interval_or_insufficient(editor_client, experiment, endpoint, user):
    many, few = make_judge(experiment, endpoint), make_judge(experiment, endpoint, "few")
    labelled(experiment, many, user, 30)
    [trace] = ingest(experiment, make_trace("alone", minutes=99))
    record_verdict(few, trace, True)
    add_feedback(user=user, name="few", value=True, trace=trace)
    html = editor_client.get(reverse("experiment-judges", args=[experiment.pk])).content.decode()
    assert "κ 0.62 (" in html and "n = 30" in html  # (0.9 − 0.74) / (1 − 0.74)
    assert "insufficient (1 of 20)" in html
    assert reverse("judge-agreement", args=[experiment.pk, many.pk]) in html
    assert reverse("judge-label", args=[experiment.pk, many.pk]) in html


def test_agreement_page_lists_figures_and_links_each_disagreement(editor_client, experiment, endpoint, user, django_assert_max_num_queries):
    judge = make_judge(experiment, endpoint)
    labelled(experiment, judge, user, 30)
    url = reverse("judge-agreement", args=[experiment.pk, judge.pk])
    # session, user, experiment, judge, the labels, the verdicts on them, the page's rationales (+ slack for auth)
    with django_assert_max_num_queries(9):
        response = editor_client.get(url)
    html = response.content.decode()
    assert "Cohen&#x27;s κ" in html or "Cohen's κ" in html
    assert "Accuracy" in html and "0.90 (" in html
    for trace_id in ("t003", "t004", "t005"):
        assert f'href="/experiments/{experiment.pk}/traces/{trace_id}"' in html
    assert "because 3" in html and "person 3" in html


def test_agreement_page_queries_do_not_grow_with_labels(editor_client, experiment, endpoint, user, django_assert_max_num_queries):
    judge = make_judge(experiment, endpoint)
    labelled(experiment, judge, user, 80)
    with django_assert_max_num_queries(9):
        editor_client.get(reverse("judge-agreement", args=[experiment.pk, judge.pk]))


def test_labelling_hides_the_verdict_until_answered_then_stores_a_human_label(editor_client, experiment, endpoint, user):
    judge = make_judge(experiment, endpoint)
    [trace] = ingest(experiment, make_trace("t1"))
    record_verdict(judge, trace, False, rationale="the judge's reason")
    first = editor_client.get(reverse("judge-label", args=[experiment.pk, judge.pk]))
    item_url = reverse("judge-label-item", args=[experiment.pk, judge.pk, trace.pk])
    assert first.status_code == 302 and first["Location"] == item_url
    page = editor_client.get(item_url).content.decode()
    assert "question t1" in page and "answer t1" in page  # the judge's variables, rendered
    assert "a helpful answer to" in page  # the question in the judge's words
    assert "the judge&#x27;s reason" not in page and "the judge's reason" not in page
    answered = editor_client.post(item_url, {"value": "yes", "comment": "fine by me"})
    assert answered.status_code == 302
    label = Assessment.objects.get(source_type=AssessmentSource.HUMAN)
    assert (label.name, label.value, label.rationale, label.source_id, label.trace_id) == ("helpful", True, "fine by me", "pat", trace.pk)
    page = editor_client.get(item_url).content.decode()
    assert "disagree" in page and "reason" in page


def test_a_wrong_value_is_refused_with_the_reason(editor_client, experiment, endpoint):
    judge = make_judge(experiment, endpoint)
    [trace] = ingest(experiment, make_trace("t1"))
    record_verdict(judge, trace, True)
    response = editor_client.post(reverse("judge-label-item", args=[experiment.pk, judge.pk, trace.pk]), {"value": "7"})
    assert response.status_code == 200
    assert "helpful answers yes or no." in response.content.decode()
    assert not Assessment.objects.filter(source_type=AssessmentSource.HUMAN).exists()


def test_skip_passes_the_item_over_and_lets_go_of_it(editor_client, experiment, endpoint):
    judge = make_judge(experiment, endpoint)
    traces = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    for trace in traces:
        record_verdict(judge, trace, True)
    first = editor_client.get(reverse("judge-label", args=[experiment.pk, judge.pk]))["Location"]
    skipped = editor_client.post(first, {"action": "skip"})
    second = editor_client.get(skipped["Location"])["Location"]
    assert second != first
    assert LabelClaim.objects.filter(judge=judge).count() == 1


def test_an_empty_queue_says_so(viewer_client, experiment, endpoint):
    judge = make_judge(experiment, endpoint)
    response = viewer_client.get(reverse("judge-label", args=[experiment.pk, judge.pk]))
    assert response.status_code == 200
    assert "Nothing left to label" in response.content.decode()


def test_a_session_judges_queue_shows_the_conversation_and_category_keys(editor_client, experiment, endpoint):
    judge = create_judge(experiment, name="frustration", scope="session", builtin_key="UserFrustration", endpoint=endpoint)
    ingest(experiment, make_trace("turn-1", session_id="conv-1"), make_trace("turn-2", minutes=1, session_id="conv-1"))
    session = experiment.sessions.get()
    record_verdict(judge, session, "none")
    item = editor_client.get(reverse("judge-label", args=[experiment.pk, judge.pk]))["Location"]
    html = editor_client.get(item).content.decode()
    assert "question turn-2" in html  # the conversation, as the judge reads it
    assert 'data-key="1"' in html and 'data-key="3"' in html and "unresolved" in html
    editor_client.post(item, {"value": "resolved"})
    label = Assessment.objects.get(source_type=AssessmentSource.HUMAN)
    assert (label.session_id, label.value) == (session.pk, "resolved")


def test_the_labelling_page_takes_a_fixed_number_of_queries(editor_client, experiment, endpoint, user, django_assert_max_num_queries):
    judge = make_judge(experiment, endpoint)
    traces = labelled(experiment, judge, user, 40)
    url = reverse("judge-label-item", args=[experiment.pk, judge.pk, traces[5].pk])
    # session, user, experiment, judge, the trace, my label, the claim (update; on a miss a savepoint, insert,
    # release; the person's other claim deleted), the verdict, the trace's spans, the labels and verdicts for
    # the progress, my history for ←/→, the editor role
    with django_assert_max_num_queries(17):
        response = editor_client.get(url)
    assert "You said" in response.content.decode()


def test_what_the_trace_says_is_shown_as_text_on_the_labelling_page(editor_client, experiment, endpoint):
    judge = make_judge(experiment, endpoint)
    attack = make_trace("t1")
    attack["spans"][0]["outputs"] = {"content": '<script>alert("owned")</script><img src=x onerror=alert(1)>'}
    [trace] = ingest(experiment, attack)
    record_verdict(judge, trace, True)
    html = editor_client.get(reverse("judge-label-item", args=[experiment.pk, judge.pk, trace.pk])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html
