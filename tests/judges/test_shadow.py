"""Shadow versions (judges.shadow): a candidate judged beside the live version, on the same items, counted nowhere."""

from __future__ import annotations

from datetime import timedelta

import pytest

import standin.verdicts
from evalapp.overview.compute import compute_overview, judge_totals
from evalapp.overview.ranges import parse_range
from judges import selection, shadow, tasks
from judges.actions import create_judge, update_judge
from judges.errors import ConfigError
from judges.labels import load_pairs
from judges.models import Evaluation, Judge, JudgeVersion, VersionRole
from judges.states import trace_states
from tests.conftest import BASE_TIME, ingest, make_trace
from traces.feedback import add_feedback
from traces.models import Assessment, Trace

pytestmark = pytest.mark.django_db(transaction=True)

RELEVANCE = "Is {{ outputs }} a relevant answer to {{ inputs }}?"
TONE = "Is the tone of {{ outputs }} polite, given {{ inputs }}?"


@pytest.fixture
def no_noise(monkeypatch):
    """The stand-in without its deliberate mistakes: its verdicts then follow the cues alone."""
    monkeypatch.setattr(standin.verdicts, "NOISE_SHARE", 0.0)


def relevance(experiment, endpoint, **fields) -> Judge:
    return create_judge(experiment, **{"name": "relevance", "instructions": RELEVANCE, "endpoint": endpoint, "active": True, **fields})


def answered(trace_id: str, answer: str, minutes: int = 0) -> dict:
    trace = make_trace(trace_id, minutes=minutes)
    trace["spans"][0]["outputs"] = {"content": answer}
    return trace


# Which answers the relevance question (live) and the tone question (shadow) fault: the stand-in reads cues.
ANSWERS = {
    "plain": ("Returns are accepted within 30 days.", "yes", "yes"),
    "unsure": ("I don't know, sorry.", "no", "yes"),
    "rude": ("Calm down. Returns are accepted within 30 days.", "yes", "no"),
}


def scripted_traffic(experiment, count: int = 12) -> list[Trace]:
    kinds = list(ANSWERS)
    return ingest(experiment, *(answered(f"t{n}-{kinds[n % 3]}", ANSWERS[kinds[n % 3]][0], minutes=n) for n in range(count)))


def run_ingest_task(traces: list[Trace]) -> int:
    ids = selection.select_traces(traces[0].experiment_id, [trace.pk for trace in traces])
    return tasks.judge_evaluations(ids) if ids else 0


def test_the_shadow_judges_exactly_the_items_the_live_version_samples(experiment, endpoint, standin):
    judge = relevance(experiment, endpoint, sample_rate=0.5)
    started = shadow.start_shadow(judge, instructions=TONE)
    assert started.role == VersionRole.SHADOW and started.version == 2
    stored = ingest(experiment, *(make_trace(f"s{n}", minutes=n) for n in range(40)))
    run_ingest_task(stored)
    live = set(Evaluation.objects.filter(judge=judge, shadow__isnull=True).values_list("trace__trace_id", flat=True))
    shadowed = set(Evaluation.objects.filter(shadow=started).values_list("trace__trace_id", flat=True))
    assert live == shadowed == {trace.trace_id for trace in stored if judge.should_sample(trace.trace_id)}
    assert 0 < len(live) < 40
    verdicts = Assessment.all_objects.filter(shadow=True)
    assert verdicts.count() == len(live) and set(verdicts.values_list("judge_version", flat=True)) == {2}
    assert all(priority == 3 for priority in Evaluation.objects.filter(shadow=started).values_list("priority", flat=True))


def test_shadow_sessions_follow_the_live_decision(experiment, endpoint, standin):
    from django.utils import timezone

    judge = create_judge(
        experiment, name="convo", scope="session", instructions="Was the user frustrated in {{ conversation }}?", endpoint=endpoint,
        active=True, sample_rate=0.5, session_idle_seconds=10,
    )
    started = shadow.start_shadow(judge, instructions="Did the user stay calm in {{ conversation }}? Frustration counts.")
    ingest(experiment, *(make_trace(f"c{n}", minutes=n, session_id=f"s{n}") for n in range(20)))
    selection.select_sessions(timezone.now() + timedelta(minutes=5))
    live = set(Evaluation.objects.filter(judge=judge, shadow__isnull=True, status="pending").values_list("session__session_id", flat=True))
    assert live and live == set(Evaluation.objects.filter(shadow=started).values_list("session__session_id", flat=True))


