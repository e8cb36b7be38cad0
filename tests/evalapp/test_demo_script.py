"""The demo tells a story the judges can be checked against: conversations along one thread, a known share of
bad answers that the built-in judges catch with rationales that say so, and a release half-way through the week
whose regression shows on the Overview."""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from evalapp.alerts.evaluate import check_rules
from evalapp.demo_script import (
    DEMO_FAULTS,
    FAULT_SHARES,
    MAX_TURNS,
    NEW_VERSION,
    OLD_VERSION,
    RELEASE_AGE_HOURS,
    THREADS,
    build_demo,
)
from evalapp.models import AlertEvent
from evalapp.overview.compute import compute_overview
from evalapp.overview.ranges import parse_range
from judges import selection
from judges.models import Judge
from standin.server import StandinLLM
from tests.conftest import judge_pending
from traces.filter_sql import filter_traces
from traces.models import Assessment, Experiment, Trace

STEPS = {thread.intent: [step.user.split("{")[0] for step in thread.steps] for thread in THREADS}


def sessions_of(demo) -> dict[str, list]:
    sessions: dict[str, list] = defaultdict(list)
    for trace in demo.traces:
        if trace.session_id:
            sessions[trace.session_id].append(trace)
    return sessions


def test_threads_are_long_enough_for_the_longest_conversation():
    assert all(len(thread.steps) >= MAX_TURNS - 1 for thread in THREADS)


def test_each_conversation_follows_one_thread_about_one_order_or_product():
    demo = build_demo(random.Random(7), 400, "demo-7-", 0)
    sessions = sessions_of(demo)
    assert len(sessions) > 30

    for session_id, turns in sessions.items():
        intents = {trace.metadata["intent"] for trace in turns}
        assert len(intents) == 1, f"{session_id} jumps between {intents}"
        questions = [trace.spans[0].inputs["messages"][-1]["content"] for trace in turns]
        # The thread's own questions, in the thread's order, each once (complaints and goodbyes in between).
        steps = STEPS[intents.pop()]
        asked = [next(i for i, start in enumerate(steps) if start in question) for question in questions
                 if any(start in question for start in steps) and not question.startswith("That's not")]
        assert asked == list(range(len(asked))), (session_id, questions)
        mentioned = {number for question in questions for number in re.findall(r"#(\d+)", question)}
        assert len(mentioned) <= 1, f"{session_id} is about several orders: {mentioned}"


def test_bad_answers_are_planted_at_their_known_share_and_more_refusals_after_the_release():
    demo = build_demo(random.Random(1), 3000, "share-", 0)
    answered = Counter(planted.version for planted in demo.planted.values() if planted.answered)
    faults = Counter((planted.version, fault) for planted in demo.planted.values() for fault in planted.faults)

    for version in (OLD_VERSION, NEW_VERSION):
        refusals = faults[version, "refusal"] / answered[version]
        # Only the first answer to a thread step can go wrong (not corrections or goodbyes): a bit under the share.
        assert FAULT_SHARES[version]["refusal"] * 0.55 < refusals <= FAULT_SHARES[version]["refusal"] * 1.15
        assert 0.015 < faults[version, "wrong_fact"] / answered[version] < 0.06
    assert faults[NEW_VERSION, "refusal"] / answered[NEW_VERSION] > 3 * faults[OLD_VERSION, "refusal"] / answered[OLD_VERSION]
    outcomes = Counter(demo.frustration.values())
    assert outcomes["resolved"] > 0 and outcomes["unresolved"] > 0 and outcomes["none"] > outcomes["unresolved"]


def test_the_same_seed_gives_the_same_story_at_any_hour():
    def story(at: datetime) -> list:
        with time_machine.travel(at, tick=False):
            demo = build_demo(random.Random(7), 200, "demo-7-", 0)
        return [(t.trace_id, t.session_id, t.metadata, t.spans[0].inputs, t.spans[0].outputs) for t in demo.traces]

    assert story(datetime(2026, 11, 3, 4, 30, tzinfo=UTC)) == story(datetime(2026, 11, 5, 17, 10, tzinfo=UTC))


