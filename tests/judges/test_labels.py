"""Labels for a judge: pairing with its verdicts per version, inter-annotator agreement, disagreements, and the
labelling queue's order and claims."""

from __future__ import annotations

import pytest

from judges import labelling
from judges.actions import create_judge, update_judge
from judges.labels import disagreements, load_pairs
from judges.models import Judge, LabelClaim
from tests.conftest import ingest, judge_pending, make_trace, record_verdict
from traces.feedback import add_feedback
from traces.models import Trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(django_user_model):
    return [django_user_model.objects.create_user(username=name, password="x-password-123") for name in ("ann", "bob", "cy")]


def yes_no_judge(experiment, endpoint, name="helpful"):
    judge = create_judge(experiment, name=name, instructions="Is {{ outputs }} helpful?", output_type="boolean", endpoint=endpoint)
    return Judge.objects.select_related("endpoint").get(pk=judge.pk)


def traces(experiment, count):
    return ingest(experiment, *(make_trace(f"t{index:03d}", minutes=index) for index in range(count)))


def test_pairs_are_per_version_and_the_first_label_pairs(experiment, endpoint, people):
    ann, bob, _ = people
    judge = yes_no_judge(experiment, endpoint)
    first, second = traces(experiment, 2)
    record_verdict(judge, first, True)
    record_verdict(judge, second, False)
    add_feedback(user=ann, name="helpful", value=True, trace=first)
    add_feedback(user=bob, name="helpful", value=False, trace=first)  # a second person: inter-annotator only
    add_feedback(user=ann, name="helpful", value=True, trace=second)
    judge = update_judge(judge, instructions="Is {{ outputs }} helpful and kind?")
    record_verdict(judge, first, False)  # version 2 says otherwise
    entry = load_pairs([judge])[judge.pk]
    assert entry.versions == [2, 1]
    assert [(label.value, verdict.value) for label, verdict in entry.pairs(1)] == [(True, True), (True, False)]
    assert [(label.value, verdict.value) for label, verdict in entry.pairs(2)] == [(True, False)]
    assert {pk: label.person for pk, label in entry.second.items()} == {first.pk: "bob"}
    shown, total = disagreements(entry, 1)
    assert total == 1 and shown[0].label.target_id == second.trace_id


def test_load_pairs_takes_two_queries_for_any_number_of_judges(experiment, endpoint, people, django_assert_num_queries):
    judges = [yes_no_judge(experiment, endpoint, f"judge_{n}") for n in range(4)]
    [trace] = traces(experiment, 1)
    for judge in judges:
        record_verdict(judge, trace, True)
        add_feedback(user=people[0], name=judge.name, value=False, trace=trace)
    with django_assert_num_queries(2):
        found = load_pairs(judges)
    assert all(len(found[judge.pk].pairs(1)) == 1 for judge in judges)


def test_two_people_never_get_the_same_item_at_once(experiment, endpoint, people):
    ann, bob, cy = people
    judge = yes_no_judge(experiment, endpoint)
    for index, trace in enumerate(traces(experiment, 6)):
        record_verdict(judge, trace, index % 2 == 0)
    handed = [labelling.next_item(judge, person) for person in (ann, bob, cy)]
    assert None not in handed and len(set(handed)) == 3
    assert LabelClaim.objects.filter(judge=judge).count() == 3
    # Asking again keeps each person on their own item rather than someone else's.
    again = labelling.next_item(judge, bob, skipped={handed[1]})
    assert again not in handed
    assert not labelling.claim(judge, handed[0], bob)  # ann holds it


def test_an_expired_claim_can_be_taken(experiment, endpoint, people, time_machine):
    ann, bob, _ = people
    judge = yes_no_judge(experiment, endpoint)
    [trace] = traces(experiment, 1)
    record_verdict(judge, trace, True)
    assert labelling.next_item(judge, ann) == trace.pk
    assert labelling.next_item(judge, bob) is None
    time_machine.move_to(LabelClaim.objects.get().expires_at, tick=False)
    assert labelling.next_item(judge, bob) == trace.pk


