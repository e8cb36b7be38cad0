"""Recording a verdict: the earlier one becomes history, and finding it reads only the target's own verdicts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from judges.actions import create_judge
from judges.models import JudgeExchange
from tests.conftest import ingest, make_trace, record_verdict
from traces.models import Assessment, AssessmentSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge(experiment, endpoint):
    return create_judge(experiment, name="helpful", instructions="Is {{ outputs }} a helpful answer to {{ inputs }}?", endpoint=endpoint)


def test_a_new_verdict_makes_the_judges_earlier_one_history_and_leaves_other_verdicts_alone(experiment, judge):
    first, other = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    old = record_verdict(judge, first, True)
    elsewhere = record_verdict(judge, other, True)
    human = Assessment.objects.create(trace=first, name="helpful", value=False, source_type=AssessmentSource.HUMAN, source_id="pm")
    new = record_verdict(judge, first, False)
    assert new.overrides_id == old.pk
    valid = dict(Assessment.objects.filter(trace__in=[first, other]).values_list("pk", "valid"))
    assert valid == {old.pk: False, new.pk: True, elsewhere.pk: True, human.pk: True}


def assessment_plans(queries) -> list[str]:
    """SQLite's plan for each captured statement that reads or updates assessments."""
    plans = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            sql = query["sql"]
            if "traces_assessment" in sql and sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                plans += [row[-1] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql).fetchall()]
    return plans


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner, which has no statistics, is the one that chose badly")
def test_recording_a_verdict_reads_the_targets_verdicts_by_its_index_not_every_verdict_of_the_judge(experiment, judge):
    [trace] = ingest(experiment, make_trace("t1"))
    record_verdict(judge, trace, True)
    with CaptureQueriesContext(connection) as queries:
        record_verdict(judge, trace, False)
    plans = assessment_plans(queries)
    assert plans and not [plan for plan in plans if "assessment_name_source" in plan or plan.startswith("SCAN traces_assessment")]


def _round(judge, *pairs):
    from judges.llm import CallResult
    from judges.results import Outcome, record_results

    def outcome(value):
        messages = [{"role": "user", "content": f"asked for {value}"}]
        return Outcome(CallResult(value=value, rationale=f"said {value}", raw_content=f'{{"value": {value}}}'), messages=messages)

    return record_results([(judge, outcome(value), {"trace": trace}) for trace, value in pairs])


def test_a_round_written_together_makes_each_targets_earlier_verdict_history_like_one_at_a_time(experiment, judge):
    first, second, third = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("t3", minutes=2))
    old = record_verdict(judge, first, True)
    human = Assessment.objects.create(trace=first, name="helpful", value=True, source_type=AssessmentSource.HUMAN, source_id="pm")
    # the same trace twice in one round (two generations of a conversation are the real case): the later one wins
    new_first, new_second, again_second = _round(judge, (first, False), (second, True), (second, False))
    assert [new_first.overrides_id, new_second.overrides_id, again_second.overrides_id] == [old.pk, None, new_second.pk]
    valid = dict(Assessment.objects.filter(trace__in=[first, second, third]).values_list("pk", "valid"))
    assert valid == {old.pk: False, human.pk: True, new_first.pk: True, new_second.pk: False, again_second.pk: True}
    assert (new_first.value, new_first.rationale, new_first.source_id) == (False, "said False", f"judge:{judge.pk}")
    exchange = JudgeExchange.objects.get(assessment=new_first)  # the judge's own words, as record_result keeps them
    assert (exchange.messages, exchange.answer) == ([{"role": "user", "content": "asked for False"}], '{"value": False}')


def test_a_round_takes_the_same_few_statements_however_many_results_it_writes(experiment, judge):
    traces = ingest(experiment, *(make_trace(f"t{n}", minutes=n) for n in range(20)))
    for trace in traces[:10]:
        record_verdict(judge, trace, True)
    counts = []
    for size in (2, 20):
        with CaptureQueriesContext(connection) as queries:
            _round(judge, *((trace, False) for trace in traces[:size]))
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1] <= 5  # read the earlier verdicts, insert, mark history, keep the words, mark hours stale


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner, which has no statistics, is the one that chose badly")
def test_a_round_reads_its_targets_verdicts_by_their_index_not_every_verdict_of_the_judge(experiment, judge):
    traces = ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1))
    for trace in traces:
        record_verdict(judge, trace, True)
    with CaptureQueriesContext(connection) as queries:
        _round(judge, *((trace, False) for trace in traces))
    plans = assessment_plans(queries)
    assert plans and not [plan for plan in plans if "assessment_name_source" in plan or plan.startswith("SCAN traces_assessment")]