@pytest.fixture
def judged_demo(db) -> Experiment:
    """The demo as `./run app` loads it, every trace and conversation judged by its judges on the stand-in."""
    with StandinLLM() as standin:
        call_command("demo", "--standin-url", standin.api_base, stdout=StringIO())
        experiment = Experiment.objects.get(name="demo-agent")
        judges = list(Judge.objects.filter(experiment=experiment))
        for judge in judges:
            if judge.scope == "trace":
                selection.backfill_judge(judge.pk)
        selection.select_sessions(timezone.now() + timedelta(minutes=6), judges=[j for j in judges if j.scope == "session"])
        while judge_pending():  # a round takes what the endpoint's concurrency allows
            pass
    return experiment


def test_the_judges_catch_the_planted_bad_answers_and_the_release_shows_on_the_overview(judged_demo):
    """One test, as judging the whole demo takes a while."""
    demo = build_demo(random.Random(7), 400, "demo-7-", 0)  # the same script as the command's: same seed

    for fault, judge_name in DEMO_FAULTS.items():
        verdicts = Assessment.objects.filter(name=judge_name, trace__isnull=False, valid=True, error_code="")
        pairs = [(fault in demo.planted[a.trace.trace_id].faults, a.value is False, a.rationale) for a in verdicts.select_related("trace")]
        assert len(pairs) > 100, judge_name
        agree = sum(planted == said_no for planted, said_no, _ in pairs) / len(pairs)
        caught = [said_no for planted, said_no, _ in pairs if planted]
        # The stand-in errs on purpose on 5 % of verdicts; everything else follows the script.
        assert agree >= 0.9, (judge_name, agree)
        assert caught and sum(caught) / len(caught) >= 0.75, (judge_name, caught)
        for _, said_no, rationale in pairs:
            assert bool(re.search(r"The data shows|reads to me like", rationale)) == said_no, (judge_name, rationale)

    frustration = Assessment.objects.filter(name="user_frustration", session__isnull=False, valid=True, error_code="")
    outcomes = [(demo.frustration[a.session.session_id], a.value) for a in frustration.select_related("session")]
    assert len(outcomes) == len(demo.frustration)
    assert sum(expected == said for expected, said in outcomes) / len(outcomes) >= 0.9, Counter(outcomes)
    assert {said for _, said in outcomes} == {"none", "resolved", "unresolved"}

    # The release half-way through the week: relevance_to_query's pass rate drops on the Overview from that day.
    now = timezone.now()
    overview = compute_overview(judged_demo, parse_range({"range": "7d"}, now), now)
    [relevance] = [judge for judge in overview["judges"] if judge["name"] == "relevance_to_query"]
    release = now - timedelta(hours=RELEASE_AGE_HOURS)
    before, after = Counter(), Counter()
    for point in relevance["series"]:
        bucket = datetime.fromisoformat(point["bucket"])
        side = before if bucket + timedelta(days=1) <= release else after if bucket >= release else None
        if side is not None and point["pass_rate"] is not None:
            side["n"] += point["n"]
            side["passes"] += point["pass_rate"] * point["n"]
    assert before["n"] > 30 and after["n"] > 100
    assert before["passes"] / before["n"] - after["passes"] / after["n"] > 0.07
    # The Overview marks judge versions only; the release is found in the Traces tab's filter language.
    traces = Trace.objects.filter(experiment=judged_demo)
    for version, (low, high) in {OLD_VERSION: (0.0, 0.1), NEW_VERSION: (0.1, 0.3)}.items():
        judged = filter_traces(traces, f"metadata.app_version = '{version}' AND assessment.relevance_to_query IS NOT NULL")
        refused = filter_traces(traces, f"metadata.app_version = '{version}' AND assessment.relevance_to_query = 'no'")
        assert low < refused.count() / judged.count() < high, (version, refused.count(), judged.count())

    # The demo's alert rule sees the release too: relevance_to_query below 90% (its whole interval) over the
    # three days since, opened by the every-minute check as a quality drop.
    check_rules(now)
    alert = AlertEvent.objects.get(rule__judge__name="relevance_to_query")
    assert alert.cause == "quality dropped" and alert.figures["n"] > 100 and alert.figures["high"] < 0.9
    assert not AlertEvent.objects.filter(rule__kind="trace_error_rate_above").exists()