def test_live_work_is_claimed_before_shadow_work(experiment, endpoint):
    from judges import worker

    judge = relevance(experiment, endpoint)
    shadow.start_shadow(judge, instructions=TONE)
    stored = ingest(experiment, *(make_trace(f"p{n}", minutes=n) for n in range(3)))
    selection.select_traces(experiment.pk, [trace.pk for trace in stored])
    _, claimed = worker.claim(None, limit=3)
    assert len(claimed) == 3 and all(evaluation.shadow_id is None for evaluation in claimed)


def test_shadow_results_never_count_in_the_overview_chips_filter_or_agreement(experiment, endpoint, standin, no_noise, user):
    judge = relevance(experiment, endpoint)
    shadow.start_shadow(judge, instructions=TONE)
    stored = scripted_traffic(experiment)
    run_ingest_task(stored)
    shadow_verdicts = Assessment.all_objects.filter(shadow=True, error_code="")
    assert shadow_verdicts.count() == 12  # the shadow did judge: what follows must not see it
    assert set(shadow_verdicts.values_list("value", flat=True)) == {True, False}
    live = Assessment.objects.filter(name="relevance", valid=True)
    assert live.count() == 12 and not live.filter(shadow=True).exists()
    live_passes = live.filter(value=True).count()
    assert live_passes == 8  # plain and rude answers are relevant; "I don't know" is not

    # Overview (raw tallies and the hourly rollups it builds) and the judge card's 24 hours.
    since, until = BASE_TIME - timedelta(hours=1), BASE_TIME + timedelta(hours=1)
    totals = judge_totals(experiment, [judge], since, until)[judge.pk]
    assert totals.counts["judged"] == 12 and totals.counts["passes"] == live_passes
    for rollups in (False, True):  # from the raw rows, and from the stored hourly rollups
        overview = compute_overview(experiment, parse_range({"from": "2026-11-19", "to": "2026-11-21"}), now=BASE_TIME + timedelta(days=2), rollups=rollups)
        [summary] = overview["judges"]
        assert summary["judged"] == 12 and summary["pass_rate"] == pytest.approx(live_passes / 12, abs=1e-4)
        assert summary["versions"] == []  # a shadow draws no version mark

    # Chips: each trace's state is the live verdict.
    states = trace_states([judge], Trace.objects.filter(experiment=experiment))
    for trace in Trace.objects.filter(experiment=experiment):
        state = states[(trace.pk, judge.pk)]
        expected = ANSWERS[trace.trace_id.split("-")[1]][1] == "yes"
        assert state.state == "judged" and state.value is expected and not Assessment.all_objects.get(pk=state.assessment_id).shadow

    # The Traces tab's filter on verdicts.
    from traces.filter_sql import filter_traces

    failing = filter_traces(Trace.objects.filter(experiment=experiment), "assessment.relevance = 'no'")
    assert {trace.trace_id for trace in failing} == {trace.trace_id for trace in stored if trace.trace_id.endswith("unsure")}

    # Agreement with people pairs live verdicts only.
    for trace in stored:
        add_feedback(trace=trace, name="relevance", value=True, user=user)
    entry = load_pairs([judge])[judge.pk]
    assert set(entry.verdicts) == {1}
    assert {verdict.value for verdict in entry.verdicts[1].values()} == {True, False}
    assert sum(verdict.value for verdict in entry.verdicts[1].values()) == live_passes


