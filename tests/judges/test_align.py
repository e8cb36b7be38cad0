"""align(): the split, the candidates, the held-out check against the stand-in, cost, and the too-few-labels answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from judges import align, align_work
from judges.actions import create_judge
from judges.errors import ConfigError
from judges.models import AlignRun, Judge
from tests.conftest import ingest, make_trace, record_verdict
from traces.feedback import add_feedback

pytestmark = pytest.mark.django_db

POLITE = "Is the answer in {{ outputs }} polite? Answer no when its tone is rude."
GOOD = "Returns are accepted within 30 days of delivery."
RUDE = "As I said, read it before asking."
BRUSH_OFF = "I don't know. I can only help with orders."


def traces_saying(experiment, answers: list[tuple[str, str]]):
    built = []
    for minute, (trace_id, answer) in enumerate(answers):
        trace = make_trace(trace_id, minutes=minute)
        # Each answer its own (an order number): the stand-in's deliberate mistakes are drawn per prompt, and
        # identical prompts would make them all at once.
        trace["spans"][0]["outputs"] = {"content": f"{answer} (Order #{minute})"}
        built.append(trace)
    return ingest(experiment, *built)


def label_politeness(experiment, endpoint, user) -> Judge:
    """A judge that asks only about tone, and people who also fail answers that brush the question off: on every
    brush-off the judge said yes and the person no. 40 good answers, 20 rude ones, 40 brush-offs."""
    judge = create_judge(experiment, name="polite", instructions=POLITE, endpoint=endpoint)
    answers = [(f"good{n:02d}", GOOD) for n in range(40)] + [(f"rude{n:02d}", RUDE) for n in range(20)]
    answers += [(f"brush{n:02d}", BRUSH_OFF) for n in range(40)]
    for trace in traces_saying(experiment, answers):
        kind = trace.trace_id.rstrip("0123456789")
        record_verdict(judge, trace, kind != "rude", rationale="[stand-in model] recorded")
        add_feedback(user=user, name="polite", value=kind == "good", trace=trace, rationale="brushes me off" if kind == "brush" else "")
    return judge


@pytest.fixture
def politeness(experiment, endpoint, user):
    return label_politeness(experiment, endpoint, user)


def test_the_split_is_a_property_of_the_id_and_never_overlaps():
    ids = {pk: f"trace-{pk}" for pk in range(2000)}
    train, held_out = align.split(ids)
    assert not set(train) & set(held_out)
    assert set(train) | set(held_out) == set(ids)
    assert 0.35 < len(held_out) / len(ids) < 0.45  # HELD_OUT_SHARE, 0.4
    # An item keeps its side whatever else is labelled: the split of a subset is the subset of the split.
    some = {pk: ids[pk] for pk in range(0, 2000, 7)}
    sub_train, sub_held = align.split(some)
    assert set(sub_held) == set(held_out) & set(some) and set(sub_train) == set(train) & set(some)
    assert align.split(ids) == (train, held_out)


def test_too_few_labels_says_how_many_more(experiment, endpoint, user):
    judge = create_judge(experiment, name="few", instructions=POLITE, endpoint=endpoint)
    for trace in traces_saying(experiment, [(f"f{n}", GOOD) for n in range(30)]):
        record_verdict(judge, trace, True)
        add_feedback(user=user, name="few", value=n_is_odd(trace.trace_id), trace=trace)
    with pytest.raises(ConfigError) as refused:
        align.start_align(judge, min_labels=50)
    assert "has 30 labelled traces" in refused.value.errors["labels"]
    assert "Label 20 more" in refused.value.errors["labels"]
    assert not AlignRun.objects.exists()
    plan = align.plan_align(judge, min_labels=20)
    assert plan.problem.startswith("Too few held-out labels") and "Label about" in plan.problem
    assert len(plan.held_out) < align.MIN_HELD_OUT


def n_is_odd(trace_id: str) -> bool:
    return int(trace_id[1:]) % 2 == 1


def test_rewritten_instructions_that_fix_the_disagreements_raise_held_out_kappa(politeness, endpoint, standin):
    plan = align.plan_align(politeness, min_labels=50, rewrite_endpoint=endpoint)
    assert plan.problem == ""
    assert not set(plan.train) & set(plan.held_out)
    assert plan.estimate_usd is not None and plan.estimate_usd > 0
    assert plan.calls == len(plan.held_out) * 3 + 1

    started = align.start_align(politeness, min_labels=50, rewrite_endpoint=endpoint)
    assert started.status == AlignRun.Status.QUEUED and started.estimate_usd == plan.estimate_usd
    assert align_work.run(str(started.pk)) == align_work.FINISHED  # what the worker's task does
    body = align.run_json(AlignRun.objects.get(pk=started.pk))

    assert body["status"] == "done" and body["progress"]["done"] == body["progress"]["total"] == len(plan.held_out) * 3 + 1
    by_key = {candidate["key"]: candidate for candidate in body["candidates"]}
    assert set(by_key) == {"current", "few_shot", "rewritten"}
    rewritten, current = by_key["rewritten"], by_key["current"]
    # The stand-in read the train corrections and added the criterion the people used.
    assert rewritten["instructions"].startswith(POLITE) and "relevance" in rewritten["instructions"]
    assert "{{ outputs }}" in rewritten["instructions"]
    for candidate in body["candidates"]:
        assert candidate["n"] == len(plan.held_out) and candidate["errors"] == 0
    assert rewritten["agreement"]["kappa"]["value"] > current["agreement"]["kappa"]["high"]
    assert rewritten["improvement"] > 0.3
    # Only held-out items were judged, each once per candidate.
    judged = [request["body"]["messages"][1]["content"] for request in standin.requests if "Rewrite task" not in request["body"]["messages"][0]["content"]]
    assert len(judged) == len(plan.held_out) * 3
    # Cost: estimated before, summed from the calls after; the estimate errs on the high side.
    actual, estimate = Decimal(body["cost_usd"]), Decimal(body["estimate_usd"])
    assert 0 < actual <= estimate * 2
    assert Decimal(rewritten["cost_usd"]) > 0


def test_the_few_shot_candidate_quotes_train_corrections_only(politeness):
    plan = align.plan_align(politeness, min_labels=50)
    text = align.with_examples(politeness, plan.corrections[: align.MAX_EXAMPLES])
    assert text.startswith(POLITE) and "the correct answer is no" in text and "brushes me off" in text
    assert text.count("{{") == 1  # the data quoted can't add a placeholder


def test_using_a_candidate_makes_it_the_shadow_version(politeness, endpoint, user):
    from judges.shadow import current_shadow

    started = align.start_align(politeness, min_labels=50, rewrite_endpoint=endpoint)
    align_work.run(str(started.pk))
    finished = AlignRun.objects.get(pk=started.pk)
    with pytest.raises(ConfigError):
        align.use_candidate(finished, "nonsense", user=user)
    version = align.use_candidate(finished, "rewritten", user=user)
    rewritten = next(c for c in finished.candidates if c["key"] == "rewritten")
    judge = Judge.objects.get(pk=politeness.pk)
    assert (judge.version, judge.instructions) == (1, POLITE)  # the live version is untouched
    shadow = current_shadow(judge)
    assert shadow.version == version == 2 and shadow.config["instructions"] == rewritten["instructions"]
    assert AlignRun.objects.get(pk=started.pk).picked == "rewritten"
    with pytest.raises(ConfigError) as second:  # one shadow at a time
        align.use_candidate(AlignRun.objects.get(pk=started.pk), "few_shot", user=user)
    assert "already this judge's shadow" in second.value.errors["shadow"]


def test_a_candidate_of_a_judge_changed_since_the_run_is_refused(politeness, endpoint, user):
    from judges.actions import update_judge

    started = align.start_align(politeness, min_labels=50, rewrite_endpoint=None)
    align_work.run(str(started.pk))
    update_judge(politeness, instructions=POLITE + " Be strict.")
    with pytest.raises(ConfigError) as stale:
        align.use_candidate(AlignRun.objects.get(pk=started.pk), "few_shot", user=user)
    assert "changed since this run" in stale.value.errors["candidate"]


def test_a_run_longer_than_a_task_goes_on_in_new_tasks_and_ends_the_same(politeness, endpoint, monkeypatch):
    from judges import tasks

    whole = align.start_align(politeness, min_labels=50, rewrite_endpoint=endpoint)
    assert align_work.run(str(whole.pk)) == align_work.FINISHED
    monkeypatch.setattr(align_work, "task_seconds", lambda: 0.2)  # a task takes new calls for 0.2 s, then hands over
    queued: list[str] = []
    monkeypatch.setattr(tasks, "enqueue_align", queued.append)
    chunked = align.start_align(politeness, min_labels=50, rewrite_endpoint=endpoint)
    assert queued == [str(chunked.pk)]
    while queued:  # what the broker does with each task queued
        tasks.run_align(queued.pop())
        assert AlignRun.objects.get(pk=chunked.pk).status in (AlignRun.Status.QUEUED, AlignRun.Status.DONE)
    one, many = AlignRun.objects.get(pk=whole.pk), AlignRun.objects.get(pk=chunked.pk)
    assert many.status == AlignRun.Status.DONE and many.calls_done == many.calls_total == one.calls_total
    assert len(many.results["current"]) == len(one.held_out) and many.started_at < many.updated_at
    assert [c["agreement"] for c in many.candidates] == [c["agreement"] for c in one.candidates]


def test_run_takes_a_run_once(politeness, endpoint):
    started = align.start_align(politeness, min_labels=50, rewrite_endpoint=None)
    assert align_work.run(str(started.pk)) == align_work.FINISHED
    assert align_work.run(str(started.pk)) == align_work.NOTHING  # a second delivery of the task does nothing