def test_stratified_by_verdict_first(experiment, endpoint, people):
    ann = people[0]
    judge = yes_no_judge(experiment, endpoint)
    all_traces = traces(experiment, 12)
    for index, trace in enumerate(all_traces):
        record_verdict(judge, trace, index != 5)  # one "no" among twelve
    handed = Trace.objects.get(pk=labelling.next_item(judge, ann))
    add_feedback(user=ann, name="helpful", value=True, trace=handed)
    second = Trace.objects.get(pk=labelling.next_item(judge, ann))
    # One of each verdict before any second of either.
    assert {handed.pk, second.pk} & {all_traces[5].pk}


def test_then_items_where_labels_disagree(experiment, endpoint, people):
    ann, bob, cy = people
    judge = yes_no_judge(experiment, endpoint)
    quiet, disputed = traces(experiment, 2)
    for trace in (quiet, disputed):
        record_verdict(judge, trace, True)
    add_feedback(user=ann, name="helpful", value=True, trace=quiet)
    add_feedback(user=ann, name="helpful", value=True, trace=disputed)
    add_feedback(user=bob, name="helpful", value=False, trace=disputed)
    assert labelling.next_item(judge, cy) == disputed.pk


def test_progress_says_how_many_more(experiment, endpoint, people):
    ann = people[0]
    judge = yes_no_judge(experiment, endpoint)
    for index, trace in enumerate(traces(experiment, 5)):
        record_verdict(judge, trace, True)
        add_feedback(user=ann, name="helpful", value=index != 0, trace=trace)
    progress = labelling.progress(judge, ann)
    assert progress.text() == "5 labelled · 15 more before κ is estimated"


def test_a_standin_judge_that_flips_ten_percent_measures_about_ninety_percent(experiment, endpoint, people, monkeypatch):
    """The stand-in model, scripted to give the wrong yes/no on 10% of prompts, judges 160 traces whose right
    answer people labelled: the measured accuracy's interval holds 0.9."""
    import standin.verdicts
    from judges.manual import judge_by_hand

    monkeypatch.setattr(standin.verdicts, "NOISE_SHARE", 0.10)
    judge = yes_no_judge(experiment, endpoint)
    payloads = []
    for index in range(160):
        trace = make_trace(f"flip-{index:03d}", minutes=index)
        if index % 2:
            trace["spans"][0]["outputs"] = {"content": f"I don't know, sorry ({index})."}
        payloads.append(trace)
    stored = ingest(experiment, *payloads)
    judge_by_hand(judge, trace_ids=[trace.trace_id for trace in stored])
    while judge_pending():  # by hand, a job takes as many as the endpoint's limit allows at once
        pass
    for trace in stored:
        add_feedback(user=people[0], name="helpful", value="don't know" not in str(trace.response), trace=trace)
    agreement = load_pairs([judge])[judge.pk].agreement(1)
    assert agreement.n == 160
    assert 0.8 < agreement.accuracy.value < 1.0  # the scripted flips happened, and not on everything
    assert agreement.accuracy.low <= 0.9 <= agreement.accuracy.high


@pytest.mark.django_db(transaction=True)
def test_people_asking_at_the_same_moment_get_different_items(experiment, endpoint, people):
    """Three people ask for their next item at once, in threads, five times over: no item is ever held by two."""
    import threading

    from django.db import connection

    judge = yes_no_judge(experiment, endpoint)
    for index, trace in enumerate(traces(experiment, 20)):
        record_verdict(judge, trace, index % 3 == 0)
    for _ in range(5):
        barrier = threading.Barrier(len(people))
        handed: dict[str, int | None] = {}

        def ask(person):
            try:
                barrier.wait()
                handed[person.username] = labelling.next_item(judge, person)
            finally:
                connection.close()

        threads = [threading.Thread(target=ask, args=(person,)) for person in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert None not in handed.values() and len(set(handed.values())) == len(people), handed
        holders = LabelClaim.objects.values_list("target_pk", "user__username")
        assert sorted(holders) == sorted((pk, name) for name, pk in handed.items())
        for name, pk in handed.items():  # each answers, and asks again next round
            add_feedback(user=next(p for p in people if p.username == name), name="helpful", value=True, trace=Trace.objects.get(pk=pk))