def test_shadow_verdicts_never_move_an_alert(experiment, endpoint):
    from evalapp.alerts import evaluate
    from evalapp.models import AlertEvent, AlertKind, AlertRule
    from traces.models import AssessmentSource

    judge = create_judge(experiment, name="helpful", endpoint=endpoint, instructions="Is {{ outputs }} helpful?")
    started = shadow.start_shadow(judge, instructions="Is {{ outputs }} helpful and short?")
    rule = AlertRule.objects.create(experiment=experiment, judge=judge, kind=AlertKind.PASS_RATE_BELOW, threshold=0.8, window_minutes=60)
    traces = Trace.objects.bulk_create(
        Trace(trace_id=f"a{minute}", experiment=experiment, started_at=BASE_TIME + timedelta(minutes=minute), duration_ms=100) for minute in range(60)
    )
    common = {"name": judge.name, "source_type": AssessmentSource.LLM_JUDGE, "judge_name": judge.name, "source_id": f"judge:{judge.pk}"}
    Assessment.objects.bulk_create(Assessment(trace=trace, value=True, judge_version=1, **common) for trace in traces)
    Assessment.objects.bulk_create(Assessment(trace=trace, value=False, judge_version=started.version, shadow=True, **common) for trace in traces)
    evaluate.check_rules(BASE_TIME + timedelta(minutes=60))
    rule.refresh_from_db()
    assert rule.last_figures["n"] == 60 and rule.last_figures["value"] == 1.0
    assert not AlertEvent.objects.exists()


def test_diff_lists_exactly_the_disagreements_with_both_rationales(experiment, endpoint, standin, no_noise, user):
    judge = relevance(experiment, endpoint)
    started = shadow.start_shadow(judge, instructions=TONE)
    stored = scripted_traffic(experiment)
    run_ingest_task(stored)
    unsure = next(trace for trace in stored if trace.trace_id.endswith("unsure"))
    add_feedback(trace=unsure, name="relevance", value=False, user=user)
    diff = shadow.shadow_diff(judge, started)
    expected = {trace.trace_id for trace in stored if ANSWERS[trace.trace_id.split("-")[1]][1] != ANSWERS[trace.trace_id.split("-")[1]][2]}
    assert diff.compared == 12 and diff.total == len(expected) == 8
    assert {row.target_id for row in diff.rows} == expected
    for row in diff.rows:
        live_said, shadow_said = ANSWERS[row.target_id.split("-")[1]][1:]
        assert (row.live_value, row.shadow_value) == (live_said == "yes", shadow_said == "yes")
        assert row.live_rationale.startswith("[stand-in model]") and row.shadow_rationale.startswith("[stand-in model]")
        assert row.live_rationale != row.shadow_rationale
    [labelled] = [row for row in diff.rows if row.labelled]
    assert labelled.target_id == unsure.trace_id and labelled.human_value is False and labelled.human_by == "pat"
    assert diff.live_agreement.n == diff.shadow_agreement.n == 1
    body = diff.as_json()
    assert body["agreement_with_people"]["live"]["status"] == "insufficient"
    assert len(body["results"]) == 8 and body["results"][0]["live"]["rationale"]


def test_diff_agreement_with_people_has_kappa_and_interval_past_twenty_labels(experiment, endpoint, standin, no_noise, user):
    judge = relevance(experiment, endpoint)
    started = shadow.start_shadow(judge, instructions=TONE)
    stored = scripted_traffic(experiment, count=30)
    run_ingest_task(stored)
    for trace in stored:  # people agree with the live version: relevant unless "I don't know"
        add_feedback(trace=trace, name="relevance", value=not trace.trace_id.endswith("unsure"), user=user)
    diff = shadow.shadow_diff(judge, started)
    live, candidate = diff.live_agreement.as_json(), diff.shadow_agreement.as_json()
    assert live["n"] == candidate["n"] == 30 and live["status"] == candidate["status"] == "ok"
    assert live["kappa"]["value"] == 1.0
    assert candidate["kappa"]["value"] < 0 and candidate["kappa"]["low"] <= candidate["kappa"]["value"] <= candidate["kappa"]["high"]


def test_promote_makes_the_shadow_a_new_live_version_with_a_mark(experiment, endpoint, standin):
    judge = relevance(experiment, endpoint)
    started = shadow.start_shadow(judge, instructions=TONE)
    promoted = shadow.promote_shadow(judge)
    judge.refresh_from_db()
    started.refresh_from_db()
    assert started.role == VersionRole.PROMOTED and started.ended_at is not None
    assert promoted.role == VersionRole.LIVE and promoted.version == judge.version == 3
    assert judge.instructions == TONE
    assert list(judge.versions.values_list("version", flat=True)) == [3, 1]  # the shadow row is not a live version
    overview = compute_overview(experiment, parse_range({"range": "24h"}))
    assert [mark["version"] for mark in overview["judges"][0]["versions"]] == [3]
    assert shadow.current_shadow(judge) is None
    # New traffic is judged by the promoted version, live.
    run_ingest_task(ingest(experiment, make_trace("after")))
    assert Assessment.objects.get(trace__trace_id="after").judge_version == 3


def test_discard_stops_new_shadow_work_and_keeps_its_results_as_history(experiment, endpoint, standin):
    judge = relevance(experiment, endpoint)
    started = shadow.start_shadow(judge, instructions=TONE)
    first = ingest(experiment, make_trace("d1"))
    run_ingest_task(first)
    queued = ingest(experiment, make_trace("d2", minutes=1))
    selection.select_traces(experiment.pk, [trace.pk for trace in queued])  # queued, not judged yet
    shadow.discard_shadow(judge)
    started.refresh_from_db()
    assert started.role == VersionRole.DISCARDED
    assert Evaluation.objects.get(shadow=started, trace__trace_id="d2").status == "cancelled"
    tasks.judge_evaluations(list(Evaluation.objects.filter(status="pending").values_list("pk", flat=True)))
    run_ingest_task(ingest(experiment, make_trace("d3", minutes=2)))
    assert not Evaluation.objects.filter(shadow=started, trace__trace_id="d3").exists()
    assert list(Assessment.all_objects.filter(shadow=True).values_list("trace__trace_id", flat=True)) == ["d1"]  # history stays
    assert Assessment.objects.filter(trace__trace_id__in=["d2", "d3"]).count() == 2  # live work went on
    # A new shadow may start afterwards, with the next number.
    assert shadow.start_shadow(judge, instructions=TONE + " Be strict.").version == 3


def test_a_live_edit_while_a_shadow_runs_skips_the_shadows_number(experiment, endpoint):
    judge = relevance(experiment, endpoint)
    shadow.start_shadow(judge, instructions=TONE)
    judge = update_judge(judge, instructions=RELEVANCE + " Be brief.")
    assert judge.version == 3
    assert sorted(JudgeVersion.all_objects.filter(judge=judge).values_list("version", "role")) == [(1, "live"), (2, "shadow"), (3, "live")]


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"instructions": RELEVANCE}, "instructions", "live version (v1) itself"),
        ({"instructions": TONE, "sample_rate": 0.5}, "sample_rate", "can't differ in a shadow"),
        ({"instructions": TONE, "colour": "red"}, "colour", "is not a judge setting"),
        ({"instructions": "Is {{ nonsense }} fine?"}, "instructions", "nonsense"),
        ({"instructions": TONE, "endpoint": 999999}, "endpoint", "no model endpoint"),
    ],
)
def test_a_bad_shadow_is_refused_and_nothing_is_written(experiment, endpoint, changes, field, fragment):
    judge = relevance(experiment, endpoint)
    with pytest.raises(ConfigError) as raised:
        shadow.start_shadow(judge, **changes)
    assert fragment in raised.value.errors[field]
    assert not JudgeVersion.all_objects.exclude(role=VersionRole.LIVE).exists()


def test_one_shadow_at_a_time(experiment, endpoint):
    judge = relevance(experiment, endpoint)
    shadow.start_shadow(judge, instructions=TONE)
    with pytest.raises(ConfigError) as raised:
        shadow.start_shadow(judge, instructions=TONE + " Be strict.")
    assert "v2 is already" in raised.value.errors["shadow"]
    with pytest.raises(ConfigError):
        shadow.discard_shadow(relevance(experiment, endpoint, name="other"))


def test_a_shadow_takes_the_live_versions_last_hour(experiment, endpoint, standin):
    judge = relevance(experiment, endpoint)
    stored = ingest(experiment, make_trace("h1"), make_trace("h2", minutes=1))
    run_ingest_task(stored)
    started = shadow.start_shadow(judge, instructions=TONE)
    assert set(Evaluation.objects.filter(shadow=started).values_list("trace__trace_id", flat=True)) == {"h1", "h2"}


def test_the_shadow_keeps_its_cost_apart(experiment, endpoint, standin):
    judge = relevance(experiment, endpoint, daily_cost_cap_usd="1.00")
    shadow.start_shadow(judge, instructions=TONE)
    run_ingest_task(scripted_traffic(experiment, count=6))
    stats = shadow.shadow_stats([judge])[judge.pk]
    assert stats.judged == 6 and stats.cost_usd > 0
    live_cost = judge_totals(experiment, [judge], BASE_TIME - timedelta(hours=1), BASE_TIME + timedelta(hours=1))[judge.pk].cost
    shadow_cost = sum(Assessment.all_objects.filter(shadow=True).values_list("cost_usd", flat=True))
    assert stats.cost_usd == shadow_cost and live_cost == sum(Assessment.objects.values_list("cost_usd", flat=True))
    from judges.models import JudgeSpend

    assert JudgeSpend.objects.get(judge=judge).spent_usd == live_cost  # the cap counts the live version only


def test_a_shadow_on_another_model_whose_key_is_refused_never_pauses_the_live_judge(experiment, endpoint, standin):
    from judges.endpoint_actions import create_endpoint

    refused = create_endpoint(name="wrong key", model="openai/evalapp-standin", api_base=standin.api_base, api_key="sk-wrong-0000000000", is_standin=True)
    judge = relevance(experiment, endpoint)
    shadow.start_shadow(judge, instructions=RELEVANCE, endpoint=refused.name)  # the same question, another model
    run_ingest_task(ingest(experiment, make_trace("k1"), make_trace("k2", minutes=1)))
    judge.refresh_from_db()
    assert judge.paused_reason == ""
    assert set(Assessment.all_objects.filter(shadow=True).values_list("error_code", flat=True)) == {"authentication"}
    assert Assessment.objects.filter(name="relevance", error_code="").count() == 2
    run_ingest_task(ingest(experiment, make_trace("k3", minutes=2)))
    assert Assessment.objects.filter(trace__trace_id="k3", error_code="").exists()  # live work goes on


def test_retention_deletes_shadow_verdicts_with_their_traces(experiment, endpoint, standin):
    from traces.retention import delete_batch

    judge = relevance(experiment, endpoint)
    shadow.start_shadow(judge, instructions=TONE)
    run_ingest_task(ingest(experiment, make_trace("r1"), make_trace("r2", minutes=1)))
    assert Assessment.all_objects.filter(shadow=True).count() == 2
    delete_batch(experiment, BASE_TIME + timedelta(days=1))
    assert not Trace.objects.exists() and not Assessment.all_objects.exists()
    assert not Evaluation.objects.exists()


def test_the_diff_is_paged_and_its_queries_do_not_grow_with_the_page(experiment, endpoint, standin, no_noise, django_assert_max_num_queries):
    judge = relevance(experiment, endpoint)
    started = shadow.start_shadow(judge, instructions=TONE)
    run_ingest_task(scripted_traffic(experiment, count=39))  # 26 of them disagree
    first = shadow.shadow_diff(judge, started)
    assert (first.total, first.pages, len(first.rows)) == (26, 2, 25)
    with django_assert_max_num_queries(8):
        second = shadow.shadow_diff(judge, started, page=2)
    assert len(second.rows) == 1 and {row.target_id for row in first.rows + second.rows} == {
        trace.trace_id for trace in Trace.objects.filter(experiment=experiment) if not trace.trace_id.endswith("plain")
    }
    assert shadow.shadow_diff(judge, started, page=99).page == 2  # past the end: the last page
